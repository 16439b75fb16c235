package dashboard

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/apache/arrow/go/v15/parquet"
	"github.com/apache/arrow/go/v15/parquet/compress"
	"github.com/apache/arrow/go/v15/parquet/pqarrow"
	"github.com/xuri/excelize/v2"

	"github.com/herd-analytics/herd/internal/abtest"
	"github.com/herd-analytics/herd/internal/privacy"
	"github.com/herd-analytics/herd/schemas"
)

// ReportKinds are the scheduled operational reports: the last complete
// ISO week (Monday to Sunday, UTC) or the last complete calendar month. A
// download may also be of any period the dashboard shows (kind "custom").
var ReportKinds = []string{"weekly", "monthly"}

// ReportFormats are the files a report is written as.
var ReportFormats = []string{"csv", "xlsx", "parquet"}

// ReportPeriod is the period a report of kind covers as of now: the
// pages' last full week or last full month.
func ReportPeriod(kind string, now time.Time) (Range, error) {
	switch kind {
	case "weekly":
		return presetRange("week", now, "", "")
	case "monthly":
		return presetRange("month", now, "", "")
	}
	return Range{}, fmt.Errorf("report kind %q: want weekly or monthly", kind)
}

// ReportRow is one figure of a report, in the long form every format shares:
// section, item, metric, the period's value and the previous period's
// (HasPrevious false: blank, never 0), and the half-width of the 95%
// interval of the differential-privacy noise in the value (Noise: the KPIs'
// and the top products'; 0: blank).
type ReportRow struct {
	Section, Item, Metric string
	Unit                  Unit
	Value, Previous       float64
	HasPrevious           bool
	Noise                 float64
}

// Unit says how a figure is rounded and shown.
type Unit string

// The units: whole counts, amounts in the shop's currency (two decimals),
// rates as fractions (0.1234 is 12.34%).
const (
	Count Unit = "count"
	Money Unit = "money"
	Rate  Unit = "rate"
)

// round is x as the unit writes it: counts whole, money to the cent,
// rates to 0.01 percentage points.
func (u Unit) round(x float64) float64 {
	switch u {
	case Money:
		return math.Round(x*100) / 100
	case Rate:
		return math.Round(x*10000) / 10000
	}
	return math.Round(x)
}

func (u Unit) text(x float64) string {
	switch u {
	case Money:
		return strconv.FormatFloat(u.round(x), 'f', 2, 64)
	case Rate:
		return strconv.FormatFloat(u.round(x), 'f', 4, 64)
	}
	return strconv.FormatFloat(u.round(x), 'f', 0, 64)
}

// Report is an operational report: figures from published cells only, and
// the privacy statement they were published under.
type Report struct {
	Kind      string
	Site      string
	Period    Range
	Rows      []ReportRow
	Statement privacy.Statement
	// Published is how many of the period's days have published KPIs;
	// fewer than Period.Days() makes the report partial, and says so.
	Published int
	// Currency is the shop's (ISO 4217): every amount's unit, in every
	// format. Empty is EUR.
	Currency string
}

// unit is what a row's unit column says: the currency for amounts.
func (r *Report) unit(u Unit) string {
	if u == Money {
		return cmp.Or(r.Currency, "EUR")
	}
	return string(u)
}

// Partial says why the figures do not cover the whole period ("" when
// they do).
func (r *Report) Partial() string {
	if n := r.Period.Days(); r.Published < n {
		return fmt.Sprintf("partial: %d of %d days published", r.Published, n)
	}
	return ""
}

// BuildReport assembles a report of kind for site over period from the
// published rollups. Every figure is a sum of cells published together;
// a figure not published is left out (or its previous value blank), never
// written as 0.
func BuildReport(ctx context.Context, q Querier, db, site, kind string, period Range, st privacy.Statement) (*Report, error) {
	s := &store{q: q, db: db}
	f := filters{site: site, r: period}
	prev := filters{site: site, r: period.Previous()}
	rep := &Report{Kind: kind, Site: site, Period: period, Statement: st}
	add := func(section, item, metric string, unit Unit, v, p float64, hasPrev bool) {
		rep.Rows = append(rep.Rows, ReportRow{Section: section, Item: item, Metric: metric, Unit: unit, Value: unit.round(v), Previous: unit.round(p), HasPrevious: hasPrev})
	}
	// addNoisy adds a figure whose noise has the σ sigma.
	addNoisy := func(section, item, metric string, unit Unit, v, p float64, hasPrev bool, sigma float64) {
		add(section, item, metric, unit, v, p, hasPrev)
		rep.Rows[len(rep.Rows)-1].Noise = unit.round(abtest.Z95 * sigma)
	}

	cur, err := s.kpis(ctx, site, period)
	if err != nil {
		return nil, err
	}
	old, err := s.kpis(ctx, site, period.Previous())
	if err != nil {
		return nil, err
	}
	rep.Published = len(cur)
	// Totals are compared only when both periods have every day published.
	compared := len(cur) == period.Days() && len(old) == period.Previous().Days()
	c, p := total(cur), total(old)
	n := totalNoise(cur)
	if len(cur) > 0 {
		for _, k := range []struct {
			name          string
			unit          Unit
			cv, pv, sigma float64
		}{
			{"visitor-days", Count, float64(c.Visitors), float64(p.Visitors), n.visitors},
			{"sessions", Count, float64(c.Sessions), float64(p.Sessions), n.sessions},
			{"pageviews", Count, float64(c.Pageviews), float64(p.Pageviews), n.pageviews},
			{"orders", Count, float64(c.Orders), float64(p.Orders), n.orders},
			{"revenue", Money, c.Revenue, p.Revenue, n.revenue},
			{"conversion (buyers per visitor-day)", Rate, c.Conversion(), p.Conversion(), n.conversion(c)},
			{"average order value", Money, c.AOV(), p.AOV(), n.aov(c)},
		} {
			addNoisy("KPIs", "site", k.name, k.unit, k.cv, k.pv, compared, k.sigma)
		}
	}

	// Sections other than the KPIs compare only where both periods of
	// their own table are published whole (store.products and funnels).
	products, err := s.products(ctx, site, period, "views", "", 20)
	if err != nil {
		return nil, err
	}
	for _, pr := range products {
		item := pr.ProductID
		if pr.Name != "" {
			item = pr.Name + " (" + pr.ProductID + ")"
		}
		n := pr.Noise
		for _, m := range []struct {
			name, noise string
			unit        Unit
			v, prev     float64 // prev: the previous period's views only
		}{
			{"views", "views", Count, float64(pr.Views), float64(pr.Previous)}, {"add to cart", "adds", Count, float64(pr.Adds), 0},
			{"purchases", "purchases", Count, float64(pr.Purchases), 0}, {"revenue", "revenue", Money, pr.Revenue, 0},
		} {
			addNoisy("Top products", item, m.name, m.unit, m.v, m.prev, m.prev > 0, n[m.noise])
		}
		if pr.Views > 0 {
			addNoisy("Top products", item, "purchases per view", Rate, float64(pr.Purchases)/float64(pr.Views), 0, false,
				ratioNoise(float64(pr.Purchases), n["purchases"], float64(pr.Views), n["views"]))
		}
	}

	defs, err := schemas.Funnels()
	if err != nil {
		return nil, err
	}
	fc, err := s.funnelCounts(ctx, f)
	if err != nil {
		return nil, err
	}
	fp, err := s.funnelCounts(ctx, prev)
	if err != nil {
		return nil, err
	}
	if ok, _, err := s.comparable(ctx, "funnels", site, period); err != nil {
		return nil, err
	} else if !ok {
		fp = nil
	}
	// A step below the threshold is left out, never reported as 0.
	for _, fn := range defs {
		cur, ok := stepTotals(fc[fn.Name], len(fn.Steps))
		old, pok := stepTotals(fp[fn.Name], len(fn.Steps))
		for si, step := range fn.Steps {
			if !ok[si] {
				break
			}
			add("Funnels", fn.Title+" › "+step.Title, "visitor-days", Count, cur[si], old[si], pok[si])
			if si > 0 && cur[si-1] > 0 {
				var pconv float64
				if pok[si] && old[si-1] > 0 {
					pconv = old[si] / old[si-1]
				}
				add("Funnels", fn.Title+" › "+step.Title, "conversion from the previous step", Rate, cur[si]/cur[si-1], pconv, pok[si] && old[si-1] > 0)
			}
		}
	}

	terms, err := s.terms(ctx, searchTermsDataset, f)
	if err != nil {
		return nil, err
	}
	for _, t := range terms[:min(len(terms), 20)] {
		add("Search demand", t.Term, "searches", Count, t.Searches, 0, false)
		add("Search demand", t.Term, "zero-result searches", Count, t.ZeroResults, 0, false)
	}

	// Layout: each slot's click-through, impressions and clicks from the
	// same cells; and each page's variants with their 95% interval.
	slots, err := s.slotRows(ctx, f)
	if err != nil {
		return nil, err
	}
	type ctr struct {
		item     string
		imp, clk float64
	}
	var winners []ctr
	for _, r := range slots {
		if r.Impressions > 0 {
			winners = append(winners, ctr{r.PageType + " › " + r.Slot + " (" + cmp.Or(r.Variant, "no variant") + ")", r.Impressions, r.Clicks})
		}
	}
	sort.Slice(winners, func(i, j int) bool {
		return rate(winners[i].clk, winners[i].imp) > rate(winners[j].clk, winners[j].imp)
	})
	for i, w := range winners {
		if i == 10 {
			break
		}
		add("Layout winners", w.item, "click-through", Rate, rate(w.clk, w.imp), 0, false)
	}
	grain, err := s.grainOf(ctx, "slots", site, period)
	if err != nil {
		return nil, err
	}
	noise, err := s.sigmas(ctx, "slots", site, grain)
	if err != nil {
		return nil, err
	}
	exps, _, expNoise, err := s.experiments(ctx, f)
	if err != nil {
		return nil, err
	}
	for _, r := range exps {
		conv, rev := r.arms(expNoise)
		ce, okC := conv.Estimate()
		re, okR := rev.Estimate()
		if !okC || !okR {
			continue
		}
		item := "variant " + r.Variant
		add("Layout variants", item, "visitor-days", Count, r.Visitors, 0, false)
		add("Layout variants", item, "conversion (buyers per visitor-day)", Rate, ce.Rate, 0, false)
		add("Layout variants", item, "conversion, 95% low", Rate, ce.Low, 0, false)
		add("Layout variants", item, "conversion, 95% high", Rate, ce.High, 0, false)
		add("Layout variants", item, "revenue per visitor-day", Money, re.Rate, 0, false)
		add("Layout variants", item, "revenue per visitor-day, 95% low", Money, re.Low, 0, false)
		add("Layout variants", item, "revenue per visitor-day, 95% high", Money, re.High, 0, false)
	}
	for _, v := range variantArms(slots, noise) {
		e, ok := v.arm.Estimate()
		if !ok {
			continue
		}
		item := v.page + " › " + v.slot + " › variant " + v.arm.Name
		add("Layout variants", item, "click-through", Rate, e.Rate, 0, false)
		add("Layout variants", item, "click-through, 95% low", Rate, e.Low, 0, false)
		add("Layout variants", item, "click-through, 95% high", Rate, e.High, 0, false)
	}
	return rep, nil
}

// rate is a ÷ b within [0, 1] (0 without b).
func rate(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return min(max(a/b, 0), 1)
}

// Title names the report, and says when it is partial.
func (r *Report) Title() string {
	t := fmt.Sprintf("herd %s report, site %s, %s to %s", r.Kind, r.Site, r.Period.From.Format(time.DateOnly), r.Period.To.Add(-24*time.Hour).Format(time.DateOnly))
	if p := r.Partial(); p != "" {
		t += " (" + p + ")"
	}
	return t
}

var reportHeader = []string{"section", "item", "metric", "unit", "value", "previous_period", "change", "noise_95"}

func (r ReportRow) record(unit string) []string {
	prev, change, noise := "", "", ""
	if r.HasPrevious {
		prev = r.Unit.text(r.Previous)
		if r.Previous != 0 {
			change = strconv.FormatFloat(r.Value/r.Previous-1, 'f', 4, 64)
		}
	}
	if r.Noise > 0 {
		noise = r.Unit.text(r.Noise)
	}
	return []string{r.Section, r.Item, r.Metric, unit, r.Unit.text(r.Value), prev, change, noise}
}

// Write writes the report in format (csv, xlsx or parquet).
func (r *Report) Write(w io.Writer, format string) error {
	switch format {
	case "csv":
		return r.writeCSV(w)
	case "xlsx":
		return r.writeXLSX(w)
	case "parquet":
		return r.writeParquet(w)
	}
	return fmt.Errorf("report format %q: want csv, xlsx or parquet", format)
}

func (r *Report) writeCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(reportHeader)
	for _, row := range r.Rows {
		rec := row.record(r.unit(row.Unit))
		rec[1] = csvSafe(rec[1])
		_ = cw.Write(rec)
	}
	if p := r.Partial(); p != "" {
		_ = cw.Write([]string{"Coverage", "period", p, "", "", "", "", ""})
	}
	_ = cw.Write([]string{"Privacy", "statement", r.Statement.Line(), "", "", "", "", ""})
	cw.Flush()
	return cw.Error()
}

// csvSafe keeps a spreadsheet from running a cell as a formula.
func csvSafe(v string) string {
	if v != "" && (v[0] == '=' || v[0] == '+' || v[0] == '-' || v[0] == '@') {
		return "'" + v
	}
	return v
}

func (r *Report) writeXLSX(w io.Writer) error {
	x := excelize.NewFile()
	defer x.Close()
	head, err := x.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true, Color: "FFFFFF"},
		Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"2F6FDB"}}})
	if err != nil {
		return err
	}
	whole, _ := x.NewStyle(&excelize.Style{NumFmt: 3}) // #,##0
	currency := cmp.Or(r.Currency, "EUR")
	amount := `#,##0.00 "` + currency + `"`
	cents, _ := x.NewStyle(&excelize.Style{CustomNumFmt: &amount})
	pct, _ := x.NewStyle(&excelize.Style{NumFmt: 10}) // 0.00%
	styles := map[Unit]int{Count: whole, Money: cents, Rate: pct}
	title, _ := x.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true, Size: 14}})
	sections := []string{}
	bySection := map[string][]ReportRow{}
	for _, row := range r.Rows {
		if _, ok := bySection[row.Section]; !ok {
			sections = append(sections, row.Section)
		}
		bySection[row.Section] = append(bySection[row.Section], row)
	}
	// A period nothing was published for still gets its first sheet, and
	// says so rather than showing an empty page.
	if len(sections) == 0 {
		sections = []string{"KPIs"}
	}
	first := true
	for _, sec := range sections {
		sheet := sec
		if first {
			if err := x.SetSheetName("Sheet1", sheet); err != nil {
				return err
			}
			first = false
		} else if _, err := x.NewSheet(sheet); err != nil {
			return err
		}
		_ = x.SetCellValue(sheet, "A1", r.Title())
		_ = x.SetCellStyle(sheet, "A1", "A1", title)
		if p := r.Partial(); p != "" {
			_ = x.SetCellValue(sheet, "A2", "Coverage: "+p)
		}
		_ = x.SetSheetRow(sheet, "A3", &[]any{"item", "metric", "value", "previous period", "change", "noise (±, 95%)"})
		_ = x.SetCellStyle(sheet, "A3", "F3", head)
		for i, row := range bySection[sec] {
			n := strconv.Itoa(i + 4)
			vals := []any{row.Item, row.Metric, row.Value, nil, nil, nil}
			if row.HasPrevious {
				vals[3] = row.Previous
				if row.Previous != 0 {
					vals[4] = row.Value/row.Previous - 1
				}
			}
			if row.Noise > 0 {
				vals[5] = row.Noise
			}
			if err := x.SetSheetRow(sheet, "A"+n, &vals); err != nil {
				return err
			}
			_ = x.SetCellStyle(sheet, "C"+n, "D"+n, styles[row.Unit])
			_ = x.SetCellStyle(sheet, "E"+n, "E"+n, pct)
			_ = x.SetCellStyle(sheet, "F"+n, "F"+n, styles[row.Unit])
		}
		_ = x.SetColWidth(sheet, "A", "A", 48)
		_ = x.SetColWidth(sheet, "B", "B", 28)
		_ = x.SetColWidth(sheet, "C", "F", 16)
		_ = x.SetPanes(sheet, &excelize.Panes{Freeze: true, YSplit: 3, TopLeftCell: "A4", ActivePane: "bottomLeft"})
	}
	if _, err := x.NewSheet("Privacy"); err != nil {
		return err
	}
	_ = x.SetCellValue("Privacy", "A1", "Privacy statement")
	_ = x.SetCellStyle("Privacy", "A1", "A1", title)
	_ = x.SetCellValue("Privacy", "A3", r.Statement.Line())
	_ = x.SetColWidth("Privacy", "A", "A", 140)
	return x.Write(w)
}

func (r *Report) writeParquet(w io.Writer) error {
	keys, vals := []string{"title", "privacy"}, []string{r.Title(), r.Statement.Line()}
	if p := r.Partial(); p != "" {
		keys, vals = append(keys, "coverage"), append(vals, p)
	}
	meta := arrow.NewMetadata(keys, vals)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "section", Type: arrow.BinaryTypes.String}, {Name: "item", Type: arrow.BinaryTypes.String},
		{Name: "metric", Type: arrow.BinaryTypes.String}, {Name: "unit", Type: arrow.BinaryTypes.String}, {Name: "value", Type: arrow.PrimitiveTypes.Float64},
		{Name: "previous_period", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "noise_95", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, &meta)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for _, row := range r.Rows {
		b.Field(0).(*array.StringBuilder).Append(row.Section)
		b.Field(1).(*array.StringBuilder).Append(row.Item)
		b.Field(2).(*array.StringBuilder).Append(row.Metric)
		b.Field(3).(*array.StringBuilder).Append(r.unit(row.Unit))
		b.Field(4).(*array.Float64Builder).Append(row.Value)
		if row.HasPrevious {
			b.Field(5).(*array.Float64Builder).Append(row.Previous)
		} else {
			b.Field(5).(*array.Float64Builder).AppendNull()
		}
		if row.Noise > 0 {
			b.Field(6).(*array.Float64Builder).Append(row.Noise)
		} else {
			b.Field(6).(*array.Float64Builder).AppendNull()
		}
	}
	rec := b.NewRecord()
	defer rec.Release()
	var buf bytes.Buffer
	fw, err := pqarrow.NewFileWriter(schema, &buf, parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy)),
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return err
	}
	if err := fw.Write(rec); err != nil {
		return err
	}
	if err := fw.Close(); err != nil {
		return err
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// ReportFileName is the archive and download name of a report; a custom
// period's name has both ends.
func ReportFileName(site, kind string, period Range, format string) string {
	if kind == "custom" {
		return fmt.Sprintf("herd-%s-%s-to-%s.%s", site, period.From.Format(time.DateOnly), period.To.AddDate(0, 0, -1).Format(time.DateOnly), format)
	}
	return fmt.Sprintf("herd-%s-%s-%s.%s", site, kind, period.From.Format(time.DateOnly), format)
}

var archiveName = regexp.MustCompile(`^herd-[a-z0-9_-]+-(weekly|monthly)-\d{4}-\d{2}-\d{2}\.(csv|xlsx|parquet)$`)
