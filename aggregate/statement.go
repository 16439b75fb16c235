package aggregate

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/privacy"
)

// BuildStatement reads the publication totals (from pubDB, which the reader
// user may read) and states the rules in force. It holds no exact figure
// (see OperatorFigures).
func BuildStatement(ctx context.Context, c *clickhouse.Client, pubDB string, cfg Config, tables []*Table) (privacy.Statement, error) {
	b, err := NewBudget(cfg, tables)
	if err != nil {
		return privacy.Statement{}, err
	}
	cfg, _ = cfg.WithDefaults()
	st := privacy.Statement{
		K: cfg.K, Epsilon: b.Epsilon, Delta: b.Delta, Rho: round6(b.Rho), Spent: round6(b.Spent()),
		KeyLifetime:  fmt.Sprintf("day keys destroyed %.0f h after their UTC day ends", privacy.KeyLifetime.Hours()),
		RawRetention: hours(cfg.RawRetention), MaxRawRetention: hours(MaxRawRetention), PartialRetention: hours(MaxPartialRetention),
	}
	for _, r := range b.Releases {
		st.Releases = append(st.Releases, privacy.ReleaseStatement{Table: r.Table, Grain: r.Grain.String(), L: r.Params.L,
			Rho: round6(r.Rho), Threshold: math.Round(r.Params.Threshold*10) / 10, Sigma: math.Round(r.Params.Visitors.Sigma*100) / 100})
	}
	err = c.Select(ctx, "SELECT sum(cells_published) FROM "+pubDB+".rollup_runs WHERE state = 'published'", func(b *proto.Block) error {
		if b.Rows() > 0 {
			st.CellsPublished = clickhouse.Get[uint64](b, 0, 0)
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("privacy statement: %w", err)
	}
	return st, nil
}

// OperatorFigures adds the exact figures only operators may see (cells
// suppressed, late events) to a statement; they live in the raw database,
// which the dashboard's user cannot read.
func (p *Publisher) OperatorFigures(ctx context.Context, st *privacy.Statement) error {
	err := p.c.Select(ctx, "SELECT sum(cells_suppressed) FROM (SELECT argMax(cells_suppressed, recorded) AS cells_suppressed FROM "+p.dbs.Raw+".rollup_counts"+
		" WHERE (table_name, site, grain, bucket) IN (SELECT table_name, site, grain, bucket FROM "+p.dbs.Pub+".rollup_runs WHERE state = 'published')"+
		" GROUP BY table_name, site, grain, bucket)", func(b *proto.Block) error {
		if b.Rows() > 0 {
			st.CellsSuppressed = clickhouse.Get[uint64](b, 0, 0)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("operator figures: %w", err)
	}
	err = p.c.Select(ctx, "SELECT sum(late_events) FROM (SELECT argMax(late_events, checked) AS late_events FROM "+p.dbs.Raw+".rollup_late GROUP BY site, grain, bucket)", func(b *proto.Block) error {
		if b.Rows() > 0 {
			st.LateEvents = clickhouse.Get[uint64](b, 0, 0)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("operator figures: %w", err)
	}
	return nil
}

func hours(d time.Duration) string { return fmt.Sprintf("%.0f h", d.Hours()) }

func round6(x float64) float64 { return math.Round(x*1e6) / 1e6 }
