package dashboard

import (
	"fmt"
	"math"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"
	"github.com/gofiber/fiber/v2"
)

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
	entries, err := d.store.sources(ctx, entryPagesDataset, f)
	if err != nil {
		return err
	}
	refs, err := d.store.sources(ctx, referrerHostsDataset, f)
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
