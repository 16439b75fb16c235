package aggregate

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/herd-analytics/herd/internal/privacy"
)

// The accountant. One visitor-day counts in one release per table and grain
// it joins (its day, the ISO week and the month holding that day), plus the
// "other" release of each. Every release noises its counts and sums with
// Gaussian noise, and is accounted in zero-concentrated DP: a quantity of L2
// sensitivity s noised with σ costs ρ = s²/(2σ²), and the ρ of all releases
// add up. For Gaussian mechanisms that sum is exact, not a bound: their
// composition is one Gaussian mechanism of μ = √(2ρ) (Gaussian DP, Dong,
// Roth and Su 2022, Corollary 3.3), and a μ-GDP mechanism is (ε, δ)-DP
// exactly on the curve gaussianDelta (their Corollary 2.13; the analytic
// Gaussian of Balle and Wang 2018). The accountant converts with that curve
// rather than the looser ε = ρ + 2√(ρ·ln(1/δ)) (Bun and Steinke 2016): at
// ε = 4 it allows ρ ≈ 0.333 instead of 0.243. The k floor on true
// visitor-days costs a separate δ: a cell is released only when its noisy
// visitor count also clears a threshold τ that a cell of exactly k clears
// with probability ≤ δ_cell (docs/privacy.md works through both).

// Share of a release's ρ that its "other" row spends (tables with keys).
const otherShare = 0.2

// Share of the total δ that converts ρ to ε; the rest pays for the k floor's
// thresholds.
const noiseDeltaShare = 0.5

// gaussianDelta is the δ at which a Gaussian mechanism of μ = s/σ (or a
// composition of them, μ = √(2ρ)) is (ε, δ)-DP:
// Φ(−ε/μ + μ/2) − e^ε·Φ(−ε/μ − μ/2).
func gaussianDelta(eps, mu float64) float64 {
	phi := func(x float64) float64 { return math.Erfc(-x/math.Sqrt2) / 2 }
	return phi(-eps/mu+mu/2) - math.Exp(eps)*phi(-eps/mu-mu/2)
}

// RhoFor is the largest ρ whose Gaussian composition is (eps, delta)-DP.
// δ grows with μ; the μ kept is on the safe side of the curve.
func RhoFor(eps, delta float64) float64 {
	mu, _ := boundary(func(mu float64) bool { return gaussianDelta(eps, mu) <= delta })
	return mu * mu / 2
}

// EpsilonFor is the smallest ε at which ρ of Gaussian noise is (ε, δ)-DP.
// δ falls as ε grows; the ε kept is on the safe side of the curve.
func EpsilonFor(rho, delta float64) float64 {
	mu := math.Sqrt(2 * rho)
	_, eps := boundary(func(eps float64) bool { return gaussianDelta(eps, mu) > delta })
	return eps
}

// boundary brackets, by bisection to float precision, where holds (true
// from 0 up to some point, false beyond it) turns false: holds(lo), not
// holds(hi).
func boundary(holds func(float64) bool) (lo, hi float64) {
	hi = 1
	for holds(hi) {
		hi *= 2
	}
	for range 200 {
		if mid := (lo + hi) / 2; holds(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, hi
}

// Budget is the accountant's split of the per-visitor-day budget over every
// release a visitor-day joins.
type Budget struct {
	Epsilon, Delta float64
	// Rho is the zCDP budget that (Epsilon, NoiseDelta) allows.
	Rho        float64
	NoiseDelta float64
	// ThresholdDelta is the δ the k floor's thresholds may spend in total;
	// CellDelta is one cell's share of it (ThresholdDelta over the most
	// cells a visitor-day can sit in at the floor).
	ThresholdDelta, CellDelta float64
	Releases                  []Release
}

// Release is one table's cells of one grain: how much of the budget it spends
// and the mechanisms it spends it on.
type Release struct {
	Table  string
	Grain  Grain
	Rho    float64
	Params privacy.Params
}

// NewBudget splits cfg's budget over tables by their grain weights, and
// refuses a split whose total exceeds it.
func NewBudget(cfg Config, tables []*Table) (Budget, error) {
	cfg, err := cfg.WithDefaults()
	if err != nil {
		return Budget{}, err
	}
	b := Budget{Epsilon: cfg.Epsilon, Delta: cfg.Delta, NoiseDelta: cfg.Delta * noiseDeltaShare}
	b.ThresholdDelta = cfg.Delta - b.NoiseDelta
	b.Rho = RhoFor(cfg.Epsilon, b.NoiseDelta)

	var weights float64
	var floorCells int64 // cells per visitor-day that a k floor guards
	for _, t := range tables {
		if len(t.Grains) == 0 {
			return Budget{}, fmt.Errorf("table %s publishes no grain", t.Name)
		}
		if err := t.validate(); err != nil {
			return Budget{}, err
		}
		for _, gw := range t.Grains {
			if gw.Weight <= 0 {
				return Budget{}, fmt.Errorf("table %s, grain %s: weight %g must be positive", t.Name, gw.Grain, gw.Weight)
			}
			weights += gw.Weight
			floorCells += t.L()
			if t.HasOther() {
				floorCells += t.L()
			}
		}
	}
	b.CellDelta = b.ThresholdDelta / float64(floorCells)
	z := distuv.UnitNormal.Quantile(1 - b.CellDelta)

	for _, t := range tables {
		for _, gw := range t.Grains {
			rho := b.Rho * gw.Weight / weights
			b.Releases = append(b.Releases, Release{Table: t.Name, Grain: gw.Grain, Rho: rho, Params: t.params(cfg.K, rho, z)})
		}
	}
	if spent := b.Spent(); spent > b.Rho*(1+1e-9) {
		return Budget{}, fmt.Errorf("the releases spend ρ = %g per visitor-day, over the budget ρ = %g (ε = %g, δ = %g)", spent, b.Rho, cfg.Epsilon, cfg.Delta)
	}
	return b, nil
}

// Spent is the ρ all releases together charge one visitor-day: each counts
// once, since a day lies in exactly one bucket of each grain.
func (b Budget) Spent() float64 {
	var s float64
	for _, r := range b.Releases {
		s += r.Params.Rho()
	}
	return s
}

// Release is the release of table t at grain g.
func (b Budget) Release(t string, g Grain) (Release, bool) {
	for _, r := range b.Releases {
		if r.Table == t && r.Grain == g {
			return r, true
		}
	}
	return Release{}, false
}

// params splits a release's ρ over its mechanisms by weight: the visitors
// count, then each metric; the "other" row gets otherShare of it, split the
// same way.
func (t *Table) params(k int, rho, z float64) privacy.Params {
	l := t.L()
	p := privacy.Params{K: k, L: l}
	cells := rho
	if t.HasOther() {
		cells = rho * (1 - otherShare)
	}
	w := t.VisitorsWeight
	for _, m := range t.Metrics {
		w += m.Weight
	}
	share := func(weight, of float64) float64 { return of * weight / w }
	p.Visitors = gaussian("visitors", math.Sqrt(float64(l)), share(t.VisitorsWeight, cells))
	p.Threshold = ceil4(float64(k) + z*p.Visitors.Sigma)
	for _, m := range t.Metrics {
		g := gaussian(m.Name, m.l2(l), share(m.Weight, cells))
		g.Cap, g.Total, g.Center = m.Cap, m.Total, m.Center
		p.Metrics = append(p.Metrics, g)
	}
	t.publishedNoise(p.Metrics)
	if t.HasOther() {
		// One visitor-day's cells may all fall into one other row: its
		// sensitivity is the visitor-day's whole contribution.
		other := rho * otherShare
		o := privacy.OtherParams{Visitors: gaussian("visitors", float64(l), share(t.VisitorsWeight, other))}
		// A visitor-day may move an other row by up to L visitor-cells, so a
		// row of k + L − 1 can fall under the floor without it.
		o.Threshold = ceil4(float64(k+int(l)-1) + z*o.Visitors.Sigma)
		for _, m := range t.Metrics {
			g := gaussian(m.Name, m.l1(l), share(m.Weight, other))
			g.Cap, g.Total, g.Center = m.Cap, m.Total, m.Center
			o.Metrics = append(o.Metrics, g)
		}
		t.publishedNoise(o.Metrics)
		p.Other = &o
	}
	return p
}

// publishedNoise records the σ a published value carries after pooling
// (1/√Σ(1/σᵢ²) for a Same group) and centring (√(σ² + Center²·σ²ₚₑᵣ), the
// count's published noise scaled by the Center added back), as release.go
// computes them.
func (t *Table) publishedNoise(ms []privacy.Mechanism) {
	for _, group := range t.Same {
		var inv float64
		for _, name := range group {
			s := ms[t.metric(name)].Sigma
			inv += 1 / (s * s)
		}
		for _, name := range group {
			ms[t.metric(name)].Published = ceil4(1 / math.Sqrt(inv))
		}
	}
	for j, m := range t.Metrics {
		if m.Center > 0 {
			per := ms[t.metric(m.Per)].NoiseSigma()
			ms[j].Published = ceil4(math.Hypot(ms[j].Sigma, m.Center*per))
		}
	}
}

// gaussian is the mechanism spending rho on a quantity of L2 sensitivity s:
// σ = s / √(2ρ).
// Both are rounded up to 4 decimals (recorded in rollup_runs as they are
// used), which only adds noise.
func gaussian(name string, s, rho float64) privacy.Mechanism {
	s = ceil4(s)
	return privacy.Mechanism{Name: name, Sensitivity: s, Sigma: ceil4(s / math.Sqrt(2*rho))}
}

func ceil4(x float64) float64 { return math.Ceil(x*1e4) / 1e4 }
