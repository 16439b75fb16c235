package aggregate

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
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
	return p.Day(b).cells(ctx, t)
}

// DayEvents is a day bucket's raw events, read once for every table: the
// first table that needs its cells computes those of all tables.
type DayEvents struct {
	p        *Publisher
	b        Bucket
	done     bool
	distinct uint64
	byTable  map[string][]Cell
	err      error
}

// Day is bucket b's raw events, not read yet.
func (p *Publisher) Day(b Bucket) *DayEvents { return &DayEvents{p: p, b: b} }

// Read computes the day's cells of every table, unless done already.
func (d *DayEvents) Read(ctx context.Context) error {
	if !d.done {
		d.distinct, d.byTable, d.err = d.p.dayCells(ctx, d.b)
		d.done = d.err == nil
	}
	return d.err
}

// cells is the day's true cells of t.
func (d *DayEvents) cells(ctx context.Context, t *Table) ([]Cell, error) {
	if err := d.Read(ctx); err != nil {
		return nil, err
	}
	cells, ok := d.byTable[t.Name]
	if !ok {
		return nil, fmt.Errorf("no table %s", t.Name)
	}
	return cells, nil
}

// Distinct is how many distinct raw events the day holds: what its cells
// came from once they are computed, else counted now.
func (d *DayEvents) Distinct(ctx context.Context) (uint64, error) {
	if d.done {
		return d.distinct, nil
	}
	var n uint64
	err := d.p.c.Select(ctx, "SELECT uniqExact(event_id) FROM "+d.p.dbs.Raw+".events WHERE "+rangeWhere(d.b), func(blk *proto.Block) error {
		if blk.Rows() > 0 {
			n = clickhouse.Get[uint64](blk, 0, 0)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count raw events of %s: %w", d.b, err)
	}
	return n, nil
}

// dayCells computes day bucket b's true cells of every table in one pass
// over its raw events.
func (p *Publisher) dayCells(ctx context.Context, b Bucket) (uint64, map[string][]Cell, error) {
	sf, err := p.siteFacts(ctx, b.Site)
	if err != nil {
		return 0, nil, err
	}
	// One set of sums per worker: a visitor-day is in one range, so the
	// workers' cells add up.
	sums := make([][]*tableSums, scanWorkers)
	workers := make([]func(*Visit), scanWorkers)
	for w := range workers {
		own := sf.fork()
		for _, t := range p.tables {
			sums[w] = append(sums[w], newTableSums(t))
		}
		workers[w] = func(v *Visit) {
			own.visit()
			for _, a := range sums[w] {
				a.add(own, v)
			}
		}
	}
	distinct, err := p.scanVisits(ctx, b, workers)
	if err != nil {
		return 0, nil, err
	}
	out := make(map[string][]Cell, len(p.tables))
	for i, a := range sums[0] {
		for _, other := range sums[1:] {
			a.merge(other[i])
		}
		if out[a.t.Name], err = a.result(); err != nil {
			return 0, nil, err
		}
	}
	return distinct, out, nil
}

// siteFacts is what the parts may know of site: its catalog.
func (p *Publisher) siteFacts(ctx context.Context, site string) (*siteFacts, error) {
	sf := &siteFacts{sources: map[string]string{}}
	err := p.c.Select(ctx, "SELECT product_id, category FROM "+p.dbs.Pub+".catalog WHERE "+p.catalogWhere(site), func(blk *proto.Block) error {
		if sf.catalog == nil {
			sf.catalog = make(map[string]string, blk.Rows())
		}
		for i := range blk.Rows() {
			sf.catalog[clickhouse.Get[string](blk, 0, i)] = clickhouse.Get[string](blk, 1, i)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("catalog of %s: %w", site, err)
	}
	return sf, nil
}

// tableSums adds up one table's bounded contributions, visit by visit.
type tableSums struct {
	t     *Table
	parts []VisitorCells
	cells map[string]int // a cell's place in the slices below
	// Per cell: its visitor-days, the last visit counted in it, its
	// metrics' sums (len(Metrics) each).
	visitors  []uint64
	lastVisit []int
	sums      []float64
	kept      []keptCell
	order     []ranked
	totals    []float64
	scale     []float64
	visit     int
}

type keptCell struct{ part, cell int }

// ranked is a cell of a visit by its place in the bound's order.
type ranked struct {
	hash uint64
	cell int
}

func newTableSums(t *Table) *tableSums {
	return &tableSums{t: t, parts: make([]VisitorCells, len(t.Parts)), cells: map[string]int{},
		totals: make([]float64, len(t.Metrics)), scale: make([]float64, len(t.Metrics))}
}

// add counts visit v: each part's cells, at most Limit of them (those of
// the smallest hash of visitor and key), each metric clamped to [0, Cap]
// per cell and scaled down so that the visit's sum over the table stays
// within Total.
func (a *tableSums) add(sf *siteFacts, v *Visit) {
	a.visit++
	a.kept = a.kept[:0]
	nm := len(a.t.Metrics)
	for pi, part := range a.t.Parts {
		vc := &a.parts[pi]
		vc.reset(nm)
		part.Cells(sf, v, vc)
		n := len(vc.cells)
		if n <= part.Limit {
			for i := range n {
				a.kept = append(a.kept, keptCell{pi, i})
			}
			continue
		}
		a.order = a.order[:0]
		for i := range n {
			a.order = append(a.order, ranked{cellHash(v.Visitor, vc.key(i)), i})
		}
		slices.SortFunc(a.order, func(x, y ranked) int { return cmp.Compare(x.hash, y.hash) })
		for _, r := range a.order[:part.Limit] {
			a.kept = append(a.kept, keptCell{pi, r.cell})
		}
	}
	if len(a.kept) == 0 {
		return
	}
	clear(a.totals)
	for _, k := range a.kept {
		vals := a.parts[k.part].vals[k.cell*nm:]
		for j, m := range a.t.Metrics {
			a.totals[j] += m.clamp(vals[j])
		}
	}
	for j, m := range a.t.Metrics {
		a.scale[j] = 1
		if m.Total > 0 && a.totals[j] > m.Total {
			a.scale[j] = m.Total / a.totals[j]
		}
	}
	for _, k := range a.kept {
		vc := &a.parts[k.part]
		key := vc.key(k.cell)
		c, ok := a.cells[string(key)]
		if !ok {
			c = a.newCell(string(key))
		}
		if a.lastVisit[c] != a.visit { // a cell two parts share counts the visitor once
			a.visitors[c]++
			a.lastVisit[c] = a.visit
		}
		vals, sums := vc.vals[k.cell*nm:], a.sums[c*nm:]
		for j, m := range a.t.Metrics {
			sums[j] += m.clamp(vals[j]) * a.scale[j]
		}
	}
}

// newCell adds a cell with nothing counted.
func (a *tableSums) newCell(key string) int {
	c := len(a.visitors)
	a.cells[key] = c
	a.visitors = append(a.visitors, 0)
	a.lastVisit = append(a.lastVisit, 0)
	a.sums = append(a.sums, make([]float64, len(a.t.Metrics))...)
	return c
}

// merge adds o's sums (of other visitor-days) to a's.
func (a *tableSums) merge(o *tableSums) {
	nm := len(a.t.Metrics)
	for k, oc := range o.cells {
		c, ok := a.cells[k]
		if !ok {
			c = a.newCell(k)
		}
		a.visitors[c] += o.visitors[oc]
		for j := range nm {
			a.sums[c*nm+j] += o.sums[oc*nm+j]
		}
	}
}

// clamp bounds one cell's contribution to [0, Cap].
func (m Metric) clamp(x float64) float64 { return min(max(x, 0), m.Cap) }

// cellHash orders a visit's cells for the bound: the visitor and the key,
// eight bytes at a time, through a multiply-xorshift mix (the order must
// be the same in every process: the audit recomputes what the publisher
// kept).
func cellHash(visitor uint64, key []byte) uint64 {
	h := mix64(visitor ^ uint64(len(key))*0x9e3779b97f4a7c15)
	for len(key) >= 8 {
		h = mix64(h ^ binary.LittleEndian.Uint64(key))
		key = key[8:]
	}
	if len(key) > 0 {
		var tail [8]byte
		copy(tail[:], key)
		h = mix64(h ^ binary.LittleEndian.Uint64(tail[:]) ^ 0xff51afd7ed558ccd)
	}
	return h
}

// mix64 is SplitMix64's finalizer.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// result is the table's true cells, ordered by key.
func (a *tableSums) result() ([]Cell, error) {
	keys := make([]string, 0, len(a.cells))
	for k := range a.cells {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]Cell, 0, len(keys))
	for _, k := range keys {
		values := splitKey([]byte(k))
		if len(values) != len(a.t.Dims) {
			return nil, fmt.Errorf("%s: a part gave %d dimensions, the table has %d", a.t.Name, len(values), len(a.t.Dims))
		}
		nm, i := len(a.t.Metrics), a.cells[k]
		c := Cell{Dims: make([]any, len(values)), Visitors: a.visitors[i], Values: a.sums[i*nm : (i+1)*nm : (i+1)*nm]}
		for i, d := range a.t.Dims {
			var err error
			if c.Dims[i], err = d.value(values[i]); err != nil {
				return nil, fmt.Errorf("%s: %w", a.t.Name, err)
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// value is a dimension value as the Go type its column takes.
func (d Dim) value(s string) (any, error) {
	switch d.Type {
	case "String":
		return s, nil
	case "UInt8", "UInt16":
		bits := 8
		if d.Type == "UInt16" {
			bits = 16
		}
		n, err := strconv.ParseUint(s, 10, bits)
		if err != nil {
			return nil, fmt.Errorf("dimension %s: %w", d.Name, err)
		}
		if bits == 8 {
			return uint8(n), nil
		}
		return uint16(n), nil
	}
	return nil, fmt.Errorf("dimension %s: type %s", d.Name, d.Type)
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
