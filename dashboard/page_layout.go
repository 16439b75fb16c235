package dashboard

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"
	"github.com/gofiber/fiber/v2"

	"github.com/herd-analytics/herd/internal/abtest"
	"github.com/herd-analytics/herd/schemas"
)

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
