package aggregate

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/herd-analytics/herd/internal/clickhouse"
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
	// Columns of {raw}.events the parts read, checked against the purpose
	// inventory at startup.
	Reads []string
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

// Dim is a cell dimension: its published column name and ClickHouse type,
// and the parts' column it comes from when that differs (an alias may not
// shadow a raw column the expression reads).
type Dim struct {
	Name, Type, From string
}

func (d Dim) from() string {
	if d.From != "" {
		return d.From
	}
	return d.Name
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
	return math.Sqrt(n) * m.Cap
}

// l1 is the metric's L1 sensitivity: what one visitor-day adds to a row
// that sums all its cells.
func (m Metric) l1(l int64) float64 {
	if m.Total > 0 && m.Total < float64(l)*m.Cap {
		return m.Total
	}
	return float64(l) * m.Cap
}

// Part is SQL over the bucket's events producing (visitor, dims..., metrics...)
// with one row per visitor and cell, and the most cells a visitor-day may
// count in through it.
type Part struct {
	SQL   string
	Limit int
}

// L is the table's contribution bound: cells per visitor-day per bucket.
func (t *Table) L() int64 {
	var l int64
	for _, p := range t.Parts {
		l += int64(p.Limit)
	}
	return l
}

// Placeholders in part SQL, expanded per bucket:
//
//	{events}   the bucket's raw events, each once: the table may hold an
//	           event twice until a merge folds the copies (a replay cut
//	           short), so the subquery keeps one row per event_id
//	{where}    site, bucket time range and the hourly visitor cap
//	{ts}       a UInt32 timestamp within the bucket that orders events of one request
//	{gap}      the inactivity that ends a session, in {ts} units
//	{product}  the product key of pid: the id, or "unlisted" when the site's
//	           catalog does not list it
//	{category} pid's category: the catalog's, else what the events say
const (
	phEvents   = "{events}"
	phWhere    = "{where}"
	phTS       = "{ts}"
	phGap      = "{gap}"
	phProduct  = "{product}"
	phCategory = "{category}"
)

// Sessions are derived here, from the times of a visitor-day's events: a
// gap of more than 30 minutes starts a new one. Ingest keeps no state
// between requests, so any ingest node may take any request of a shopper
// (docs/operations.md); a session that crosses midnight counts in both days,
// as every per-day cell does.
//
// pageviewsSQL is one row per pageview with its session's number in the
// visitor-day (from 0): how many sessions began at or before it, after the
// first. Only the times of each visitor's events are collected per visitor
// (a few bytes an event); pageviews stream past them.
//
// (The lambda takes ts as an argument, from an array of it: 18.16 loses a
// column a lambda only captures when the query around does not select it.)
const pageviewsSQL = `SELECT visitor, ts, path, referrer_host,
	arrayCount((s, t) -> s <= t, starts, arrayResize(emptyArrayUInt32(), length(starts), ts)) AS session, dev, br, sys, cc
FROM (SELECT visitor, {ts} AS ts, path, referrer_host, toString(device) AS dev, browser AS br, os AS sys, toStringCutToZero(country) AS cc
	FROM {events} WHERE {where} AND type = 'pageview')
ANY INNER JOIN (SELECT visitor, arrayFilter((t, d) -> d > {gap}, times, arrayDifference(times)) AS starts
	FROM (SELECT visitor, arraySort(groupArray({ts})) AS times FROM {events} WHERE {where} GROUP BY visitor)) USING visitor`

// sessionsSQL is one row per session with pageviews.
const sessionsSQL = `SELECT visitor, session, count() AS pv, argMin(path, ts) AS entry, argMin(referrer_host, ts) AS ref,
	any(dev) AS dev, any(br) AS br, any(sys) AS sys, any(cc) AS cc
FROM (` + pageviewsSQL + `) GROUP BY visitor, session`

// sessionGap is 30 minutes in {ts} units.
const sessionGap = 30 * 60 * tsPerSecond

// Tables returns herd's rollups. Funnels and page layouts come from schemas/.
func Tables(funnels []schemas.Funnel, layout []schemas.Page) ([]*Table, error) {
	fparts, err := funnelParts(funnels)
	if err != nil {
		return nil, err
	}
	return []*Table{
		{
			Name: "kpis",
			Metrics: []Metric{
				// Orders and revenue are the smallest counts the overview
				// shows per day: they get most of the table's share.
				{Name: "sessions", Cap: 4, Weight: 0.5}, {Name: "pageviews", Cap: 30, Weight: 0.5},
				{Name: "orders", Cap: 1, Weight: 2}, {Name: "buyers", Cap: 1, Weight: 0.5},
				{Name: "revenue", Sum: true, Cap: 400, Weight: 4, Per: "orders"},
			},
			Parts: []Part{{Limit: 1, SQL: `SELECT visitor, toUInt64(1 + arrayCount(d -> d > {gap}, arrayDifference(ts))) AS sessions,
	pageviews, orders, buyers, revenue
FROM (SELECT visitor, arraySort(groupArray({ts})) AS ts, toUInt64(countIf(type = 'pageview')) AS pageviews,
	toUInt64(countIf(type = 'purchase')) AS orders, toUInt64(max(type = 'purchase')) AS buyers,
	sumIf(toFloat64(order_value), type = 'purchase') AS revenue
FROM {events} WHERE {where} GROUP BY visitor)`}},
			Reads:  []string{"event_id", "visitor", "type", "received", "seq", "order_value"},
			Grains: []GrainWeight{{Day, 7}}, VisitorsWeight: 1,
			Chains: [][]string{{"pageviews", "sessions"}, {"visitors", "buyers"}, {"orders", "buyers"}},
		},
		{
			Name: "products",
			Dims: []Dim{{"product_id", "String", "key_id"}, {"category", "String", ""}},
			Metrics: []Metric{
				{Name: "views", Cap: 3, Total: 6, Weight: 3}, {Name: "clicks", Cap: 2, Total: 3, Weight: 1}, {Name: "adds", Cap: 2, Total: 3, Weight: 1},
				{Name: "purchases", Cap: 2, Total: 3, Weight: 1}, {Name: "revenue", Sum: true, Cap: 500, Total: 600, Weight: 1, Per: "purchases"},
			},
			// A purchase lists product ids; its revenue per product is the
			// list price the shopper saw on that product's events.
			// With a catalog, ids it does not list are one key, "unlisted",
			// and categories are the catalog's ({product}, {category}).
			Parts: []Part{{Limit: 5, SQL: `SELECT visitor, {product} AS key_id, {category} AS category,
	toUInt64(countIf(type = 'product_view')) AS views, toUInt64(countIf(type = 'product_click')) AS clicks,
	toUInt64(countIf(type = 'add_to_cart')) AS adds, toUInt64(countIf(type = 'purchase')) AS purchases,
	purchases * toFloat64(max(product_price)) AS revenue
FROM {events} ARRAY JOIN if(type = 'purchase', products, [product_id]) AS pid
WHERE {where} AND type IN ('product_view', 'product_click', 'add_to_cart', 'purchase') AND pid != ''
GROUP BY visitor, key_id`}},
			Reads:  []string{"event_id", "visitor", "type", "product_id", "product_category", "product_price", "products"},
			Grains: []GrainWeight{{Week, 2}, {Month, 6}}, VisitorsWeight: 5, Parent: []string{"category"},
			Chains: [][]string{{"views", "adds", "purchases"}},
		},
		{
			Name: "categories",
			Dims: []Dim{{"category", "String", ""}, {"device", "String", "dev"}},
			Metrics: []Metric{
				{Name: "views", Cap: 10, Total: 20, Weight: 3}, {Name: "clicks", Cap: 5, Total: 6, Weight: 1}, {Name: "adds", Cap: 3, Total: 4, Weight: 1},
			},
			// Shoppers browse several categories a day: bounding them to
			// three biased category views ~25% low (make bench).
			Parts: []Part{{Limit: 6, SQL: `SELECT visitor, product_category AS category, toString(any(device)) AS dev,
	toUInt64(countIf(type IN ('product_view', 'product_list_view'))) AS views,
	toUInt64(countIf(type = 'product_click')) AS clicks, toUInt64(countIf(type = 'add_to_cart')) AS adds
FROM {events} WHERE {where} AND product_category != ''
	AND type IN ('product_view', 'product_list_view', 'product_click', 'add_to_cart')
GROUP BY visitor, category`}},
			Reads:  []string{"event_id", "visitor", "type", "product_category", "device"},
			Grains: []GrainWeight{{Week, 1}, {Month, 1}}, VisitorsWeight: 2, Parent: []string{"category"},
			Chains: [][]string{{"views", "clicks"}, {"views", "adds"}},
		},
		{
			// Category preference by time of day: four day-parts inside
			// the daily bucket instead of sparse hourly buckets.
			Name:    "category_dayparts",
			Dims:    []Dim{{"category", "String", ""}, {"daypart", "String", ""}},
			Metrics: []Metric{{Name: "views", Cap: 10, Total: 20, Weight: 1}},
			Parts: []Part{{Limit: 6, SQL: `SELECT visitor, product_category AS category,
	multiIf(toHour(received) < 6, 'night', toHour(received) < 12, 'morning', toHour(received) < 18, 'afternoon', 'evening') AS daypart,
	toUInt64(countIf(type IN ('product_view', 'product_list_view'))) AS views
FROM {events} WHERE {where} AND product_category != '' AND type IN ('product_view', 'product_list_view')
GROUP BY visitor, category, daypart`}},
			Reads:  []string{"event_id", "visitor", "type", "product_category", "received"},
			Grains: []GrainWeight{{Month, 0.5}}, VisitorsWeight: 1, Parent: []string{"daypart"},
		},
		{
			Name: "slots",
			Dims: []Dim{{"page_type", "String", ""}, {"slot", "String", "slot_name"}, {"variant", "String", ""}},
			Metrics: []Metric{
				{Name: "impressions", Cap: 5, Total: 14, Weight: 1}, {Name: "clicks", Cap: 3, Total: 3, Weight: 1},
			},
			// Only slots declared in schemas/layout.yaml are published under
			// their name; anything else a client sends is "other".
			Parts: []Part{{Limit: 8, SQL: `SELECT visitor, page_type, ` + slotExpr(layout) + ` AS slot_name, variant,
	toUInt64(countIf(type = 'slot_impression')) AS impressions, toUInt64(countIf(type = 'product_click')) AS clicks
FROM {events} WHERE {where} AND type IN ('slot_impression', 'product_click') AND slot != ''
GROUP BY visitor, page_type, slot_name, variant`}},
			Reads:  []string{"event_id", "visitor", "type", "page_type", "slot", "variant"},
			Grains: []GrainWeight{{Week, 1.5}, {Month, 1}}, VisitorsWeight: 2, Parent: []string{"page_type"},
			Chains: [][]string{{"impressions", "clicks"}},
		},
		{
			Name: "positions",
			Dims: []Dim{{"list_kind", "String", "kind"}, {"position", "UInt16", "pos"}},
			Metrics: []Metric{
				{Name: "impressions", Cap: 4, Total: 10, Weight: 3}, {Name: "clicks", Cap: 2, Total: 3, Weight: 1},
			},
			// Impressions are the positions of product_list_view's product
			// array; clicks carry their position. The list's kind (home,
			// category, search) is the part before ':'.
			Parts: []Part{{Limit: 6, SQL: `SELECT visitor, splitByChar(':', list)[1] AS kind, toUInt16(p) AS pos,
	toUInt64(countIf(type = 'product_list_view')) AS impressions, toUInt64(countIf(type = 'product_click')) AS clicks
FROM {events} ARRAY JOIN if(type = 'product_list_view', arrayEnumerate(products), [toUInt32(position)]) AS p
WHERE {where} AND type IN ('product_list_view', 'product_click') AND list != '' AND p BETWEEN 1 AND 100
GROUP BY visitor, kind, pos`}},
			Reads:  []string{"event_id", "visitor", "type", "list", "products", "position"},
			Grains: []GrainWeight{{Week, 1}, {Month, 0.5}}, VisitorsWeight: 2, Parent: []string{"list_kind"},
			Chains: [][]string{{"impressions", "clicks"}},
		},
		{
			Name:   "funnels",
			Dims:   []Dim{{"funnel", "String", ""}, {"step", "UInt8", ""}, {"device", "String", "dev"}},
			Parts:  fparts,
			Reads:  []string{"event_id", "visitor", "type", "received", "seq", "step", "page_type", "slot", "device"},
			Grains: []GrainWeight{{Day, 1}, {Week, 2}, {Month, 1}}, VisitorsWeight: 1, Parent: []string{"funnel", "step"}, StepDim: "step",
		},
		{
			// The funnels by layout variant and by traffic source: what an
			// A/B test or a campaign does to each step.
			Name:   "funnel_segments",
			Dims:   []Dim{{"funnel", "String", ""}, {"step", "UInt8", ""}, {"segment_kind", "String", "kind"}, {"segment", "String", "seg"}},
			Parts:  segmentParts(funnels),
			Reads:  []string{"event_id", "visitor", "type", "received", "seq", "step", "page_type", "slot", "variant", "referrer_host"},
			Grains: []GrainWeight{{Week, 1}, {Month, 0.5}}, VisitorsWeight: 1, StepDim: "step",
		},
		{
			Name: "traffic",
			Dims: []Dim{{"dimension", "String", ""}, {"value", "String", ""}},
			Metrics: []Metric{
				{Name: "pageviews", Cap: 10, Total: 40, Weight: 2}, {Name: "sessions", Cap: 3, Total: 9, Weight: 1.5}, {Name: "bounces", Cap: 3, Total: 8, Weight: 1},
			},
			Parts: []Part{
				// A bounce belongs to the page the session entered at,
				// so path rows carry none.
				{Limit: 2, SQL: `SELECT visitor, 'path' AS dimension, path AS value, toUInt64(count()) AS pageviews,
	toUInt64(uniqExact(session)) AS sessions, toUInt64(0) AS bounces
FROM (` + pageviewsSQL + `) GROUP BY visitor, value`},
				{Limit: 1, SQL: `SELECT visitor, 'entry' AS dimension, entry AS value, toUInt64(sum(pv)) AS pageviews,
	toUInt64(count()) AS sessions, toUInt64(countIf(pv = 1)) AS bounces
FROM (` + sessionsSQL + `) GROUP BY visitor, value`},
				{Limit: 1, SQL: `SELECT visitor, 'referrer' AS dimension, ref AS value, toUInt64(sum(pv)) AS pageviews,
	toUInt64(count()) AS sessions, toUInt64(countIf(pv = 1)) AS bounces
FROM (` + sessionsSQL + `) GROUP BY visitor, value`},
				// Device, browser, OS and country derive from what the
				// pseudonym is keyed on, so a visitor-day has one of each.
				{Limit: 4, SQL: `SELECT visitor, kv.1 AS dimension, kv.2 AS value, toUInt64(sum(pv)) AS pageviews,
	toUInt64(count()) AS sessions, toUInt64(countIf(pv = 1)) AS bounces
FROM (` + sessionsSQL + `) ARRAY JOIN [('device', dev), ('browser', br), ('os', sys), ('country', cc)] AS kv
GROUP BY visitor, dimension, value`},
			},
			Reads:  []string{"event_id", "visitor", "type", "received", "seq", "path", "referrer_host", "device", "browser", "os", "country"},
			Grains: []GrainWeight{{Day, 1}, {Month, 1}}, VisitorsWeight: 2, Parent: []string{"dimension"},
			Chains: [][]string{{"pageviews", "sessions", "bounces"}},
		},
		{
			Name:    "habits",
			Dims:    []Dim{{"weekday", "UInt8", ""}, {"hour", "UInt8", ""}, {"device", "String", "dev"}},
			Metrics: []Metric{{Name: "pageviews", Cap: 20, Total: 30, Weight: 1}},
			Parts: []Part{{Limit: 3, SQL: `SELECT visitor, toUInt8(toDayOfWeek(received)) AS weekday, toUInt8(toHour(received)) AS hour,
	toString(any(device)) AS dev, toUInt64(count()) AS pageviews
FROM {events} WHERE {where} AND type = 'pageview' GROUP BY visitor, weekday, hour`}},
			Reads:  []string{"event_id", "visitor", "type", "received", "device"},
			Grains: []GrainWeight{{Month, 0.5}}, VisitorsWeight: 1, Parent: []string{"weekday", "hour"},
		},
		{
			Name: "searches",
			Dims: []Dim{{"term", "String", ""}},
			Metrics: []Metric{
				{Name: "searches", Cap: 3, Total: 5, Weight: 3}, {Name: "zero_results", Cap: 3, Total: 3, Weight: 1},
			},
			Parts: []Part{{Limit: 3, SQL: `SELECT visitor, lowerUTF8(search_term) AS term,
	toUInt64(count()) AS searches, toUInt64(countIf(search_results = 0)) AS zero_results
FROM {events} WHERE {where} AND type = 'search' AND search_term != '' GROUP BY visitor, term`}},
			Reads:  []string{"event_id", "visitor", "type", "search_term", "search_results"},
			Grains: []GrainWeight{{Week, 1}, {Month, 1}}, VisitorsWeight: 2,
			Chains: [][]string{{"searches", "zero_results"}},
		},
		{
			// Layout experiments: each variant's visitor-days, buyers and
			// revenue, so that an A/B test is judged on conversion and
			// revenue, not only click-through. A visitor-day counts for
			// the first variant it was shown. Variants are whatever the
			// shop's pages send: a private key space, selected by the
			// threshold like search terms.
			Name: "experiments",
			Dims: []Dim{{"variant", "String", "v"}},
			Metrics: []Metric{
				{Name: "buyers", Cap: 1, Weight: 2}, {Name: "revenue", Sum: true, Cap: 400, Weight: 2, Per: "buyers"},
			},
			Parts: []Part{{Limit: 1, SQL: `SELECT visitor, argMinIf(variant, {ts}, variant != '') AS v,
	toUInt64(max(type = 'purchase')) AS buyers, sumIf(toFloat64(order_value), type = 'purchase') AS revenue
FROM {events} WHERE {where} GROUP BY visitor HAVING v != ''`}},
			Reads:  []string{"event_id", "visitor", "type", "received", "seq", "variant", "order_value"},
			Grains: []GrainWeight{{Week, 0.5}, {Month, 0.5}}, VisitorsWeight: 1,
			Chains: [][]string{{"visitors", "buyers"}},
		},
	}, nil
}

// funnelParts builds one part per funnel: windowFunnel over each
// visitor-day gives the deepest step reached, and the visitor counts in every
// step up to it. A funnel of n steps puts a visitor-day in at most n cells.
func funnelParts(funnels []schemas.Funnel) ([]Part, error) {
	var parts []Part
	for _, f := range funnels {
		window, conds := funnelLevel(f)
		parts = append(parts, Part{Limit: len(f.Steps), SQL: fmt.Sprintf(`SELECT visitor, %s AS funnel, toUInt8(s + 1) AS step, dev
FROM (SELECT visitor, toString(any(device)) AS dev, windowFunnel(%d)({ts}, %s) AS level
	FROM {events} WHERE {where} GROUP BY visitor)
ARRAY JOIN range(level) AS s`, clickhouse.Quote(f.Name), window, conds)})
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("no funnels defined")
	}
	return parts, nil
}

// funnelLevel is a funnel's windowFunnel arguments: the window in {ts}
// units and the step conditions.
func funnelLevel(f schemas.Funnel) (int64, string) {
	conds := make([]string, len(f.Steps))
	for i, s := range f.Steps {
		c := "type = " + clickhouse.Quote(s.Type)
		if s.Step > 0 {
			c += " AND step = " + clickhouse.QuoteInt(s.Step)
		}
		if s.PageType != "" {
			c += " AND page_type = " + clickhouse.Quote(s.PageType)
		}
		if s.Slot != "" {
			c += " AND slot = " + clickhouse.Quote(s.Slot)
		}
		conds[i] = c
	}
	return int64(f.Window/time.Second) * tsPerSecond, strings.Join(conds, ", ")
}

// sourceClass is where a visitor-day came from, by the referrer of its
// first pageview: direct (none, or the shop itself), search (a search
// engine) or referral (any other site).
const sourceClass = `multiIf(ref IN ('', 'internal'), 'direct', match(ref, '(^|\\.)(google|bing|duckduckgo|yahoo|ecosia|baidu|yandex|qwant|startpage)\\.'), 'search', 'referral')`

// segmentParts are the funnels again, by the layout variant a visitor-day
// saw first and by its traffic source: each visitor-day counts once in
// each kind of segment (a variant only when it saw one).
func segmentParts(funnels []schemas.Funnel) []Part {
	var parts []Part
	for _, f := range funnels {
		window, conds := funnelLevel(f)
		parts = append(parts, Part{Limit: 2 * len(f.Steps), SQL: fmt.Sprintf(`SELECT visitor, funnel, step, kv.1 AS kind, kv.2 AS seg
FROM (SELECT visitor, %s AS funnel, toUInt8(s + 1) AS step, v, ref
	FROM (SELECT visitor, argMinIf(variant, {ts}, variant != '') AS v, argMinIf(referrer_host, {ts}, type = 'pageview') AS ref,
		windowFunnel(%d)({ts}, %s) AS level
		FROM {events} WHERE {where} GROUP BY visitor)
	ARRAY JOIN range(level) AS s)
ARRAY JOIN arrayFilter(x -> x.2 != '', [('variant', v), ('source', %s)]) AS kv`, clickhouse.Quote(f.Name), window, conds, sourceClass)})
	}
	return parts
}

// tsPerSecond: {ts} counts 512 ticks a second so that events received in the
// same second keep their order within the request (seq).
const tsPerSecond = 512

func slotExpr(layout []schemas.Page) string {
	var declared []string
	seen := map[string]bool{}
	for _, p := range layout {
		for _, s := range p.Slots {
			if !seen[s.Slot] {
				seen[s.Slot] = true
				declared = append(declared, clickhouse.Quote(s.Slot))
			}
		}
	}
	if len(declared) == 0 {
		return "'other'"
	}
	return "if(slot IN (" + strings.Join(declared, ", ") + "), slot, 'other')"
}
