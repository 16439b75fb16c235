package aggregate_test

import (
	"math"
	"testing"

	"github.com/herd-analytics/herd/aggregate"
	"github.com/herd-analytics/herd/internal/clickhouse"
)

// TestReleasedCellsAreConsistent: whatever the noise draws, a released
// products cell never has more adds than views, more purchases than adds,
// or revenue without purchases.
func TestReleasedCellsAreConsistent(t *testing.T) {
	p, err := aggregate.NewPublisher(nil, clickhouse.DefaultDatabases, aggregate.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	products := table(t, p, "products")
	var cells []aggregate.Cell
	for i := range 200 {
		cells = append(cells, aggregate.Cell{Dims: []any{string(rune('a'+i%26)) + string(rune('a'+i/26)), "c"}, Visitors: uint64(150 + i),
			Values: []float64{float64(200 + i), float64(i % 7), float64(i % 5), float64(i % 3), float64(i%3) * 40}})
	}
	bad := 0
	for range 50 {
		rel, err := p.Release(products, aggregate.Month, cells)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range rel {
			views, adds, purchases, revenue := c.Values[0], c.Values[2], c.Values[3], c.Values[4]
			if adds > views || purchases > adds || (revenue > 0 && purchases == 0) {
				bad++
				if bad < 5 {
					t.Errorf("inconsistent cell %v: %v", c.Dims, c.Values)
				}
			}
		}
	}
}

// TestKPIOrdersPooledRevenueCentred: a day's orders and buyers (one true
// value: an order is capped at one a visitor-day) are published equal, with
// the variance of their inverse-variance mean — below either's own noise;
// its revenue, noised as Σ(x − 100 €) over its orders and published with
// 100 € × the published orders added back, is unbiased, with the variance of
// both noises together — below what the same budget spent on the plain sum
// would give.
func TestKPIOrdersPooledRevenueCentred(t *testing.T) {
	p, err := aggregate.NewPublisher(nil, clickhouse.DefaultDatabases, aggregate.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kpis := table(t, p, "kpis")
	r, _ := p.Budget().Release("kpis", aggregate.Day)
	so, _ := r.Params.Metric("orders")
	sb, _ := r.Params.Metric("buyers")
	rev, _ := r.Params.Metric("revenue")
	if rev.Center != 100 || rev.Sensitivity != 300 {
		t.Fatalf("revenue mechanism %+v: want centred at 100 with sensitivity 300 (Cap 400)", rev)
	}
	pooled := 1 / (1/(so.Sigma*so.Sigma) + 1/(sb.Sigma*sb.Sigma))
	centred := rev.Sigma*rev.Sigma + 100*100*pooled
	plain := math.Pow(rev.Sigma*rev.Cap/rev.Sensitivity, 2) // the same ρ at sensitivity Cap
	// The release records the noise its published values carry (the
	// dashboard's intervals read it).
	if math.Abs(so.NoiseSigma()/math.Sqrt(pooled)-1) > 1e-4 || sb.NoiseSigma() != so.NoiseSigma() || math.Abs(rev.NoiseSigma()/math.Sqrt(centred)-1) > 1e-4 {
		t.Errorf("recorded published σ: orders %g, buyers %g (want %g), revenue %g (want %g)", so.NoiseSigma(), sb.NoiseSigma(), math.Sqrt(pooled), rev.NoiseSigma(), math.Sqrt(centred))
	}
	const orders, revenue, n = 800.0, 52000.0, 4000
	cell := aggregate.Cell{Visitors: 10000, Values: []float64{13000, 80000, orders, orders, revenue}}
	var oSum, oSq, rSum, rSq float64
	for range n {
		rel, err := p.Release(kpis, aggregate.Day, []aggregate.Cell{cell})
		if err != nil || len(rel) != 1 {
			t.Fatalf("release: %v, %d cells", err, len(rel))
		}
		o, b, x := rel[0].Values[2], rel[0].Values[3], rel[0].Values[4]
		if o != b {
			t.Fatalf("orders %g, buyers %g: not pooled", o, b)
		}
		oSum, oSq = oSum+o, oSq+(o-orders)*(o-orders)
		rSum, rSq = rSum+x, rSq+(x-revenue)*(x-revenue)
	}
	// A variance estimate of 4,000 draws is within ±10% (4.5 standard
	// errors); orders' own σ² is a third above the pooled one.
	if got := oSq / n; math.Abs(oSum/n-orders) > 5*math.Sqrt(pooled/n) || got < 0.9*pooled || got > 1.1*pooled || got > 0.9*so.Sigma*so.Sigma {
		t.Errorf("pooled orders: mean %g, variance %g, want ≈ %g (orders alone %g, buyers alone %g)", oSum/n, got, pooled, so.Sigma*so.Sigma, sb.Sigma*sb.Sigma)
	}
	if got := rSq / n; math.Abs(rSum/n-revenue) > 5*math.Sqrt(centred/n) || got < 0.9*centred || got > 1.1*centred || centred > 0.85*plain {
		t.Errorf("centred revenue: mean %g (true %g), variance %g, want ≈ %g (plain sum %g)", rSum/n, revenue, got, centred, plain)
	}
}

// TestCountsNeverBelowTheirVisitorDays: a visitor-day counted for a search
// term searched it, one counted in a traffic cell had a session there, and
// every visitor-day of the kpis had a session: whatever the noise draws on
// small cells (and the k floor, and rounding), no released cell has fewer
// searches or sessions than visitor-days, and the chains that share
// sessions (pageviews ≥ sessions ≥ bounces, sessions ≥ visitor-days) hold
// together.
func TestCountsNeverBelowTheirVisitorDays(t *testing.T) {
	p, err := aggregate.NewPublisher(nil, clickhouse.DefaultDatabases, aggregate.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		table string
		cell  func(i int) aggregate.Cell
		bad   func(c aggregate.Cell) bool
	}{
		{"searches", func(i int) aggregate.Cell {
			// As many searches as visitor-days: noise puts half below.
			return aggregate.Cell{Dims: []any{"term" + string(rune('a'+i%26)) + string(rune('a'+i/26))}, Visitors: uint64(500 + i%40), Values: []float64{float64(500 + i%40), float64(i % 9)}}
		}, func(c aggregate.Cell) bool {
			return c.Values[0] < float64(c.Visitors) || c.Values[1] > c.Values[0]
		}},
		{"traffic", func(i int) aggregate.Cell {
			n := float64(500 + i%40)
			return aggregate.Cell{Dims: []any{"referrer", "host" + string(rune('a'+i%26)) + string(rune('a'+i/26))}, Visitors: uint64(n), Values: []float64{n, n, n - 5}}
		}, func(c aggregate.Cell) bool {
			pv, sessions, bounces := c.Values[0], c.Values[1], c.Values[2]
			return sessions < float64(c.Visitors) || sessions > pv || bounces > sessions
		}},
	} {
		tab := table(t, p, tc.table)
		var cells []aggregate.Cell
		for i := range 300 {
			cells = append(cells, tc.cell(i))
		}
		bad, released := 0, 0
		for range 20 {
			rel, err := p.Release(tab, aggregate.Month, cells)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range rel {
				released++
				if tc.bad(c) {
					bad++
					if bad < 4 {
						t.Errorf("%s: impossible cell %v: %d visitor-days, %v", tc.table, c.Dims, c.Visitors, c.Values)
					}
				}
			}
		}
		if released < 1000 {
			t.Errorf("%s: %d cells released, too few to tell", tc.table, released)
		}
	}
	kpis := table(t, p, "kpis")
	for i := range 2000 {
		n := float64(12 + i%30) // sessions = visitor-days: one each
		rel, err := p.Release(kpis, aggregate.Day, []aggregate.Cell{{Visitors: uint64(n), Values: []float64{n, n + 3, 1, 1, 80}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range rel {
			if sessions, pageviews := c.Values[0], c.Values[1]; sessions < float64(c.Visitors) || pageviews < sessions {
				t.Fatalf("kpis: %d visitor-days, %v sessions, %v pageviews", c.Visitors, sessions, pageviews)
			}
		}
	}
}
