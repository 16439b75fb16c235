// Package privacy is the vocabulary the publisher, the auditor, the dashboard
// and the reports share about the publication rules: the privacy statement
// every chart and report shows, the parameters recorded with every release
// (herd.rollup_runs.params), and the pseudonym key lifetime. It imports
// nothing of herd, so the dashboard can state the rules without linking the
// publisher or the edge.
package privacy

import (
	"fmt"
	"strings"
	"time"
)

// KeyLifetime is how long a day's pseudonym key exists after its UTC day
// ends: long enough to finish sessions that cross midnight and to absorb
// clock skew, short enough that no key outlives the raw retention.
const KeyLifetime = 48 * time.Hour

// Statement is the privacy statement every chart, report and audit shows.
type Statement struct {
	K               int              `json:"k"`
	Delta           float64          `json:"delta"`
	EpsilonPerDay   float64          `json:"epsilon_per_table_per_day"`
	Tables          []TableStatement `json:"tables"`
	KeyLifetime     string           `json:"key_lifetime"`
	RawRetention    string           `json:"raw_retention"`
	MaxRawRetention string           `json:"max_raw_retention"`
	// CellsPublished counts published cells: which cells are published is
	// itself decided with differential privacy, so the count is safe to show.
	CellsPublished uint64 `json:"cells_published"`
	// CellsSuppressed and LateEvents are exact: one shopper moves them. Only
	// herd audit (an operator) fills them in; the dashboard, reports and
	// their users never see them.
	CellsSuppressed uint64 `json:"cells_suppressed,omitempty"`
	LateEvents      uint64 `json:"late_events,omitempty"`
}

// TableStatement is one rollup's parameters.
type TableStatement struct {
	Name          string  `json:"name"`
	L             int64   `json:"max_cells_per_visitor_day"`
	EpsilonDay    float64 `json:"epsilon_daily_bucket"`
	EpsilonHour   float64 `json:"epsilon_hourly_bucket"`
	HoursPerVisit int     `json:"hourly_buckets_per_visitor_day"`
}

// Line is the statement in one line, for charts and reports.
func (s Statement) Line() string {
	return fmt.Sprintf("Only cells of ≥ %d shoppers are published, with differential-privacy noise (ε = %g per table per day, δ = %g); "+
		"smaller cells are suppressed; pseudonym keys destroyed after %s; raw events kept %s (never over %s).",
		s.K, s.EpsilonPerDay, s.Delta, strings.TrimSuffix(strings.TrimPrefix(s.KeyLifetime, "day keys destroyed "), " after their UTC day ends"),
		s.RawRetention, s.MaxRawRetention)
}

// Params are one release's mechanisms, as recorded in
// herd.rollup_runs.params: how the bucket's ε was split between partition
// selection, the visitors count and the metrics, and the sensitivities the
// noise was scaled to. The dashboard reads them to put the noise into its
// confidence intervals.
type Params struct {
	K         int         `json:"k"`
	L         int64       `json:"l"`
	Delta     float64     `json:"delta"`
	Selection float64     `json:"epsilon_selection"`
	Visitors  float64     `json:"epsilon_visitors"`
	Metrics   []Mechanism `json:"metrics"`
}

// Mechanism is one noised quantity's share of the bucket's ε and the
// sensitivity its noise is scaled to.
type Mechanism struct {
	Name    string  `json:"name"`
	Epsilon float64 `json:"epsilon"`
	Cap     float64 `json:"cap"`
	Total   float64 `json:"total,omitempty"`
	L0      int64   `json:"l0"`
	LInf    float64 `json:"linf"`
}

// LaplaceScale is the scale b = l0 × l∞ / ε of the metric's noise; 0 when
// the metric was not noised (ε = 0).
func (m Mechanism) LaplaceScale() float64 {
	if m.Epsilon <= 0 {
		return 0
	}
	return float64(m.L0) * m.LInf / m.Epsilon
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
