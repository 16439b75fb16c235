package dashboard

import (
	"fmt"
	"html/template"
	"math"
	"time"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"
	"github.com/gofiber/fiber/v2"

	"github.com/herd-analytics/herd/internal/abtest"
)

// overview: management's KPIs against the previous period and the same
// period a year before, with sparklines and a trend.
func (d *Dashboard) overview(c *fiber.Ctx) error {
	f, sites, err := d.request(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	days, err := d.store.kpis(ctx, f.site, f.r)
	if err != nil {
		return err
	}
	prevDays, err := d.store.kpis(ctx, f.site, f.r.Previous())
	if err != nil {
		return err
	}
	lastYear := f.r.YearBefore()
	yearDays, err := d.store.kpis(ctx, f.site, lastYear)
	if err != nil {
		return err
	}
	pg := d.page(c, "Overview", f, sites)
	num := pg.Num
	cmp := compareWith(days, prevDays, f.r.Days(), num)
	type tile struct {
		Label, Value, Noise, Delta, DeltaClass string
		Spark                                  template.HTML
	}
	cur, prev := total(days), total(prevDays)
	nc, np := totalNoise(days), totalNoise(prevDays)
	values := []struct {
		label     string
		cur, prev float64
		// sigma is the noise σ of the period's figure from its totals'.
		sigma  func(k KPIs, n kpiNoise) float64
		format func(float64) string
		series func(DayKPIs) float64
	}{
		{"Visitor-days", float64(cur.Visitors), float64(prev.Visitors), func(_ KPIs, n kpiNoise) float64 { return n.visitors }, num.Count, func(k DayKPIs) float64 { return float64(k.Visitors) }},
		{"Sessions", float64(cur.Sessions), float64(prev.Sessions), func(_ KPIs, n kpiNoise) float64 { return n.sessions }, num.Count, func(k DayKPIs) float64 { return float64(k.Sessions) }},
		{"Orders", float64(cur.Orders), float64(prev.Orders), func(_ KPIs, n kpiNoise) float64 { return n.orders }, num.Count, func(k DayKPIs) float64 { return float64(k.Orders) }},
		{"Revenue", cur.Revenue, prev.Revenue, func(_ KPIs, n kpiNoise) float64 { return n.revenue }, num.Money, func(k DayKPIs) float64 { return k.Revenue }},
		{"Conversion (buyers per visitor-day)", cur.Conversion(), prev.Conversion(),
			func(k KPIs, n kpiNoise) float64 { return n.conversion(k) }, num.Percent, func(k DayKPIs) float64 { return k.Conversion() }},
		{"Average order value", cur.AOV(), prev.AOV(),
			func(k KPIs, n kpiNoise) float64 { return n.aov(k) }, num.Money, func(k DayKPIs) float64 { return k.AOV() }},
	}
	var tiles []tile
	for i, v := range values {
		t := tile{Label: v.label, Value: v.format(v.cur), Delta: cmp.why, DeltaClass: "muted"}
		sigma := v.sigma(cur, nc)
		if len(days) == 0 {
			t.Value = belowThreshold
		} else if sigma > 0 {
			t.Noise = "± " + v.format(abtest.Z95*sigma)
		}
		if cmp.ok && v.prev > 0 {
			change := v.cur/v.prev - 1
			t.Delta = num.p.Sprintf("%+.1f%% vs previous period", 100*change)
			switch {
			case math.Abs(v.cur-v.prev) <= abtest.Z95*math.Hypot(sigma, v.sigma(prev, np)):
				// A change the noise alone could make is not a change.
				t.Delta += " (within the noise)"
			case change >= 0.0005:
				t.DeltaClass = "up"
			case change <= -0.0005:
				t.DeltaClass = "down"
			}
		}
		line := charts.NewLine()
		line.SetGlobalOptions(charts.WithInitializationOpts(opts.Initialization{AssetsHost: "/assets/", ChartID: fmt.Sprintf("spark%d", i), Width: "100%", Height: "48px"}),
			charts.WithLegendOpts(opts.Legend{Show: opts.Bool(false)}),
			charts.WithXAxisOpts(opts.XAxis{Show: opts.Bool(false)}), charts.WithYAxisOpts(opts.YAxis{Show: opts.Bool(false)}),
			charts.WithGridOpts(opts.Grid{Left: "2", Right: "2", Top: "4", Bottom: "4"}), charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}))
		var xs []string
		var ys []opts.LineData
		for _, day := range days {
			xs = append(xs, day.Day.Format("Jan 2"))
			ys = append(ys, opts.LineData{Value: round2(v.series(day))})
		}
		line.SetXAxis(xs).AddSeries(v.label, ys, charts.WithLineChartOpts(opts.LineChart{Smooth: opts.Bool(true), ShowSymbol: opts.Bool(false)}))
		el, sc := snippet(line)
		t.Spark = el + sc
		tiles = append(tiles, t)
	}

	// The trend: this period's days against the previous period's and
	// last year's, day by day (the nth day of each).
	trend := charts.NewLine()
	trend.SetGlobalOptions(chartOpts("visitors_trend"), tooltipAxis(), legend(),
		axes("day", "visitor-days"))
	revenue := charts.NewLine()
	revenue.SetGlobalOptions(chartOpts("revenue_trend"), tooltipAxis(), legend(),
		axes("day", "revenue ("+num.currency+")"))
	var xs []string
	for day := f.r.From; day.Before(f.r.To); day = day.AddDate(0, 0, 1) {
		xs = append(xs, day.Format(time.DateOnly))
	}
	trend.SetXAxis(xs)
	revenue.SetXAxis(xs)
	for _, s := range []struct {
		name string
		from time.Time
		days []DayKPIs
	}{{"This period", f.r.From, days}, {"Previous period", f.r.Previous().From, prevDays}, {"A year before", lastYear.From, yearDays}} {
		if len(s.days) == 0 {
			continue // nothing published: no line, not a line at 0
		}
		vis, rev := alignDays(s.from, len(xs), s.days)
		trend.AddSeries(s.name, vis)
		revenue.AddSeries(s.name, rev)
	}
	note := "Daily published cells; days below the publication threshold are gaps. " + cmp.note
	data := struct {
		page
		Tiles  []tile
		Charts []chart
	}{page: pg, Tiles: tiles, Charts: []chart{
		newChart("Visitor-days per day", note, "/api/v1/kpis"+f.query()+"&format=csv", trend),
		newChart("Revenue per day", note, "/api/v1/kpis"+f.query()+"&format=csv", revenue),
	}}
	return render(c, "overview", data)
}

// comparison says whether a period's totals may be compared with the
// previous period's: only when both have every day published.
type comparison struct {
	ok        bool
	why, note string
}

func compareWith(cur, prev []DayKPIs, days int, num numbers) comparison {
	switch {
	case len(prev) == 0:
		return comparison{why: "not compared: no previous period published", note: "The previous period has no published day."}
	case len(cur) != days || len(prev) != days:
		why := num.p.Sprintf("not compared: %d of %d days published, previous period %d", len(cur), days, len(prev))
		return comparison{why: why, note: "Totals are compared only when both periods have every day published; " + why + "."}
	}
	return comparison{ok: true}
}

// alignDays puts a period's published days on the chart's n days from
// from: a day not published is a gap.
func alignDays(from time.Time, n int, days []DayKPIs) (vis, rev []opts.LineData) {
	vis, rev = make([]opts.LineData, n), make([]opts.LineData, n)
	for i := range n {
		vis[i], rev[i] = opts.LineData{Value: "-"}, opts.LineData{Value: "-"}
	}
	for _, day := range days {
		if i := int(day.Day.Sub(from).Hours() / 24); i >= 0 && i < n {
			vis[i], rev[i] = opts.LineData{Value: day.Visitors}, opts.LineData{Value: round2(day.Revenue)}
		}
	}
	return vis, rev
}
