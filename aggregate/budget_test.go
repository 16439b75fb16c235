package aggregate_test

import (
	"math"
	"strings"
	"testing"

	"github.com/google/differential-privacy/go/v3/noise"
	"github.com/herd-analytics/herd/aggregate"
)

// TestBudget: the accountant spends the whole budget and no more, over one
// release per table and grain, and refuses what it cannot honour.
func TestBudget(t *testing.T) {
	tables, err := aggregate.DefaultTables()
	if err != nil {
		t.Fatal(err)
	}
	b, err := aggregate.NewBudget(aggregate.Config{}, tables)
	if err != nil {
		t.Fatal(err)
	}
	// ε = 4 at δ/2 = 5e-7 is ρ ≈ 0.3328 on the Gaussian's exact curve
	// (Bun and Steinke's bound would allow 0.2432), and converting back
	// gives ε.
	if math.Abs(b.Rho-0.3328) > 0.0005 || math.Abs(aggregate.EpsilonFor(b.Rho, b.NoiseDelta)-4) > 1e-9 {
		t.Fatalf("ρ %g for ε 4 (back: %g)", b.Rho, aggregate.EpsilonFor(b.Rho, b.NoiseDelta))
	}
	releases := 0
	for _, tb := range tables {
		releases += len(tb.Grains)
	}
	if len(b.Releases) != releases {
		t.Fatalf("%d releases, want one per table and grain (%d)", len(b.Releases), releases)
	}
	var sum float64
	for _, r := range b.Releases {
		if got := r.Params.Rho(); got > r.Rho*(1+1e-9) || got < 0.99*r.Rho {
			t.Errorf("%s/%s: mechanisms spend ρ %g of the %g allotted", r.Table, r.Grain, got, r.Rho)
		}
		if r.Params.Threshold <= float64(r.Params.K) {
			t.Errorf("%s/%s: threshold %g not above k", r.Table, r.Grain, r.Params.Threshold)
		}
		sum += r.Rho
	}
	if math.Abs(sum-b.Rho) > 1e-9 || b.Spent() > b.Rho {
		t.Fatalf("allotted %g, spent %g, budget %g", sum, b.Spent(), b.Rho)
	}
	// A threshold of a cell at exactly k: P(k + N(0, σ) ≥ τ) = δ_cell, and
	// δ_cell over the most cells at the floor is the threshold's δ share.
	if b.CellDelta <= 0 || b.CellDelta > b.ThresholdDelta/100 {
		t.Fatalf("δ per cell %g of %g", b.CellDelta, b.ThresholdDelta)
	}

	for _, tc := range []struct {
		cfg    aggregate.Config
		tables []*aggregate.Table
		want   string
	}{
		{aggregate.Config{Epsilon: 25}, tables, "epsilon"},
		{aggregate.Config{Delta: 0.01}, tables, "delta"},
		{aggregate.Config{}, []*aggregate.Table{{Name: "x"}}, "publishes no grain"},
		{aggregate.Config{}, []*aggregate.Table{{Name: "x", Grains: []aggregate.GrainWeight{{Grain: aggregate.Day, Weight: -1}}}}, "weight"},
		// A centred sum where a visitor-day has two cells: its
		// sensitivity would not be the one-cell span.
		{aggregate.Config{}, []*aggregate.Table{{Name: "x", Grains: []aggregate.GrainWeight{{Grain: aggregate.Day, Weight: 1}}, Parts: []aggregate.Part{{Limit: 2}},
			Metrics: []aggregate.Metric{{Name: "n", Cap: 1, Weight: 1}, {Name: "s", Sum: true, Cap: 10, Weight: 1, Per: "n", Center: 5}}}}, "centred sum"},
	} {
		if _, err := aggregate.NewBudget(tc.cfg, tc.tables); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error about %s", tc.cfg, err, tc.want)
		}
	}
}

// TestConversionIsTheLibrarysGaussian: the accountant's (ε, δ) ↔ ρ
// conversion agrees with the DP library's own calibration of one Gaussian
// mechanism (noise.SigmaForGaussian: the smallest σ that is (ε, δ)-DP at
// sensitivity 1, so ρ = 1/(2σ²)), an implementation herd does not share.
func TestConversionIsTheLibrarysGaussian(t *testing.T) {
	for _, c := range []struct{ eps, delta float64 }{{0.5, 1e-5}, {1, 1e-5}, {4, 5e-7}, {8, 1e-9}, {2, 1e-7}} {
		sigma := noise.SigmaForGaussian(1, 1, c.eps, c.delta)
		want := 1 / (2 * sigma * sigma)
		got := aggregate.RhoFor(c.eps, c.delta)
		if math.Abs(got/want-1) > 2e-3 {
			t.Errorf("ε %g, δ %g: ρ %g, the library's σ %g gives %g", c.eps, c.delta, got, sigma, want)
		}
		if back := aggregate.EpsilonFor(got, c.delta); math.Abs(back-c.eps) > 1e-9 {
			t.Errorf("ε %g, δ %g: back to ε %g", c.eps, c.delta, back)
		}
		// The bound it replaces is a bound: the exact curve allows at least its ρ.
		if l := math.Log(1 / c.delta); got < math.Pow(math.Sqrt(l+c.eps)-math.Sqrt(l), 2) {
			t.Errorf("ε %g, δ %g: ρ %g below the Bun–Steinke ρ", c.eps, c.delta, got)
		}
	}
}
