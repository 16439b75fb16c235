package dashboard

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"
	"github.com/gofiber/fiber/v2"

	"github.com/herd-analytics/herd/internal/abtest"
	"github.com/herd-analytics/herd/schemas"
)

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
	// The previous period's conversions only beside a period published as
	// whole as this one.
	compared, why, err := d.store.comparable(ctx, "funnels", f.site, f.r)
	if err != nil {
		return err
	}
	if !compared {
		prev = nil
		pg.Intro += " Previous period " + why + "."
	}
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
