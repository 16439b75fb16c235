package dashboard

import (
	"cmp"
	"net/url"
	"time"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"
	"github.com/gofiber/fiber/v2"
)

// productID reads the :id of /products/:id: a catalog id, at most 200
// bytes (the products rollup stores nothing longer).
func productID(c *fiber.Ctx) (string, error) {
	id, err := url.PathUnescape(c.Params("id"))
	if err != nil || id == "" || len(id) > 200 {
		return "", fiber.NewError(fiber.StatusBadRequest, "product: an id of at most 200 bytes")
	}
	return id, nil
}

// product: one product for a merchandiser: the period's views, add-to-cart
// and purchase rates, its rank in its category, and its weekly and monthly
// trend over the year to the period's end.
func (d *Dashboard) product(c *fiber.Ctx) error {
	f, sites, err := d.request(c)
	if err != nil {
		return err
	}
	id, err := productID(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	pd, err := d.store.product(ctx, f, id)
	if err != nil {
		return err
	}
	if !pd.Published && !pd.InCatalog && len(pd.Weeks) == 0 && len(pd.Months) == 0 {
		return fiber.NewError(fiber.StatusNotFound, "no product "+id+" in the catalog or the published rows of "+f.site)
	}
	grain, err := d.store.grainOf(ctx, "products", f.site, f.r)
	if err != nil {
		return err
	}
	pg := d.page(c, "Hot products", f, sites)
	num := pg.Num
	type tile struct{ Label, Value string }
	tiles := []tile{{"Visitor-days", belowThreshold}, {"Views", belowThreshold}, {"Add to cart (per view)", belowThreshold},
		{"Purchases (per view)", belowThreshold}, {"Revenue", belowThreshold}}
	var funnel chart
	if pd.Published {
		n := pd.Noise
		tiles[0].Value, tiles[1].Value = num.Noisy(float64(pd.Visitors), n["visitors"], num.Count), num.Noisy(float64(pd.Views), n["views"], num.Count)
		tiles[4].Value = num.Noisy(pd.Revenue, n["revenue"], num.Money)
		if pd.RevenueBasis == "list_price" {
			tiles[4].Label = "Revenue (purchases × list price)"
		}
		if pd.Views > 0 {
			views := float64(pd.Views)
			tiles[2].Value = num.Noisy(float64(pd.Adds), n["adds"], num.Count) + " · " +
				num.Noisy(float64(pd.Adds)/views, ratioNoise(float64(pd.Adds), n["adds"], views, n["views"]), num.Percent)
			tiles[3].Value = num.Noisy(float64(pd.Purchases), n["purchases"], num.Count) + " · " +
				num.Noisy(float64(pd.Purchases)/views, ratioNoise(float64(pd.Purchases), n["purchases"], views, n["views"]), num.Percent)
		}
		// Bars, not a funnel: adds and purchases are a few percent of
		// views, too thin to read as funnel layers.
		bar := charts.NewBar()
		bar.SetGlobalOptions(chartOpts("product_steps"), tooltipAxis(),
			charts.WithYAxisOpts(opts.YAxis{Inverse: opts.Bool(true)}),
			charts.WithXAxisOpts(opts.XAxis{Name: "events", NameLocation: "middle", NameGap: 28, AxisLabel: &opts.AxisLabel{Formatter: opts.FuncOpts(compactAxis)}}),
			charts.WithGridOpts(opts.Grid{Left: "8", Right: "64", Bottom: "44", ContainLabel: opts.Bool(true)}))
		bar.SetXAxis([]string{"views", "add to cart", "purchases"}).
			AddSeries("events", []opts.BarData{{Value: pd.Views}, {Value: pd.Adds}, {Value: pd.Purchases}},
				charts.WithLabelOpts(opts.Label{Show: opts.Bool(true), Position: "right", Formatter: string(opts.FuncOpts(`function (p) { return p.value.toLocaleString(); }`))})).
			XYReversal()
		funnel = newChart("Views → add to cart → purchase", "Events of the product's published cells, bounded per visitor-day; the rates above are within the same cells. "+grainNote(grain),
			"/api/v1/products/"+url.PathEscape(id)+f.query()+"&format=csv", bar)
	}

	trend := charts.NewLine()
	trend.SetGlobalOptions(chartOpts("product_weeks"), tooltipAxis(), legend(),
		axes("ISO week (Monday)", "events per week"))
	var weeks []string
	var views, adds, buys []opts.LineData
	for _, w := range pd.Weeks {
		weeks = append(weeks, w.Bucket.Format(time.DateOnly))
		views = append(views, opts.LineData{Value: w.Views})
		adds = append(adds, opts.LineData{Value: w.Adds})
		buys = append(buys, opts.LineData{Value: w.Purchases})
	}
	trend.SetXAxis(weeks).AddSeries("views", views).AddSeries("add to cart", adds).AddSeries("purchases", buys)
	weekly := newChart("Weekly trend (the year to "+num.Date(f.r.To.AddDate(0, 0, -1))+")",
		"Published week cells (ISO weeks, starting Monday); a week below the threshold is missing.", "/api/v1/products/"+url.PathEscape(id)+f.query()+"&format=csv", trend)
	if len(pd.Weeks) == 0 {
		weekly.Empty = "No week of this product reached the publication threshold in the year to the period's end."
	}
	charts := []chart{weekly}
	if pd.Published {
		charts = append([]chart{funnel}, charts...)
	}
	var months [][]string
	for _, m := range pd.Months {
		row := []string{m.Bucket.Format("Jan 2006"), num.Count(float64(m.Views)), num.Count(float64(m.Adds)), num.Count(float64(m.Purchases)), num.Money(m.Revenue), "–"}
		if m.Views > 0 {
			row[5] = num.Percent(float64(m.Purchases) / float64(m.Views))
		}
		months = append(months, row)
	}
	back := "/products" + f.query()
	if pd.Category != "" {
		back += "&category=" + url.QueryEscape(pd.Category)
	}
	return render(c, "product", struct {
		page
		P            ProductDetail
		Title, Back  string
		Price, Rank  string
		Tiles        []tile
		Charts       []chart
		Months       [][]string
		MonthsHeader []string
	}{
		page: pg, P: pd, Title: cmp.Or(pd.Name, pd.ProductID), Back: back, Price: priceText(pd, num), Rank: rankText(pd, num),
		Tiles: tiles, Charts: charts, Months: months,
		MonthsHeader: []string{"month", "views", "add to cart", "purchases", "revenue", "purchases per view"},
	})
}

func priceText(pd ProductDetail, num numbers) string {
	if !pd.InCatalog {
		return "not in the catalog"
	}
	return num.Money(pd.Price)
}

func rankText(pd ProductDetail, num numbers) string {
	if !pd.Published || pd.RankOf == 0 {
		return ""
	}
	return "No. " + num.Count(float64(pd.Rank)) + " by views of the " + num.Count(float64(pd.RankOf)) + " published products in " + pd.Category
}
