// Package privacy is the vocabulary the publisher, the auditor, the dashboard
// and the reports share about the publication rules: the privacy statement
// every chart and report shows, the parameters recorded with every release
// (herd.rollup_runs.params), and the pseudonym key lifetime. It imports
// nothing of herd, so the dashboard can state the rules without linking the
// publisher or the edge.
package privacy

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// KeyLifetime is how long a day's pseudonym key exists after its UTC day
// ends: long enough to finish sessions that cross midnight and to absorb
// clock skew, short enough that no key outlives the raw retention.
const KeyLifetime = 48 * time.Hour

// Statement is the privacy statement every chart, report and audit shows.
// Every guarantee is per visitor-day: pseudonyms rotate daily, so herd cannot
// link one person's days.
type Statement struct {
	K int `json:"k"`
	// Epsilon and Delta are the total one visitor-day can spend across
	// every table and grain; Rho is the zCDP budget they allow and Spent
	// what the releases in force charge (never more than Rho).
	Epsilon          float64            `json:"epsilon_per_visitor_day"`
	Delta            float64            `json:"delta_per_visitor_day"`
	Rho              float64            `json:"rho_per_visitor_day"`
	Spent            float64            `json:"rho_spent_per_visitor_day"`
	Releases         []ReleaseStatement `json:"releases"`
	KeyLifetime      string             `json:"key_lifetime"`
	RawRetention     string             `json:"raw_retention"`
	MaxRawRetention  string             `json:"max_raw_retention"`
	PartialRetention string             `json:"max_partial_retention"`
	// CellsPublished counts published cells: which cells are published is
	// itself decided with differential privacy, so the count is safe to show.
	CellsPublished uint64 `json:"cells_published"`
	// CellsSuppressed and LateEvents are exact: one shopper moves them. Only
	// herd audit (an operator) fills them in; the dashboard, reports and
	// their users never see them.
	CellsSuppressed uint64 `json:"cells_suppressed,omitempty"`
	LateEvents      uint64 `json:"late_events,omitempty"`
}

// ReleaseStatement is one table's release at one grain.
type ReleaseStatement struct {
	Table string  `json:"table"`
	Grain string  `json:"grain"`
	L     int64   `json:"max_cells_per_visitor_day"`
	Rho   float64 `json:"rho"`
	// Threshold is the noisy visitor-days a cell must reach (besides k
	// true ones); Sigma the noise of its visitor count.
	Threshold float64 `json:"threshold"`
	Sigma     float64 `json:"visitors_sigma"`
}

// Line is the statement in one line, for charts and reports.
func (s Statement) Line() string {
	return fmt.Sprintf("Per visitor-day, every published number together spends at most ε = %g (δ = %g) of differential privacy; "+
		"only cells of ≥ %d visitor-days are published, with Gaussian noise; smaller ones are counted in an \"other\" row or suppressed; "+
		"pseudonym keys destroyed %s; raw events kept %s (never over %s).",
		s.Epsilon, s.Delta, s.K, strings.TrimPrefix(s.KeyLifetime, "day keys destroyed "), s.RawRetention, s.MaxRawRetention)
}

// Params are one release's mechanisms, as recorded in
// herd.rollup_runs.params: the noise of each quantity, the threshold a cell's
// noisy visitor count must clear, and the same for the release's "other"
// rows. The dashboard reads them to put the noise into its confidence
// intervals.
type Params struct {
	K         int          `json:"k"`
	L         int64        `json:"l"`
	Threshold float64      `json:"threshold"`
	Visitors  Mechanism    `json:"visitors"`
	Metrics   []Mechanism  `json:"metrics"`
	Other     *OtherParams `json:"other,omitempty"`
}

// OtherParams are the mechanisms of a release's "other" rows.
type OtherParams struct {
	Threshold float64     `json:"threshold"`
	Visitors  Mechanism   `json:"visitors"`
	Metrics   []Mechanism `json:"metrics"`
}

// Mechanism is one noised quantity: its L2 sensitivity per visitor-day and
// the standard deviation of its Gaussian noise.
type Mechanism struct {
	Name  string  `json:"name"`
	Cap   float64 `json:"cap,omitempty"`
	Total float64 `json:"total,omitempty"`
	// Center is subtracted from each contribution before the noise and
	// added back per contributor after it (a centred sum).
	Center      float64 `json:"center,omitempty"`
	Sensitivity float64 `json:"l2_sensitivity"`
	Sigma       float64 `json:"sigma"`
	// Published is the σ of the noise in the published value when
	// post-processing changes it (a pooled count's, below Sigma; a centred
	// sum's, with its count's noise added back); 0 when it is Sigma.
	Published float64 `json:"published_sigma,omitempty"`
}

// NoiseSigma is the σ of the noise a published value carries.
func (m Mechanism) NoiseSigma() float64 {
	if m.Published > 0 {
		return m.Published
	}
	return m.Sigma
}

// Rho is the zCDP cost of the mechanism: s² / (2σ²).
func (m Mechanism) Rho() float64 {
	if m.Sigma <= 0 {
		return math.Inf(1)
	}
	return m.Sensitivity * m.Sensitivity / (2 * m.Sigma * m.Sigma)
}

// Rho is the release's zCDP cost: the sum over its mechanisms.
func (p Params) Rho() float64 {
	r := p.Visitors.Rho()
	for _, m := range p.Metrics {
		r += m.Rho()
	}
	if p.Other != nil {
		r += p.Other.Visitors.Rho()
		for _, m := range p.Other.Metrics {
			r += m.Rho()
		}
	}
	return r
}

// Metric returns the named metric's mechanism.
func (p Params) Metric(name string) (Mechanism, bool) {
	for _, m := range p.Metrics {
		if m.Name == name {
			return m, true
		}
	}
	return Mechanism{}, false
}

// NonIncreasing replaces xs by its least-squares non-increasing fit (pool
// adjacent violators): how published values that the event model orders
// (funnel steps, views ≥ adds ≥ purchases) are made consistent. It reads
// only published values, so it costs no privacy.
func NonIncreasing(xs []float64) {
	type block struct {
		sum float64
		n   int
	}
	var bs []block
	for _, x := range xs {
		bs = append(bs, block{x, 1})
		for len(bs) > 1 {
			a, b := bs[len(bs)-2], bs[len(bs)-1]
			if a.sum/float64(a.n) >= b.sum/float64(b.n) {
				break
			}
			bs = append(bs[:len(bs)-2], block{a.sum + b.sum, a.n + b.n})
		}
	}
	i := 0
	for _, b := range bs {
		for range b.n {
			xs[i] = b.sum / float64(b.n)
			i++
		}
	}
}
