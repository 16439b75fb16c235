package dashboard

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"
	gorender "github.com/go-echarts/go-echarts/v2/render"
	"github.com/gofiber/fiber/v2"

	"github.com/herd-analytics/herd/internal/abtest"
	"github.com/herd-analytics/herd/internal/privacy"
	"github.com/herd-analytics/herd/schemas"
)

// tableView is a table on a generic page.
type tableView struct {
	Title, Note, CSV string
	Header           []string
	Rows             [][]string
}

type genericPage struct {
	page
	Heading, Intro string
	Charts         []chart
	Tables         []tableView
}

func (d *Dashboard) csv(name string, f filters) string {
	return "/api/v1/" + name + f.query() + "&format=csv"
}

func newChart(title, note, csvURL string, c interface {
	RenderSnippet() gorender.ChartSnippet
}) chart {
	el, sc := snippet(c)
	return chart{Title: title, Note: note, CSV: csvURL, Element: el, Script: sc}
}

func tooltipAxis() charts.GlobalOpts {
	return charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"})
}

func legend() charts.GlobalOpts { return charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true)}) }

// search: demand the shelves meet and the demand they miss.
func (d *Dashboard) search(c *fiber.Ctx) error {
	f, sites, err := d.request(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	top, err := d.store.terms(ctx, "search", f)
	if err != nil {
		return err
	}
	zero, err := d.store.terms(ctx, "search_zero", f)
	if err != nil {
		return err
	}
	trend, err := d.store.searchTrend(ctx, f)
	if err != nil {
		return err
	}
	pg := d.page(c, "Search demand", f, sites)
	num := pg.Num

	bar := charts.NewBar()
	bar.SetGlobalOptions(chartOpts("search_terms"), tooltipAxis(), legend(), axes("term", "searches"))
	var terms []string
	var all, none []opts.BarData
	for _, r := range top[:min(len(top), 20)] {
		terms = append(terms, r.Term)
		all = append(all, opts.BarData{Value: r.Searches})
		none = append(none, opts.BarData{Value: r.ZeroResults})
	}
	bar.SetXAxis(terms).AddSeries("searches", all).AddSeries("with zero results", none)

	line := charts.NewLine()
	line.SetGlobalOptions(chartOpts("search_trend"), tooltipAxis(), legend(), axes("period", "searches"))
	var periods []string
	var s1, s2 []opts.LineData
	for _, r := range trend {
		periods = append(periods, r.Period)
		s1 = append(s1, opts.LineData{Value: r.Searches})
		s2 = append(s2, opts.LineData{Value: r.ZeroResults})
	}
	line.SetXAxis(periods).AddSeries("searches", s1).AddSeries("with zero results", s2)

	missed := tableView{Title: "Terms with zero results: demand the shelves miss", CSV: d.csv("search_zero", f),
		Header: []string{"term", "zero-result searches", "searches", "visitor-days"}}
	for _, r := range zero {
		missed.Rows = append(missed.Rows, []string{r.Term, num.Count(r.ZeroResults), num.Count(r.Searches), num.Count(r.Visitors)})
	}
	return render(c, "generic", genericPage{
		page: pg, Heading: "Search demand",
		Intro: "What shoppers look for, and what they look for and do not find. Terms are lower-cased; a term is published for a period only when enough shoppers searched it.",
		Charts: []chart{
			newChart("Top search terms", d.note(ctx, "searches", f, "Searches of terms that reached the threshold."), d.csv("search", f), bar),
			newChart("Searches per period", d.note(ctx, "searches", f, "Totals of published terms per published cell period."), d.csv("search_trend", f), line),
		},
		Tables: []tableView{missed},
	})
}

// funnels: each funnel in schemas/funnels.yaml drawn as a funnel, with
// step and overall conversion against the previous period, for every
// device or one.
func (d *Dashboard) funnels(c *fiber.Ctx) error {
	f, sites, err := d.request(c)
	if err != nil {
		return err
	}
	defs, err := schemas.Funnels()
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	cur, err := d.store.funnelCounts(ctx, f)
	if err != nil {
		return err
	}
	prevF := f
	prevF.r = f.r.Previous()
	prev, err := d.store.funnelCounts(ctx, prevF)
	if err != nil {
		return err
	}
	table := "funnels"
	if _, _, ok := f.segment(); ok {
		table = "funnel_segments"
	}
	grain, err := d.store.grainOf(ctx, table, f.site, f.r)
	if err != nil {
		return err
	}
	all := f
	all.variant, all.source = "", ""
	variants, err := d.store.variants(ctx, all)
	if err != nil {
		return err
	}
	pg := genericPage{page: withDevices(d.page(c, "Funnels", f, sites)), Heading: "Funnels"}
	pg.Variants, pg.Sources = variants, sources
	num := pg.Num
	who := "every device"
	switch kind, value, ok := f.segment(); {
	case ok:
		who = kind + " " + value + " only; the device filter does not apply to segments"
	case f.device != "":
		who = f.device + " only"
	}
	pg.Intro = "Visitor-days reaching each step in order within the funnel's window (" + who + "). Conversions are between steps published together; " +
		"a step \"below threshold\" had too few visitor-days to publish, and so have the steps after it. " + grainNote(grain)
	for i, fn := range defs {
		totals, ok := stepTotals(cur[fn.Name], len(fn.Steps))
		ptotals, pok := stepTotals(prev[fn.Name], len(fn.Steps))
		var data []opts.FunnelData
		for si, s := range fn.Steps {
			if ok[si] {
				data = append(data, opts.FunnelData{Name: s.Title, Value: totals[si]})
			}
		}
		chartNote := "Each layer is the visitor-days reaching the step; its width is its share of the first step."
		if len(data) < len(fn.Steps) {
			chartNote += " Steps after " + strconv.Itoa(len(data)) + " are below the threshold in this period."
		}
		fc := funnelChart(fmt.Sprintf("funnel_%d", i), "visitor-days", data)
		if len(data) == 0 {
			chartNote = "No step of this funnel reached the threshold in this period."
		}
		pg.Charts = append(pg.Charts, newChart(fn.Title, chartNote+" "+grainNote(grain), d.csv("funnels", f), fc))
		t := tableView{Title: fn.Title + ": conversion", CSV: d.csv("funnels", f),
			Header: []string{"step", "visitor-days", "from the previous step", "from the first step", "previous period: from the previous step", "previous period: from the first step"}}
		for si, s := range fn.Steps {
			row := []string{s.Title, belowThreshold, "–", "–", "–", "–"}
			if ok[si] {
				row[1] = num.Count(totals[si])
				if si > 0 && totals[si-1] > 0 {
					row[2] = num.Percent(totals[si] / totals[si-1])
				}
				if si > 0 && totals[0] > 0 {
					row[3] = num.Percent(totals[si] / totals[0])
				}
			}
			if si > 0 && pok[si] && ptotals[si-1] > 0 {
				row[4] = num.Percent(ptotals[si] / ptotals[si-1])
				row[5] = num.Percent(ptotals[si] / ptotals[0])
			}
			t.Rows = append(t.Rows, row)
		}
		last := -1 // the last published step
		for si := range fn.Steps {
			if ok[si] {
				last = si
			}
		}
		if last > 0 && totals[0] > 0 {
			t.Note = "Overall: " + num.Percent(totals[last]/totals[0]) + " of the visitor-days that reached \"" + fn.Steps[0].Title + "\" reached \"" + fn.Steps[last].Title + "\""
			if last < len(fn.Steps)-1 {
				t.Note += " (the last step published; the later ones are below the threshold)"
			}
			t.Note += "."
			if pok[last] && ptotals[0] > 0 {
				t.Note += " Previous period: " + num.Percent(ptotals[last]/ptotals[0]) + "."
			}
		}
		pg.Tables = append(pg.Tables, t)
	}
	seg, err := d.segmentTable(ctx, all, defs, num)
	if err != nil {
		return err
	}
	pg.Tables = append(pg.Tables, seg)
	return render(c, "generic", pg)
}

// segmentTable compares each funnel across layout variants and across
// traffic sources: visitor-days at the first step, at the last step every
// segment of the kind published, the completion between them with its 95%
// interval, and a verdict against the kind's baseline (the first variant
// by name; direct traffic).
func (d *Dashboard) segmentTable(ctx context.Context, f filters, defs []schemas.Funnel, num numbers) (tableView, error) {
	t := tableView{Title: "Funnels by layout variant and by traffic source", CSV: d.csv("funnel_segments", f),
		Header: []string{"funnel", "segment", "visitor-days at the first step", "reached", "completion (95%)", "against the baseline"}}
	cells, err := d.store.segmentCells(ctx, f)
	if err != nil {
		return t, err
	}
	grain, err := d.store.grainOf(ctx, "funnel_segments", f.site, f.r)
	if err != nil {
		return t, err
	}
	noise, err := d.store.sigmas(ctx, "funnel_segments", f.site, grain)
	if err != nil {
		return t, err
	}
	t.Note = "Source is the referrer of a visitor-day's first page: direct (none, or the shop), search (a search engine), referral (any other site). Completion is between two steps of the same segment's cells, both noised: its interval holds the noise of every cell summed. " + grainNote(grain)
	type key struct{ funnel, kind, segment string }
	steps := map[key]map[int]SegmentCell{}
	for _, c := range cells {
		k := key{c.Funnel, c.Kind, c.Segment}
		if steps[k] == nil {
			steps[k] = map[int]SegmentCell{}
		}
		steps[k][c.Step] = c
	}
	for _, fn := range defs {
		for _, kind := range []string{"variant", "source"} {
			var segs []string
			for k := range steps {
				if k.funnel == fn.Name && k.kind == kind {
					segs = append(segs, k.segment)
				}
			}
			sort.Slice(segs, func(i, j int) bool {
				if kind == "source" { // direct first: the baseline
					return slices.Index(sources, segs[i]) < slices.Index(sources, segs[j])
				}
				return segs[i] < segs[j]
			})
			// The last step every segment of the kind published: each
			// segment's completion is read to the same step.
			last := len(fn.Steps)
			for _, sg := range segs {
				n := 0
				for steps[key{fn.Name, kind, sg}][n+1].Visitors > 0 {
					n++
				}
				last = min(last, n)
			}
			if len(segs) == 0 || last < 2 {
				continue
			}
			var base abtest.Arm
			for i, sg := range segs {
				first, end := steps[key{fn.Name, kind, sg}][1], steps[key{fn.Name, kind, sg}][last]
				arm := abtest.Arm{Name: sg, Trials: first.Visitors, Successes: end.Visitors, Cells: first.Cells, SigmaTrials: noise["visitors"], SigmaSuccesses: noise["visitors"]}
				e, ok := arm.Estimate()
				if !ok {
					continue
				}
				verdict := "baseline"
				if i == 0 {
					base = arm
				} else if v, ok := abtest.Compare(base, arm); ok {
					verdict = v.Words(sg, base.Name, num.Points)
				}
				t.Rows = append(t.Rows, []string{fn.Title, kind + " " + sg, num.Count(first.Visitors), "“" + fn.Steps[last-1].Title + "”: " + num.Count(end.Visitors),
					num.Percent(e.Rate) + " (" + num.Percent(e.Low) + " – " + num.Percent(e.High) + ")", verdict})
			}
		}
	}
	return t, nil
}

// funnelChart draws steps as a funnel, in their order, each labelled at its
// right with its count (the legend names the steps).
func funnelChart(id, series string, data []opts.FunnelData) *charts.Funnel {
	fc := charts.NewFunnel()
	fc.SetGlobalOptions(chartOpts(id), charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true)}), legend())
	fc.AddSeries(series, data, func(s *charts.SingleSeries) {
		s.Sort, s.Left, s.Right, s.Top, s.Bottom = "none", "4%", "36%", "48", "8" // steps in their order; room for labels
	}, charts.WithLabelOpts(opts.Label{Show: opts.Bool(true), Position: "right", Formatter: string(opts.FuncOpts(`function (p) { return p.value.toLocaleString(); }`))}))
	return fc
}

// note is a chart's note with the grain its cells come from.
func (d *Dashboard) note(ctx context.Context, table string, f filters, text string) string {
	g, err := d.store.grainOf(ctx, table, f.site, f.r)
	if err != nil {
		return text
	}
	return text + " " + grainNote(g)
}

// belowThreshold is what a page shows for a value that was not published.
const belowThreshold = "below threshold"

// stepTotals is a funnel's visitor-days per step: its devices and its other
// row, made non-increasing (post-processing). ok[i] is false from the first
// step with nothing published on.
func stepTotals(m map[int]map[string]float64, steps int) ([]float64, []bool) {
	totals, ok := make([]float64, steps), make([]bool, steps)
	n := 0
	for n < steps && len(m[n+1]) > 0 {
		totals[n], ok[n] = sumDevices(m[n+1]), true
		n++
	}
	privacy.NonIncreasing(totals[:n])
	return totals, ok
}

// funnelCounts are the period's funnel cells as funnel → step → device →
// visitor-days; with a segment chosen (a layout variant or a traffic
// source), that segment's cells, under the segment's name.
func (s *store) funnelCounts(ctx context.Context, f filters) (map[string]map[int]map[string]float64, error) {
	var cells []FunnelCell
	if _, value, ok := f.segment(); ok {
		segs, err := s.segmentCells(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, c := range segs {
			cells = append(cells, FunnelCell{Funnel: c.Funnel, Step: c.Step, Device: value, Visitors: c.Visitors})
		}
	} else {
		var err error
		if cells, err = s.funnelCells(ctx, f); err != nil {
			return nil, err
		}
	}
	out := map[string]map[int]map[string]float64{}
	for _, c := range cells {
		if out[c.Funnel] == nil {
			out[c.Funnel] = map[int]map[string]float64{}
		}
		if out[c.Funnel][c.Step] == nil {
			out[c.Funnel][c.Step] = map[string]float64{}
		}
		out[c.Funnel][c.Step][c.Device] = c.Visitors
	}
	return out, nil
}

func sumDevices(m map[string]float64) float64 {
	var s float64
	for _, v := range m {
		s += v
	}
	return s
}

// layout: slot click-through on the page grid, the list-position curve,
// and the layout variants compared per page and slot with an interval that
// includes the DP noise (internal/abtest).
func (d *Dashboard) layout(c *fiber.Ctx) error {
	f, sites, err := d.request(c)
	if err != nil {
		return err
	}
	pages, err := schemas.Layout()
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	slots, err := d.store.slotRows(ctx, f)
	if err != nil {
		return err
	}
	pos, err := d.store.positions(ctx, f)
	if err != nil {
		return err
	}
	grain, err := d.store.grainOf(ctx, "slots", f.site, f.r)
	if err != nil {
		return err
	}
	noise, err := d.store.sigmas(ctx, "slots", f.site, grain)
	if err != nil {
		return err
	}
	all := f
	all.variant = ""
	variants, err := d.store.variants(ctx, all)
	if err != nil {
		return err
	}
	pg := genericPage{page: d.page(c, "Layout", f, sites), Heading: "Layout",
		Intro: "Click-through of layout slots and list positions. Impressions and clicks are each bounded per shopper and noised; click-through is their ratio within the same published cells."}
	pg.Variants = variants
	num := pg.Num

	type ic struct{ imp, clk float64 }
	bySlot := map[string]map[string]*ic{} // page type → slot, every variant
	for _, r := range slots {
		if bySlot[r.PageType] == nil {
			bySlot[r.PageType] = map[string]*ic{}
		}
		x := bySlot[r.PageType][r.Slot]
		if x == nil {
			x = &ic{}
			bySlot[r.PageType][r.Slot] = x
		}
		x.imp += r.Impressions
		x.clk += r.Clicks
	}
	for pi, p := range pages {
		if len(p.Slots) < 2 {
			continue
		}
		hm := charts.NewHeatMap()
		var xs, ys []string
		for col := 1; col <= p.Columns; col++ {
			xs = append(xs, "column "+strconv.Itoa(col))
		}
		maxRow := 0
		for _, s := range p.Slots {
			maxRow = max(maxRow, s.Row)
		}
		for row := maxRow; row >= 1; row-- {
			ys = append(ys, "row "+strconv.Itoa(row))
		}
		var data []opts.HeatMapData
		var hi float64
		for _, s := range p.Slots {
			x := bySlot[p.PageType][s.Slot]
			if x == nil || x.imp <= 0 {
				continue
			}
			ctr := math.Round(1000*min(max(x.clk/x.imp, 0), 1)) / 10
			hi = math.Max(hi, ctr)
			for w := 0; w < s.Width; w++ {
				data = append(data, opts.HeatMapData{Name: s.Slot, Value: [3]any{s.Col - 1 + w, maxRow - s.Row, ctr}})
			}
		}
		hm.SetGlobalOptions(chartOpts(fmt.Sprintf("slots_%d", pi)),
			charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true)}),
			charts.WithXAxisOpts(opts.XAxis{Type: "category", Data: xs}),
			charts.WithYAxisOpts(opts.YAxis{Type: "category", Data: ys}),
			charts.WithGridOpts(opts.Grid{Left: "8", Right: "8", ContainLabel: opts.Bool(true)}),
			charts.WithVisualMapOpts(opts.VisualMap{Calculable: opts.Bool(true), Min: 0, Max: float32(math.Max(hi, 1)), Orient: "horizontal", Left: "center", Bottom: "0",
				InRange: &opts.VisualMapInRange{Color: []string{"#eef3fb", "#2f6fdb"}}}))
		hm.SetXAxis(xs).AddSeries("click-through %", data, charts.WithLabelOpts(opts.Label{Show: opts.Bool(true), Formatter: "{@[2]}%"}))
		ch := newChart("Slot click-through on the "+p.PageType+" page (%)", d.note(ctx, "slots", f, "Clicks ÷ impressions per slot, both from the same published cells, placed on the page grid of schemas/layout.yaml; hover a cell for its slot."), d.csv("slots", f), hm)
		if len(data) == 0 {
			ch.Empty = "No slot of the " + p.PageType + " page reached the publication threshold in this period; a longer period (a whole month) publishes more."
		}
		pg.Charts = append(pg.Charts, ch)
	}

	line := charts.NewLine()
	line.SetGlobalOptions(chartOpts("positions"), tooltipAxis(), legend(), axes("position in the list", "click-through %"))
	kinds := map[string]map[int]float64{}
	maxPos := 0
	for _, r := range pos {
		if r.Impressions <= 0 {
			continue
		}
		if kinds[r.ListKind] == nil {
			kinds[r.ListKind] = map[int]float64{}
		}
		kinds[r.ListKind][r.Position] = math.Round(1000*min(max(r.Clicks/r.Impressions, 0), 1)) / 10
		maxPos = max(maxPos, r.Position)
	}
	var xs []string
	for p := 1; p <= maxPos; p++ {
		xs = append(xs, strconv.Itoa(p))
	}
	line.SetXAxis(xs)
	var kindNames []string
	for k := range kinds {
		kindNames = append(kindNames, k)
	}
	sort.Strings(kindNames)
	for _, k := range kindNames {
		var v []opts.LineData
		for p := 1; p <= maxPos; p++ {
			if ctr, ok := kinds[k][p]; ok {
				v = append(v, opts.LineData{Value: ctr})
			} else {
				v = append(v, opts.LineData{Value: "-"})
			}
		}
		line.AddSeries(k, v)
	}
	pg.Charts = append(pg.Charts, newChart("Click-through by list position", d.note(ctx, "positions", f, "Per list kind; positions whose cells were not published are gaps."), d.csv("positions", f), line))
	// The A/B tables compare every variant, whichever one the filter
	// narrows the charts to.
	abSlots := slots
	if f.variant != "" {
		if abSlots, err = d.store.slotRows(ctx, all); err != nil {
			return err
		}
	}
	pg.Tables = append(pg.Tables, variantTable(abSlots, noise, num))
	exp, err := d.experimentTable(ctx, all, num)
	if err != nil {
		return err
	}
	pg.Tables = append(pg.Tables, exp)
	return render(c, "generic", pg)
}

// variantArm is one layout variant's published totals on a page ("all
// slots") or one slot.
type variantArm struct {
	page, slot string
	arm        abtest.Arm
}

// variantArms groups the slot rows with a variant per page (all slots
// together, first) and per slot; within each, variants by name, so the
// first is the baseline.
func variantArms(rows []SlotRow, noise map[string]float64) []variantArm {
	type key struct{ page, slot string }
	arms := map[key]map[string]*abtest.Arm{}
	add := func(k key, r SlotRow) {
		if arms[k] == nil {
			arms[k] = map[string]*abtest.Arm{}
		}
		a := arms[k][r.Variant]
		if a == nil {
			a = &abtest.Arm{Name: r.Variant, SigmaTrials: noise["impressions"], SigmaSuccesses: noise["clicks"]}
			arms[k][r.Variant] = a
		}
		a.Trials += r.Impressions
		a.Successes += r.Clicks
		a.Cells += r.Cells
	}
	for _, r := range rows {
		if r.Variant == "" {
			continue
		}
		add(key{r.PageType, allSlots}, r)
		add(key{r.PageType, r.Slot}, r)
	}
	var out []variantArm
	for k, byName := range arms {
		for _, a := range byName {
			out = append(out, variantArm{k.page, k.slot, *a})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		switch {
		case a.page != b.page:
			return a.page < b.page
		case a.slot != b.slot:
			if (a.slot == allSlots) != (b.slot == allSlots) {
				return a.slot == allSlots
			}
			return a.slot < b.slot
		}
		return a.arm.Name < b.arm.Name
	})
	return out
}

const allSlots = "all slots"

// variantTable compares the layout variants per page and per slot: each
// variant's click-through with its 95% interval, and a verdict against the
// baseline (the first variant by name).
func variantTable(rows []SlotRow, noise map[string]float64, num numbers) tableView {
	t := tableView{Title: "Layout variants (A/B)", Header: []string{"page", "slot", "variant", "impressions", "clicks", "click-through", "95% interval", "against the baseline"},
		Note: "Each page's slots together, then each slot. The interval holds the sampling error and the differential-privacy noise of every published cell summed (Gaussian σ of the cells' run); " +
			"the verdict compares each variant with the first by name."}
	var base variantArm
	for i, v := range variantArms(rows, noise) {
		e, ok := v.arm.Estimate()
		if !ok {
			continue
		}
		verdict := "baseline"
		if i == 0 || v.page != base.page || v.slot != base.slot {
			base = v
		} else if vd, ok := abtest.Compare(base.arm, v.arm); ok {
			verdict = vd.Words(v.arm.Name, base.arm.Name, num.Points)
		}
		t.Rows = append(t.Rows, []string{v.page, v.slot, v.arm.Name, num.Count(v.arm.Trials), num.Count(v.arm.Successes), num.Percent(e.Rate),
			num.Percent(e.Low) + " – " + num.Percent(e.High), verdict})
	}
	return t
}

// experimentTable judges each layout variant on what it is for: the share
// of its visitor-days that bought, and revenue per visitor-day, each with
// a 95% interval and a verdict against the baseline (the first by name).
func (d *Dashboard) experimentTable(ctx context.Context, f filters, num numbers) (tableView, error) {
	t := tableView{Title: "Layout variants: conversion and revenue", CSV: d.csv("experiments", f),
		Header: []string{"variant", "visitor-days", "buyers", "conversion (95%)", "revenue per visitor-day (95%)", "conversion against the baseline", "revenue against the baseline"}}
	rows, grain, noise, err := d.store.experiments(ctx, f)
	if err != nil {
		return t, err
	}
	t.Note = "Visitor-days count for the first variant they were shown. Conversion is buyers per visitor-day; revenue per visitor-day is bounded by the publication's cap of " +
		num.Money(experimentRevenueCap) + " per visitor-day, and its interval is conservative (any spread of amounts within the cap). Both intervals hold the noise of every published cell summed. " + grainNote(grain)
	var base *ExperimentRow
	var baseConv abtest.Arm
	var baseRev abtest.Mean
	for i := range rows {
		r := &rows[i]
		conv, rev := r.arms(noise)
		ce, okC := conv.Estimate()
		re, okR := rev.Estimate()
		if !okC || !okR {
			continue
		}
		row := []string{r.Variant, num.Count(r.Visitors), num.Count(r.Buyers),
			num.Percent(ce.Rate) + " (" + num.Percent(ce.Low) + " – " + num.Percent(ce.High) + ")",
			num.Money(re.Rate) + " (" + num.Money(re.Low) + " – " + num.Money(re.High) + ")", "baseline", "baseline"}
		if base == nil {
			base, baseConv, baseRev = r, conv, rev
		} else {
			if v, ok := abtest.Compare(baseConv, conv); ok {
				row[5] = v.Words(r.Variant, base.Variant, num.Points)
			}
			if v, ok := abtest.CompareMeans(baseRev, rev); ok {
				row[6] = v.Words(r.Variant, base.Variant, num.Money)
			}
		}
		t.Rows = append(t.Rows, row)
	}
	return t, nil
}

// experimentRevenueCap is what one visitor-day can add to a variant's
// revenue (aggregate/tables.go, the experiments release).
const experimentRevenueCap = 400

// withDevices offers the device filter on a page whose tables carry it.
func withDevices(p page) page {
	p.Devices = devices
	return p
}

var weekdays = []string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}

// habits: when shoppers come, on what, from where.
func (d *Dashboard) habits(c *fiber.Ctx) error {
	f, sites, err := d.request(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	hab, err := d.store.habits(ctx, f)
	if err != nil {
		return err
	}
	aud, err := d.store.audience(ctx, f)
	if err != nil {
		return err
	}
	entries, err := d.store.sources(ctx, "entries", f)
	if err != nil {
		return err
	}
	refs, err := d.store.sources(ctx, "referrers", f)
	if err != nil {
		return err
	}
	pg := withDevices(d.page(c, "Habits", f, sites))
	num := pg.Num
	hm := charts.NewHeatMap()
	var hours []string
	for h := 0; h < 24; h++ {
		hours = append(hours, fmt.Sprintf("%02d", h))
	}
	var data []opts.HeatMapData
	var hi float64
	for _, r := range hab {
		if r.Weekday < 1 || r.Weekday > 7 {
			continue
		}
		hi = math.Max(hi, r.Visitors)
		data = append(data, opts.HeatMapData{Value: [3]any{r.Hour, r.Weekday - 1, r.Visitors}})
	}
	hm.SetGlobalOptions(chartOpts("habits"), charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true)}),
		charts.WithXAxisOpts(opts.XAxis{Type: "category", Data: hours}), charts.WithYAxisOpts(opts.YAxis{Type: "category", Data: weekdays}),
		charts.WithGridOpts(opts.Grid{Left: "8", Right: "8", ContainLabel: opts.Bool(true)}),
		charts.WithVisualMapOpts(opts.VisualMap{Calculable: opts.Bool(true), Min: 0, Max: float32(math.Max(hi, 1)), Orient: "horizontal", Left: "center", Bottom: "0",
			InRange: &opts.VisualMapInRange{Color: []string{"#eef3fb", "#2f6fdb"}}}))
	hm.SetXAxis(hours).AddSeries("visitor-days", data)

	pie := charts.NewPie()
	pie.SetGlobalOptions(chartOpts("devices"), charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true)}), legend())
	var devs []opts.PieData
	bar := charts.NewBar()
	bar.SetGlobalOptions(chartOpts("browsers"), tooltipAxis(), axes("browser", "visitor-days"))
	var browsers []string
	var bv []opts.BarData
	for _, r := range aud {
		switch r.Dimension {
		case "device":
			devs = append(devs, opts.PieData{Name: r.Value, Value: r.Visitors})
		case "browser":
			browsers = append(browsers, r.Value)
			bv = append(bv, opts.BarData{Value: r.Visitors})
		}
	}
	pie.AddSeries("visitor-days", devs)
	bar.SetXAxis(browsers).AddSeries("visitor-days", bv)
	sourceTable := func(title, name, first string, rows []TrafficRow) tableView {
		t := tableView{Title: title, CSV: d.csv(name, f), Header: []string{first, "sessions", "bounces", "bounce rate", "visitor-days"}}
		for _, r := range rows {
			rate := "–"
			if r.Sessions > 0 {
				rate = num.Percent(min(r.Bounces/r.Sessions, 1))
			}
			t.Rows = append(t.Rows, []string{r.Value, num.Count(r.Sessions), num.Count(r.Bounces), rate, num.Count(r.Visitors)})
		}
		return t
	}
	entryTable := sourceTable("Entry pages", "entries", "entry page", entries)
	entryTable.Note = "Sessions that began on the page; a bounce is a one-page session; the rate is within the same cells."
	return render(c, "generic", genericPage{
		page: pg, Heading: "Habits",
		Intro: "When shoppers come (UTC), on which devices and browsers, where they enter and where they come from.",
		Charts: []chart{
			newChart("Visitor-days by weekday and hour (UTC)", d.note(ctx, "habits", f, "Summed over the period's published cells."), d.csv("habits", f), hm),
			newChart("Device mix", d.note(ctx, "traffic", f, "Visitor-days per device class."), d.csv("audience", f), pie),
			newChart("Browser mix", d.note(ctx, "traffic", f, "Visitor-days per browser family."), d.csv("audience", f), bar),
		},
		Tables: []tableView{entryTable, sourceTable("Referrer hosts", "referrers", "referrer host", refs)},
	})
}
