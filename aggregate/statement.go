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
// user may read) and states the rules in force.
func BuildStatement(ctx context.Context, c *clickhouse.Client, pubDB string, cfg Config, tables []*Table) (privacy.Statement, error) {
	cfg, err := cfg.WithDefaults()
	if err != nil {
		return privacy.Statement{}, err
	}
	st := privacy.Statement{
		K: cfg.K, Delta: cfg.Delta, EpsilonPerDay: cfg.Epsilon,
		KeyLifetime:  fmt.Sprintf("day keys destroyed %.0f h after their UTC day ends", privacy.KeyLifetime.Hours()),
		RawRetention: hours(cfg.RawRetention), MaxRawRetention: hours(MaxRawRetention),
	}
	for _, t := range tables {
		st.Tables = append(st.Tables, privacy.TableStatement{Name: t.Name, L: t.L(), EpsilonDay: round6(cfg.BucketEpsilon(Day)),
			EpsilonHour: round6(cfg.BucketEpsilon(Hour)), HoursPerVisit: cfg.HoursPerVisitor})
	}
	err = c.Select(ctx, "SELECT sum(cells_published), sum(cells_suppressed) FROM "+pubDB+".rollup_runs WHERE state = 'published'", func(b *proto.Block) error {
		if b.Rows() > 0 {
			st.CellsPublished = clickhouse.Get[uint64](b, 0, 0)
			st.CellsSuppressed = clickhouse.Get[uint64](b, 1, 0)
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("privacy statement: %w", err)
	}
	err = c.Select(ctx, "SELECT sum(late_events) FROM (SELECT argMax(late_events, checked) AS late_events FROM "+pubDB+".rollup_late GROUP BY site, grain, bucket)", func(b *proto.Block) error {
		if b.Rows() > 0 {
			st.LateEvents = clickhouse.Get[uint64](b, 0, 0)
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("privacy statement: %w", err)
	}
	return st, nil
}

func hours(d time.Duration) string { return fmt.Sprintf("%.0f h", d.Hours()) }

func round6(x float64) float64 { return math.Round(x*1e6) / 1e6 }
