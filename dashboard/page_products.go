package dashboard

import (
	"cmp"
	"fmt"
	"net/url"
	"strconv"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"
	"github.com/gofiber/fiber/v2"
)

// products: merchandisers' hot products with trend and category share.
func (d *Dashboard) products(c *fiber.Ctx) error {
	f, sites, err := d.request(c)
	if err != nil {
		return err
	}
	by := c.Query("by", "views")
	if _, ok := productSort[by]; !ok {
		return fiber.NewError(fiber.StatusBadRequest, "by: one of views, adds, purchases, revenue, visitors")
	}
	category := c.Query("category")
	rows, err := d.store.products(c.UserContext(), f.site, f.r, by, category, 20)
	if err != nil {
		return err
	}
	cats, err := d.store.categories(c.UserContext(), f)
	if err != nil {
		return err
	}
	coverage, err := d.store.productCoverage(c.UserContext(), f.site, f.r, category)
	if err != nil {
		return err
	}
	grain, err := d.store.grainOf(c.UserContext(), "products", f.site, f.r)
	if err != nil {
		return err
	}
	trendNote := " The trend is the change in views against the previous period, where both have at least " + strconv.Itoa(minTrendBase) + " views."
	if ok, why, err := d.store.comparable(c.UserContext(), "products", f.site, f.r); err != nil {
		return err
	} else if !ok {
		trendNote = " Trend " + why + "."
	}
	// Horizontal bars: product names read along the bars, also on a phone.
	bar := charts.NewBar()
	bar.SetGlobalOptions(charts.WithInitializationOpts(opts.Initialization{AssetsHost: "/assets/", ChartID: "top_products", Width: "100%", Height: fmt.Sprintf("%dpx", 80+24*max(len(rows), 4))}),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
		charts.WithYAxisOpts(opts.YAxis{Inverse: opts.Bool(true), AxisLabel: &opts.AxisLabel{Formatter: opts.FuncOpts(shortLabel)}}),
		charts.WithXAxisOpts(opts.XAxis{Name: by, NameLocation: "middle", NameGap: 28, AxisLabel: &opts.AxisLabel{Formatter: opts.FuncOpts(compactAxis)}}),
		charts.WithGridOpts(opts.Grid{Left: "8", Right: "24", Bottom: "44", ContainLabel: opts.Bool(true)}))
	var names []string
	var vals []opts.BarData
	for _, p := range rows {
		names = append(names, cmp.Or(p.Name, p.ProductID))
		vals = append(vals, opts.BarData{Value: productMetric(p, by)})
	}
	bar.SetXAxis(names).AddSeries(by, vals).XYReversal()
	topEl, topScript := snippet(bar)

	share := charts.NewBar()
	share.SetGlobalOptions(chartOpts("category_share"), tooltipAxis(), legend(), axes("category", "views"))
	var catNames []string
	for _, cs := range cats {
		catNames = append(catNames, cs.Category)
	}
	share.SetXAxis(catNames)
	for _, dev := range []string{"desktop", "mobile", "tablet", "other"} {
		var v []opts.BarData
		for _, cs := range cats {
			if x, ok := cs.Views[dev]; ok {
				v = append(v, opts.BarData{Value: x})
			} else {
				v = append(v, opts.BarData{Value: "-"}) // not published: no bar, never 0
			}
		}
		name := dev
		if dev == "other" {
			name = "devices below threshold"
		}
		share.AddSeries(name, v, charts.WithBarChartOpts(opts.BarChart{Stack: "device"}))
	}
	shareEl, shareScript := snippet(share)

	dp, err := d.store.dayparts(c.UserContext(), f)
	if err != nil {
		return err
	}
	byPart := map[string]map[string]float64{}
	var dpCats []string
	seen := map[string]bool{}
	for _, r := range dp {
		if byPart[r.Daypart] == nil {
			byPart[r.Daypart] = map[string]float64{}
		}
		byPart[r.Daypart][r.Category] = r.Views
		if !seen[r.Category] {
			seen[r.Category] = true
			dpCats = append(dpCats, r.Category)
		}
	}
	parts := charts.NewBar()
	parts.SetGlobalOptions(chartOpts("category_dayparts"), tooltipAxis(), legend(), axes("category", "views"))
	parts.SetXAxis(dpCats)
	for _, part := range []string{"night", "morning", "afternoon", "evening"} {
		var v []opts.BarData
		for _, cat := range dpCats {
			if x, ok := byPart[part][cat]; ok {
				v = append(v, opts.BarData{Value: x})
			} else {
				v = append(v, opts.BarData{Value: "-"}) // not published: no bar, never 0
			}
		}
		parts.AddSeries(part, v, charts.WithBarChartOpts(opts.BarChart{Stack: "daypart"}))
	}
	partsEl, partsScript := snippet(parts)
	catRevenue, err := d.store.categoryRevenue(c.UserContext(), f)
	if err != nil {
		return err
	}
	pg := withDevices(d.page(c, "Hot products", f, sites))
	num := pg.Num
	list := f
	list.device = ""
	type productView struct{ Link, ID, Name, Category, CategoryLink, Visitors, Views, Adds, AddRate, Purchases, BuyRate, Revenue, Trend string }
	var views []productView
	for _, p := range rows {
		v := productView{Link: "/products/" + url.PathEscape(p.ProductID) + list.query(), ID: p.ProductID, Name: p.Name, Category: p.Category,
			CategoryLink: "/products" + list.query() + "&by=" + url.QueryEscape(by) + "&category=" + url.QueryEscape(p.Category),
			Visitors:     num.Noisy(float64(p.Visitors), p.Noise["visitors"], num.Count),
			Views:        num.Noisy(float64(p.Views), p.Noise["views"], num.Count),
			Adds:         num.Noisy(float64(p.Adds), p.Noise["adds"], num.Count),
			Purchases:    num.Noisy(float64(p.Purchases), p.Noise["purchases"], num.Count),
			Revenue:      num.Noisy(p.Revenue, p.Noise["revenue"], num.Money), AddRate: "–", BuyRate: "–", Trend: "–"}
		if p.Views > 0 {
			views, sv := float64(p.Views), p.Noise["views"]
			v.AddRate = num.Noisy(float64(p.Adds)/views, ratioNoise(float64(p.Adds), p.Noise["adds"], views, sv), num.Percent)
			v.BuyRate = num.Noisy(float64(p.Purchases)/views, ratioNoise(float64(p.Purchases), p.Noise["purchases"], views, sv), num.Percent)
		}
		if p.Trend != 0 {
			v.Trend = num.p.Sprintf("%+.0f%%", 100*p.Trend)
		}
		views = append(views, v)
	}
	catTable := tableView{Title: "Revenue by category", CSV: "/api/v1/category_revenue" + f.query() + "&format=csv",
		Header: []string{"category", "views", "purchases", "revenue", "purchases per view"},
		Note: "Sums of the product release: each category's published products and its products below the threshold together. " +
			"Revenue of products the catalog lists is their purchases at list price (discounts make it an estimate); the rest is the release's own revenue. " + grainNote(grain)}
	for _, cr := range catRevenue {
		rate := "–"
		if cr.Views > 0 {
			rate = num.Percent(min(float64(cr.Purchases)/float64(cr.Views), 1))
		}
		catTable.Rows = append(catTable.Rows, []string{cr.Category, num.Count(float64(cr.Views)), num.Count(float64(cr.Purchases)), num.Money(cr.Revenue), rate})
	}
	data := struct {
		page
		By, Category    string
		ProductCoverage string
		Metrics         []string
		Products        []productView
		Charts          []chart
		Tables          []tableView
	}{
		page: pg, By: by, Category: category, ProductCoverage: coverage.Line(num),
		Metrics: []string{"views", "adds", "purchases", "revenue", "visitors"}, Products: views, Tables: []tableView{catTable},
		Charts: []chart{
			{Title: "Top products by " + by, Note: grainNote(grain) + " " + coverage.Line(num) + " Revenue is purchases at the catalog's list price where it lists one. A figure whose 95% noise interval is wider than half of it is shown as that interval, or as too few to tell;" +
				" the order of products whose intervals overlap is not certain." + trendNote,
				CSV:     "/api/v1/products" + f.query() + "&by=" + url.QueryEscape(by) + "&category=" + url.QueryEscape(category) + "&format=csv",
				Element: topEl, Script: topScript},
			{Title: "Category views by device", Note: d.note(c.UserContext(), "categories", f, "Published category × device cells."),
				CSV: "/api/v1/categories" + f.query() + "&format=csv", Element: shareEl, Script: shareScript},
			{Title: "Category views by time of day (UTC)", Note: d.note(c.UserContext(), "category_dayparts", f, "Night 0–6, morning 6–12, afternoon 12–18, evening 18–24; published category × day-part cells."),
				CSV: "/api/v1/category_dayparts" + f.query() + "&format=csv", Element: partsEl, Script: partsScript},
		},
	}
	return render(c, "products", data)
}
