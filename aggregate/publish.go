package aggregate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"github.com/google/differential-privacy/go/v3/dpagg"
	"github.com/google/differential-privacy/go/v3/noise"

	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/privacy"
	"github.com/herd-analytics/herd/schemas"
)

// Publisher turns closed buckets of raw events into published cells.
type Publisher struct {
	c      *clickhouse.Client
	dbs    clickhouse.Databases
	cfg    Config
	tables []*Table
	log    *slog.Logger
}

// NewPublisher checks cfg and the tables' column use against the purpose
// inventory: a rollup that reads a column the statistics purpose does not
// allow is refused here, before anything runs.
func NewPublisher(c *clickhouse.Client, dbs clickhouse.Databases, cfg Config, log *slog.Logger) (*Publisher, error) {
	cfg, err := cfg.WithDefaults()
	if err != nil {
		return nil, err
	}
	if err := dbs.Validate(); err != nil {
		return nil, err
	}
	tables, err := DefaultTables()
	if err != nil {
		return nil, err
	}
	inv, err := schemas.Purposes()
	if err != nil {
		return nil, err
	}
	for _, t := range tables {
		for _, col := range t.Reads {
			if !inv.Allows("{raw}.events", col, "statistics") {
				return nil, fmt.Errorf("rollup %s reads {raw}.events.%s, which the statistics purpose does not allow", t.Name, col)
			}
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Publisher{c: c, dbs: dbs, cfg: cfg, tables: tables, log: log}, nil
}

// DefaultTables are the rollups with the funnels and layout in schemas/.
func DefaultTables() ([]*Table, error) {
	funnels, err := schemas.Funnels()
	if err != nil {
		return nil, err
	}
	layout, err := schemas.Layout()
	if err != nil {
		return nil, err
	}
	return Tables(funnels, layout)
}

// Tables returns the rollups this publisher publishes.
func (p *Publisher) Tables() []*Table { return p.tables }

// Config is the publication rules in force, defaults filled in.
func (p *Publisher) Config() Config { return p.cfg }

// Client is the ClickHouse connection the publisher reads and writes with.
func (p *Publisher) Client() *clickhouse.Client { return p.c }

// Databases are the raw and published databases.
func (p *Publisher) Databases() clickhouse.Databases { return p.dbs }

// Run is one table's publication of one bucket, as rollup_runs records it.
type Run struct {
	Table      string
	Bucket     Bucket
	Published  int
	Suppressed int
	Epsilon    float64
	RawEvents  uint64
	Adopted    bool // cells were already stored by a run that died before recording itself
	Err        error
}

// Summary is what one RunOnce did.
type Summary struct {
	Buckets    int // buckets considered (site × grain × start)
	Runs       int // table publications done now
	Published  int // cells published
	Suppressed int // cells suppressed
	Failed     int
}

// RunOnce publishes every closed bucket with raw data that some table has not
// published yet, oldest first, as of now.
func (p *Publisher) RunOnce(ctx context.Context, now time.Time) (Summary, error) {
	var sum Summary
	due, err := p.Due(ctx, now)
	if err != nil {
		return sum, err
	}
	sum.Buckets = len(due)
	var errs []error
	for _, d := range due {
		events, err := p.bucketEvents(ctx, d.Bucket)
		if err != nil {
			return sum, err
		}
		for _, t := range d.Tables {
			run := p.PublishBucket(ctx, t, d.Bucket, events)
			sum.Runs++
			sum.Published += run.Published
			sum.Suppressed += run.Suppressed
			if run.Err != nil {
				sum.Failed++
				errs = append(errs, run.Err)
				if ctx.Err() != nil {
					return sum, errors.Join(errs...)
				}
			}
		}
	}
	return sum, errors.Join(errs...)
}

// DueBucket is a closed bucket and the tables that have not published it.
type DueBucket struct {
	Bucket Bucket
	Tables []*Table
}

// Due lists closed buckets with raw data not yet published by every table,
// oldest first, hourly before daily.
func (p *Publisher) Due(ctx context.Context, now time.Time) ([]DueBucket, error) {
	hours, err := rawHours(ctx, p.c, p.dbs.Raw)
	if err != nil {
		return nil, err
	}
	done, err := publishedSet(ctx, p.c, p.dbs.Pub)
	if err != nil {
		return nil, err
	}
	candidates := map[Bucket]bool{}
	for _, h := range hours {
		hb := Bucket{Site: h.site, Grain: Hour, Start: h.start}
		if !hb.End().Add(p.cfg.Grace).After(now) && !hb.Start.Before(now.Add(-p.cfg.HourlyHorizon)) {
			candidates[hb] = true
		}
		db := Bucket{Site: h.site, Grain: Day, Start: h.start.Truncate(24 * time.Hour)}
		if !db.End().Add(p.cfg.Grace).After(now) {
			candidates[db] = true
		}
	}
	var due []DueBucket
	for b := range candidates {
		var ts []*Table
		for _, t := range p.tables {
			if !done[runKey{t.Name, b}] {
				ts = append(ts, t)
			}
		}
		if len(ts) > 0 {
			due = append(due, DueBucket{Bucket: b, Tables: ts})
		}
	}
	sort.Slice(due, func(i, j int) bool {
		a, b := due[i].Bucket, due[j].Bucket
		if !a.End().Equal(b.End()) {
			return a.End().Before(b.End())
		}
		if a.Grain != b.Grain {
			return a.Grain < b.Grain
		}
		return a.Site < b.Site
	})
	return due, nil
}

type siteHour struct {
	site  string
	start time.Time
}

// rawHours lists the (site, hour) pairs that have raw events.
func rawHours(ctx context.Context, c *clickhouse.Client, rawDB string) ([]siteHour, error) {
	var out []siteHour
	err := c.Select(ctx, "SELECT site, toStartOfHour(received) AS h FROM "+rawDB+".events GROUP BY site, h ORDER BY h, site",
		func(b *proto.Block) error {
			for i := 0; i < b.Rows(); i++ {
				out = append(out, siteHour{clickhouse.Get[string](b, 0, i), clickhouse.Get[time.Time](b, 1, i).UTC()})
			}
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("list raw hours: %w", err)
	}
	return out, nil
}

type runKey struct {
	table  string
	bucket Bucket
}

func publishedSet(ctx context.Context, c *clickhouse.Client, pubDB string) (map[runKey]bool, error) {
	done := map[runKey]bool{}
	err := c.Select(ctx, "SELECT table_name, site, toUInt8(grain), bucket FROM "+pubDB+".rollup_runs"+
		" WHERE state = 'published' OR (state = 'releasing' AND cells_published = 0) GROUP BY table_name, site, grain, bucket",
		func(b *proto.Block) error {
			for i := 0; i < b.Rows(); i++ {
				done[runKey{clickhouse.Get[string](b, 0, i), Bucket{
					Site: clickhouse.Get[string](b, 1, i), Grain: Grain(clickhouse.Get[uint8](b, 2, i)),
					Start: clickhouse.Get[time.Time](b, 3, i).UTC(),
				}}] = true
			}
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("read rollup runs: %w", err)
	}
	return done, nil
}

// BucketEvents is what one look at a bucket's raw events tells: how many
// distinct events it covers (to tell late arrivals later) and whether any is
// stored twice (then its cells are computed the slower, deduplicating way).
type BucketEvents struct {
	Distinct   uint64
	Duplicated bool
}

func (p *Publisher) bucketEvents(ctx context.Context, b Bucket) (BucketEvents, error) {
	var e BucketEvents
	err := p.c.Select(ctx, "SELECT uniqExact(event_id) AS d, count() != d FROM "+p.dbs.Raw+".events WHERE "+rangeWhere(b),
		func(blk *proto.Block) error {
			if blk.Rows() > 0 {
				e.Distinct = clickhouse.Get[uint64](blk, 0, 0)
				e.Duplicated = clickhouse.Get[uint8](blk, 1, 0) == 1
			}
			return nil
		})
	if err != nil {
		return e, fmt.Errorf("count raw events of %s: %w", b, err)
	}
	return e, nil
}

func rangeWhere(b Bucket) string {
	return "site = " + clickhouse.Quote(b.Site) +
		" AND received >= toDateTime(" + clickhouse.QuoteInt(b.Start.Unix()) + ")" +
		" AND received < toDateTime(" + clickhouse.QuoteInt(b.End().Unix()) + ")"
}

// PublishBucket publishes table t's cells of bucket b, once: a bucket whose
// cells are already stored is adopted, never recomputed (fresh noise on a
// re-run would let averaging undo it).
func (p *Publisher) PublishBucket(ctx context.Context, t *Table, b Bucket, events BucketEvents) Run {
	run := Run{Table: t.Name, Bucket: b, Epsilon: p.cfg.BucketEpsilon(b.Grain), RawEvents: events.Distinct}
	started := time.Now()
	log := p.log.With("table", t.Name, "bucket", b.String())
	existing, err := p.storedCells(ctx, t, b)
	if err != nil {
		run.Err = err
		return run
	}
	mech := p.mechanisms(t, b.Grain)
	if existing > 0 {
		run.Published, run.Adopted = existing, true
		log.Warn("adopting cells stored by an interrupted run", "cells", existing)
	} else {
		cells, err := p.trueCells(ctx, t, b, events.Duplicated)
		if err != nil {
			run.Err = err
			return p.record(ctx, run, mech, started)
		}
		rel, err := p.release(t, cells, mech)
		if err == nil {
			run.Published, run.Suppressed = len(rel), len(cells)-len(rel)
			// Say what is about to be released before it is: a crash
			// after this leaves either these cells or nothing visible.
			err = p.insertRun(ctx, run, mech, started, "releasing")
		}
		if err == nil && len(rel) > 0 {
			var blk *proto.Block
			if blk, err = block(t, b, rel); err == nil {
				// One block, one partition: the bucket lands whole or not at all.
				if err = p.c.Insert(ctx, p.dbs.Pub+"."+t.Name, blk); err != nil {
					err = fmt.Errorf("insert %s cells of %s: %w", t.Name, b, err)
				}
			}
		}
		if err != nil {
			run.Err = err
			run.Published = 0
			return p.record(ctx, run, mech, started)
		}
	}
	log.Debug("published", "cells", run.Published, "suppressed", run.Suppressed, "epsilon", run.Epsilon)
	return p.record(ctx, run, mech, started)
}

func (p *Publisher) storedCells(ctx context.Context, t *Table, b Bucket) (int, error) {
	var n uint64
	err := p.c.Select(ctx, "SELECT count() FROM "+p.dbs.Pub+"."+t.Name+" WHERE site = "+clickhouse.Quote(b.Site)+
		" AND grain = "+clickhouse.Quote(b.Grain.String())+" AND bucket = toDateTime("+clickhouse.QuoteInt(b.Start.Unix())+")",
		func(blk *proto.Block) error {
			if blk.Rows() > 0 {
				n = clickhouse.Get[uint64](blk, 0, 0)
			}
			return nil
		})
	if err != nil {
		return 0, fmt.Errorf("check stored %s cells of %s: %w", t.Name, b, err)
	}
	return int(n), nil
}

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

// TrueCells computes bucket b's cells of t from raw events: contributions
// bounded per visitor-day, true distinct visitor-days per cell. The audit
// uses it to recompute what was published.
func (p *Publisher) TrueCells(ctx context.Context, t *Table, b Bucket) ([]Cell, error) {
	events, err := p.bucketEvents(ctx, b)
	if err != nil {
		return nil, err
	}
	return p.trueCells(ctx, t, b, events.Duplicated)
}

func (p *Publisher) trueCells(ctx context.Context, t *Table, b Bucket, dedup bool) ([]Cell, error) {
	var cells []Cell
	nd := len(t.Dims)
	err := p.c.Select(ctx, p.CellsSQL(t, b, dedup), func(blk *proto.Block) error {
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

// CellsSQL is the query of bucket b's true, bounded cells of t. With dedup,
// events stored more than once count once (a slower query, needed only
// while ClickHouse has not merged away a replay's copies).
func (p *Publisher) CellsSQL(t *Table, b Bucket, dedup bool) string {
	where := rangeWhere(b)
	if b.Grain == Hour {
		// A visitor-day counts only in its first HoursPerVisitor active
		// hours, which bounds what all hourly buckets of a day reveal.
		dayStart := b.Start.Truncate(24 * time.Hour)
		where += " AND visitor IN (SELECT visitor FROM " + p.dbs.Raw + ".events WHERE site = " + clickhouse.Quote(b.Site) +
			" AND received >= toDateTime(" + clickhouse.QuoteInt(dayStart.Unix()) + ") AND received < toDateTime(" + clickhouse.QuoteInt(b.End().Unix()) + ")" +
			" GROUP BY visitor HAVING uniqExact(toStartOfHour(received)) <= " + clickhouse.QuoteInt(p.cfg.HoursPerVisitor) + ")"
	}
	ts := "toUInt32((toUInt32(received) - " + clickhouse.QuoteInt(b.Start.Unix()) + ") * " + clickhouse.QuoteInt(tsPerSecond) + " + least(seq, " + clickhouse.QuoteInt(tsPerSecond-1) + "))"
	expand := strings.NewReplacer(phEvents, p.dbs.Raw+".events", phWhere, where, phTS, ts)
	if dedup {
		// Each event once, with the columns the table reads.
		events := "(SELECT " + strings.Join(t.Reads, ", ") + " FROM " + p.dbs.Raw + ".events WHERE " + where + " LIMIT 1 BY event_id)"
		expand = strings.NewReplacer(phEvents, events, phWhere, "1", phTS, ts)
	}

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

// mechanisms splits the bucket's ε: partition selection, the visitors count,
// then the metrics by weight.
func (p *Publisher) mechanisms(t *Table, g Grain) privacy.Params {
	eps := p.cfg.BucketEpsilon(g)
	m := privacy.Params{K: p.cfg.K, L: t.L(), Delta: p.cfg.Delta, Selection: round6(eps * p.cfg.SelectionShare)}
	rest := eps - m.Selection
	if len(t.Metrics) == 0 {
		m.Visitors = round6(rest)
		return m
	}
	m.Visitors = round6(eps * p.cfg.VisitorsShare)
	rest -= m.Visitors
	var w float64
	for _, mt := range t.Metrics {
		w += mt.Weight
	}
	for _, mt := range t.Metrics {
		l0, lInf := mt.sensitivity(m.L)
		m.Metrics = append(m.Metrics, privacy.Mechanism{Name: mt.Name, Epsilon: round6(rest * mt.Weight / w), Cap: mt.Cap, Total: mt.Total, L0: l0, LInf: lInf})
	}
	return m
}

// released is one published cell: its dimensions and noised values.
type released struct {
	Dims     []any
	Visitors uint64
	Values   []any // per metric: uint64 counts, float64 sums
}

// release applies the k floor and DP partition selection to every cell and
// Laplace noise to the kept cells' counts and sums. Contributions were
// bounded in SQL (LIMIT L BY visitor, per-cell caps), so the visitors count
// is a dpagg.Count with L partitions, and each capped metric gets the
// library's Laplace noise with l0 = L and l∞ = its cap.
func (p *Publisher) release(t *Table, cells []Cell, m privacy.Params) ([]released, error) {
	lap := noise.Laplace()
	var out []released
	for _, c := range cells {
		if c.Visitors < uint64(p.cfg.K) {
			continue
		}
		sel, err := dpagg.NewPreAggSelectPartition(&dpagg.PreAggSelectPartitionOptions{
			Epsilon: m.Selection, Delta: m.Delta, PreThreshold: int64(p.cfg.K), MaxPartitionsContributed: m.L,
		})
		if err != nil {
			return nil, err
		}
		if err := sel.IncrementBy(int64(c.Visitors)); err != nil {
			return nil, err
		}
		keep, err := sel.ShouldKeepPartition()
		if err != nil {
			return nil, err
		}
		if !keep {
			continue
		}
		cnt, err := dpagg.NewCount(&dpagg.CountOptions{Epsilon: m.Visitors, MaxPartitionsContributed: m.L})
		if err != nil {
			return nil, err
		}
		if err := cnt.IncrementBy(int64(c.Visitors)); err != nil {
			return nil, err
		}
		visitors, err := cnt.Result()
		if err != nil {
			return nil, err
		}
		// Post-processing only: a published cell never shows fewer than k.
		r := released{Dims: c.Dims, Visitors: uint64(max(visitors, int64(p.cfg.K))), Values: make([]any, len(t.Metrics))}
		for j, mt := range t.Metrics {
			l0, lInf := mt.sensitivity(m.L)
			v, err := lap.AddNoiseFloat64(c.Values[j], l0, lInf, m.Metrics[j].Epsilon, 0)
			if err != nil {
				return nil, err
			}
			v = math.Max(v, 0)
			if mt.Sum {
				r.Values[j] = math.Round(v*100) / 100
			} else {
				r.Values[j] = uint64(math.Round(v))
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// block builds the insert of a bucket's released cells.
func block(t *Table, b Bucket, cells []released) (*proto.Block, error) {
	blk := proto.NewBlock()
	cols := [][2]string{{"site", "String"}, {"grain", "Enum8('hour' = 1, 'day' = 2)"}, {"bucket", "DateTime"}}
	for _, d := range t.Dims {
		cols = append(cols, [2]string{d.Name, d.Type})
	}
	cols = append(cols, [2]string{"visitors", "UInt64"})
	for _, mt := range t.Metrics {
		typ := "UInt64"
		if mt.Sum {
			typ = "Float64"
		}
		cols = append(cols, [2]string{mt.Name, typ})
	}
	for _, c := range cols {
		if err := blk.AddColumn(c[0], column.Type(c[1])); err != nil {
			return nil, err
		}
	}
	for _, c := range cells {
		row := []any{b.Site, b.Grain.String(), b.Start}
		row = append(row, c.Dims...)
		row = append(row, c.Visitors)
		row = append(row, c.Values...)
		if err := blk.Append(row...); err != nil {
			return nil, fmt.Errorf("cell %v: %w", c.Dims, err)
		}
	}
	return blk, nil
}

// record appends the run's outcome to rollup_runs: published, or failed with
// its error (its bucket then stays due).
func (p *Publisher) record(ctx context.Context, run Run, m privacy.Params, started time.Time) Run {
	state := "published"
	if run.Err != nil {
		state = "failed"
	}
	if err := p.insertRun(ctx, run, m, started, state); err != nil {
		run.Err = errors.Join(run.Err, err)
	}
	return run
}

func (p *Publisher) insertRun(ctx context.Context, run Run, m privacy.Params, started time.Time, state string) error {
	params, _ := json.Marshal(m)
	errText := ""
	if run.Err != nil {
		errText = run.Err.Error()
	}
	eps := run.Epsilon
	if run.Err != nil {
		eps = 0 // nothing was released
	}
	now := time.Now().UTC().Truncate(time.Second)
	grain := run.Bucket.Grain.String()
	runs, err := newBlock([][2]string{
		{"table_name", "String"}, {"site", "String"}, {"grain", "Enum8('hour' = 1, 'day' = 2)"}, {"bucket", "DateTime"},
		{"cells_published", "UInt32"}, {"epsilon", "Float64"}, {"delta", "Float64"},
		{"params", "String"}, {"started", "DateTime"}, {"finished", "DateTime"}, {"error", "String"},
		{"state", "Enum8('releasing' = 1, 'published' = 2, 'failed' = 3)"},
	}, run.Table, run.Bucket.Site, grain, run.Bucket.Start, uint32(run.Published), eps, m.Delta, string(params),
		started.UTC().Truncate(time.Second), now, errText, state)
	if err != nil {
		return err
	}
	// The exact figures go where only operators read (docs/privacy.md).
	counts, err := newBlock([][2]string{
		{"table_name", "String"}, {"site", "String"}, {"grain", "Enum8('hour' = 1, 'day' = 2)"}, {"bucket", "DateTime"},
		{"cells_suppressed", "UInt32"}, {"raw_events", "UInt64"}, {"recorded", "DateTime"},
	}, run.Table, run.Bucket.Site, grain, run.Bucket.Start, uint32(run.Suppressed), run.RawEvents, now)
	if err != nil {
		return err
	}
	// A context that outlives a cancelled run: a released bucket must not
	// stay unrecorded because the process is stopping.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := p.c.Insert(rctx, p.dbs.Raw+".rollup_counts", counts); err != nil {
		return fmt.Errorf("record %s counts of %s %s: %w", state, run.Table, run.Bucket, err)
	}
	if err := p.c.Insert(rctx, p.dbs.Pub+".rollup_runs", runs); err != nil {
		return fmt.Errorf("record %s run of %s %s: %w", state, run.Table, run.Bucket, err)
	}
	return nil
}

// newBlock is a one-row block of the given columns (name, ClickHouse type).
func newBlock(cols [][2]string, values ...any) (*proto.Block, error) {
	blk := proto.NewBlock()
	for _, c := range cols {
		if err := blk.AddColumn(c[0], column.Type(c[1])); err != nil {
			return nil, err
		}
	}
	if err := blk.Append(values...); err != nil {
		return nil, err
	}
	return blk, nil
}
