package dashboard

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	"encoding/csv"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"
	gorender "github.com/go-echarts/go-echarts/v2/render"
	"github.com/gofiber/fiber/v2"

	"github.com/herd-analytics/herd/internal/abtest"
	"github.com/herd-analytics/herd/internal/privacy"
	"github.com/herd-analytics/herd/schemas"
)

//go:embed templates/*.html
var templateFS embed.FS

var pageTemplates = map[string]*template.Template{}

func init() {
	funcs := template.FuncMap{"pct": func(x float64) float64 { return 100 * x }}
	for _, page := range []string{"overview", "products", "product", "privacy", "generic", "reports", "admin"} {
		pageTemplates[page] = template.Must(template.New(page).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/chart.html", "templates/"+page+".html"))
	}
	for _, page := range []string{"login", "error"} {
		pageTemplates[page] = template.Must(template.ParseFS(templateFS, "templates/"+page+".html"))
	}
}

// page is what the layout needs; Content is the page's own data.
type page struct {
	Title, User, Role, CSRF, Site, Preset, From, To, Query, NavQuery, Privacy string
	Nav                                                                       []navItem
	Sites                                                                     []string
	Presets                                                                   []preset
	// Device and Variant are the chosen dimensions; Devices and Variants,
	// when set, offer them (only on pages whose tables carry them).
	Device, Variant, Source    string
	Devices, Variants, Sources []string
	// Coverage warns when the period starts before the first published day.
	Coverage string
	// Num formats numbers for the reader's language.
	Num numbers
}

type navItem struct {
	Path, Title string
	Active      bool
}

type preset struct{ Value, Label string }

// presets follow the published grains: whole weeks read week cells, whole
// months month cells (where most products reach the threshold); rolling
// days and month to date read daily cells, which only the tables with
// daily cells have (docs/dashboard.md).
var presets = []preset{
	{"week", "Last full week"}, {"4w", "Last 4 full weeks"}, {"month", "Last full month"}, {"3m", "Last 3 full months"},
	{"mtd", "Month to date (daily cells)"}, {"7d", "Last 7 days (daily cells)"}, {"28d", "Last 28 days (daily cells)"}, {"90d", "Last 90 days (daily cells)"},
	{"custom", "Custom"},
}

// defaultPreset: the last four whole weeks, the period with most published
// cells that still shows this month's changes. Products default to the last
// full month: most products reach the threshold only over a month.
const (
	defaultPreset  = "4w"
	productsPreset = "month"
)

// navigation lists the pages and the roles that see them.
var navigation = []struct {
	Path, Title string
	Roles       []Role
}{
	{"/", "Overview", nil},
	{"/products", "Hot products", []Role{Merchandiser, Manager, Admin}},
	{"/search", "Search demand", []Role{Merchandiser, Manager, Admin}},
	{"/funnels", "Funnels", []Role{UX, Manager, Admin}},
	{"/layout", "Layout", []Role{UX, Manager, Admin}},
	{"/habits", "Habits", nil},
	{"/reports", "Reports", []Role{Manager, Admin}},
	{"/admin", "Downloads", []Role{Admin}},
	{"/privacy", "Privacy", nil},
}

// chart is one rendered chart with its note and CSV link (the privacy
// statement is said once, at the foot of the page).
type chart struct {
	Title, Note, CSV string
	// Empty, when set, is shown instead of a chart with nothing to draw.
	Empty           string
	Element, Script template.HTML
}

func (d *Dashboard) page(c *fiber.Ctx, title string, f filters, sites []string) page {
	s := sessionOf(c)
	p := page{
		Title: title, User: s.user.Name, Role: string(s.user.Role), CSRF: s.csrf, Site: f.site, Preset: f.preset,
		From: f.r.From.Format(time.DateOnly), To: f.r.To.Add(-24 * time.Hour).Format(time.DateOnly),
		Query: f.query(), NavQuery: f.navQuery(), Sites: sites, Presets: presets, Privacy: d.privacyLine(c.UserContext()),
		Device: f.device, Variant: f.variant, Source: f.source, Num: d.numbers(c),
	}
	if start, err := d.store.firstDay(c.UserContext(), f.site); err == nil && !start.IsZero() && f.r.From.Before(start) {
		p.Coverage = "Data from " + p.Num.Date(start) + ": the period starts before the first published day."
	}
	for _, n := range navigation {
		if len(n.Roles) == 0 || slices.Contains(n.Roles, s.user.Role) {
			p.Nav = append(p.Nav, navItem{Path: n.Path, Title: n.Title, Active: n.Title == title})
		}
	}
	return p
}

func (d *Dashboard) privacyLine(ctx context.Context) string {
	if d.cfg.Statement == nil {
		return ""
	}
	st, err := d.statementNow(ctx)
	if err != nil {
		return "Privacy statement unavailable: " + err.Error()
	}
	return st.Line()
}

func (d *Dashboard) statement(ctx context.Context) privacy.Statement {
	if d.cfg.Statement == nil {
		return privacy.Statement{}
	}
	st, _ := d.statementNow(ctx)
	return st
}

func render(c *fiber.Ctx, name string, data any) error {
	var buf bytes.Buffer
	if err := pageTemplates[name].ExecuteTemplate(&buf, templateRoot(name), data); err != nil {
		return err
	}
	// The charts' scripts (snippet) run under this page's nonce.
	nonce := token()[:32]
	page := bytes.ReplaceAll(buf.Bytes(), []byte(chartScriptOpen), []byte(`<script nonce="`+nonce+`">`))
	c.Set("Content-Security-Policy", contentSecurityPolicy(nonce))
	c.Type("html", "utf-8")
	return c.Send(page)
}

// chartScriptOpen opens every chart script snippet writes; render gives it
// the page's nonce.
const chartScriptOpen = `<script data-herd-chart>`

// snippet renders a chart as its element and script. go-echarts writes the
// option JSON into the script as is, so data such as a product named
// "</script><script>..." would end the script early; every "</" and "<!--"
// inside becomes its JavaScript-escaped form, which reads the same.
func snippet(c interface{ RenderSnippet() gorender.ChartSnippet }) (element, script template.HTML) {
	s := c.RenderSnippet()
	const open, end = `<script type="text/javascript">`, "</script>"
	body := s.Script
	i, j := strings.Index(body, open), strings.LastIndex(body, end)
	if i < 0 || j < i {
		return template.HTML(s.Element), ""
	}
	inner := strings.NewReplacer("</", `<\/`, "<!--", `<\!--`).Replace(body[i+len(open) : j])
	return template.HTML(s.Element), template.HTML(chartScriptOpen + inner + end)
}

// errorPage is what a browser sees for a failed page request: the status
// and the reason, as a page (the API keeps its JSON).
func errorPage(c *fiber.Ctx, code int, msg string) error {
	return render(c, "error", struct {
		Code            int
		Status, Message string
		Retry           bool
	}{code, http.StatusText(code), msg, code == fiber.StatusServiceUnavailable})
}

func templateRoot(name string) string {
	if name == "login" || name == "error" {
		return name + ".html"
	}
	return "layout"
}

// chartOpts are every chart's options: local ECharts only, sized to its box.
// id becomes a JavaScript identifier: letters, digits and '_' only.
func chartOpts(id string) charts.GlobalOpts {
	return charts.WithInitializationOpts(opts.Initialization{AssetsHost: "/assets/", ChartID: id, Width: "100%", Height: "320px"})
}

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

// axes titles a chart's axes where a phone still shows them whole: the x
// title under the axis, the y title above it, the value labels short.
func axes(x, y string) charts.GlobalOpts {
	return func(bc *charts.BaseConfiguration) {
		charts.WithXAxisOpts(opts.XAxis{Name: x, NameLocation: "middle", NameGap: 28})(bc)
		charts.WithYAxisOpts(opts.YAxis{Name: y, AxisLabel: &opts.AxisLabel{Formatter: opts.FuncOpts(compactAxis)}})(bc)
		charts.WithGridOpts(opts.Grid{Left: "48", Right: "16", Bottom: "44", ContainLabel: opts.Bool(true)})(bc)
	}
}

// shortLabel cuts a category label to 18 characters (the tooltip has it
// whole).
const shortLabel = `function (v) { return v.length > 18 ? v.slice(0, 17) + '…' : v; }`

// compactAxis writes an axis value short enough for a phone: 8k, 1.2M.
const compactAxis = `function (v) { return Math.abs(v) >= 1e6 ? (v / 1e6).toLocaleString() + 'M' : Math.abs(v) >= 1e3 ? (v / 1e3).toLocaleString() + 'k' : v.toLocaleString(); }`

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

// kpiNoise is the differential-privacy noise σ of a period's KPI totals.
type kpiNoise struct{ visitors, sessions, pageviews, orders, buyers, revenue float64 }

// totalNoise is the noise of the sum of the days' cells, each with the σ
// its release recorded (independent noises: the variances add).
func totalNoise(days []DayKPIs) kpiNoise {
	cells := make([]cellNoise, len(days))
	for i, d := range days {
		cells[i] = cellNoise{n: 1, sigma: d.Noise}
	}
	n := sumNoise(cells)
	return kpiNoise{visitors: n["visitors"], sessions: n["sessions"], pageviews: n["pageviews"],
		orders: n["orders"], buyers: n["buyers"], revenue: n["revenue"]}
}

// conversion is the σ of k's buyers per visitor-day.
func (n kpiNoise) conversion(k KPIs) float64 {
	return ratioNoise(float64(k.Buyers), n.buyers, float64(k.Visitors), n.visitors)
}

// aov is the σ of k's average order value.
func (n kpiNoise) aov(k KPIs) float64 {
	return ratioNoise(k.Revenue, n.revenue, float64(k.Orders), n.orders)
}

// ratioNoise is the σ of a/b from their σs, to first order (the delta
// method; the two noises independent).
func ratioNoise(a, sa, b, sb float64) float64 {
	if b <= 0 {
		return 0
	}
	return math.Hypot(sa, a/b*sb) / b
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
			Visitors:     num.Count(float64(p.Visitors)), Views: num.Count(float64(p.Views)), Adds: num.Count(float64(p.Adds)),
			Purchases: num.Count(float64(p.Purchases)), Revenue: num.Money(p.Revenue), AddRate: "–", BuyRate: "–", Trend: "–"}
		if p.Views > 0 {
			v.AddRate, v.BuyRate = num.Percent(float64(p.Adds)/float64(p.Views)), num.Percent(float64(p.Purchases)/float64(p.Views))
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
			{Title: "Top products by " + by, Note: grainNote(grain) + " " + coverage.Line(num) + " Revenue is purchases at the catalog's list price where it lists one.",
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

func productMetric(p ProductRow, by string) float64 {
	switch by {
	case "adds":
		return float64(p.Adds)
	case "purchases":
		return float64(p.Purchases)
	case "revenue":
		return round2(p.Revenue)
	case "visitors":
		return float64(p.Visitors)
	}
	return float64(p.Views)
}

func (d *Dashboard) privacy(c *fiber.Ctx) error {
	f, sites, err := d.request(c)
	if err != nil {
		return err
	}
	inv, err := schemas.Purposes()
	if err != nil {
		return err
	}
	type col struct{ Table, Column, Category, Purposes, Note string }
	var cols []col
	for table, t := range inv.Tables {
		for name, cl := range t.Columns {
			cols = append(cols, col{table, name, cl.Category, strings.Join(cl.Purposes, ", "), cl.Note})
		}
	}
	sort.Slice(cols, func(i, j int) bool {
		if cols[i].Table != cols[j].Table {
			return cols[i].Table < cols[j].Table
		}
		return cols[i].Column < cols[j].Column
	})
	data := struct {
		page
		Statement any
		Inventory *schemas.Inventory
		Columns   []col
	}{page: d.page(c, "Privacy", f, sites), Inventory: inv, Columns: cols}
	if d.cfg.Statement != nil {
		st, err := d.statementNow(c.UserContext())
		if err != nil {
			return err
		}
		data.Statement = st
	}
	return render(c, "privacy", data)
}

// API: the same numbers as JSON, or CSV with ?format=csv.

func (d *Dashboard) apiKPIs(c *fiber.Ctx) error {
	f, _, err := d.request(c)
	if err != nil {
		return err
	}
	days, err := d.store.kpis(c.UserContext(), f.site, f.r)
	if err != nil {
		return err
	}
	header := []string{"day", "visitors", "sessions", "pageviews", "orders", "buyers", "revenue"}
	var recs [][]string
	var out []map[string]any
	for _, day := range days {
		recs = append(recs, []string{day.Day.Format(time.DateOnly), u(day.Visitors), u(day.Sessions), u(day.Pageviews), u(day.Orders), u(day.Buyers), money2(day.Revenue)})
		row := map[string]any{"day": day.Day.Format(time.DateOnly), "visitors": day.Visitors, "sessions": day.Sessions,
			"pageviews": day.Pageviews, "orders": day.Orders, "buyers": day.Buyers, "revenue": day.Revenue}
		// The σ of the noise each figure carries (JSON only), as the
		// day's release recorded it.
		if len(day.Noise) > 0 {
			row["noise_sigma"] = day.Noise
		}
		out = append(out, row)
	}
	return d.answer(c, "kpis", header, recs, out)
}

func (d *Dashboard) apiProducts(c *fiber.Ctx) error {
	f, _, err := d.request(c)
	if err != nil {
		return err
	}
	by := c.Query("by", "views")
	limit, err := strconv.Atoi(c.Query("limit", "20"))
	if err != nil || limit < 1 || limit > 1000 {
		return fiber.NewError(fiber.StatusBadRequest, "limit: 1 to 1000")
	}
	rows, err := d.store.products(c.UserContext(), f.site, f.r, by, c.Query("category"), limit)
	if err != nil {
		return fiber.NewError(fiber.StatusBadRequest, err.Error())
	}
	header := []string{"product_id", "name", "category", "visitors", "views", "adds", "purchases", "revenue", "previous_views", "trend"}
	var recs [][]string
	for _, p := range rows {
		recs = append(recs, []string{p.ProductID, p.Name, p.Category, u(p.Visitors), u(p.Views), u(p.Adds), u(p.Purchases),
			money2(p.Revenue), u(p.Previous), strconv.FormatFloat(p.Trend, 'f', 4, 64)})
	}
	return d.answer(c, "products", header, recs, rows)
}

func (d *Dashboard) apiCategories(c *fiber.Ctx) error {
	f, _, err := d.request(c)
	if err != nil {
		return err
	}
	cats, err := d.store.categories(c.UserContext(), f)
	if err != nil {
		return err
	}
	header := []string{"category", "desktop", "mobile", "tablet", "other"}
	var recs [][]string
	cell := func(m map[string]uint64, dev string) string {
		if v, ok := m[dev]; ok {
			return u(v)
		}
		return "" // below the threshold: no number, not 0
	}
	for _, cs := range cats {
		recs = append(recs, []string{cs.Category, cell(cs.Views, "desktop"), cell(cs.Views, "mobile"), cell(cs.Views, "tablet"), cell(cs.Views, "other")})
	}
	return d.answer(c, "categories", header, recs, cats)
}

// answer writes JSON, or CSV with format=csv. CSV cells that a spreadsheet
// would run as a formula are prefixed with a quote.
func (d *Dashboard) answer(c *fiber.Ctx, name string, header []string, recs [][]string, jsonBody any) error {
	if c.Query("format") != "csv" {
		return c.JSON(fiber.Map{"data": jsonBody, "privacy": d.privacyLine(c.UserContext())})
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write(header)
	for _, r := range recs {
		for i, v := range r {
			if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
				if _, err := strconv.ParseFloat(v, 64); err != nil {
					r[i] = "'" + v
				}
			}
		}
		_ = w.Write(r)
	}
	w.Flush()
	if err := d.record(c, "csv "+name+" "+c.OriginalURL()); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="herd-`+name+`.csv"`)
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	return c.Send(buf.Bytes())
}

func u(v uint64) string { return strconv.FormatUint(v, 10) }

func round2(x float64) float64 { return float64(int64(x*100+0.5)) / 100 }

// money2 is an amount as a CSV or API cell: two decimals, no symbol.
func money2(x float64) string { return strconv.FormatFloat(x, 'f', 2, 64) }
