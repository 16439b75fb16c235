package aggregate

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"github.com/google/differential-privacy/go/v3/noise"

	"github.com/herd-analytics/herd/internal/privacy"
)

// released is one published cell: its dimensions and noised values. Other
// marks the row that sums a parent's cells below the threshold.
type released struct {
	Dims     []any
	Visitors uint64
	Values   []any // per metric: uint64 counts, float64 sums
	Other    bool
}

// noiser draws the DP library's Gaussian noise at a mechanism's σ. The
// library takes (ε, δ), not σ: any pair on the Gaussian's privacy curve
// (Balle and Wang 2018, Theorem 8) yields the same σ, so the noiser picks
// ε = s/σ, computes that pair's δ, and checks the library's σ for it.
type noiser struct {
	sens, eps, delta, sigma float64
}

func newNoiser(m privacy.Mechanism) (noiser, error) {
	s, sigma := m.Sensitivity, m.Sigma
	if !(s > 0) || !(sigma > 0) || math.IsInf(sigma, 0) {
		return noiser{}, fmt.Errorf("%s: sensitivity %g, σ %g", m.Name, s, sigma)
	}
	eps := s / sigma
	delta := gaussianDelta(eps, s/sigma)
	if !(delta > 0 && delta < 1) {
		return noiser{}, fmt.Errorf("%s: σ %g at sensitivity %g gives δ %g", m.Name, sigma, s, delta)
	}
	if got := noise.SigmaForGaussian(1, s, eps, delta); math.Abs(got/sigma-1) > 0.01 {
		return noiser{}, fmt.Errorf("%s: the library's σ %g is not the accountant's %g", m.Name, got, sigma)
	}
	return noiser{sens: s, eps: eps, delta: delta, sigma: sigma}, nil
}

func (n noiser) add(x float64) (float64, error) {
	return noise.Gaussian().AddNoiseFloat64(x, 1, n.sens, n.eps, n.delta)
}

// mechanismNoise is the visitors' and each metric's noiser.
type mechanismNoise struct {
	visitors noiser
	metrics  []noiser
}

func newMechanismNoise(visitors privacy.Mechanism, metrics []privacy.Mechanism) (mechanismNoise, error) {
	var mn mechanismNoise
	var err error
	if mn.visitors, err = newNoiser(visitors); err != nil {
		return mn, err
	}
	for _, m := range metrics {
		n, err := newNoiser(m)
		if err != nil {
			return mn, err
		}
		mn.metrics = append(mn.metrics, n)
	}
	return mn, nil
}

// release decides and noises a bucket's cells (docs/privacy.md): a cell is
// published when its true visitor-days reach k and its noisy visitor-days
// clear the release's threshold; every metric gets Gaussian noise at the
// accountant's σ. The cells that are not published are summed per parent
// into "other" rows, released the same way with their own noise and
// threshold. The published values are then made consistent (post-processing,
// free under DP).
func (p *Publisher) release(t *Table, cells []Cell, prm privacy.Params) ([]released, error) {
	cellNoise, err := newMechanismNoise(prm.Visitors, prm.Metrics)
	if err != nil {
		return nil, err
	}
	k := uint64(p.cfg.K)
	var out []released
	others := map[string]*Cell{}
	var otherKeys []string
	for _, c := range cells {
		if c.Visitors >= k {
			r, ok, err := noised(t, c, cellNoise, prm.Threshold, k)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, r)
				continue
			}
		}
		if !t.HasOther() {
			continue
		}
		parent := t.parentOf(c)
		key := parent.Key()
		o, seen := others[key]
		if !seen {
			o = &Cell{Dims: parent.Dims, Values: make([]float64, len(t.Metrics))}
			others[key] = o
			otherKeys = append(otherKeys, key)
		}
		o.Visitors += c.Visitors
		for j, v := range c.Values {
			o.Values[j] += v
		}
	}
	out = t.monotoneSteps(out)
	if prm.Other != nil && len(otherKeys) > 0 {
		otherNoise, err := newMechanismNoise(prm.Other.Visitors, prm.Other.Metrics)
		if err != nil {
			return nil, err
		}
		sort.Strings(otherKeys)
		for _, key := range otherKeys {
			o := others[key]
			if o.Visitors < k {
				continue
			}
			r, ok, err := noised(t, *o, otherNoise, prm.Other.Threshold, k)
			if err != nil {
				return nil, err
			}
			if ok {
				r.Other = true
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// noised is cell c with noise added, or false when its noisy visitor-days
// fall under the threshold.
func noised(t *Table, c Cell, mn mechanismNoise, threshold float64, k uint64) (released, bool, error) {
	v, err := mn.visitors.add(float64(c.Visitors))
	if err != nil || v < threshold {
		return released{}, false, err
	}
	vals := make([]float64, len(t.Metrics))
	for j, m := range t.Metrics {
		x := c.Values[j]
		if m.Center > 0 {
			x -= m.Center * c.Values[t.metric(m.Per)]
		}
		if vals[j], err = mn.metrics[j].add(x); err != nil {
			return released{}, false, err
		}
	}
	t.pool(vals, mn.metrics)
	for j, m := range t.Metrics {
		if m.Center > 0 {
			vals[j] += m.Center * vals[t.metric(m.Per)]
		}
	}
	return t.consistent(c.Dims, v, vals, k), true, nil
}

// pool replaces each Same group's noisy values by their inverse-variance
// weighted mean: with independent Gaussian noise of σᵢ on one true value,
// Σ(xᵢ/σᵢ²)/Σ(1/σᵢ²) has variance 1/Σ(1/σᵢ²), below every σᵢ².
func (t *Table) pool(vals []float64, noise []noiser) {
	for _, group := range t.Same { // names checked by Table.validate
		var sum, weights float64
		for _, name := range group {
			j := t.metric(name)
			w := 1 / (noise[j].sigma * noise[j].sigma)
			sum, weights = sum+w*vals[j], weights+w
		}
		for _, name := range group {
			vals[t.metric(name)] = sum / weights
		}
	}
}

// consistent makes one cell's noisy values possible: the chains the event
// model orders hold (by isotonic regression, the least-squares fit, repeated
// while chains that share a metric disturb each other), no value is
// negative, a sum over a count's events is 0 when that count is, and the
// visitor-days never read below k. The published integers satisfy every
// chain exactly: where rounding or the k floor breaks one, the larger side
// is raised (a count every counted visitor-day contributes to is never
// published below the visitor-days).
func (t *Table) consistent(dims []any, visitors float64, vals []float64, k uint64) released {
	get := func(xs []float64, name string) *float64 {
		if name == "visitors" {
			return &xs[len(xs)-1]
		}
		for j, m := range t.Metrics {
			if m.Name == name {
				return &xs[j]
			}
		}
		panic("aggregate: chain names unknown metric " + name)
	}
	// The metrics, then the visitor-days, in one slice the chains address.
	xs := append(slices.Clone(vals), visitors)
	fit := func(xs []float64, each func(chain []float64)) bool {
		changed := false
		for _, chain := range t.Chains {
			c := make([]float64, len(chain))
			for i, name := range chain {
				c[i] = *get(xs, name)
			}
			each(c)
			for i, name := range chain {
				if p := get(xs, name); *p != c[i] {
					*p, changed = c[i], true
				}
			}
		}
		return changed
	}
	for pass := 0; pass < 20; pass++ {
		if !fit(xs, privacy.NonIncreasing) {
			break
		}
	}
	for j := range xs {
		xs[j] = math.Max(xs[j], 0)
		if j == len(xs)-1 || !t.Metrics[j].Sum {
			xs[j] = math.Round(xs[j])
		}
	}
	xs[len(xs)-1] = math.Max(xs[len(xs)-1], float64(k))
	// Raising only, on whole numbers: ends after at most as many passes as
	// the chains have links.
	for changed := true; changed; {
		changed = fit(xs, raise)
	}
	r := released{Dims: dims, Visitors: uint64(xs[len(xs)-1]), Values: make([]any, len(t.Metrics))}
	for j, m := range t.Metrics {
		v := xs[j]
		if m.Per != "" && *get(xs, m.Per) == 0 {
			v = 0
		}
		if m.Sum {
			r.Values[j] = math.Round(v*100) / 100
		} else {
			r.Values[j] = uint64(v)
		}
	}
	return r
}

// raise makes a chain non-increasing by raising each value to the one after
// it where that is larger.
func raise(chain []float64) {
	for i := len(chain) - 1; i > 0; i-- {
		chain[i-1] = math.Max(chain[i-1], chain[i])
	}
}

// parentOf is the cell's other-row key: its parent dimensions, the rest
// emptied.
func (t *Table) parentOf(c Cell) Cell {
	dims := make([]any, len(t.Dims))
	for i, d := range t.Dims {
		dims[i] = zeroOf(d.Type)
		for _, name := range t.Parent {
			if d.Name == name {
				dims[i] = c.Dims[i]
			}
		}
	}
	return Cell{Dims: dims}
}

func zeroOf(typ string) any {
	switch typ {
	case "UInt8":
		return uint8(0)
	case "UInt16":
		return uint16(0)
	}
	return ""
}

// monotoneSteps: in a funnel, fewer visitor-days reach each step than the
// one before. Per funnel and the other dimensions, the published steps'
// visitor-days are fitted non-increasing, and the steps after one that is
// not published are dropped (a reader could not tell how they relate).
func (t *Table) monotoneSteps(rel []released) []released {
	if t.StepDim == "" {
		return rel
	}
	si := -1
	for i, d := range t.Dims {
		if d.Name == t.StepDim {
			si = i
		}
	}
	groups := map[string][]int{}
	for i, r := range rel {
		rest := make([]string, 0, len(r.Dims))
		for j, d := range r.Dims {
			if j != si {
				rest = append(rest, fmt.Sprint(d))
			}
		}
		key := strings.Join(rest, "\x00")
		groups[key] = append(groups[key], i)
	}
	drop := map[int]bool{}
	for _, idx := range groups {
		sort.Slice(idx, func(a, b int) bool { return rel[idx[a]].Dims[si].(uint8) < rel[idx[b]].Dims[si].(uint8) })
		var kept []int
		for n, i := range idx {
			if int(rel[i].Dims[si].(uint8)) != n+1 {
				for _, j := range idx[n:] {
					drop[j] = true
				}
				break
			}
			kept = append(kept, i)
		}
		xs := make([]float64, len(kept))
		for n, i := range kept {
			xs[n] = float64(rel[i].Visitors)
		}
		privacy.NonIncreasing(xs)
		for n, i := range kept {
			rel[i].Visitors = uint64(math.Round(xs[n])) // averages of values ≥ k
		}
	}
	out := rel[:0]
	for i, r := range rel {
		if !drop[i] {
			out = append(out, r)
		}
	}
	return out
}

// grainEnum is the rollup tables' grain column type.
const grainEnum = "Enum8('hour' = 1, 'day' = 2, 'week' = 3, 'month' = 4)"

// block builds the insert of a bucket's released cells.
func block(t *Table, b Bucket, cells []released) (*proto.Block, error) {
	blk := proto.NewBlock()
	cols := [][2]string{{"site", "String"}, {"grain", grainEnum}, {"bucket", "DateTime"}}
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
	if t.HasOther() {
		cols = append(cols, [2]string{"other", "UInt8"})
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
		if t.HasOther() {
			var o uint8
			if c.Other {
				o = 1
			}
			row = append(row, o)
		}
		if err := blk.Append(row...); err != nil {
			return nil, fmt.Errorf("cell %v: %w", c.Dims, err)
		}
	}
	return blk, nil
}
