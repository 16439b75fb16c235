package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/herd-analytics/herd/aggregate"
	"github.com/herd-analytics/herd/ingest"
	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/probe"
	"github.com/herd-analytics/herd/internal/shopsim"
	"github.com/herd-analytics/herd/internal/webserver"
	"github.com/herd-analytics/herd/schemas"
)

// The privacy–utility frontier: reference shops imported through a real
// ingest, their truth computed from herd_raw before publication, then
// published at several total budgets (one published database each, the raw
// events and partial sums shared) and compared with the truth.

// utilityResult is one shop published at one budget.
type utilityResult struct {
	size           int
	epsilon        float64
	measured       string  // the day it was measured
	products       int     // products published in the month view
	coverage       float64 // share of true product views in published product rows
	spearman       float64 // top-20 products by true views
	kpiVisitors    float64 // median relative error per day
	kpiOrders      float64
	kpiRevenue     float64
	categoriesWeek float64 // median relative error per week
	stepsWeek      float64
	impossible     int // over all draws
	draws          int // publications of the same raw events, each with its own noise
	revenueRange   [2]float64

	dayErrors [3][]float64 // visitor-days, orders, revenue: one per day of every draw
}

// storedResult is a utilityResult as docs/utility-results.json keeps it.
type storedResult struct {
	Size           int     `json:"visitor_days_per_day"`
	Epsilon        float64 `json:"epsilon"`
	Measured       string  `json:"measured"`
	Products       int     `json:"products_in_month_view"`
	Coverage       float64 `json:"share_of_views_published"`
	Spearman       float64 `json:"spearman_top20"`
	KPIVisitors    float64 `json:"kpi_visitor_days_error"`
	KPIOrders      float64 `json:"kpi_orders_error"`
	KPIRevenue     float64 `json:"kpi_revenue_error"`
	CategoriesWeek float64 `json:"categories_week_error"`
	StepsWeek      float64 `json:"funnel_steps_week_error"`
	Impossible     int     `json:"impossible_values"`
	Draws          int     `json:"draws,omitempty"`
	// RevenueRange is the least and the most kpi_revenue_error of a
	// single draw.
	RevenueRange [2]float64 `json:"kpi_revenue_error_range,omitzero"`
}

// mergeResults adds this run's results to those stored in file (a run may
// measure a few shops and budgets only: the largest shop takes most of an
// hour to import), replacing the same shop and budget, and stores them all.
func mergeResults(file string, run []utilityResult) ([]utilityResult, error) {
	var stored []storedResult
	if b, err := os.ReadFile(file); err == nil {
		if err := json.Unmarshal(b, &stored); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var all []utilityResult
	for _, s := range stored {
		r := utilityResult{size: s.Size, epsilon: s.Epsilon, measured: s.Measured, products: s.Products, coverage: s.Coverage, spearman: s.Spearman,
			kpiVisitors: s.KPIVisitors, kpiOrders: s.KPIOrders, kpiRevenue: s.KPIRevenue, categoriesWeek: s.CategoriesWeek, stepsWeek: s.StepsWeek,
			impossible: s.Impossible, draws: max(s.Draws, 1), revenueRange: s.RevenueRange}
		if !slices.ContainsFunc(run, func(n utilityResult) bool { return n.size == r.size && n.epsilon == r.epsilon }) {
			all = append(all, r)
		}
	}
	all = append(all, run...)
	sort.Slice(all, func(i, j int) bool {
		if all[i].size != all[j].size {
			return all[i].size < all[j].size
		}
		return all[i].epsilon < all[j].epsilon
	})
	stored = stored[:0]
	for _, r := range all {
		stored = append(stored, storedResult{r.size, r.epsilon, r.measured, r.products, r.coverage, r.spearman, r.kpiVisitors, r.kpiOrders, r.kpiRevenue, r.categoriesWeek, r.stepsWeek, r.impossible, r.draws, r.revenueRange})
	}
	b, err := json.MarshalIndent(stored, "", "  ")
	if err != nil {
		return nil, err
	}
	return all, os.WriteFile(file, append(b, '\n'), 0o644)
}

func benchUtility(ctx context.Context, c *clickhouse.Client, dir, resultsFile string, sizes []int, epsilons []float64, days, draws int) (string, []utilityResult, error) {
	ms, err := clickhouse.LoadMigrations(schemas.Migrations, schemas.MigrationsDir)
	if err != nil {
		return "", nil, err
	}
	first := time.Now().UTC()
	end := time.Date(first.Year(), first.Month(), 1, 0, 0, 0, 0, time.UTC) // the data ends where this month starts
	month := aggregate.Bucket{Site: "demo", Grain: aggregate.Month, Start: end.AddDate(0, -1, 0)}
	var results []utilityResult
	for _, size := range sizes {
		raw := fmt.Sprintf("herd_raw_u%d", size)
		shop := shopsim.Config{Site: "demo", Seed: 42, Products: 2000}
		catalog := filepath.Join(dir, fmt.Sprintf("catalog-%d.csv", size))
		f, err := os.Create(catalog)
		if err != nil {
			return "", nil, err
		}
		if err := shopsim.New(shop).WriteCatalog(f); err != nil {
			return "", nil, err
		}
		f.Close()
		// A kept working directory (-dir) remembers a finished import of
		// the same shop and month: the 100,000 shop takes over an hour.
		done := filepath.Join(dir, fmt.Sprintf("imported-%d-%d", size, days))
		if b, err := os.ReadFile(done); err == nil && string(b) == end.Format(time.DateOnly) {
			fmt.Fprintf(os.Stderr, "utility: %d days of %d visitor-days a day already imported in %s\n", days, size, dir)
			// Partial sums are recomputed from the raw events by the
			// code under test, not kept from the last run's.
			if err := c.Exec(ctx, "TRUNCATE TABLE "+raw+".cell_partials"); err != nil {
				return "", nil, err
			}
		} else {
			fmt.Fprintf(os.Stderr, "utility: importing %d days of %d visitor-days a day\n", days, size)
			if err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+raw); err != nil {
				return "", nil, err
			}
			if err := importShop(ctx, c, ms, raw, filepath.Join(dir, fmt.Sprintf("edge-%d", size)), shop, size, days, end); err != nil {
				return "", nil, err
			}
			if err := os.WriteFile(done, []byte(end.Format(time.DateOnly)), 0o644); err != nil {
				return "", nil, err
			}
		}
		truth, err := readTruth(ctx, c, raw)
		if err != nil {
			return "", nil, err
		}
		fmt.Fprintf(os.Stderr, "utility: truth of %d days, %d products viewed\n", len(truth.visitors), len(truth.views))
		for _, eps := range epsilons {
			var runs []utilityResult
			for draw := range draws {
				r, err := publishAndMeasure(ctx, c, ms, raw, catalog, size, eps, end, truth, month)
				if err != nil {
					return "", nil, err
				}
				fmt.Fprintf(os.Stderr, "utility: %d/day at ε %g, draw %d of %d: %d products, %s of views, Spearman %.3f, KPIs %s / %s / %s, categories %s, steps %s, %d impossible\n",
					size, eps, draw+1, draws, r.products, pct(r.coverage), r.spearman, pct(r.kpiVisitors), pct(r.kpiOrders), pct(r.kpiRevenue), pct(r.categoriesWeek), pct(r.stepsWeek), r.impossible)
				runs = append(runs, r)
			}
			r := combineDraws(runs)
			r.size, r.epsilon, r.measured = size, eps, time.Now().UTC().Format(time.DateOnly)
			results = append(results, r)
		}
	}
	results, err = mergeResults(resultsFile, results)
	if err != nil {
		return "", nil, err
	}
	var s strings.Builder
	fmt.Fprintf(&s, "Reference shops from `herd gen` (2,000 products, Zipf popularity, seed 42) imported through a real ingest: %d days ending %s, so the month view is %s. "+
		"The truth is computed from `herd_raw` before publication; each budget publishes the same raw events into its own database (k = 10, δ = 10⁻⁶, the catalog loaded). "+
		"Errors are medians of |published − true| / true; a step or category not published counts as 100%%. "+
		"Each budget is published several times (draws, each with its own noise): the KPIs' error is the median over every day of every draw, with the least and the most of a single draw's 28-day median in brackets; the other columns are the median draw's, impossible values all draws' together. "+
		"Rows accumulate in `docs/utility-results.json`: a run measures the shops and budgets it is given (`-utility-sizes`, `-utility-epsilons`) and keeps the others' last measurement (its day in the last column).\n\n",
		days, end.AddDate(0, 0, -1).Format(time.DateOnly), month.Start.Format("January 2006"))
	s.WriteString("| visitor-days / day | total ε | products in the month view | share of true product views in them | Spearman, top 20 | KPIs per day: visitor-days / orders / revenue | categories per week | funnel steps per week | impossible values | draws | measured |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		def := ""
		if r.epsilon == 4 {
			def = " (default)"
		}
		revenue := pct(r.kpiRevenue)
		if r.draws > 1 {
			revenue += fmt.Sprintf(" (%.1f–%.1f%%)", 100*r.revenueRange[0], 100*r.revenueRange[1])
		}
		fmt.Fprintf(&s, "| %d | %g%s | %d | %.1f%% | %.3f | %s / %s / %s | %s | %s | %d | %d | %s |\n", r.size, r.epsilon, def, r.products, 100*r.coverage, r.spearman,
			pct(r.kpiVisitors), pct(r.kpiOrders), revenue, pct(r.categoriesWeek), pct(r.stepsWeek), r.impossible, r.draws, r.measured)
	}
	s.WriteString("\n![privacy–utility frontier](utility-frontier.svg)\n")
	return s.String(), results, nil
}

func pct(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) }

// publishAndMeasure publishes the shop's raw events at budget eps into a
// fresh database (dropping the last draw's or run's) and measures it.
func publishAndMeasure(ctx context.Context, c *clickhouse.Client, ms []clickhouse.Migration, raw, catalog string, size int, eps float64, end time.Time, truth *shopTruth, month aggregate.Bucket) (utilityResult, error) {
	dbs := clickhouse.Databases{Raw: raw, Pub: fmt.Sprintf("herd_u%d_e%g", size, eps*10)}
	if err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+dbs.Pub); err != nil {
		return utilityResult{}, err
	}
	if err := clickhouse.Migrate(ctx, c, dbs, ms, nil); err != nil {
		return utilityResult{}, err
	}
	p, err := aggregate.NewPublisher(c, dbs, aggregate.Config{Epsilon: eps, Catalog: catalog, CatalogSite: "demo"}, nil)
	if err != nil {
		return utilityResult{}, err
	}
	start := time.Now()
	sum, err := p.RunOnce(ctx, end.Add(10*time.Minute))
	fmt.Fprintf(os.Stderr, "utility: %d/day at ε %g: %+v in %v\n", size, eps, sum, time.Since(start).Round(time.Second))
	if err != nil || sum.Published == 0 {
		return utilityResult{}, fmt.Errorf("publish %d at ε %g: %v (%+v)", size, eps, err, sum)
	}
	return measure(ctx, c, p, truth, month)
}

// combineDraws sums up draws of one shop and budget: the KPIs' errors are
// the median over every day of every draw, the rest the median draw's, the
// impossible values all draws'.
func combineDraws(runs []utilityResult) utilityResult {
	r := utilityResult{draws: len(runs), revenueRange: [2]float64{math.Inf(1), math.Inf(-1)}}
	var products, coverage, spearman, categories, steps []float64
	for _, d := range runs {
		products, coverage, spearman = append(products, float64(d.products)), append(coverage, d.coverage), append(spearman, d.spearman)
		categories, steps = append(categories, d.categoriesWeek), append(steps, d.stepsWeek)
		for i := range r.dayErrors {
			r.dayErrors[i] = append(r.dayErrors[i], d.dayErrors[i]...)
		}
		r.impossible += d.impossible
		r.revenueRange = [2]float64{min(r.revenueRange[0], d.kpiRevenue), max(r.revenueRange[1], d.kpiRevenue)}
	}
	r.products = int(math.Round(median(products)))
	r.coverage, r.spearman, r.categoriesWeek, r.stepsWeek = median(coverage), median(spearman), median(categories), median(steps)
	r.kpiVisitors, r.kpiOrders, r.kpiRevenue = median(r.dayErrors[0]), median(r.dayErrors[1]), median(r.dayErrors[2])
	return r
}

// importShop replays a shop's history through a real ingest into raw.
func importShop(ctx context.Context, c *clickhouse.Client, ms []clickhouse.Migration, raw, dataDir string, shop shopsim.Config, perDay, days int, end time.Time) error {
	if err := clickhouse.Migrate(ctx, c, clickhouse.Databases{Raw: raw, Pub: raw + "_pub"}, ms, nil); err != nil {
		return err
	}
	// herd gen says who the shopper is in X-Forwarded-For.
	e, err := ingest.New(ingest.Config{DataDir: dataDir, Table: raw + ".events", TrustedProxies: []string{"127.0.0.1"},
		Imports: ingest.ImportPolicy{Open: true, Backfill: true}}, c, nil)
	if err != nil {
		return err
	}
	runDone := make(chan error, 1)
	go func() { runDone <- e.Run(ctx) }()
	ws, err := webserver.Start(e.App(probe.NewReadiness(nil)), "127.0.0.1:0")
	if err != nil {
		return err
	}
	st, err := shopsim.Generate(ctx, shopsim.GenConfig{Target: "http://" + ws.Addr(), Shop: shop, VisitorsPerDay: perDay, Days: days, Import: true, Now: end, Workers: 16}, nil)
	if err == nil && (st.Failed > 0 || st.Accepted == 0) {
		err = fmt.Errorf("import: %s", st)
	}
	_ = ws.Shutdown(ctx)
	if _, ferr := e.Flush(ctx); err == nil {
		err = ferr
	}
	if cerr := e.Close(ctx); err == nil {
		err = cerr
	}
	<-runDone
	return err
}

// shopTruth is what the raw events say, before publication.
type shopTruth struct {
	views                   map[string]float64 // product id → product views
	visitors, orders, spent map[time.Time]float64
	categoryWeek            map[string]float64 // week|category → views
}

func readTruth(ctx context.Context, c *clickhouse.Client, raw string) (*shopTruth, error) {
	t := &shopTruth{views: map[string]float64{}, visitors: map[time.Time]float64{}, orders: map[time.Time]float64{}, spent: map[time.Time]float64{}, categoryWeek: map[string]float64{}}
	err := c.Select(ctx, "SELECT product_id, count() FROM "+raw+".events WHERE type = 'product_view' AND product_id != '' GROUP BY product_id", func(b *proto.Block) error {
		for i := 0; i < b.Rows(); i++ {
			t.views[clickhouse.Get[string](b, 0, i)] = float64(clickhouse.Get[uint64](b, 1, i))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = c.Select(ctx, "SELECT toDateTime(intDiv(toUInt32(received), 86400) * 86400) AS d, uniqExact(visitor), countIf(type = 'purchase'), sumIf(toFloat64(order_value), type = 'purchase') FROM "+raw+".events GROUP BY d", func(b *proto.Block) error {
		for i := 0; i < b.Rows(); i++ {
			d := clickhouse.Get[time.Time](b, 0, i).UTC()
			t.visitors[d], t.orders[d], t.spent[d] = float64(clickhouse.Get[uint64](b, 1, i)), float64(clickhouse.Get[uint64](b, 2, i)), clickhouse.Get[float64](b, 3, i)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = c.Select(ctx, "SELECT toDateTime((intDiv(toUInt32(received), 86400) - (intDiv(toUInt32(received), 86400) + 3) % 7) * 86400) AS w, product_category, count() FROM "+raw+".events WHERE type IN ('product_view', 'product_list_view') AND product_category != '' GROUP BY w, product_category", func(b *proto.Block) error {
		for i := 0; i < b.Rows(); i++ {
			t.categoryWeek[clickhouse.Get[time.Time](b, 0, i).UTC().Format(time.DateOnly)+"|"+clickhouse.Get[string](b, 1, i)] = float64(clickhouse.Get[uint64](b, 2, i))
		}
		return nil
	})
	return t, err
}

// measure compares one published database with the truth.
func measure(ctx context.Context, c *clickhouse.Client, p *aggregate.Publisher, truth *shopTruth, month aggregate.Bucket) (utilityResult, error) {
	var r utilityResult
	pub := p.Databases().Pub
	rows := func(q string, fn func(b *proto.Block, i int)) error {
		return c.Select(ctx, q, func(b *proto.Block) error {
			for i := 0; i < b.Rows(); i++ {
				fn(b, i)
			}
			return nil
		})
	}
	published := map[string]float64{}
	err := rows("SELECT product_id, views FROM "+pub+".products WHERE grain = 'month' AND other = 0 AND bucket = toDateTime("+clickhouse.QuoteInt(month.Start.Unix())+")", func(b *proto.Block, i int) {
		published[clickhouse.Get[string](b, 0, i)] = float64(clickhouse.Get[uint64](b, 1, i))
	})
	if err != nil {
		return r, err
	}
	var total, covered float64
	for id, v := range truth.views {
		total += v
		if _, ok := published[id]; ok {
			covered += v
		}
	}
	r.products = len(published)
	if total > 0 {
		r.coverage = covered / total
	}
	ids := make([]string, 0, len(truth.views))
	for id := range truth.views {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		return truth.views[ids[i]] > truth.views[ids[j]] || truth.views[ids[i]] == truth.views[ids[j]] && ids[i] < ids[j]
	})
	top := ids[:min(20, len(ids))]
	var tv, pv []float64
	for _, id := range top {
		tv, pv = append(tv, truth.views[id]), append(pv, published[id])
	}
	r.spearman = spearman(tv, pv)

	var ev, eo, er []float64
	err = rows("SELECT bucket, visitors, orders, revenue FROM "+pub+".kpis WHERE grain = 'day'", func(b *proto.Block, i int) {
		d := clickhouse.Get[time.Time](b, 0, i).UTC()
		ev = append(ev, relErr(float64(clickhouse.Get[uint64](b, 1, i)), truth.visitors[d]))
		eo = append(eo, relErr(float64(clickhouse.Get[uint64](b, 2, i)), truth.orders[d]))
		er = append(er, relErr(clickhouse.Get[float64](b, 3, i), truth.spent[d]))
	})
	if err != nil {
		return r, err
	}
	r.kpiVisitors, r.kpiOrders, r.kpiRevenue = median(ev), median(eo), median(er)
	r.dayErrors = [3][]float64{ev, eo, er}

	// Whole weeks inside the data.
	var weeks []aggregate.Bucket
	for w := aggregate.Week.Start(month.Start.AddDate(0, 0, 6)); !w.AddDate(0, 0, 7).After(month.End()); w = w.AddDate(0, 0, 7) {
		weeks = append(weeks, aggregate.Bucket{Site: "demo", Grain: aggregate.Week, Start: w})
	}
	cat := map[string]float64{}
	err = rows("SELECT bucket, category, sum(views) FROM "+pub+".categories WHERE grain = 'week' GROUP BY bucket, category", func(b *proto.Block, i int) {
		cat[clickhouse.Get[time.Time](b, 0, i).UTC().Format(time.DateOnly)+"|"+clickhouse.Get[string](b, 1, i)] = float64(clickhouse.Get[uint64](b, 2, i))
	})
	if err != nil {
		return r, err
	}
	var ec []float64
	for key, v := range truth.categoryWeek {
		for _, w := range weeks {
			if strings.HasPrefix(key, w.Start.Format(time.DateOnly)+"|") {
				ec = append(ec, relErr(cat[key], v))
			}
		}
	}
	r.categoriesWeek = median(ec)

	funnels := p.Tables()[slices.IndexFunc(p.Tables(), func(t *aggregate.Table) bool { return t.Name == "funnels" })]
	steps := map[string]float64{}
	err = rows("SELECT bucket, funnel, step, sum(visitors) FROM "+pub+".funnels WHERE grain = 'week' GROUP BY bucket, funnel, step", func(b *proto.Block, i int) {
		steps[fmt.Sprint(clickhouse.Get[time.Time](b, 0, i).UTC().Format(time.DateOnly), clickhouse.Get[string](b, 1, i), clickhouse.Get[uint8](b, 2, i))] = float64(clickhouse.Get[uint64](b, 3, i))
	})
	if err != nil {
		return r, err
	}
	var es []float64
	for _, w := range weeks {
		cells, err := p.TrueCells(ctx, funnels, w)
		if err != nil {
			return r, err
		}
		stepTruth := map[string]float64{}
		for _, c := range cells {
			stepTruth[fmt.Sprint(w.Start.Format(time.DateOnly), c.Dims[0], c.Dims[1])] += float64(c.Visitors)
		}
		for key, v := range stepTruth {
			es = append(es, relErr(steps[key], v))
		}
	}
	r.stepsWeek = median(es)
	var findings []string
	r.impossible, findings, err = p.Impossible(ctx)
	for _, f := range findings {
		fmt.Fprintf(os.Stderr, "utility: %s: impossible values: %s\n", pub, f)
	}
	return r, err
}

func relErr(got, want float64) float64 {
	if want == 0 {
		if got == 0 {
			return 0
		}
		return 1
	}
	return math.Abs(got-want) / want
}

// spearman is the rank correlation of xs and ys (average ranks for ties).
func spearman(xs, ys []float64) float64 {
	rx, ry := ranks(xs), ranks(ys)
	var mx, my float64
	for i := range rx {
		mx += rx[i]
		my += ry[i]
	}
	mx /= float64(len(rx))
	my /= float64(len(ry))
	var sxy, sxx, syy float64
	for i := range rx {
		sxy += (rx[i] - mx) * (ry[i] - my)
		sxx += (rx[i] - mx) * (rx[i] - mx)
		syy += (ry[i] - my) * (ry[i] - my)
	}
	if sxx == 0 || syy == 0 {
		return 0
	}
	return sxy / math.Sqrt(sxx*syy)
}

func ranks(xs []float64) []float64 {
	idx := make([]int, len(xs))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return xs[idx[a]] < xs[idx[b]] })
	r := make([]float64, len(xs))
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && xs[idx[j+1]] == xs[idx[i]] {
			j++
		}
		for k := i; k <= j; k++ {
			r[idx[k]] = float64(i+j)/2 + 1
		}
		i = j + 1
	}
	return r
}

// frontierSVG draws the share of product views in published rows and the
// top-20 rank correlation against the total ε, one line per shop size.
func frontierSVG(results []utilityResult) string {
	const w, h, left, right, top, bottom = 640.0, 360.0, 60.0, 150.0, 30.0, 50.0
	var eps []float64
	sizes := map[int][]utilityResult{}
	var sizeOrder []int
	for _, r := range results {
		if !slices.Contains(eps, r.epsilon) {
			eps = append(eps, r.epsilon)
		}
		if _, ok := sizes[r.size]; !ok {
			sizeOrder = append(sizeOrder, r.size)
		}
		sizes[r.size] = append(sizes[r.size], r)
	}
	slices.Sort(eps)
	x := func(e float64) float64 {
		lo, hi := math.Log2(eps[0]), math.Log2(eps[len(eps)-1])
		if hi == lo {
			return left
		}
		return left + (math.Log2(e)-lo)/(hi-lo)*(w-left-right)
	}
	y := func(v float64) float64 { return top + (1-v)*(h-top-bottom) }
	var b strings.Builder
	const legend = 110.0 // room for the legend's text right of the plot
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" font-family="sans-serif" font-size="12">`+"\n", w+legend, h, w+legend, h)
	fmt.Fprintf(&b, `<rect width="%g" height="%g" fill="white"/>`+"\n", w+legend, h)
	fmt.Fprintf(&b, `<text x="%g" y="18" font-size="14">herd: utility against the total privacy budget per visitor-day</text>`+"\n", left)
	for _, v := range []float64{0, 0.25, 0.5, 0.75, 1} {
		fmt.Fprintf(&b, `<line x1="%g" x2="%g" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%g" y="%.1f" text-anchor="end">%.0f%%</text>`+"\n", left, w-right, y(v), y(v), left-6, y(v)+4, 100*v)
	}
	for _, e := range eps {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%g" y2="%g" stroke="#ddd"/><text x="%.1f" y="%g" text-anchor="middle">ε = %g</text>`+"\n", x(e), x(e), top, h-bottom, x(e), h-bottom+18, e)
	}
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="middle">total ε per visitor-day (log scale; δ = 1e-6, k = 10)</text>`+"\n", (left+w-right)/2, h-8)
	colours := []string{"#2f6fdb", "#d9622b", "#2b9a5a", "#8a4fd1"}
	ly := top + 10
	for i, size := range sizeOrder {
		col := colours[i%len(colours)]
		for _, series := range []struct {
			name string
			dash string
			val  func(utilityResult) float64
		}{{"views covered", "", func(r utilityResult) float64 { return r.coverage }}, {"Spearman top 20", "5,4", func(r utilityResult) float64 { return math.Max(r.spearman, 0) }}} {
			var pts []string
			for _, r := range sizes[size] {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(r.epsilon), y(series.val(r))))
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" stroke-dasharray="%s" points="%s"/>`+"\n", col, series.dash, strings.Join(pts, " "))
			fmt.Fprintf(&b, `<line x1="%g" x2="%g" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="2" stroke-dasharray="%s"/><text x="%g" y="%.1f">%d/day: %s</text>`+"\n",
				w-right+8, w-right+28, ly, ly, col, series.dash, w-right+32, ly+4, size, series.name)
			ly += 18
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}
