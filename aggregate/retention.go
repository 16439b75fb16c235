package aggregate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/herd-analytics/herd/internal/clickhouse"
)

// SpoolPruner deletes spool files older than the raw retention.
type SpoolPruner interface {
	Prune() ([]string, error)
}

// Dropped is one thing the retention job removed.
type Dropped struct {
	Kind   string // raw_partition, partial_day or spool_file
	Item   string
	Rows   uint64
	Reason string
}

// Retain drops raw hour partitions past the retention. An hour whose buckets
// are not all published yet is kept (an outage must not lose a day) until
// MaxRawRetention, which nothing outlives. Spool files past the retention go
// too. Everything dropped is recorded in {raw}.retention_runs.
func (p *Publisher) Retain(ctx context.Context, now time.Time, spool SpoolPruner) ([]Dropped, error) {
	hours, err := p.RawHours(ctx, now)
	if err != nil {
		return nil, err
	}
	var dropped []Dropped
	var errs []error
	for _, h := range hours {
		end := h.Hour.Add(time.Hour)
		reason := ""
		switch {
		case h.Hour.After(time.Now().Add(time.Hour)):
			// Nothing may be dated past the present (ingest refuses it):
			// such rows would escape every age-based rule. The wall clock,
			// not now: a back-fill runs with now in the past.
			reason = "dated in the future"
		case !end.After(now.Add(-MaxRawRetention)):
			reason = "older than the 7-day maximum"
			if !h.Published {
				reason += ", unpublished"
			}
		case !end.After(now.Add(-p.cfg.RawRetention)) && h.Published:
			reason = "older than the raw retention " + p.cfg.RawRetention.String()
		default:
			continue
		}
		if err := p.c.Exec(ctx, p.dbs.Alter(p.dbs.Raw, "events")+" DROP PARTITION ID "+clickhouse.Quote(h.ID)); err != nil {
			errs = append(errs, fmt.Errorf("drop raw partition %s: %w", h.ID, err))
			continue
		}
		dropped = append(dropped, Dropped{Kind: "raw_partition", Item: h.Hour.Format(time.DateTime), Rows: h.Rows, Reason: reason})
	}
	partials, err := p.retainPartials(ctx, now)
	if err != nil {
		errs = append(errs, err)
	}
	dropped = append(dropped, partials...)
	if spool != nil {
		files, err := spool.Prune()
		if err != nil {
			errs = append(errs, fmt.Errorf("prune spool: %w", err))
		}
		for _, f := range files {
			dropped = append(dropped, Dropped{Kind: "spool_file", Item: f, Reason: "older than the raw retention " + p.cfg.RawRetention.String()})
		}
	}
	if len(dropped) > 0 {
		if err := p.recordDrops(ctx, now, dropped); err != nil {
			errs = append(errs, err)
		}
		var rows uint64
		for _, d := range dropped {
			rows += d.Rows
			p.log.Debug("retention dropped", "kind", d.Kind, "item", d.Item, "rows", d.Rows, "reason", d.Reason)
		}
		p.log.Info("retention", "dropped", len(dropped), "rows", rows, "first", dropped[0].Item, "last", dropped[len(dropped)-1].Item)
	}
	return dropped, errors.Join(errs...)
}

// hourPublished: every site's daily bucket of the hour is published (or
// its partial sums kept) by every table.
func (p *Publisher) hourPublished(done map[runKey]bool, hour time.Time, sites []string) bool {
	for _, site := range sites {
		b := Bucket{Site: site, Grain: Day, Start: Day.Start(hour)}
		for _, t := range p.tables {
			if !done[runKey{t.Name, b}] {
				return false
			}
		}
	}
	return true
}

// retainPartials drops the partial sums of days whose weeks and months every
// table has published, and of every day past MaxPartialRetention.
func (p *Publisher) retainPartials(ctx context.Context, now time.Time) ([]Dropped, error) {
	days, err := partialDays(ctx, p.c, p.dbs.Raw)
	if err != nil {
		return nil, err
	}
	done, err := publishedSet(ctx, p.c, p.dbs.Pub)
	if err != nil {
		return nil, err
	}
	needed := map[time.Time]bool{}
	var order []time.Time
	for _, pd := range days {
		if _, seen := needed[pd.day]; !seen {
			needed[pd.day] = false
			order = append(order, pd.day)
		}
		t := p.table(pd.table)
		for _, g := range []Grain{Week, Month} {
			if t != nil && t.publishes(g) && !done[runKey{t.Name, Bucket{Site: pd.site, Grain: g, Start: g.Start(pd.day)}}] {
				needed[pd.day] = true
			}
		}
	}
	var dropped []Dropped
	var errs []error
	for _, day := range order {
		reason := "its weeks and months are published"
		switch {
		case !day.After(now.Add(-MaxPartialRetention)):
			reason = "older than the 40-day maximum"
		case needed[day]:
			continue
		}
		var rows uint64
		err := p.c.Select(ctx, "SELECT count() FROM "+p.dbs.Raw+".cell_partials WHERE day = toDate("+clickhouse.Quote(day.Format(time.DateOnly))+")", func(b *proto.Block) error {
			rows = clickhouse.Get[uint64](b, 0, 0)
			return nil
		})
		if err == nil {
			err = p.c.Exec(ctx, p.dbs.Alter(p.dbs.Raw, "cell_partials")+" DROP PARTITION "+clickhouse.Quote(day.Format(time.DateOnly)))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("drop partial day %s: %w", day.Format(time.DateOnly), err))
			continue
		}
		dropped = append(dropped, Dropped{Kind: "partial_day", Item: day.Format(time.DateOnly), Rows: rows, Reason: reason})
	}
	return dropped, errors.Join(errs...)
}

// RawHour is one hour partition of raw events.
type RawHour struct {
	ID   string // the partition id, for DROP PARTITION ID
	Hour time.Time
	Rows uint64
	// Published: every bucket the hour feeds is published by every table
	// (retention may drop it once it is past the raw retention).
	Published bool
}

// RawHours lists the raw hour partitions, oldest first, and whether each is
// wholly published.
func (p *Publisher) RawHours(ctx context.Context, now time.Time) ([]RawHour, error) {
	parts, err := rawPartitions(ctx, p.c, p.dbs)
	if err != nil {
		return nil, err
	}
	hours, done, err := p.hoursAndPublished(ctx)
	if err != nil {
		return nil, err
	}
	sites := map[time.Time][]string{}
	for _, h := range hours {
		sites[h.start] = append(sites[h.start], h.site)
	}
	out := make([]RawHour, len(parts))
	for i, pt := range parts {
		out[i] = RawHour{ID: pt.id, Hour: pt.hour, Rows: pt.rows, Published: p.hourPublished(done, pt.hour, sites[pt.hour])}
	}
	return out, nil
}

type rawPartition struct {
	id   string
	hour time.Time
	rows uint64
}

func rawPartitions(ctx context.Context, c *clickhouse.Client, dbs clickhouse.Databases) ([]rawPartition, error) {
	var out []rawPartition
	from, table := dbs.Parts("events")
	err := c.Select(ctx, "SELECT partition_id, partition, sum(rows) FROM "+from+" WHERE database = "+clickhouse.Quote(dbs.Raw)+
		" AND table = "+clickhouse.Quote(table)+" AND active GROUP BY partition_id, partition ORDER BY partition_id",
		func(b *proto.Block) error {
			for i := 0; i < b.Rows(); i++ {
				h, err := time.Parse(time.DateTime, clickhouse.Get[string](b, 1, i))
				if err != nil {
					return fmt.Errorf("raw partition %q: %w", b.Columns[1].Row(i, false), err)
				}
				out = append(out, rawPartition{clickhouse.Get[string](b, 0, i), h, clickhouse.Get[uint64](b, 2, i)})
			}
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("list raw partitions: %w", err)
	}
	return out, nil
}

func (p *Publisher) recordDrops(ctx context.Context, now time.Time, dropped []Dropped) error {
	blk := proto.NewBlock()
	for _, c := range [][2]string{{"ran", "DateTime"}, {"kind", "Enum8('raw_partition' = 1, 'spool_file' = 2, 'partial_day' = 3)"}, {"item", "String"}, {"rows", "UInt64"}, {"reason", "String"}} {
		if err := blk.AddColumn(c[0], column.Type(c[1])); err != nil {
			return err
		}
	}
	for _, d := range dropped {
		if err := blk.Append(now.UTC().Truncate(time.Second), d.Kind, d.Item, d.Rows, d.Reason); err != nil {
			return err
		}
	}
	if err := p.c.Insert(ctx, p.dbs.Raw+".retention_runs", blk); err != nil {
		return fmt.Errorf("record retention: %w", err)
	}
	return nil
}

// CountLate compares each recently published bucket's raw events with the
// number it covered when published, and records the difference in
// {raw}.rollup_late (exact: operators only). Late events are counted, never
// re-published.
func (p *Publisher) CountLate(ctx context.Context) error {
	q := `SELECT r.site, toUInt8(r.grain), r.bucket, r.published, n.now_events FROM (
	SELECT site, grain, bucket, max(raw_events) AS published FROM ` + p.dbs.Raw + `.rollup_counts
	WHERE (table_name, site, grain, bucket) IN (SELECT table_name, site, grain, bucket FROM ` + p.dbs.Pub + `.rollup_runs WHERE state != 'failed')
	GROUP BY site, grain, bucket) AS r
ALL INNER JOIN (
	SELECT site, 2 AS g, toStartOfDay(received) AS b, uniqExact(event_id) AS now_events FROM ` + p.dbs.Raw + `.events GROUP BY site, b
) AS n ON r.site = n.site AND toUInt8(r.grain) = n.g AND r.bucket = n.b
WHERE n.now_events > r.published`
	blk := proto.NewBlock()
	for _, c := range [][2]string{{"site", "String"}, {"grain", grainEnum}, {"bucket", "DateTime"},
		{"published_events", "UInt64"}, {"late_events", "UInt64"}, {"checked", "DateTime"}} {
		if err := blk.AddColumn(c[0], column.Type(c[1])); err != nil {
			return err
		}
	}
	now := time.Now().UTC().Truncate(time.Second)
	err := p.c.Select(ctx, q, func(b *proto.Block) error {
		for i := 0; i < b.Rows(); i++ {
			pub, cur := clickhouse.Get[uint64](b, 3, i), clickhouse.Get[uint64](b, 4, i)
			if err := blk.Append(clickhouse.Get[string](b, 0, i), Grain(clickhouse.Get[uint8](b, 1, i)).String(), clickhouse.Get[time.Time](b, 2, i), pub, cur-pub, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("count late events: %w", err)
	}
	if blk.Rows() == 0 {
		return nil
	}
	if err := p.c.Insert(ctx, p.dbs.Raw+".rollup_late", blk); err != nil {
		return fmt.Errorf("record late events: %w", err)
	}
	return nil
}
