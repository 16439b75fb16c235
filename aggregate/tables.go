package aggregate

import (
	"fmt"
	"math"
	"slices"

	"github.com/herd-analytics/herd/schemas"
)

// A Table is one published rollup: its cell dimensions, the metrics noised in
// every cell, and the parts whose UNION ALL yields one row per (visitor-day,
// cell) of a bucket. Each part caps how many cells one visitor-day may count
// in (LIMIT n BY visitor); the sum over parts is the table's L.
type Table struct {
	Name    string
	Dims    []Dim
	Metrics []Metric
	Parts   []Part
	// Grains the table publishes, each with its weight in the budget split
	// (Budget): a release's ρ is the total ρ × weight / all weights.
	Grains []GrainWeight
	// VisitorsWeight is the visitors count's weight among the metrics'.
	VisitorsWeight float64
	// Parent names the dimensions an "other" row keeps: the cells below the
	// threshold are summed per parent value (no parent: one row per
	// bucket). Tables without dimensions have no other row.
	Parent []string
	// Chains are metrics (or "visitors") that the event model orders,
	// largest first: a published cell is made to respect them.
	Chains [][]string
	// Same are metrics whose bounded true values are equal by construction
	// (orders capped at one a visitor-day are its buyers). Each is noised
	// on its own budget, then all are published as one inverse-variance
	// weighted mean of their noisy values: the least-squares estimate of
	// the one true value, as precise as their budgets together
	// (post-processing).
	Same [][]string
	// StepDim names a funnel's step dimension: steps of one funnel never
	// grow, so published steps are made non-increasing and a step after a
	// suppressed one is not published.
	StepDim string
}

// GrainWeight is a grain a table publishes and its weight in the budget.
type GrainWeight struct {
	Grain  Grain
	Weight float64
}

// HasOther: the table publishes "other" rows.
func (t *Table) HasOther() bool { return len(t.Dims) > 0 }

// publishes reports whether the table has grain g.
func (t *Table) publishes(g Grain) bool {
	for _, gw := range t.Grains {
		if gw.Grain == g {
			return true
		}
	}
	return false
}

// keepsPartials: the table builds week or month cells from per-day sums.
func (t *Table) keepsPartials() bool { return t.publishes(Week) || t.publishes(Month) }

// Dim is a cell dimension: its published column name and ClickHouse type
// (String, UInt8 or UInt16).
type Dim struct {
	Name, Type string
}

// Metric is a per-cell count or sum. Each visitor-day's contribution to a cell
// is clamped to [0, Cap], and its contributions across all the bucket's cells
// are scaled down to sum to at most Total, so one shopper moves the whole
// table by at most min(L × Cap, Total) — the sensitivity the noise is scaled
// to. Weight is its share of the bucket's ε among the metrics.
type Metric struct {
	Name   string
	Sum    bool // Float64 sum (revenue) instead of a UInt64 count
	Cap    float64
	Total  float64 // 0: no bound beyond L × Cap
	Weight float64
	// Per names the count whose events this sum adds up (revenue of
	// purchases): a published sum is 0 when that count is.
	Per string
	// Center, on a sum whose Per count is capped at 1 in a table of one
	// cell per visitor-day, noises Σ(x − Center) over the visitor-days the
	// count holds instead of Σx: a contribution then lies in
	// [−Center, Cap − Center], so the sensitivity is max(Center,
	// Cap − Center) instead of Cap, and Center × the published count is
	// added back (post-processing). The count is published anyway, so the
	// sum's noise shrinks for the count's smaller one (docs/privacy.md).
	// The table's part must add to the sum only on events it counts in
	// Per (revenue on purchases), so that no visitor-day outside the count
	// moves the sum.
	Center float64
}

// span is the most one visitor-day moves the metric in one cell: Cap, or
// the wider side of a centred sum.
func (m Metric) span() float64 {
	if m.Center > 0 {
		return max(m.Center, m.Cap-m.Center)
	}
	return m.Cap
}

// l2 is the metric's L2 sensitivity over a release's cells: the largest
// √Σx² of a visitor-day's contributions x, with at most l cells of at most
// Cap each and, with Total, Σx ≤ Total.
func (m Metric) l2(l int64) float64 {
	n := float64(l)
	if m.Total > 0 && m.Total < n*m.Cap {
		full := math.Floor(m.Total / m.Cap)
		rest := m.Total - full*m.Cap
		return math.Sqrt(full*m.Cap*m.Cap + rest*rest)
	}
	return math.Sqrt(n) * m.span()
}

// l1 is the metric's L1 sensitivity: what one visitor-day adds to a row
// that sums all its cells.
func (m Metric) l1(l int64) float64 {
	if m.Total > 0 && m.Total < float64(l)*m.Cap {
		return m.Total
	}
	return float64(l) * m.span()
}

// validate refuses what the accountant's sensitivities do not cover: a
// centred sum must sit in a table of one cell per visitor-day, over a
// count capped at 1, with no Total.
func (t *Table) validate() error {
	for _, m := range t.Metrics {
		if m.Center == 0 {
			continue
		}
		per := t.metric(m.Per)
		if !m.Sum || m.Center < 0 || m.Center >= m.Cap || m.Total > 0 || per < 0 || t.Metrics[per].Cap != 1 || t.L() != 1 || t.HasOther() {
			return fmt.Errorf("table %s, metric %s: a centred sum needs a Per count capped at 1, one cell per visitor-day, no Total and 0 < Center < Cap", t.Name, m.Name)
		}
	}
	for _, group := range t.Same {
		for _, name := range group {
			if j := t.metric(name); j < 0 || t.Metrics[j].Sum || t.Metrics[j].Cap != t.Metrics[t.metric(group[0])].Cap {
				return fmt.Errorf("table %s: pooled metrics %v must be counts of one Cap", t.Name, group)
			}
		}
	}
	return nil
}

// metric is the index of the metric named name, or -1.
func (t *Table) metric(name string) int {
	return slices.IndexFunc(t.Metrics, func(m Metric) bool { return m.Name == name })
}

// Part says which cells of its table a visitor-day counts in, and with
// what: Cells adds the visit's cells to out. A visitor-day counts in at most
// Limit cells through the part (the first by a hash of the visitor and the
// cell: a choice no one else's data moves).
type Part struct {
	Limit int
	Cells func(sf *siteFacts, v *Visit, out *VisitorCells)
}

// L is the table's contribution bound: cells per visitor-day per bucket.
func (t *Table) L() int64 {
	var l int64
	for _, p := range t.Parts {
		l += int64(p.Limit)
	}
	return l
}

// sessionGap is 30 minutes in Event.TS units: sessions are derived here,
// from the times of a visitor-day's events. Ingest keeps no state between
// requests, so any ingest node may take any request of a shopper
// (docs/operations.md); a session that crosses midnight counts in both days,
// as every per-day cell does.
const sessionGap = 30 * 60 * tsPerSecond

// tsPerSecond: Event.TS counts 512 ticks a second so that events received
// in the same second keep their order within the request (seq).
const tsPerSecond = 512

// Tables returns herd's rollups. Funnels and page layouts come from schemas/.
// What each part counts is in parts.go.
func Tables(funnels []schemas.Funnel, layout []schemas.Page) ([]*Table, error) {
	fparts, sparts, err := funnelParts(funnels)
	if err != nil {
		return nil, err
	}
	slots := declaredSlots(layout)
	return []*Table{
		{
			Name: "kpis",
			Metrics: []Metric{
				// Revenue is the noisiest figure the overview shows per
				// day (its clamp is hundreds of euros, a count's is 1):
				// it gets most of the table's share, orders the next.
				// Visitor-days, sessions and pageviews are counts in the
				// thousands, precise at a small share (make bench).
				// The release itself gets about half of the budget: a
				// day's revenue within 1% at 10,000 visitor-days a day
				// needs σ ≈ 700 € against a clamp of 400 €, and it is the
				// only figure published per day from one cell per
				// visitor-day (docs/benchmarks.md, "Privacy–utility
				// frontier").
				{Name: "sessions", Cap: 4, Weight: 0.125}, {Name: "pageviews", Cap: 30, Weight: 0.125},
				{Name: "orders", Cap: 1, Weight: 1.5}, {Name: "buyers", Cap: 1, Weight: 0.5},
				{Name: "revenue", Sum: true, Cap: 400, Weight: 5.5, Per: "orders", Center: 100},
			},
			Parts:  []Part{{Limit: 1, Cells: kpiCells}},
			Grains: []GrainWeight{{Day, 30}}, VisitorsWeight: 0.25,
			// Every visitor-day has a session (sessions count every
			// event's time); pageviews as before.
			Chains: [][]string{{"pageviews", "sessions", "visitors", "buyers"}},
			Same:   [][]string{{"orders", "buyers"}},
		},
		{
			Name: "products",
			Dims: []Dim{{"product_id", "String"}, {"category", "String"}},
			Metrics: []Metric{
				{Name: "views", Cap: 3, Total: 6, Weight: 3}, {Name: "clicks", Cap: 2, Total: 3, Weight: 1}, {Name: "adds", Cap: 2, Total: 3, Weight: 1},
				{Name: "purchases", Cap: 2, Total: 3, Weight: 1}, {Name: "revenue", Sum: true, Cap: 500, Total: 600, Weight: 1, Per: "purchases"},
			},
			Parts: []Part{{Limit: 5, Cells: productCells}},
			// The visitors count's σ sets the threshold, so how far into
			// the long tail the month view reaches: it gets the larger
			// share, the metrics the rest (the top products' ranking
			// holds at either split, make bench).
			Grains: []GrainWeight{{Week, 2}, {Month, 6}}, VisitorsWeight: 9, Parent: []string{"category"},
			Chains: [][]string{{"views", "adds", "purchases"}},
		},
		{
			Name: "categories",
			Dims: []Dim{{"category", "String"}, {"device", "String"}},
			Metrics: []Metric{
				{Name: "views", Cap: 10, Total: 20, Weight: 3}, {Name: "clicks", Cap: 5, Total: 6, Weight: 1}, {Name: "adds", Cap: 3, Total: 4, Weight: 1},
			},
			// Shoppers browse several categories a day: bounding them to
			// three biased category views ~25% low (make bench).
			Parts:  []Part{{Limit: 6, Cells: categoryCells}},
			Grains: []GrainWeight{{Week, 1}, {Month, 1}}, VisitorsWeight: 2, Parent: []string{"category"},
			Chains: [][]string{{"views", "clicks"}, {"views", "adds"}},
		},
		{
			// Category preference by time of day: four day-parts inside
			// the daily bucket instead of sparse hourly buckets.
			Name:    "category_dayparts",
			Dims:    []Dim{{"category", "String"}, {"daypart", "String"}},
			Metrics: []Metric{{Name: "views", Cap: 10, Total: 20, Weight: 1}},
			Parts:   []Part{{Limit: 6, Cells: daypartCells}},
			Grains:  []GrainWeight{{Month, 0.5}}, VisitorsWeight: 1, Parent: []string{"daypart"},
		},
		{
			Name: "slots",
			Dims: []Dim{{"page_type", "String"}, {"slot", "String"}, {"variant", "String"}},
			Metrics: []Metric{
				{Name: "impressions", Cap: 5, Total: 14, Weight: 1}, {Name: "clicks", Cap: 3, Total: 3, Weight: 1},
			},
			Parts:  []Part{{Limit: 8, Cells: slotCells(slots)}},
			Grains: []GrainWeight{{Week, 1.5}, {Month, 1}}, VisitorsWeight: 2, Parent: []string{"page_type"},
			Chains: [][]string{{"impressions", "clicks"}},
		},
		{
			Name: "positions",
			Dims: []Dim{{"list_kind", "String"}, {"position", "UInt16"}},
			Metrics: []Metric{
				{Name: "impressions", Cap: 4, Total: 10, Weight: 3}, {Name: "clicks", Cap: 2, Total: 3, Weight: 1},
			},
			Parts:  []Part{{Limit: 6, Cells: positionCells}},
			Grains: []GrainWeight{{Week, 1}, {Month, 0.5}}, VisitorsWeight: 2, Parent: []string{"list_kind"},
			Chains: [][]string{{"impressions", "clicks"}},
		},
		{
			Name:   "funnels",
			Dims:   []Dim{{"funnel", "String"}, {"step", "UInt8"}, {"device", "String"}},
			Parts:  fparts,
			Grains: []GrainWeight{{Day, 1}, {Week, 2}, {Month, 1}}, VisitorsWeight: 1, Parent: []string{"funnel", "step"}, StepDim: "step",
		},
		{
			// The funnels by layout variant and by traffic source: what an
			// A/B test or a campaign does to each step.
			Name:   "funnel_segments",
			Dims:   []Dim{{"funnel", "String"}, {"step", "UInt8"}, {"segment_kind", "String"}, {"segment", "String"}},
			Parts:  sparts,
			Grains: []GrainWeight{{Week, 1}, {Month, 0.5}}, VisitorsWeight: 1, StepDim: "step",
		},
		{
			Name: "traffic",
			Dims: []Dim{{"dimension", "String"}, {"value", "String"}},
			Metrics: []Metric{
				{Name: "pageviews", Cap: 10, Total: 40, Weight: 2}, {Name: "sessions", Cap: 3, Total: 9, Weight: 1.5}, {Name: "bounces", Cap: 3, Total: 8, Weight: 1},
			},
			Parts: []Part{
				{Limit: 2, Cells: pathCells}, {Limit: 1, Cells: sessionCells("entry")}, {Limit: 1, Cells: sessionCells("referrer")},
				{Limit: 4, Cells: sessionCells("device", "browser", "os", "country")},
			},
			Grains: []GrainWeight{{Day, 1}, {Month, 1}}, VisitorsWeight: 2, Parent: []string{"dimension"},
			// Every cell a visitor-day is counted in holds at least one of
			// its sessions.
			Chains: [][]string{{"pageviews", "sessions", "bounces"}, {"sessions", "visitors"}},
		},
		{
			Name:    "habits",
			Dims:    []Dim{{"weekday", "UInt8"}, {"hour", "UInt8"}, {"device", "String"}},
			Metrics: []Metric{{Name: "pageviews", Cap: 20, Total: 30, Weight: 1}},
			Parts:   []Part{{Limit: 3, Cells: habitCells}},
			Grains:  []GrainWeight{{Month, 0.5}}, VisitorsWeight: 1, Parent: []string{"weekday", "hour"},
		},
		{
			Name: "searches",
			Dims: []Dim{{"term", "String"}},
			Metrics: []Metric{
				{Name: "searches", Cap: 3, Total: 5, Weight: 3}, {Name: "zero_results", Cap: 3, Total: 3, Weight: 1},
			},
			Parts:  []Part{{Limit: 3, Cells: searchCells}},
			Grains: []GrainWeight{{Week, 1}, {Month, 1}}, VisitorsWeight: 2,
			// A visitor-day counted for a term searched it at least once.
			Chains: [][]string{{"searches", "zero_results"}, {"searches", "visitors"}},
		},
		{
			// Layout experiments: each variant's visitor-days, buyers and
			// revenue, so that an A/B test is judged on conversion and
			// revenue, not only click-through. Variants are whatever the
			// shop's pages send: a private key space, selected by the
			// threshold like search terms.
			Name: "experiments",
			Dims: []Dim{{"variant", "String"}},
			Metrics: []Metric{
				{Name: "buyers", Cap: 1, Weight: 2}, {Name: "revenue", Sum: true, Cap: 400, Weight: 2, Per: "buyers"},
			},
			Parts:  []Part{{Limit: 1, Cells: experimentCells}},
			Grains: []GrainWeight{{Week, 0.5}, {Month, 0.5}}, VisitorsWeight: 1,
			Chains: [][]string{{"visitors", "buyers"}},
		},
	}, nil
}
