package dashboard

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/herd-analytics/herd/internal/clickhouse"
)

// KPIs are a range's totals: sums of the published daily cells.
type KPIs struct {
	Visitors, Sessions, Pageviews, Orders, Buyers uint64
	Revenue                                       float64
}

// Conversion is buyers per visitor.
func (k KPIs) Conversion() float64 {
	if k.Visitors == 0 {
		return 0
	}
	return float64(k.Buyers) / float64(k.Visitors)
}

// AOV is revenue per order.
func (k KPIs) AOV() float64 {
	if k.Orders == 0 {
		return 0
	}
	return k.Revenue / float64(k.Orders)
}

// DayKPIs is one day's published KPIs and the σ of the noise each
// carries, as the day's release recorded it (empty when it recorded none).
type DayKPIs struct {
	Day time.Time
	KPIs
	Noise map[string]float64
}

// kpis returns the range's daily KPIs, one entry per day with a published
// row (days whose cell was suppressed are absent).
func (s *store) kpis(ctx context.Context, site string, r Range) ([]DayKPIs, error) {
	var out []DayKPIs
	err := s.q.Select(ctx, "SELECT bucket, visitors, sessions, pageviews, orders, buyers, revenue FROM "+s.db+".kpis WHERE "+s.cells("kpis", site, r)+" ORDER BY bucket",
		func(b *proto.Block) error {
			for i := 0; i < b.Rows(); i++ {
				out = append(out, DayKPIs{Day: clickhouse.Get[time.Time](b, 0, i).UTC(), KPIs: KPIs{
					Visitors: clickhouse.Get[uint64](b, 1, i), Sessions: clickhouse.Get[uint64](b, 2, i),
					Pageviews: clickhouse.Get[uint64](b, 3, i), Orders: clickhouse.Get[uint64](b, 4, i),
					Buyers: clickhouse.Get[uint64](b, 5, i), Revenue: clickhouse.Get[float64](b, 6, i),
				}})
			}
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("kpis: %w", err)
	}
	// Each day's noise from its own release: the budget's split may have
	// changed since (an upgrade, another ε).
	noise, err := s.releaseSigmas(ctx, "kpis", site, "day", r, false)
	if err != nil {
		return nil, err
	}
	if slices.ContainsFunc(out, func(d DayKPIs) bool { _, ok := noise[d.Day]; return !ok }) {
		// A day published since the cached answer: ask once more.
		if noise, err = s.releaseSigmas(ctx, "kpis", site, "day", r, true); err != nil {
			return nil, err
		}
	}
	for i := range out {
		out[i].Noise = noise[out[i].Day]
	}
	return out, nil
}

func total(days []DayKPIs) KPIs {
	var t KPIs
	for _, d := range days {
		t.Visitors += d.Visitors
		t.Sessions += d.Sessions
		t.Pageviews += d.Pageviews
		t.Orders += d.Orders
		t.Buyers += d.Buyers
		t.Revenue += d.Revenue
	}
	return t
}

// kpiNoise is the differential-privacy noise σ of a period's KPI totals.
type kpiNoise struct{ visitors, sessions, pageviews, orders, buyers, revenue float64 }

// totalNoise is the noise of the sum of the days' cells, each with the σ
// its release recorded (independent noises: the variances add).
func totalNoise(days []DayKPIs) kpiNoise {
	cells := make([]cellNoise, len(days))
	for i, d := range days {
		cells[i] = cellNoise{n: 1, sigma: d.Noise}
	}
	n := sumNoise(cells)
	return kpiNoise{visitors: n["visitors"], sessions: n["sessions"], pageviews: n["pageviews"],
		orders: n["orders"], buyers: n["buyers"], revenue: n["revenue"]}
}

// conversion is the σ of k's buyers per visitor-day.
func (n kpiNoise) conversion(k KPIs) float64 {
	return ratioNoise(float64(k.Buyers), n.buyers, float64(k.Visitors), n.visitors)
}

// aov is the σ of k's average order value.
func (n kpiNoise) aov(k KPIs) float64 {
	return ratioNoise(k.Revenue, n.revenue, float64(k.Orders), n.orders)
}

// ratioNoise is the σ of a/b from their σs, to first order (the delta
// method; the two noises independent).
func ratioNoise(a, sa, b, sb float64) float64 {
	if b <= 0 {
		return 0
	}
	return math.Hypot(sa, a/b*sb) / b
}
