package dashboard

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	"encoding/csv"
	"fmt"
	"html/template"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"
	gorender "github.com/go-echarts/go-echarts/v2/render"
	"github.com/gofiber/fiber/v2"

	"github.com/herd-analytics/herd/internal/privacy"
	"github.com/herd-analytics/herd/schemas"
)

//go:embed templates/*.html
var templateFS embed.FS

var pageTemplates = map[string]*template.Template{}

func init() {
	funcs := template.FuncMap{"pct": func(x float64) float64 { return 100 * x }}
	for _, page := range []string{"overview", "products", "privacy", "generic", "reports", "admin"} {
		pageTemplates[page] = template.Must(template.New(page).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/chart.html", "templates/"+page+".html"))
	}
	pageTemplates["login"] = template.Must(template.ParseFS(templateFS, "templates/login.html"))
}

// page is what the layout needs; Content is the page's own data.
type page struct {
	Title, User, Role, CSRF, Site, Preset, From, To, Query, NavQuery, Privacy string
	Nav                                                                       []navItem
	Sites                                                                     []string
	Presets                                                                   []preset
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

// chart is one rendered chart with its note, CSV link and the privacy
// statement in one line (filled in by render).
type chart struct {
	Title, Note, CSV, Privacy string
	Element, Script           template.HTML
}

// filters reads site and date range from the query string. Only the
// precomputed dimensions exist: a site, whole UTC days.
type filters struct {
	site   string
	preset string
	// chosen: the range came from the request, not a page's default; only
	// a chosen range follows the user to the other pages.
	chosen bool
	r      Range
}

// request reads a page or API request's filters against the sites that
// have published data.
func (d *Dashboard) request(c *fiber.Ctx) (filters, []string, error) {
	sites, err := d.store.sites(c.UserContext())
	if err != nil {
		return filters{}, nil, err
	}
	f, err := d.filters(c, sites)
	return f, sites, err
}

func (d *Dashboard) filters(c *fiber.Ctx, sites []string) (filters, error) {
	def := defaultPreset
	if strings.HasPrefix(c.Path(), "/products") || strings.HasPrefix(c.Path(), "/api/v1/products") {
		def = productsPreset
	}
	f := filters{site: c.Query("site"), preset: c.Query("range", def), chosen: c.Query("range") != ""}
	switch {
	case f.site == "" && len(sites) > 0:
		f.site = sites[0]
	case f.site != "" && !slices.Contains(sites, f.site):
		// Only sites with published data exist here: anything else would
		// reach report names and headers as sent.
		return f, fiber.NewError(fiber.StatusBadRequest, "site: not a site with published data")
	}
	today := d.now().UTC().Truncate(24 * time.Hour)
	monday := today.AddDate(0, 0, -((int(today.Weekday()) + 6) % 7))
	first := time.Date(today.Year(), today.Month(), 1, 0, 0, 0, 0, time.UTC)
	switch f.preset {
	case "week":
		f.r = Range{From: monday.AddDate(0, 0, -7), To: monday}
	case "4w":
		f.r = Range{From: monday.AddDate(0, 0, -28), To: monday}
	case "month":
		f.r = Range{From: first.AddDate(0, -1, 0), To: first}
	case "3m":
		f.r = Range{From: first.AddDate(0, -3, 0), To: first}
	case "mtd":
		f.r = Range{From: first, To: today}
		if !today.After(first) { // the 1st: yesterday's month so far
			f.r = Range{From: first.AddDate(0, -1, 0), To: today}
		}
	case "7d", "28d", "90d":
		n, _ := strconv.Atoi(strings.TrimSuffix(f.preset, "d"))
		f.r = Range{From: today.Add(-time.Duration(n) * 24 * time.Hour), To: today}
	case "custom":
		from, err1 := time.Parse(time.DateOnly, c.Query("from"))
		to, err2 := time.Parse(time.DateOnly, c.Query("to"))
		if err1 != nil || err2 != nil || !to.After(from) || to.Sub(from) > 400*24*time.Hour {
			return f, fiber.NewError(fiber.StatusBadRequest, "custom range: from and to as YYYY-MM-DD, to after from, at most 400 days")
		}
		f.r = Range{From: from, To: to.Add(24 * time.Hour)}
	default:
		return f, fiber.NewError(fiber.StatusBadRequest, "range: one of week, 4w, month, 3m, mtd, 7d, 28d, 90d, custom")
	}
	return f, nil
}

func (f filters) query() string {
	v := url.Values{"site": {f.site}, "range": {f.preset}}
	if f.preset == "custom" {
		v.Set("from", f.r.From.Format(time.DateOnly))
		v.Set("to", f.r.To.Add(-24*time.Hour).Format(time.DateOnly))
	}
	return "?" + v.Encode()
}

// navQuery is what links to the other pages carry: the site, and the range
// when the user chose one (else each page opens at its own default).
func (f filters) navQuery() string {
	if f.chosen {
		return f.query()
	}
	return "?" + url.Values{"site": {f.site}}.Encode()
}

func (d *Dashboard) page(c *fiber.Ctx, title string, f filters, sites []string) page {
	s := sessionOf(c)
	p := page{
		Title: title, User: s.user.Name, Role: string(s.user.Role), CSRF: s.csrf, Site: f.site, Preset: f.preset,
		From: f.r.From.Format(time.DateOnly), To: f.r.To.Add(-24 * time.Hour).Format(time.DateOnly),
		Query: f.query(), NavQuery: f.navQuery(), Sites: sites, Presets: presets, Privacy: d.privacyLine(c.UserContext()),
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
	st, err := d.cfg.Statement(ctx)
	if err != nil {
		return "Privacy statement unavailable: " + err.Error()
	}
	return st.Line()
}

func (d *Dashboard) statement(ctx context.Context) privacy.Statement {
	if d.cfg.Statement == nil {
		return privacy.Statement{}
	}
	st, _ := d.cfg.Statement(ctx)
	return st
}

func render(c *fiber.Ctx, name string, data any) error {
	stampPrivacy(data)
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

// stampPrivacy puts the page's privacy line under each of its charts.
func stampPrivacy(data any) {
	v := reflect.ValueOf(data)
	if v.Kind() != reflect.Struct {
		return
	}
	line := v.FieldByName("Privacy")
	charts := v.FieldByName("Charts")
	if !charts.IsValid() || !line.IsValid() {
		return
	}
	for i := 0; i < charts.Len(); i++ {
		if ch, ok := charts.Index(i).Addr().Interface().(*chart); ok {
			ch.Privacy = line.String()
		}
	}
}

func templateRoot(name string) string {
	if name == "login" {
		return "login.html"
	}
	return "layout"
}

// chartOpts are every chart's options: local ECharts only, sized to its box.
// id becomes a JavaScript identifier: letters, digits and '_' only.
func chartOpts(id string) charts.GlobalOpts {
	return charts.WithInitializationOpts(opts.Initialization{AssetsHost: "/assets/", ChartID: id, Width: "100%", Height: "320px"})
}

// overview: management's KPIs with deltas and sparklines.
func (d *Dashboard) overview(c *fiber.Ctx) error {
	f, sites, err := d.request(c)
	if err != nil {
		return err
	}
	days, err := d.store.kpis(c.UserContext(), f.site, f.r)
	if err != nil {
		return err
	}
	prevDays, err := d.store.kpis(c.UserContext(), f.site, f.r.Previous())
	if err != nil {
		return err
	}
	cur, prev := total(days), total(prevDays)
	type tile struct {
		Label, Value    string
		Delta, DeltaPct float64
		HasDelta        bool
		Spark           template.HTML
	}
	values := []struct {
		label     string
		cur, prev float64
		format    func(float64) string
		series    func(DayKPIs) float64
	}{
		{"Visitor-days", float64(cur.Visitors), float64(prev.Visitors), count, func(k DayKPIs) float64 { return float64(k.Visitors) }},
		{"Sessions", float64(cur.Sessions), float64(prev.Sessions), count, func(k DayKPIs) float64 { return float64(k.Sessions) }},
		{"Orders", float64(cur.Orders), float64(prev.Orders), count, func(k DayKPIs) float64 { return float64(k.Orders) }},
		{"Revenue", cur.Revenue, prev.Revenue, money, func(k DayKPIs) float64 { return k.Revenue }},
		{"Conversion", cur.Conversion(), prev.Conversion(), percent, func(k DayKPIs) float64 { return k.Conversion() }},
		{"Average order value", cur.AOV(), prev.AOV(), money, func(k DayKPIs) float64 { return k.AOV() }},
	}
	var tiles []tile
	for i, v := range values {
		t := tile{Label: v.label, Value: v.format(v.cur), HasDelta: v.prev > 0}
		if t.HasDelta {
			t.Delta = v.cur - v.prev
			t.DeltaPct = 100 * (v.cur/v.prev - 1)
		}
		line := charts.NewLine()
		line.SetGlobalOptions(charts.WithInitializationOpts(opts.Initialization{AssetsHost: "/assets/", ChartID: fmt.Sprintf("spark%d", i), Width: "180px", Height: "48px"}),
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

	trend := charts.NewLine()
	trend.SetGlobalOptions(chartOpts("visitors_revenue"), charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true)}))
	var xs []string
	var vis, rev []opts.LineData
	for _, day := range days {
		xs = append(xs, day.Day.Format(time.DateOnly))
		vis = append(vis, opts.LineData{Value: day.Visitors})
		rev = append(rev, opts.LineData{Value: round2(day.Revenue)})
	}
	trend.ExtendYAxis(opts.YAxis{Name: "revenue"})
	trend.SetXAxis(xs).AddSeries("Visitor-days", vis).AddSeries("Revenue", rev, charts.WithLineChartOpts(opts.LineChart{YAxisIndex: 1}))
	trendEl, trendScript := snippet(trend)
	data := struct {
		page
		Tiles  []tile
		Charts []chart
	}{page: d.page(c, "Overview", f, sites), Tiles: tiles, Charts: []chart{{
		Title: "Visitor-days and revenue per day", Note: "Daily published cells; days below the publication threshold are missing.",
		CSV: "/api/v1/kpis" + f.query() + "&format=csv", Element: trendEl, Script: trendScript,
	}}}
	return render(c, "overview", data)
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
	cats, err := d.store.categories(c.UserContext(), f.site, f.r)
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
	bar := charts.NewBar()
	bar.SetGlobalOptions(chartOpts("top_products"), charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}))
	var names []string
	var vals []opts.BarData
	for _, p := range rows {
		names = append(names, cmp.Or(p.Name, p.ProductID))
		vals = append(vals, opts.BarData{Value: productMetric(p, by)})
	}
	bar.SetXAxis(names).AddSeries(by, vals)
	topEl, topScript := snippet(bar)

	share := charts.NewBar()
	share.SetGlobalOptions(chartOpts("category_share"), charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true)}))
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

	dp, dpN, err := d.store.load(c.UserContext(), "category_dayparts", f)
	if err != nil {
		return err
	}
	byPart := map[string]map[string]float64{}
	var dpCats []string
	seen := map[string]bool{}
	for i, r := range dp {
		if byPart[r[1]] == nil {
			byPart[r[1]] = map[string]float64{}
		}
		byPart[r[1]][r[0]] = dpN[i][2]
		if !seen[r[0]] {
			seen[r[0]] = true
			dpCats = append(dpCats, r[0])
		}
	}
	parts := charts.NewBar()
	parts.SetGlobalOptions(chartOpts("category_dayparts"), charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true)}))
	parts.SetXAxis(dpCats)
	for _, part := range []string{"night", "morning", "afternoon", "evening"} {
		var v []opts.BarData
		for _, cat := range dpCats {
			v = append(v, opts.BarData{Value: byPart[part][cat]})
		}
		parts.AddSeries(part, v, charts.WithBarChartOpts(opts.BarChart{Stack: "daypart"}))
	}
	partsEl, partsScript := snippet(parts)
	data := struct {
		page
		By, Category string
		Coverage     string
		Metrics      []string
		Products     []ProductRow
		Charts       []chart
	}{
		page: d.page(c, "Hot products", f, sites), By: by, Category: category, Coverage: coverage.Line(),
		Metrics: []string{"views", "adds", "purchases", "revenue", "visitors"}, Products: rows,
		Charts: []chart{
			{Title: "Top products by " + by, Note: grainNote(grain) + " " + coverage.Line(),
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
		st, err := d.cfg.Statement(c.UserContext())
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
		recs = append(recs, []string{day.Day.Format(time.DateOnly), u(day.Visitors), u(day.Sessions), u(day.Pageviews), u(day.Orders), u(day.Buyers), strconv.FormatFloat(day.Revenue, 'f', 2, 64)})
		out = append(out, map[string]any{"day": day.Day.Format(time.DateOnly), "visitors": day.Visitors, "sessions": day.Sessions,
			"pageviews": day.Pageviews, "orders": day.Orders, "buyers": day.Buyers, "revenue": day.Revenue})
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
			strconv.FormatFloat(p.Revenue, 'f', 2, 64), u(p.Previous), strconv.FormatFloat(p.Trend, 'f', 4, 64)})
	}
	return d.answer(c, "products", header, recs, rows)
}

func (d *Dashboard) apiCategories(c *fiber.Ctx) error {
	f, _, err := d.request(c)
	if err != nil {
		return err
	}
	cats, err := d.store.categories(c.UserContext(), f.site, f.r)
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

func count(x float64) string { return strconv.FormatFloat(x, 'f', 0, 64) }

func money(x float64) string { return "€" + strconv.FormatFloat(x, 'f', 2, 64) }

func percent(x float64) string { return strconv.FormatFloat(100*x, 'f', 2, 64) + "%" }
