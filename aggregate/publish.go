package aggregate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

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
	budget Budget
	log    *slog.Logger
	// catalogStamp identifies the catalog file version last loaded.
	catalogStamp string
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
	for _, col := range visitColumns {
		if !inv.Allows("{raw}.events", col, "statistics") {
			return nil, fmt.Errorf("the rollups read {raw}.events.%s, which the statistics purpose does not allow", col)
		}
	}
	budget, err := NewBudget(cfg, tables)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Publisher{c: c, dbs: dbs, cfg: cfg, tables: tables, budget: budget, log: log}, nil
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

// table is the rollup named name, or nil.
func (p *Publisher) table(name string) *Table {
	for _, t := range p.tables {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Tables returns the rollups this publisher publishes.
func (p *Publisher) Tables() []*Table { return p.tables }

// Budget is the accountant's split of the per-visitor-day budget.
func (p *Publisher) Budget() Budget { return p.budget }

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
	Rho        float64 // the release's share of the per-visitor-day budget
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

// RunOnce publishes every closed bucket that some table has not published
// yet, oldest first, as of now: days from raw events, then the weeks and
// months their partial sums completed.
func (p *Publisher) RunOnce(ctx context.Context, now time.Time) (Summary, error) {
	var sum Summary
	var errs []error
	if err := p.refreshCatalog(ctx); err != nil {
		return sum, err
	}
	for pass := 0; pass < 2; pass++ {
		due, err := p.Due(ctx, now)
		if err != nil {
			return sum, errors.Join(append(errs, err)...)
		}
		if len(due) == 0 {
			break
		}
		sum.Buckets += len(due)
		for _, d := range due {
			var day *DayEvents
			if d.Bucket.Grain == Day {
				day = p.Day(d.Bucket)
			}
			for _, t := range d.Tables {
				run := p.PublishBucket(ctx, t, d.Bucket, day)
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
	}
	return sum, errors.Join(errs...)
}

// DueBucket is a closed bucket and the tables that have not published it.
type DueBucket struct {
	Bucket Bucket
	Tables []*Table
}

// Due lists closed buckets not yet published by every table, oldest first,
// days before the weeks and months that end with them. A day is due when its
// raw events exist; a week or month when its days' partial sums exist and
// none of its days is still due for the table.
func (p *Publisher) Due(ctx context.Context, now time.Time) ([]DueBucket, error) {
	hours, done, err := p.hoursAndPublished(ctx)
	if err != nil {
		return nil, err
	}
	closed := func(b Bucket) bool { return !b.End().Add(p.cfg.Grace).After(now) }
	due := map[Bucket][]*Table{}
	pendingDay := map[runKey]bool{} // (table, day) still to publish
	for _, h := range hours {
		b := Bucket{Site: h.site, Grain: Day, Start: Day.Start(h.start)}
		if !closed(b) {
			continue
		}
		for _, t := range p.tables {
			if k := (runKey{t.Name, b}); !done[k] && !pendingDay[k] {
				pendingDay[k] = true
				due[b] = append(due[b], t)
			}
		}
	}
	days, err := partialDays(ctx, p.c, p.dbs.Raw)
	if err != nil {
		return nil, err
	}
	for _, pd := range days {
		t := p.table(pd.table)
		if t == nil {
			continue
		}
		for _, g := range []Grain{Week, Month} {
			b := Bucket{Site: pd.site, Grain: g, Start: g.Start(pd.day)}
			k := runKey{t.Name, b}
			if !t.publishes(g) || !closed(b) || done[k] || pendingDay[k] || p.dayPending(pendingDay, t, b) {
				continue
			}
			pendingDay[k] = true // listed once
			due[b] = append(due[b], t)
		}
	}
	var out []DueBucket
	for b, ts := range due {
		out = append(out, DueBucket{Bucket: b, Tables: ts})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Bucket, out[j].Bucket
		if !a.End().Equal(b.End()) {
			return a.End().Before(b.End())
		}
		if a.Grain != b.Grain {
			return a.Grain < b.Grain
		}
		return a.Site < b.Site
	})
	return out, nil
}

// dayPending: some day of period b is still due for table t.
func (p *Publisher) dayPending(pending map[runKey]bool, t *Table, b Bucket) bool {
	for _, d := range b.Days() {
		if pending[runKey{t.Name, Bucket{Site: b.Site, Grain: Day, Start: d}}] {
			return true
		}
	}
	return false
}

type partialDay struct {
	site, table string
	day         time.Time
}

// partialDays lists the (site, table, day) with partial sums.
// hoursAndPublished are the raw hours of every site, and what is published.
func (p *Publisher) hoursAndPublished(ctx context.Context) ([]siteHour, map[runKey]bool, error) {
	hours, err := rawHours(ctx, p.c, p.dbs.Raw)
	if err != nil {
		return nil, nil, err
	}
	done, err := publishedSet(ctx, p.c, p.dbs.Pub)
	return hours, done, err
}

func partialDays(ctx context.Context, c *clickhouse.Client, rawDB string) ([]partialDay, error) {
	var out []partialDay
	err := c.Select(ctx, "SELECT site, table_name, day FROM "+rawDB+".cell_partials GROUP BY site, table_name, day ORDER BY day, site, table_name",
		func(b *proto.Block) error {
			for i := 0; i < b.Rows(); i++ {
				out = append(out, partialDay{clickhouse.Get[string](b, 0, i), clickhouse.Get[string](b, 1, i), clickhouse.Get[time.Time](b, 2, i).UTC()})
			}
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("list partial days: %w", err)
	}
	return out, nil
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

func rangeWhere(b Bucket) string {
	return "site = " + clickhouse.Quote(b.Site) +
		" AND received >= toDateTime(" + clickhouse.QuoteInt(b.Start.Unix()) + ")" +
		" AND received < toDateTime(" + clickhouse.QuoteInt(b.End().Unix()) + ")"
}

// PublishBucket publishes table t's cells of bucket b, once: a bucket whose
// cells are already stored is adopted, never recomputed (fresh noise on a
// re-run would let averaging undo it). A day's true cells are first kept as
// partial sums when the table publishes weeks or months; a table that
// publishes no daily cells records the day as done once they are kept.
// day is the raw events of a day bucket (shared by its tables), nil for a
// week or month.
func (p *Publisher) PublishBucket(ctx context.Context, t *Table, b Bucket, day *DayEvents) Run {
	run := Run{Table: t.Name, Bucket: b}
	started := time.Now()
	// Late events are told later by the day's distinct events now.
	counted := func() {
		if day != nil && run.RawEvents == 0 {
			n, err := day.Distinct(ctx)
			run.RawEvents, run.Err = n, errors.Join(run.Err, err)
		}
	}
	log := p.log.With("table", t.Name, "bucket", b.String())
	release, releases := p.budget.Release(t.Name, b.Grain)
	prm := release.Params
	existing, err := p.storedCells(ctx, t, b)
	if err != nil {
		run.Err = err
		return run
	}
	var cells []Cell
	if b.Grain == Day && t.keepsPartials() {
		if cells, err = p.keepPartials(ctx, t, b, day); err != nil {
			run.Err = err
			counted()
			return p.record(ctx, run, prm, started)
		}
	}
	switch {
	case !releases:
		log.Debug("partial sums kept", "cells", len(cells))
	case existing > 0:
		run.Rho = release.Rho
		run.Published, run.Adopted = existing, true
		log.Warn("adopting cells stored by an interrupted run", "cells", existing)
	default:
		run.Rho = release.Rho
		if cells == nil {
			if cells, err = p.cellsOf(ctx, t, b, day); err != nil {
				run.Err = err
				counted()
				return p.record(ctx, run, prm, started)
			}
		}
		rel, err := p.release(t, cells, prm)
		if err == nil {
			run.Published = len(rel)
			run.Suppressed = len(cells)
			for _, r := range rel {
				if !r.Other {
					run.Suppressed--
				}
			}
			// Say what is about to be released before it is: a crash
			// after this leaves either these cells or nothing visible.
			if counted(); run.Err != nil {
				err, run.Err = run.Err, nil
			} else {
				err = p.insertRun(ctx, run, prm, started, "releasing")
			}
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
			return p.record(ctx, run, prm, started)
		}
	}
	log.Debug("published", "cells", run.Published, "suppressed", run.Suppressed, "rho", run.Rho)
	counted()
	return p.record(ctx, run, prm, started)
}

// cellsOf is bucket b's true cells: a day's from raw events, a period's
// from partial sums.
func (p *Publisher) cellsOf(ctx context.Context, t *Table, b Bucket, day *DayEvents) ([]Cell, error) {
	if b.Grain == Day {
		return day.cells(ctx, t)
	}
	return p.partialCells(ctx, t, b)
}

// keepPartials computes a day's true cells and stores them as partial sums,
// unless an earlier run did (then they are read back, so that the day's
// cells and its partials are one computation).
func (p *Publisher) keepPartials(ctx context.Context, t *Table, b Bucket, day *DayEvents) ([]Cell, error) {
	n, err := p.storedPartials(ctx, t, b)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		return p.partialCells(ctx, t, b)
	}
	cells, err := day.cells(ctx, t)
	if err != nil {
		return nil, err
	}
	return cells, p.writePartials(ctx, t, b, cells)
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
	rho := run.Rho
	if run.Err != nil {
		rho = 0 // nothing was released
	}
	now := time.Now().UTC().Truncate(time.Second)
	grain := run.Bucket.Grain.String()
	runs, err := newBlock([][2]string{
		{"table_name", "String"}, {"site", "String"}, {"grain", grainEnum}, {"bucket", "DateTime"},
		{"cells_published", "UInt32"}, {"rho", "Float64"}, {"epsilon", "Float64"}, {"delta", "Float64"},
		{"params", "String"}, {"started", "DateTime"}, {"finished", "DateTime"}, {"error", "String"},
		{"state", "Enum8('releasing' = 1, 'published' = 2, 'failed' = 3)"},
	}, run.Table, run.Bucket.Site, grain, run.Bucket.Start, uint32(run.Published), rho, p.budget.Epsilon, p.budget.Delta, string(params),
		started.UTC().Truncate(time.Second), now, errText, state)
	if err != nil {
		return err
	}
	// The exact figures go where only operators read (docs/privacy.md).
	counts, err := newBlock([][2]string{
		{"table_name", "String"}, {"site", "String"}, {"grain", grainEnum}, {"bucket", "DateTime"},
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
