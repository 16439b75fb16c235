package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"
	gorender "github.com/go-echarts/go-echarts/v2/render"
	"github.com/gofiber/fiber/v2"

	"github.com/herd-analytics/herd/internal/clickhouse"
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
	top, topN, err := d.store.load(ctx, "search", f)
	if err != nil {
		return err
	}
	zero, _, err := d.store.load(ctx, "search_zero", f)
	if err != nil {
		return err
	}
	trendT, trendN, err := d.store.load(ctx, "search_trend", f)
	if err != nil {
		return err
	}

	bar := charts.NewBar()
	bar.SetGlobalOptions(chartOpts("search_terms"), tooltipAxis(), legend())
	var terms []string
	var all, none []opts.BarData
	for i, r := range top {
		if i == 20 {
			break
		}
		terms = append(terms, r[0])
		all = append(all, opts.BarData{Value: topN[i][1]})
		none = append(none, opts.BarData{Value: topN[i][2]})
	}
	bar.SetXAxis(terms).AddSeries("searches", all).AddSeries("with zero results", none)

	line := charts.NewLine()
	line.SetGlobalOptions(chartOpts("search_trend"), tooltipAxis(), legend())
	var days []string
	var s1, s2 []opts.LineData
	for i, r := range trendT {
		days = append(days, r[0])
		s1 = append(s1, opts.LineData{Value: trendN[i][1]})
		s2 = append(s2, opts.LineData{Value: trendN[i][2]})
	}
	line.SetXAxis(days).AddSeries("searches", s1).AddSeries("with zero results", s2)

	return render(c, "generic", genericPage{
		page: d.page(c, "Search demand", f, sites), Heading: "Search demand",
		Intro: "What shoppers look for, and what they look for and do not find. Terms are lower-cased; a term is published for a day only when enough shoppers searched it.",
		Charts: []chart{
			newChart("Top search terms", d.note(ctx, "searches", f, "Searches of terms that reached the threshold."), d.csv("search", f), bar),
			newChart("Searches per period", d.note(ctx, "searches", f, "Totals of published terms per published cell period."), d.csv("search_trend", f), line),
		},
		Tables: []tableView{{Title: "Terms with zero results: demand the shelves miss", Header: datasets["search_zero"].header, Rows: zero, CSV: d.csv("search_zero", f)}},
	})
}

// funnels: each funnel in schemas/funnels.yaml as a drop-off chart by
// device, with step-to-step conversion against the previous period.
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
	grain, err := d.store.grainOf(ctx, "funnels", f.site, f.r)
	if err != nil {
		return err
	}
	pg := genericPage{page: d.page(c, "Funnels", f, sites), Heading: "Funnels",
		Intro: "Visitor-days reaching each step (in order, within the funnel's window), by device. Conversion is from the previous step, both published together; " +
			"a step shown as \"below threshold\" had too few visitor-days to publish, and so have the steps after it. " + grainNote(grain)}
	for i, fn := range defs {
		totals, ok := stepTotals(cur[fn.Name], len(fn.Steps))
		ptotals, pok := stepTotals(prev[fn.Name], len(fn.Steps))
		bar := charts.NewBar()
		bar.SetGlobalOptions(chartOpts(fmt.Sprintf("funnel_%d", i)), tooltipAxis(), legend())
		var steps []string
		for _, s := range fn.Steps {
			steps = append(steps, s.Title)
		}
		bar.SetXAxis(steps)
		for _, dev := range []string{"desktop", "mobile", "tablet", "other"} {
			var v []opts.BarData
			for si := range fn.Steps {
				x, has := cur[fn.Name][si+1][dev]
				if !has || !ok[si] {
					v = append(v, opts.BarData{Value: "-"}) // not published: no bar, never 0
					continue
				}
				v = append(v, opts.BarData{Value: x})
			}
			name := dev
			if dev == "other" {
				name = "devices below threshold"
			}
			bar.AddSeries(name, v, charts.WithBarChartOpts(opts.BarChart{Stack: "device"}))
		}
		pg.Charts = append(pg.Charts, newChart(fn.Title, "Visitor-days reaching each step, stacked by device. "+grainNote(grain), d.csv("funnels", f), bar))
		t := tableView{Title: fn.Title + ": step-to-step conversion", Header: []string{"step", "visitor-days", "conversion", "previous period", "desktop", "mobile", "tablet"}, CSV: d.csv("funnels", f)}
		for si, s := range fn.Steps {
			row := []string{s.Title, belowThreshold, "–", "–"}
			if ok[si] {
				row[1] = count(totals[si])
				if si > 0 && totals[si-1] > 0 {
					row[2] = pctText(totals[si] / totals[si-1])
				}
			}
			if si > 0 && pok[si] && ptotals[si-1] > 0 {
				row[3] = pctText(ptotals[si] / ptotals[si-1])
			}
			for _, dev := range []string{"desktop", "mobile", "tablet"} {
				dc := "–"
				n, has := cur[fn.Name][si+1][dev]
				b, hasB := cur[fn.Name][si][dev]
				if si > 0 && has && hasB && b > 0 {
					dc = pctText(min(n/b, 1))
				}
				row = append(row, dc)
			}
			t.Rows = append(t.Rows, row)
		}
		pg.Tables = append(pg.Tables, t)
	}
	return render(c, "generic", pg)
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

func (s *store) funnelCounts(ctx context.Context, f filters) (map[string]map[int]map[string]float64, error) {
	text, nums, err := s.load(ctx, "funnels", f)
	if err != nil {
		return nil, err
	}
	out := map[string]map[int]map[string]float64{}
	for i, r := range text {
		step := int(nums[i][1])
		if out[r[0]] == nil {
			out[r[0]] = map[int]map[string]float64{}
		}
		if out[r[0]][step] == nil {
			out[r[0]][step] = map[string]float64{}
		}
		out[r[0]][step][r[2]] = nums[i][3]
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

func pctText(x float64) string { return strconv.FormatFloat(100*x, 'f', 1, 64) + "%" }

// layout: slot click-through on the page grid, the list-position curve and
// the layout variants compared with an interval that includes the DP noise.
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
	slots, slotN, err := d.store.load(ctx, "slots", f)
	if err != nil {
		return err
	}
	pos, posN, err := d.store.load(ctx, "positions", f)
	if err != nil {
		return err
	}
	pg := genericPage{page: d.page(c, "Layout", f, sites), Heading: "Layout",
		Intro: "Click-through of layout slots and list positions. Impressions and clicks are each bounded per shopper and noised; click-through is their ratio."}

	type ic struct{ imp, clk, cells float64 }
	bySlot := map[string]map[string]*ic{} // page type → slot
	byVariant := map[string]*ic{}
	for i, r := range slots {
		if bySlot[r[0]] == nil {
			bySlot[r[0]] = map[string]*ic{}
		}
		if bySlot[r[0]][r[1]] == nil {
			bySlot[r[0]][r[1]] = &ic{}
		}
		x := bySlot[r[0]][r[1]]
		x.imp += slotN[i][3]
		x.clk += slotN[i][4]
		if r[2] != "" {
			if byVariant[r[2]] == nil {
				byVariant[r[2]] = &ic{}
			}
			byVariant[r[2]].imp += slotN[i][3]
			byVariant[r[2]].clk += slotN[i][4]
			byVariant[r[2]].cells += slotN[i][5]
		}
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
			if x == nil || x.imp == 0 {
				continue
			}
			ctr := math.Round(1000*x.clk/x.imp) / 10
			hi = math.Max(hi, ctr)
			for w := 0; w < s.Width; w++ {
				data = append(data, opts.HeatMapData{Name: s.Slot, Value: [3]any{s.Col - 1 + w, maxRow - s.Row, ctr}})
			}
		}
		hm.SetGlobalOptions(chartOpts(fmt.Sprintf("slots_%d", pi)),
			charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true)}),
			charts.WithXAxisOpts(opts.XAxis{Type: "category", Data: xs}),
			charts.WithYAxisOpts(opts.YAxis{Type: "category", Data: ys}),
			charts.WithVisualMapOpts(opts.VisualMap{Calculable: opts.Bool(true), Min: 0, Max: float32(math.Max(hi, 1)),
				InRange: &opts.VisualMapInRange{Color: []string{"#eef3fb", "#2f6fdb"}}}))
		hm.SetXAxis(xs).AddSeries("click-through %", data, charts.WithLabelOpts(opts.Label{Show: opts.Bool(true), Formatter: "{b}\n{@[2]}%"}))
		pg.Charts = append(pg.Charts, newChart("Slot click-through on the "+p.PageType+" page (%)", d.note(ctx, "slots", f, "Clicks ÷ impressions per slot, both from the same published cells, placed on the page grid of schemas/layout.yaml."), d.csv("slots", f), hm))
	}

	line := charts.NewLine()
	line.SetGlobalOptions(chartOpts("positions"), tooltipAxis(), legend(), charts.WithYAxisOpts(opts.YAxis{Name: "click-through %"}))
	kinds := map[string]map[int]float64{}
	maxPos := 0
	for i, r := range pos {
		if posN[i][2] == 0 {
			continue
		}
		if kinds[r[0]] == nil {
			kinds[r[0]] = map[int]float64{}
		}
		p := int(posN[i][1])
		kinds[r[0]][p] = math.Round(1000*posN[i][3]/posN[i][2]) / 10
		maxPos = max(maxPos, p)
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

	// Variant A vs B with an interval: sampling error plus the Laplace
	// noise of every summed cell, from the parameters the publisher used.
	noise := d.slotNoise(ctx, f.site)
	ab := tableView{Title: "Layout variants", Header: []string{"variant", "impressions", "clicks", "click-through", "95% interval"}, CSV: d.csv("slots", f),
		Note: "The interval combines sampling error with the differential-privacy noise of every published cell summed (Gaussian σ from the run parameters in rollup_runs)."}
	var names []string
	for v := range byVariant {
		names = append(names, v)
	}
	sort.Strings(names)
	type est struct{ p, sd float64 }
	ests := map[string]est{}
	bar := charts.NewBar()
	bar.SetGlobalOptions(chartOpts("variants"), tooltipAxis())
	var bv []opts.BarData
	for _, v := range names {
		x := byVariant[v]
		if x.imp <= 0 {
			continue
		}
		p := x.clk / x.imp
		varC := x.cells*noise.clicks*noise.clicks + x.imp*p*(1-p)
		varI := x.cells * noise.impressions * noise.impressions
		sd := math.Sqrt(varC+p*p*varI) / x.imp
		ests[v] = est{p, sd}
		ab.Rows = append(ab.Rows, []string{v, count(x.imp), count(x.clk), pctText(p), pctText(p-1.96*sd) + " – " + pctText(p+1.96*sd)})
		bv = append(bv, opts.BarData{Value: math.Round(1000*p) / 10})
	}
	if a, okA := ests["A"]; okA {
		if b, okB := ests["B"]; okB {
			diff, sd := b.p-a.p, math.Sqrt(a.sd*a.sd+b.sd*b.sd)
			verdict := "not distinguishable from no difference"
			if math.Abs(diff) > 1.96*sd {
				verdict = "a real difference at 95%"
			}
			ab.Rows = append(ab.Rows, []string{"B − A", "", "", fmt.Sprintf("%+.2f pp", 100*diff),
				fmt.Sprintf("%+.2f to %+.2f pp: %s", 100*(diff-1.96*sd), 100*(diff+1.96*sd), verdict)})
		}
	}
	bar.SetXAxis(names).AddSeries("click-through %", bv)
	pg.Charts = append(pg.Charts, newChart("Click-through by layout variant (%)", d.note(ctx, "slots", f, "All slots of each variant."), d.csv("slots", f), bar))
	pg.Tables = append(pg.Tables, ab)
	return render(c, "generic", pg)
}

// cellNoise is the Gaussian σ of one published cell's metric.
type cellNoise struct{ impressions, clicks float64 }

// slotNoise reads the newest daily slots run's parameters.
func (d *Dashboard) slotNoise(ctx context.Context, site string) cellNoise {
	var params string
	_ = d.store.q.Select(ctx, "SELECT params FROM "+d.store.db+".rollup_runs WHERE table_name = 'slots' AND grain = 'day' AND state = 'published' AND site = "+clickhouse.Quote(site)+
		" ORDER BY bucket DESC LIMIT 1", func(b *proto.Block) error {
		if b.Rows() > 0 {
			params = clickhouse.Get[string](b, 0, 0)
		}
		return nil
	})
	var m privacy.Params
	var n cellNoise
	if json.Unmarshal([]byte(params), &m) != nil {
		return n
	}
	if imp, ok := m.Metric("impressions"); ok {
		n.impressions = imp.Sigma
	}
	if clicks, ok := m.Metric("clicks"); ok {
		n.clicks = clicks.Sigma
	}
	return n
}

var weekdays = []string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}

// habits: when shoppers come, on what, from where.
func (d *Dashboard) habits(c *fiber.Ctx) error {
	f, sites, err := d.request(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	hab, habN, err := d.store.load(ctx, "habits", f)
	if err != nil {
		return err
	}
	aud, audN, err := d.store.load(ctx, "audience", f)
	if err != nil {
		return err
	}
	entries, _, err := d.store.load(ctx, "entries", f)
	if err != nil {
		return err
	}
	refs, _, err := d.store.load(ctx, "referrers", f)
	if err != nil {
		return err
	}
	hm := charts.NewHeatMap()
	var hours []string
	for h := 0; h < 24; h++ {
		hours = append(hours, fmt.Sprintf("%02d", h))
	}
	var data []opts.HeatMapData
	var hi float64
	for i := range hab {
		wd, h, v := int(habN[i][0]), int(habN[i][1]), habN[i][2]
		if wd < 1 || wd > 7 {
			continue
		}
		hi = math.Max(hi, v)
		data = append(data, opts.HeatMapData{Value: [3]any{h, wd - 1, v}})
	}
	hm.SetGlobalOptions(chartOpts("habits"), charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true)}),
		charts.WithXAxisOpts(opts.XAxis{Type: "category", Data: hours}), charts.WithYAxisOpts(opts.YAxis{Type: "category", Data: weekdays}),
		charts.WithVisualMapOpts(opts.VisualMap{Calculable: opts.Bool(true), Min: 0, Max: float32(math.Max(hi, 1)),
			InRange: &opts.VisualMapInRange{Color: []string{"#eef3fb", "#2f6fdb"}}}))
	hm.SetXAxis(hours).AddSeries("visitor-days", data)

	pie := charts.NewPie()
	pie.SetGlobalOptions(chartOpts("devices"), charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true)}), legend())
	var devs []opts.PieData
	bar := charts.NewBar()
	bar.SetGlobalOptions(chartOpts("browsers"), tooltipAxis())
	var browsers []string
	var bv []opts.BarData
	for i, r := range aud {
		switch r[0] {
		case "device":
			devs = append(devs, opts.PieData{Name: r[1], Value: audN[i][2]})
		case "browser":
			browsers = append(browsers, r[1])
			bv = append(bv, opts.BarData{Value: audN[i][2]})
		}
	}
	pie.AddSeries("visitor-days", devs)
	bar.SetXAxis(browsers).AddSeries("visitor-days", bv)
	for _, r := range entries {
		r[0] = strings.TrimSpace(r[0])
	}
	return render(c, "generic", genericPage{
		page: d.page(c, "Habits", f, sites), Heading: "Habits",
		Intro: "When shoppers come (UTC), on which devices and browsers, where they enter and where they come from.",
		Charts: []chart{
			newChart("Visitor-days by weekday and hour (UTC)", d.note(ctx, "habits", f, "Summed over the period's published cells."), d.csv("habits", f), hm),
			newChart("Device mix", d.note(ctx, "traffic", f, "Visitor-days per device class."), d.csv("audience", f), pie),
			newChart("Browser mix", d.note(ctx, "traffic", f, "Visitor-days per browser family."), d.csv("audience", f), bar),
		},
		Tables: []tableView{
			{Title: "Entry pages", Header: datasets["entries"].header, Rows: entries, CSV: d.csv("entries", f), Note: "Sessions that began on the page; a bounce is a one-page session."},
			{Title: "Referrer hosts", Header: datasets["referrers"].header, Rows: refs, CSV: d.csv("referrers", f)},
		},
	})
}
