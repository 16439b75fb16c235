package dashboard

import (
	"bytes"
	"context"
	"embed"
	"encoding/csv"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	gorender "github.com/go-echarts/go-echarts/v2/render"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"
	"github.com/gofiber/fiber/v2"
	"golang.org/x/text/language"

	"github.com/herd-analytics/herd/internal/privacy"
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

// withDevices offers the device filter on a page whose tables carry it.
func withDevices(p page) page {
	p.Devices = devices
	return p
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

// numbers is the request's number format.
func (d *Dashboard) numbers(c *fiber.Ctx) numbers {
	tag, _ := language.MatchStrings(languages, c.Get(fiber.HeaderAcceptLanguage))
	return newNumbers(tag, d.cfg.Currency)
}

// record notes a download; a download that cannot be recorded is refused.
//
// A download is served only to a request from the dashboard itself, as
// the login is: a page of another site that links to it (with the
// session's cookie, SameSite aside) gets 403.
func (d *Dashboard) record(c *fiber.Ctx, what string) error {
	if !sameOrigin(c) {
		return fiber.NewError(fiber.StatusForbidden, "downloads are served to the dashboard's own pages only")
	}
	if d.cfg.Downloads == nil {
		return fiber.NewError(fiber.StatusServiceUnavailable, "downloads cannot be recorded, so none are served")
	}
	s := sessionOf(c)
	if err := d.cfg.Downloads.RecordDownload(c.UserContext(), s.user.Name, string(s.user.Role), what); err != nil {
		return fmt.Errorf("record download: %w", err)
	}
	return nil
}

// contentSecurityPolicy is the dashboard's policy; nonce, when set, lets the
// page's own inline chart scripts run.
func contentSecurityPolicy(nonce string) string {
	script := "script-src 'self'"
	if nonce != "" {
		script += " 'nonce-" + nonce + "'"
	}
	return "default-src 'self'; " + script + "; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'"
}
