package aggregate

import (
	"encoding/binary"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/herd-analytics/herd/schemas"
)

// What each table's parts count: one visit (a visitor-day's events in time
// order) in, the cells it counts in out, before any bound. The bounds, the
// caps and the sums over visitors are the same for every table (cells.go).

// siteFacts is what parts may know beyond the visit: public facts only.
type siteFacts struct {
	// catalog maps the site's listed product ids to their category; nil
	// when the site has no catalog.
	catalog map[string]string
	sources map[string]string // referrer host → source class, memoized
	// products and positions are scratch of their parts, reused visit
	// after visit.
	products  []productRow
	positions []positionRow
	ids       []string
	levels    []int // of the visit at hand, by funnel id; -1 not yet known
}

// visit readies sf for the next visit.
func (sf *siteFacts) visit() {
	for i := range sf.levels {
		sf.levels[i] = -1
	}
}

// fork is a copy of sf for another goroutine: shared facts, its own scratch.
func (sf *siteFacts) fork() *siteFacts {
	return &siteFacts{catalog: sf.catalog, sources: map[string]string{}}
}

// VisitorCells collects one visitor-day's cells of one part: each a key of
// dimension values and the part's metrics.
type VisitorCells struct {
	metrics int
	keys    []byte // every cell's key, one after the other
	cells   []visitorCell
	vals    []float64
	index   map[string]int // by key, once a visit has many cells
	scratch []byte
}

type visitorCell struct {
	start, end int // its key in keys
	mark       int
	sum        uint64 // dimSum of its dimensions
}

func (vc *VisitorCells) reset(metrics int) {
	vc.metrics, vc.keys, vc.cells, vc.vals = metrics, vc.keys[:0], vc.cells[:0], vc.vals[:0]
	if vc.index != nil {
		clear(vc.index)
	}
}

// indexFrom: past this many cells, keys are found through a map.
const indexFrom = 64

// Add returns the metrics of the visit's cell with these dimension values,
// zero when new: the caller adds to them before the next Add.
func (vc *VisitorCells) Add(dims ...string) []float64 {
	i := vc.find(dims)
	return vc.vals[i*vc.metrics : (i+1)*vc.metrics]
}

// AddOnce is Add and whether mark differs from the mark the cell was last
// added with (it then takes mark): to count distinct sessions in a cell.
func (vc *VisitorCells) AddOnce(mark int, dims ...string) ([]float64, bool) {
	i := vc.find(dims)
	c := &vc.cells[i]
	first := c.mark != mark
	c.mark = mark
	return vc.vals[i*vc.metrics : (i+1)*vc.metrics], first
}

// find is the index of the cell with these dimensions, added if new. Keys
// length-prefix each value, so no value can pass for two.
func (vc *VisitorCells) find(dims []string) int {
	if vc.index != nil {
		k := vc.scratch[:0]
		for _, d := range dims {
			k = binary.AppendUvarint(k, uint64(len(d)))
			k = append(k, d...)
		}
		vc.scratch = k
		if i, ok := vc.index[string(k)]; ok {
			return i
		}
		return vc.insert(dims, 0)
	}
	sum := dimSum(dims)
	for i, c := range vc.cells {
		if c.sum == sum && keyIs(vc.keys[c.start:c.end], dims) {
			return i
		}
	}
	return vc.insert(dims, sum)
}

// insert adds a cell with these dimensions.
func (vc *VisitorCells) insert(dims []string, sum uint64) int {
	start := len(vc.keys)
	for _, d := range dims {
		vc.keys = binary.AppendUvarint(vc.keys, uint64(len(d)))
		vc.keys = append(vc.keys, d...)
	}
	i := len(vc.cells)
	vc.cells = append(vc.cells, visitorCell{start: start, end: len(vc.keys), mark: -1, sum: sum})
	vc.vals = append(vc.vals, make([]float64, vc.metrics)...)
	switch {
	case vc.index != nil:
		vc.index[string(vc.key(i))] = i
	case len(vc.cells) > indexFrom:
		vc.index = make(map[string]int, 2*indexFrom)
		for j := range vc.cells {
			vc.index[string(vc.key(j))] = j
		}
	}
	return i
}

// keyIs reports whether key holds exactly these dimension values.
func keyIs(key []byte, dims []string) bool {
	for _, d := range dims {
		n, w := binary.Uvarint(key)
		if w <= 0 || n != uint64(len(d)) || len(key)-w < len(d) || string(key[w:w+len(d)]) != d {
			return false
		}
		key = key[w+len(d):]
	}
	return len(key) == 0
}

// dimSum is a cheap hash of dimension values (their lengths and ends), to
// skip most comparisons.
func dimSum(dims []string) uint64 {
	h := uint64(len(dims))
	for _, d := range dims {
		h = h*1000003 + uint64(len(d))
		if n := len(d); n > 0 {
			h = h*31 + uint64(d[0])
			h = h*31 + uint64(d[n/2])
			h = h*31 + uint64(d[n-1])
		}
	}
	return h
}

// key is cell i's key.
func (vc *VisitorCells) key(i int) []byte {
	return vc.keys[vc.cells[i].start:vc.cells[i].end]
}

// splitKey is the dimension values of a key.
func splitKey(k []byte) []string {
	var out []string
	for len(k) > 0 {
		n, w := binary.Uvarint(k)
		if w <= 0 || uint64(len(k)-w) < n {
			break
		}
		out = append(out, string(k[w:w+int(n)]))
		k = k[w+int(n):]
	}
	return out
}

// small are the decimal strings of 0…255, for numeric dimensions.
var small = func() (s [256]string) {
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return
}()

func num(n int) string {
	if n >= 0 && n < len(small) {
		return small[n]
	}
	return strconv.Itoa(n)
}

// first is the visit's first event's device: the pseudonym is keyed on the
// user agent, so a visitor-day has one.
func device(v *Visit) string {
	if len(v.Events) == 0 {
		return ""
	}
	return v.Events[0].Device()
}

// kpiCells: the day's one cell. Sessions count every event's time.
func kpiCells(_ *siteFacts, v *Visit, out *VisitorCells) {
	m := out.Add()
	m[0] = float64(v.Sessions())
	bought := false
	for i := range v.Events {
		e := &v.Events[i]
		switch e.Type {
		case evPageview:
			m[1]++
		case evPurchase:
			m[2]++
			m[4] += e.OrderValue()
			bought = true
		}
	}
	if bought {
		m[3] = 1
	}
}

// productRow is one product's counts in a visit, before it becomes a cell.
type productRow struct {
	key, category                       string
	views, clicks, adds, purchases, max float64
}

// productCells: views, clicks and adds of the product an event is about;
// a purchase counts for each product it lists, its revenue per product the
// product's list price as the shopper saw it on its events. With a catalog,
// ids it does not list are one key, "unlisted", and categories are the
// catalog's; without one, the first category the events name.
func productCells(sf *siteFacts, v *Visit, out *VisitorCells) {
	rows := sf.products[:0]
	row := func(pid, category string) *productRow {
		key := pid
		if sf.catalog != nil {
			c, ok := sf.catalog[pid]
			if !ok {
				key, c = Unlisted, ""
			}
			category = c
		}
		for i := range rows {
			if rows[i].key == key {
				if rows[i].category == "" {
					rows[i].category = category
				}
				return &rows[i]
			}
		}
		rows = append(rows, productRow{key: key, category: category})
		return &rows[len(rows)-1]
	}
	for i := range v.Events {
		e := &v.Events[i]
		switch e.Type {
		case evProductView, evProductClick, evAddToCart:
			if e.Product() == "" {
				continue
			}
			r := row(e.Product(), e.Category())
			r.max = max(r.max, e.Price())
			switch e.Type {
			case evProductView:
				r.views++
			case evProductClick:
				r.clicks++
			default:
				r.adds++
			}
		case evPurchase:
			sf.ids = e.Products(sf.ids[:0])
			for _, pid := range sf.ids {
				if pid != "" {
					r := row(pid, e.Category())
					r.max = max(r.max, e.Price())
					r.purchases++
				}
			}
		}
	}
	for _, r := range rows {
		m := out.Add(r.key, r.category)
		m[0], m[1], m[2], m[3], m[4] = r.views, r.clicks, r.adds, r.purchases, r.purchases*r.max
	}
	sf.products = rows
}

// categoryCells: category views (of products and of lists), clicks and adds.
func categoryCells(_ *siteFacts, v *Visit, out *VisitorCells) {
	for i := range v.Events {
		e := &v.Events[i]
		if e.Category() == "" {
			continue
		}
		switch e.Type {
		case evProductView, evProductListView:
			out.Add(e.Category(), e.Device())[0]++
		case evProductClick:
			out.Add(e.Category(), e.Device())[1]++
		case evAddToCart:
			out.Add(e.Category(), e.Device())[2]++
		}
	}
}

// dayparts split the day (UTC) in four.
func daypart(h int) string {
	switch {
	case h < 6:
		return "night"
	case h < 12:
		return "morning"
	case h < 18:
		return "afternoon"
	}
	return "evening"
}

func daypartCells(_ *siteFacts, v *Visit, out *VisitorCells) {
	for i := range v.Events {
		e := &v.Events[i]
		if e.Category() != "" && (e.Type == evProductView || e.Type == evProductListView) {
			out.Add(e.Category(), daypart(e.Hour()))[0]++
		}
	}
}

// declaredSlots are the slots schemas/layout.yaml declares.
func declaredSlots(layout []schemas.Page) map[string]bool {
	declared := map[string]bool{}
	for _, p := range layout {
		for _, s := range p.Slots {
			declared[s.Slot] = true
		}
	}
	return declared
}

// slotCells: impressions and clicks per page type, slot and variant. Only
// declared slots are published under their name; anything else a client
// sends is "other".
func slotCells(declared map[string]bool) func(*siteFacts, *Visit, *VisitorCells) {
	return func(_ *siteFacts, v *Visit, out *VisitorCells) {
		for i := range v.Events {
			e := &v.Events[i]
			if e.Slot() == "" || (e.Type != evSlotImpression && e.Type != evProductClick) {
				continue
			}
			slot := e.Slot()
			if !declared[slot] {
				slot = "other"
			}
			m := out.Add(e.PageType(), slot, e.Variant())
			if e.Type == evSlotImpression {
				m[0]++
			} else {
				m[1]++
			}
		}
	}
}

// positionRow is one list kind's impressions and clicks by position.
type positionRow struct {
	kind                string
	top                 int // the highest position counted
	impressions, clicks [maxPosition + 1]float64
}

const maxPosition = 100

// positionCells: a product list's impressions are the positions of the
// products it showed; a click carries its position. The list's kind (home,
// category, search) is the part of its name before ':'.
func positionCells(sf *siteFacts, v *Visit, out *VisitorCells) {
	rows := sf.positions[:0]
	for i := range v.Events {
		e := &v.Events[i]
		if e.List() == "" || (e.Type != evProductListView && e.Type != evProductClick) {
			continue
		}
		kind, _, _ := strings.Cut(e.List(), ":")
		k := 0
		for k < len(rows) && rows[k].kind != kind {
			k++
		}
		if k == len(rows) {
			if k < cap(rows) {
				rows = rows[:k+1]
				r := &rows[k]
				clear(r.impressions[:r.top+1])
				clear(r.clicks[:r.top+1])
				r.kind, r.top = kind, 0
			} else {
				rows = append(rows, positionRow{kind: kind})
			}
		}
		r := &rows[k]
		if e.Type == evProductListView {
			n := min(e.ListLen(), maxPosition)
			for p := 1; p <= n; p++ {
				r.impressions[p]++
			}
			r.top = max(r.top, n)
		} else if p := int(e.Position()); p >= 1 && p <= maxPosition {
			r.clicks[p]++
			r.top = max(r.top, p)
		}
	}
	for i := range rows {
		r := &rows[i]
		for p := 1; p <= r.top; p++ {
			if r.impressions[p] > 0 || r.clicks[p] > 0 {
				m := out.Add(r.kind, num(p))
				m[0], m[1] = r.impressions[p], r.clicks[p]
			}
		}
	}
	sf.positions = rows
}

// A funnel step's condition on an event.
type stepCond struct {
	typ            EventType
	step           uint8 // 0: any
	pageType, slot string
}

func (c stepCond) match(e *Event) bool {
	return e.Type == c.typ && (c.step == 0 || e.Step() == c.step) &&
		(c.pageType == "" || e.PageType() == c.pageType) && (c.slot == "" || e.Slot() == c.slot)
}

type funnel struct {
	id     int // its place among the funnels
	name   string
	window uint32 // in Event.TS units
	steps  []stepCond
	types  uint64 // a bit per event type some step matches
}

// level is f.level(v), computed once per visit: funnels and
// funnel_segments ask for the same visit in turn.
func (sf *siteFacts) level(f *funnel, v *Visit) int {
	for len(sf.levels) <= f.id {
		sf.levels = append(sf.levels, -1)
	}
	if n := sf.levels[f.id]; n >= 0 {
		return n
	}
	n := f.level(v)
	sf.levels[f.id] = n
	return n
}

// level is the deepest step the visit reached in order, each step within
// the window of the event that began the chain (ClickHouse's windowFunnel:
// a later first step starts a fresh chain, a chain keeps its start).
func (f *funnel) level(v *Visit) int {
	n := len(f.steps)
	var buf [16]int64
	start := buf[:0]
	if n <= len(buf) {
		start = buf[:n]
	} else {
		start = make([]int64, n)
	}
	for i := range start {
		start[i] = -1
	}
	for i := range v.Events {
		e := &v.Events[i]
		if f.types>>e.Type&1 == 0 {
			continue
		}
		for s := range n {
			if !f.steps[s].match(e) {
				continue
			}
			ts := int64(e.TS)
			if s == 0 {
				start[0] = ts
			} else if start[s-1] >= 0 && ts <= start[s-1]+int64(f.window) {
				start[s] = start[s-1]
				if s+1 == n {
					return n
				}
			}
		}
	}
	for s := n; s > 0; s-- {
		if start[s-1] >= 0 {
			return s
		}
	}
	return 0
}

// newFunnel compiles a funnel of schemas/.
func newFunnel(id int, sf schemas.Funnel) (*funnel, error) {
	if len(sf.Steps) == 0 || len(sf.Steps) > 255 {
		return nil, fmt.Errorf("funnel %s: %d steps (1 to 255)", sf.Name, len(sf.Steps))
	}
	f := &funnel{id: id, name: sf.Name, window: uint32(sf.Window/time.Second) * tsPerSecond}
	for _, s := range sf.Steps {
		typ := eventType(s.Type)
		if typ == evOther || s.Step < 0 || s.Step > 255 {
			return nil, fmt.Errorf("funnel %s: a step of type %q, step %d, can match no event", sf.Name, s.Type, s.Step)
		}
		f.steps = append(f.steps, stepCond{typ: typ, step: uint8(s.Step), pageType: s.PageType, slot: s.Slot})
		f.types |= 1 << typ
	}
	return f, nil
}

// funnelParts builds, per funnel, a funnels part (a visitor-day counts in
// every step up to the deepest it reached: n cells for a funnel of n steps)
// and a funnel_segments part (the same steps by the layout variant it saw
// first and by its traffic source: 2n cells).
func funnelParts(funnels []schemas.Funnel) ([]Part, []Part, error) {
	if len(funnels) == 0 {
		return nil, nil, fmt.Errorf("no funnels defined")
	}
	var fparts, sparts []Part
	for id, sf := range funnels {
		f, err := newFunnel(id, sf)
		if err != nil {
			return nil, nil, err
		}
		fparts = append(fparts, Part{Limit: len(f.steps), Cells: func(sf *siteFacts, v *Visit, out *VisitorCells) {
			dev := device(v)
			for s := range sf.level(f, v) {
				out.Add(f.name, num(s+1), dev)
			}
		}})
		sparts = append(sparts, Part{Limit: 2 * len(f.steps), Cells: func(sf *siteFacts, v *Visit, out *VisitorCells) {
			level := sf.level(f, v)
			if level == 0 {
				return
			}
			variant, ref, seenPV := "", "", false
			for i := range v.Events {
				e := &v.Events[i]
				if variant == "" {
					variant = e.Variant()
				}
				if !seenPV && e.Type == evPageview {
					ref, seenPV = e.Referrer(), true
				}
			}
			source := sf.source(ref)
			for s := range level {
				if variant != "" {
					out.Add(f.name, num(s+1), "variant", variant)
				}
				out.Add(f.name, num(s+1), "source", source)
			}
		}})
	}
	return fparts, sparts, nil
}

// searchEngines are the referrers whose visits count as coming from search.
var searchEngines = regexp.MustCompile(`(^|\.)(google|bing|duckduckgo|yahoo|ecosia|baidu|yandex|qwant|startpage)\.`)

// source is where a visitor-day came from, by the referrer of its first
// pageview: direct (none, or the shop itself), search (a search engine) or
// referral (any other site).
func (sf *siteFacts) source(ref string) string {
	if ref == "" || ref == "internal" {
		return "direct"
	}
	if s, ok := sf.sources[ref]; ok {
		return s
	}
	s := "referral"
	if searchEngines.MatchString(ref) {
		s = "search"
	}
	if len(sf.sources) < 100_000 {
		sf.sources[ref] = s
	}
	return s
}

// pathCells: pageviews per path and the sessions that viewed it. A bounce
// belongs to the page the session entered at, so path rows carry none.
func pathCells(_ *siteFacts, v *Visit, out *VisitorCells) {
	for i := range v.Events {
		e := &v.Events[i]
		if e.Type != evPageview {
			continue
		}
		m, first := out.AddOnce(v.Session[i], "path", e.Path())
		m[0]++
		if first {
			m[1]++
		}
	}
}

// sessionCells: per session with pageviews, its pageviews, one session and
// whether it bounced (one pageview), under each named dimension of the
// session: entry (its first page), referrer (its first pageview's), and
// device, browser, os and country (those of the pseudonym).
func sessionCells(dims ...string) func(*siteFacts, *Visit, *VisitorCells) {
	return func(_ *siteFacts, v *Visit, out *VisitorCells) {
		v.pageviewSessions(func(_, entry, pv int) {
			e := &v.Events[entry]
			for _, d := range dims {
				m := out.Add(d, sessionDims[d](e))
				m[0] += float64(pv)
				m[1]++
				if pv == 1 {
					m[2]++
				}
			}
		})
	}
}

// sessionDims read a session's dimensions from its first pageview.
var sessionDims = map[string]func(*Event) string{
	"entry": (*Event).Path, "referrer": (*Event).Referrer,
	"device": (*Event).Device, "browser": (*Event).Browser, "os": (*Event).OS, "country": (*Event).Country,
}

// habitCells: pageviews by weekday (Monday 1 … Sunday 7), hour (UTC) and device.
func habitCells(_ *siteFacts, v *Visit, out *VisitorCells) {
	for i := range v.Events {
		e := &v.Events[i]
		if e.Type != evPageview {
			continue
		}
		wd := int(e.Weekday())
		if wd == 0 {
			wd = 7
		}
		out.Add(num(wd), num(e.Hour()), e.Device())[0]++
	}
}

// searchCells: searches per lower-cased term, and those that found nothing.
func searchCells(_ *siteFacts, v *Visit, out *VisitorCells) {
	for i := range v.Events {
		e := &v.Events[i]
		if e.Type != evSearch || e.Term() == "" {
			continue
		}
		m := out.Add(e.Term())
		m[0]++
		if e.NoResults() {
			m[1]++
		}
	}
}

// experimentCells: a visitor-day counts for the first layout variant it was
// shown, with whether it bought and its revenue.
func experimentCells(_ *siteFacts, v *Visit, out *VisitorCells) {
	variant := ""
	buyer, revenue := 0., 0.
	for i := range v.Events {
		e := &v.Events[i]
		if variant == "" {
			variant = e.Variant()
		}
		if e.Type == evPurchase {
			buyer = 1
			revenue += e.OrderValue()
		}
	}
	if variant != "" {
		m := out.Add(variant)
		m[0], m[1] = buyer, revenue
	}
}
