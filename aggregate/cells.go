package aggregate

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/herd-analytics/herd/internal/clickhouse"
)

// Cell is one cell's true, bounded aggregates: never stored, only noised.
type Cell struct {
	Dims     []any
	Visitors uint64
	Values   []float64 // per metric
}

// Key joins the dimension values, for matching cells.
func (c Cell) Key() string {
	parts := make([]string, len(c.Dims))
	for i, d := range c.Dims {
		parts[i] = fmt.Sprint(d)
	}
	return strings.Join(parts, "\x00")
}

// TrueCells computes bucket b's cells of t: a day's from raw events
// (contributions bounded per visitor-day, true distinct visitor-days per
// cell), a week's or month's from its days' partial sums. The audit uses it
// to recompute what was published.
func (p *Publisher) TrueCells(ctx context.Context, t *Table, b Bucket) ([]Cell, error) {
	if b.Grain != Day {
		return p.partialCells(ctx, t, b)
	}
	events, err := p.bucketEvents(ctx, b)
	if err != nil {
		return nil, err
	}
	return p.trueCells(ctx, t, b, events.Duplicated)
}

func (p *Publisher) trueCells(ctx context.Context, t *Table, b Bucket, dedup bool) ([]Cell, error) {
	catalog, err := p.hasCatalog(ctx, b.Site)
	if err != nil {
		return nil, err
	}
	var cells []Cell
	nd := len(t.Dims)
	err = p.c.Select(ctx, p.CellsSQL(t, b, dedup, catalog), func(blk *proto.Block) error {
		for i := 0; i < blk.Rows(); i++ {
			c := Cell{Dims: make([]any, nd), Values: make([]float64, len(t.Metrics))}
			for j := range nd {
				c.Dims[j] = blk.Columns[j].Row(i, false)
			}
			c.Visitors = clickhouse.Get[uint64](blk, nd, i)
			for j := range t.Metrics {
				c.Values[j] = clickhouse.Get[float64](blk, nd+1+j, i)
			}
			cells = append(cells, c)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("compute %s cells of %s: %w", t.Name, b, err)
	}
	return cells, nil
}

// placeholders expands the placeholders of t's part SQL for bucket b.
func (p *Publisher) placeholders(t *Table, b Bucket, dedup, catalog bool) *strings.Replacer {
	where := rangeWhere(b)
	ts := "toUInt32((toUInt32(received) - " + clickhouse.QuoteInt(b.Start.Unix()) + ") * " + clickhouse.QuoteInt(tsPerSecond) + " + least(seq, " + clickhouse.QuoteInt(tsPerSecond-1) + "))"
	product, category := "pid", "anyIf(product_category, product_category != '')"
	if catalog {
		list := func(col string) string {
			return "(SELECT groupArray(" + col + ") FROM " + p.dbs.Pub + ".catalog WHERE " + p.catalogWhere(b.Site) + ")"
		}
		product = "transform(pid, " + list("product_id") + ", " + list("product_id") + ", " + clickhouse.Quote(Unlisted) + ")"
		category = "any(transform(pid, " + list("product_id") + ", " + list("category") + ", ''))"
	}
	events, filter := p.dbs.Raw+".events", where
	if dedup || (catalog && p.dbs.Cluster != "") {
		// The columns the table reads, with each event once when dedup.
		// On a cluster the catalog's scalar subqueries must run where the
		// aggregation does (18.16's shards name their results differently
		// from the server that asked): the shards filter, this server
		// aggregates.
		events = "(SELECT " + strings.Join(t.Reads, ", ") + " FROM " + p.dbs.Raw + ".events WHERE " + where
		if dedup {
			events += " LIMIT 1 BY event_id"
		}
		events, filter = events+")", "1"
	}
	return strings.NewReplacer(phEvents, events, phWhere, filter, phTS, ts, phGap, strconv.Itoa(sessionGap), phProduct, product, phCategory, category)
}

// CellsSQL is the query of bucket b's true, bounded cells of t. With dedup,
// events stored more than once count once (a slower query, needed only
// while ClickHouse has not merged away a replay's copies). With catalog, the
// site's catalog is the products' key space.
func (p *Publisher) CellsSQL(t *Table, b Bucket, dedup, catalog bool) string {
	expand := p.placeholders(t, b, dedup, catalog)

	var dimFrom, dimNames []string
	for _, d := range t.Dims {
		dimFrom = append(dimFrom, d.from())
		dimNames = append(dimNames, d.Name)
	}
	order := "visitor"
	if len(dimFrom) > 0 {
		order += ", cityHash64(visitor, " + strings.Join(dimFrom, ", ") + ")"
	}
	members := make([]string, len(t.Parts))
	for i, part := range t.Parts {
		members[i] = "SELECT * FROM (SELECT * FROM (" + expand.Replace(part.SQL) + ") ORDER BY " + order +
			" LIMIT " + clickhouse.QuoteInt(part.Limit) + " BY visitor)"
	}
	union := strings.Join(members, " UNION ALL ")
	if len(t.Metrics) == 0 {
		sel := []string{}
		for i, d := range t.Dims {
			sel = append(sel, dimFrom[i]+" AS "+d.Name)
		}
		return "SELECT " + strings.Join(append(sel, "uniqExact(visitor) AS visitors"), ", ") +
			" FROM (" + union + ") GROUP BY " + strings.Join(dimNames, ", ")
	}
	// Per visitor-day: its cells as tuples of (dims..., capped metrics...)
	// and each metric's total, so contributions over Total scale down.
	var tuple, totals, outer, final []string
	tuple = append(tuple, dimFrom...)
	for j, m := range t.Metrics {
		capped := fmt.Sprintf("least(greatest(toFloat64(%s), 0.), %g)", m.Name, m.Cap)
		tuple = append(tuple, capped)
		totals = append(totals, fmt.Sprintf("sum(%s) AS total%d", capped, j))
	}
	for i, d := range t.Dims {
		outer = append(outer, fmt.Sprintf("tupleElement(c, %d) AS %s", i+1, d.Name))
	}
	for j, m := range t.Metrics {
		scale := "1."
		if m.Total > 0 {
			scale = fmt.Sprintf("least(1., %g / greatest(total%d, 1e-9))", m.Total, j)
		}
		outer = append(outer, fmt.Sprintf("tupleElement(c, %d) * %s AS m%d", len(t.Dims)+j+1, scale, j))
		final = append(final, fmt.Sprintf("sum(m%d) AS %s", j, m.Name))
	}
	q := "SELECT " + strings.Join(append(append(append([]string{}, dimNames...), "uniqExact(visitor) AS visitors"), final...), ", ") +
		" FROM (SELECT visitor, " + strings.Join(outer, ", ") +
		" FROM (SELECT visitor, groupArray(tuple(" + strings.Join(tuple, ", ") + ")) AS cells, " + strings.Join(totals, ", ") +
		" FROM (" + union + ") GROUP BY visitor) ARRAY JOIN cells AS c)"
	if len(dimNames) > 0 {
		q += " GROUP BY " + strings.Join(dimNames, ", ")
	}
	return q
}

// Partials: a daily bucket's true cells, kept in {raw}.cell_partials to build
// the week and month cells once raw events are gone. A row holds one cell's
// key (its dimension values as a JSON array), its visitor-days and its bounded
// metric sums: no pseudonym, no per-visitor row.

// storedPartials counts the partial rows of table t for day bucket b.
func (p *Publisher) storedPartials(ctx context.Context, t *Table, b Bucket) (uint64, error) {
	var n uint64
	err := p.c.Select(ctx, "SELECT count() FROM "+p.dbs.Raw+".cell_partials WHERE "+partialsWhere(t, b), func(blk *proto.Block) error {
		if blk.Rows() > 0 {
			n = clickhouse.Get[uint64](blk, 0, 0)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("check %s partials of %s: %w", t.Name, b, err)
	}
	return n, nil
}

func partialsWhere(t *Table, b Bucket) string {
	return "site = " + clickhouse.Quote(b.Site) + " AND table_name = " + clickhouse.Quote(t.Name) +
		" AND day >= toDate(" + clickhouse.Quote(b.Start.Format(time.DateOnly)) + ") AND day < toDate(" + clickhouse.Quote(b.End().Format(time.DateOnly)) + ")"
}

// writePartials stores a day's true cells of t.
func (p *Publisher) writePartials(ctx context.Context, t *Table, b Bucket, cells []Cell) error {
	blk := proto.NewBlock()
	for _, c := range [][2]string{{"site", "String"}, {"table_name", "String"}, {"day", "Date"}, {"cell", "String"}, {"true_visitor_days", "UInt64"}, {"true_sums", "Array(Float64)"}} {
		if err := blk.AddColumn(c[0], column.Type(c[1])); err != nil {
			return err
		}
	}
	for _, c := range cells {
		key, err := json.Marshal(c.Dims)
		if err != nil {
			return fmt.Errorf("%s partial key %v: %w", t.Name, c.Dims, err)
		}
		if err := blk.Append(b.Site, t.Name, b.Start, string(key), c.Visitors, c.Values); err != nil {
			return fmt.Errorf("%s partial %v: %w", t.Name, c.Dims, err)
		}
	}
	if blk.Rows() == 0 {
		return nil
	}
	if err := p.c.Insert(ctx, p.dbs.Raw+".cell_partials", blk); err != nil {
		return fmt.Errorf("store %s partials of %s: %w", t.Name, b, err)
	}
	return nil
}

// partialCells sums the day partials of a week or month bucket into its true
// cells: a visitor-day counts in a week or month cell exactly as in its
// day's cell, so the sums are the period's bounded cells.
func (p *Publisher) partialCells(ctx context.Context, t *Table, b Bucket) ([]Cell, error) {
	var cells []Cell
	q := "SELECT cell, sum(true_visitor_days), sumForEach(true_sums) FROM " + p.dbs.Raw + ".cell_partials WHERE " + partialsWhere(t, b) + " GROUP BY cell"
	err := p.c.Select(ctx, q, func(blk *proto.Block) error {
		for i := 0; i < blk.Rows(); i++ {
			dims, err := decodeKey(t, clickhouse.Get[string](blk, 0, i))
			if err != nil {
				return err
			}
			c := Cell{Dims: dims, Visitors: clickhouse.Get[uint64](blk, 1, i), Values: clickhouse.Get[[]float64](blk, 2, i)}
			if len(c.Values) != len(t.Metrics) {
				return fmt.Errorf("%s partial %v holds %d sums, want %d", t.Name, dims, len(c.Values), len(t.Metrics))
			}
			cells = append(cells, c)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sum %s partials of %s: %w", t.Name, b, err)
	}
	return cells, nil
}

// decodeKey turns a stored JSON key back into the dimensions' Go types.
func decodeKey(t *Table, key string) ([]any, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal([]byte(key), &raw); err != nil || len(raw) != len(t.Dims) {
		return nil, fmt.Errorf("%s partial key %q: not %d values (%v)", t.Name, key, len(t.Dims), err)
	}
	dims := make([]any, len(raw))
	for i, d := range t.Dims {
		var err error
		switch d.Type {
		case "String":
			var s string
			err = json.Unmarshal(raw[i], &s)
			dims[i] = s
		case "UInt8":
			var n uint8
			err = json.Unmarshal(raw[i], &n)
			dims[i] = n
		case "UInt16":
			var n uint16
			err = json.Unmarshal(raw[i], &n)
			dims[i] = n
		default:
			err = fmt.Errorf("type %s", d.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("%s partial key %q, %s: %w", t.Name, key, d.Name, err)
		}
	}
	return dims, nil
}

// OldestPartialDay is the first day with partial sums (zero when none).
func (p *Publisher) OldestPartialDay(ctx context.Context) (time.Time, error) {
	var day time.Time
	err := p.c.Select(ctx, "SELECT min(day), count() FROM "+p.dbs.Raw+".cell_partials", func(b *proto.Block) error {
		if b.Rows() > 0 && clickhouse.Get[uint64](b, 1, 0) > 0 {
			day = clickhouse.Get[time.Time](b, 0, 0).UTC()
		}
		return nil
	})
	if err != nil {
		return day, fmt.Errorf("oldest partial day: %w", err)
	}
	return day, nil
}
