package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"golang.org/x/sync/errgroup"

	"github.com/herd-analytics/herd/internal/abtest"
	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/privacy"
)

// Querier runs a SELECT on the published database and hands each result
// block to fn. *clickhouse.Client, connected as the read-only user, is one.
type Querier interface {
	Select(ctx context.Context, query string, fn func(*proto.Block) error, opts ...clickhouse.Option) error
}

// Range is a closed-open interval of UTC days [From, To).
type Range struct {
	From, To time.Time
}

// Previous is the range of equal length just before r.
// A range of whole months has the same number of whole months before it.
func (r Range) Previous() Range {
	if r.From.Day() == 1 && r.To.Day() == 1 {
		months := (r.To.Year()-r.From.Year())*12 + int(r.To.Month()) - int(r.From.Month())
		return Range{From: r.From.AddDate(0, -months, 0), To: r.From}
	}
	return Range{From: r.From.Add(-r.To.Sub(r.From)), To: r.From}
}

// YearBefore is the same days a year earlier.
func (r Range) YearBefore() Range {
	return Range{From: r.From.AddDate(-1, 0, 0), To: r.To.AddDate(-1, 0, 0)}
}

// Days is the number of days in r.
func (r Range) Days() int { return int(r.To.Sub(r.From).Hours() / 24) }

// grains are the grains whose buckets tile r exactly, finest first: days
// always; ISO weeks when r runs Monday to Monday; months when it runs from a
// first of the month to another.
func (r Range) grains() []string {
	g := []string{"'day'"}
	if r.From.Weekday() == time.Monday && r.To.Weekday() == time.Monday {
		g = append(g, "'week'")
	}
	if r.From.Day() == 1 && r.To.Day() == 1 {
		g = append(g, "'month'")
	}
	return g
}

func (r Range) span() string {
	return "bucket >= toDateTime(" + clickhouse.QuoteInt(r.From.Unix()) + ") AND bucket < toDateTime(" + clickhouse.QuoteInt(r.To.Unix()) + ")"
}

// cells is the condition selecting table's published cells of site in r:
// those of the coarsest grain that tiles r and has cells there (a month
// reads its month cells, whole weeks their week cells, anything else daily
// cells), one grain only, other rows excluded. Sums over these cells are
// sums over cells published together, never over a mix of grains.
func (s *store) cells(table, site string, r Range) string {
	return s.cellsAndOther(table, site, r) + " AND other = 0"
}

// cellsAndOther is cells with the other rows: where totals must add up.
func (s *store) cellsAndOther(table, site string, r Range) string {
	return "site = " + clickhouse.Quote(site) + " AND " + r.span() + " AND toUInt8(grain) = (SELECT max(toUInt8(grain)) FROM " + s.db + "." + table +
		" WHERE " + tiling(site, r) + ")"
}

// tiling selects site's cells in r of every grain whose buckets tile r.
func tiling(site string, r Range) string {
	return "site = " + clickhouse.Quote(site) + " AND " + r.span() + " AND grain IN (" + strings.Join(r.grains(), ", ") + ")"
}

// grainOf names the grain cells reads for table, site and r ("" when no
// cell of any grain that tiles r is published), for the charts to say.
//
// Answers are kept for cacheTTL (per table, site and range) when the store
// has a cache: pages ask once per chart, and a grain appears only when a
// publication run adds one.
func (s *store) grainOf(ctx context.Context, table, site string, r Range) (string, error) {
	fetch := func() (string, error) {
		var g string
		err := s.q.Select(ctx, "SELECT toString(grain) FROM "+s.db+"."+table+" WHERE "+tiling(site, r)+" ORDER BY toUInt8(grain) DESC LIMIT 1", func(b *proto.Block) error {
			if b.Rows() > 0 {
				g = clickhouse.Get[string](b, 0, 0)
			}
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("%s grain: %w", table, err)
		}
		return g, nil
	}
	if s.grains == nil {
		return fetch()
	}
	return s.grains.get(table+"\x00"+site+"\x00"+r.From.Format(time.DateOnly)+r.To.Format(time.DateOnly), false, fetch)
}

// cellsOf is cells with the grain already known (from grainOf): the
// query then reads that grain's rows only.
func cellsOf(site string, r Range, grain string) string {
	return "site = " + clickhouse.Quote(site) + " AND " + r.span() + " AND grain = " + clickhouse.Quote(grain) + " AND other = 0"
}

// grainNote says which cells a chart sums.
func grainNote(g string) string {
	switch g {
	case "":
		return "Nothing published for this period at any grain that covers it exactly: try a whole week or month."
	case "day":
		return "Sums of published daily cells."
	}
	return "Published " + g + " cells (whole " + g + "s, where rarer keys reach the threshold)."
}

// store reads published rollups. Every number it returns is a sum of
// published (k-anonymous, noised) cells of one grain, the coarsest whose
// buckets tile the period (days, ISO weeks or months), never a mix;
// nothing else exists to read.
type store struct {
	q  Querier
	db string
	// grains, noise and firstDays cache grainOf's, releaseSigmas' and
	// firstDay's answers; nil: no cache (reports).
	grains    *cache[string]
	noise     *cache[map[time.Time]map[string]float64]
	firstDays *cache[time.Time]
}

// KPIs are a range's totals: sums of the published daily cells.
type KPIs struct {
	Visitors, Sessions, Pageviews, Orders, Buyers uint64
	Revenue                                       float64
}

// Conversion is buyers per visitor.
func (k KPIs) Conversion() float64 {
	if k.Visitors == 0 {
		return 0
	}
	return float64(k.Buyers) / float64(k.Visitors)
}

// AOV is revenue per order.
func (k KPIs) AOV() float64 {
	if k.Orders == 0 {
		return 0
	}
	return k.Revenue / float64(k.Orders)
}

// DayKPIs is one day's published KPIs and the σ of the noise each
// carries, as the day's release recorded it (empty when it recorded none).
type DayKPIs struct {
	Day time.Time
	KPIs
	Noise map[string]float64
}

// kpis returns the range's daily KPIs, one entry per day with a published
// row (days whose cell was suppressed are absent).
func (s *store) kpis(ctx context.Context, site string, r Range) ([]DayKPIs, error) {
	var out []DayKPIs
	err := s.q.Select(ctx, "SELECT bucket, visitors, sessions, pageviews, orders, buyers, revenue FROM "+s.db+".kpis WHERE "+s.cells("kpis", site, r)+" ORDER BY bucket",
		func(b *proto.Block) error {
			for i := 0; i < b.Rows(); i++ {
				out = append(out, DayKPIs{Day: clickhouse.Get[time.Time](b, 0, i).UTC(), KPIs: KPIs{
					Visitors: clickhouse.Get[uint64](b, 1, i), Sessions: clickhouse.Get[uint64](b, 2, i),
					Pageviews: clickhouse.Get[uint64](b, 3, i), Orders: clickhouse.Get[uint64](b, 4, i),
					Buyers: clickhouse.Get[uint64](b, 5, i), Revenue: clickhouse.Get[float64](b, 6, i),
				}})
			}
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("kpis: %w", err)
	}
	// Each day's noise from its own release: the budget's split may have
	// changed since (an upgrade, another ε).
	noise, err := s.releaseSigmas(ctx, "kpis", site, "day", r, false)
	if err != nil {
		return nil, err
	}
	if slices.ContainsFunc(out, func(d DayKPIs) bool { _, ok := noise[d.Day]; return !ok }) {
		// A day published since the cached answer: ask once more.
		if noise, err = s.releaseSigmas(ctx, "kpis", site, "day", r, true); err != nil {
			return nil, err
		}
	}
	for i := range out {
		out[i].Noise = noise[out[i].Day]
	}
	return out, nil
}

func total(days []DayKPIs) KPIs {
	var t KPIs
	for _, d := range days {
		t.Visitors += d.Visitors
		t.Sessions += d.Sessions
		t.Pageviews += d.Pageviews
		t.Orders += d.Orders
		t.Buyers += d.Buyers
		t.Revenue += d.Revenue
	}
	return t
}

// ProductRow is one product's published totals over a range.
type ProductRow struct {
	ProductID string  `json:"product_id"`
	Name      string  `json:"name"` // from the shop's catalog; empty without one
	Category  string  `json:"category"`
	Visitors  uint64  `json:"visitors"`
	Views     uint64  `json:"views"`
	Adds      uint64  `json:"adds"`
	Purchases uint64  `json:"purchases"`
	Revenue   float64 `json:"revenue"`
	// RevenueBasis says where Revenue comes from: "list_price" (purchases
	// × the catalog's price) or "published" (the release's own revenue).
	RevenueBasis string `json:"revenue_basis"`
	// Previous is the same product's views in the previous period; Trend is
	// the growth against it when both periods have at least minTrendBase
	// views (noise does not trend), else 0.
	Previous uint64  `json:"previous_views"`
	Trend    float64 `json:"trend"`
	// Noise is the σ of the noise in each figure of the period (visitors,
	// views, adds, purchases, revenue): its cells' σ as their releases
	// recorded them, the variances added.
	Noise map[string]float64 `json:"noise_sigma,omitempty"`
}

// minTrendBase is the fewest views in both periods for a growth figure: on
// smaller bases the DP noise alone would make products "trend".
const minTrendBase = 200

// productSort are the orders hot products can be ranked by.
var productSort = map[string]string{"views": "views", "adds": "adds", "purchases": "purchases", "revenue": productRevenue, "visitors": "visitors"}

// A product's revenue, where the shop's catalog lists its price, is its
// published purchases × that price: post-processing of a released count
// with public facts, so no budget is spent on it, and its noise is the
// price × the purchases' (a month cell's released revenue carries σ in the
// thousands of euros, enough to show a two-purchase €83 bag at €24,702).
// Unlisted products, other rows and shops without a catalog keep the
// released revenue. Discounts and quantities make it an estimate at list
// price; the pages say so.
const productRevenue = "if(list_price > 0, purchases * list_price, revenue)"

// withListPrice joins the products' rows of site to their newest catalog
// price (list_price, 0 where none is listed).
func (s *store) withListPrice(site string) string {
	return " ANY LEFT JOIN (SELECT product_id, argMax(price, loaded) AS list_price FROM " + s.db + ".catalog WHERE site = " + clickhouse.Quote(site) +
		" GROUP BY product_id) USING product_id"
}

// priceRevenue sets p's revenue and its noise from its list price, when
// the catalog has one.
func (p *ProductRow) priceRevenue(price float64) {
	p.RevenueBasis = "published"
	if price <= 0 {
		return
	}
	p.RevenueBasis = "list_price"
	p.Revenue = math.Round(float64(p.Purchases)*price*100) / 100
	if p.Noise != nil {
		p.Noise["revenue"] = price * p.Noise["purchases"]
	}
}

// products returns the top products by metric in the range, with the
// previous period's views for the trend.
func (s *store) products(ctx context.Context, site string, r Range, metric, category string, limit int) ([]ProductRow, error) {
	col, ok := productSort[metric]
	if !ok {
		return nil, fmt.Errorf("unknown product metric %q", metric)
	}
	filter := ""
	if category != "" {
		filter = " AND category = " + clickhouse.Quote(category)
	}
	// Rank over the period in one pass, grouping by a 64-bit hash of the id
	// (a third of the cost of grouping by the string); then read the
	// previous period's views of the ranked products only.
	grain, err := s.grainOf(ctx, "products", site, r)
	if err != nil || grain == "" {
		return nil, err
	}
	// Each product's noise: how many of its cells fall in each class of
	// buckets whose releases recorded the same σ (one class unless the
	// budget changed inside the period).
	noise, err := s.releaseSigmas(ctx, "products", site, grain, r, false)
	if err != nil {
		return nil, err
	}
	classes := noiseClasses(noise)
	var counts strings.Builder
	for _, c := range classes {
		counts.WriteString(", countIf(bucket IN (" + strings.Join(c.buckets, ", ") + "))")
	}
	q := "SELECT any(product_id), any(category), sum(visitors), sum(views), sum(adds), sum(purchases), sum(revenue), any(list_price)" + counts.String() + " FROM " + s.db +
		".products" + s.withListPrice(site) + " WHERE " + cellsOf(site, r, grain) + filter + " GROUP BY cityHash64(product_id) ORDER BY sum(" + col + ") DESC LIMIT " + clickhouse.QuoteInt(limit)
	var out []ProductRow
	err = s.q.Select(ctx, q, func(b *proto.Block) error {
		for i := 0; i < b.Rows(); i++ {
			cells := make([]cellNoise, len(classes))
			for ci, c := range classes {
				cells[ci] = cellNoise{n: float64(clickhouse.Get[uint64](b, 8+ci, i)), sigma: c.sigma}
			}
			p := ProductRow{
				ProductID: clickhouse.Get[string](b, 0, i), Category: clickhouse.Get[string](b, 1, i),
				Visitors: clickhouse.Get[uint64](b, 2, i), Views: clickhouse.Get[uint64](b, 3, i),
				Adds: clickhouse.Get[uint64](b, 4, i), Purchases: clickhouse.Get[uint64](b, 5, i),
				Revenue: clickhouse.Get[float64](b, 6, i), Noise: sumNoise(cells),
			}
			p.priceRevenue(clickhouse.Get[float64](b, 7, i))
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("products: %w", err)
	}
	if len(out) == 0 {
		return out, nil
	}
	ids := make([]string, len(out))
	for i, p := range out {
		ids[i] = clickhouse.Quote(p.ProductID)
	}
	// The previous period's views and the names of the ranked products, at
	// once.
	previous := map[string]uint64{}
	var names map[string]string
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		prevGrain, err := s.grainOf(gctx, "products", site, r.Previous())
		if err != nil || prevGrain == "" {
			return err
		}
		err = s.q.Select(gctx, "SELECT product_id, sum(views) FROM "+s.db+".products WHERE "+cellsOf(site, r.Previous(), prevGrain)+
			" AND product_id IN ("+strings.Join(ids, ", ")+") GROUP BY product_id", func(b *proto.Block) error {
			for i := 0; i < b.Rows(); i++ {
				previous[clickhouse.Get[string](b, 0, i)] = clickhouse.Get[uint64](b, 1, i)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("products, previous period: %w", err)
		}
		return nil
	})
	g.Go(func() (err error) {
		names, err = s.catalogNames(gctx, site, ids)
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for i := range out {
		p := &out[i]
		p.Name = names[p.ProductID]
		p.Previous = previous[p.ProductID]
		if p.Views >= minTrendBase && p.Previous >= minTrendBase {
			p.Trend = float64(p.Views)/float64(p.Previous) - 1
		}
	}
	// Ties in the ranking are broken by id, the same on every request.
	sort.SliceStable(out, func(a, b int) bool {
		va, vb := productMetric(out[a], metric), productMetric(out[b], metric)
		if va != vb {
			return va > vb
		}
		return out[a].ProductID < out[b].ProductID
	})
	return out, nil
}

// catalogNames reads the names of quoted product ids from the site's newest
// catalog (the shop's public product list).
func (s *store) catalogNames(ctx context.Context, site string, quotedIDs []string) (map[string]string, error) {
	names := map[string]string{}
	// The newest name of each: reads only these ids' rows (the catalog is
	// ordered by site and id), where the newest whole catalog would scan
	// the site's.
	err := s.q.Select(ctx, "SELECT product_id, name FROM "+s.db+".catalog WHERE site = "+clickhouse.Quote(site)+
		" AND product_id IN ("+strings.Join(quotedIDs, ", ")+") ORDER BY loaded DESC LIMIT 1 BY product_id",
		func(b *proto.Block) error {
			for i := 0; i < b.Rows(); i++ {
				names[clickhouse.Get[string](b, 0, i)] = clickhouse.Get[string](b, 1, i)
			}
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("product names: %w", err)
	}
	return names, nil
}

// ProductDetail is one product over a period, with its catalog entry, its
// rank in its category and its weekly and monthly cells around the period.
type ProductDetail struct {
	ProductRow
	// Published: the product has a published cell in the period.
	Published bool    `json:"published"`
	Clicks    uint64  `json:"clicks"`
	Price     float64 `json:"price"`
	InCatalog bool    `json:"in_catalog"`
	// Rank is the product's place by views among the category's published
	// products (RankOf of them).
	Rank   int            `json:"rank_in_category"`
	RankOf int            `json:"published_in_category"`
	Weeks  []ProductPoint `json:"weeks"`
	Months []ProductPoint `json:"months"`
}

// ProductPoint is one published cell of a product.
type ProductPoint struct {
	Bucket                 time.Time `json:"bucket"`
	Views, Adds, Purchases uint64
	Revenue                float64
}

// product reads one product's detail: the period's cells (one grain, as
// cells picks), its catalog entry, and its week and month cells of the
// year up to the period's end.
func (s *store) product(ctx context.Context, f filters, id string) (ProductDetail, error) {
	pd := ProductDetail{ProductRow: ProductRow{ProductID: id}}
	q := clickhouse.Quote(id)
	grain, err := s.grainOf(ctx, "products", f.site, f.r)
	if err != nil {
		return pd, err
	}
	if grain == "" {
		grain = "day" // nothing published in the period: the query finds no cell
	}
	// The period's cells, the catalog entry and the year's cells do not
	// depend on each other: read at once.
	var (
		cat struct {
			found          bool
			name, category string
			price          float64
		}
		weeks, months []ProductPoint
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		err := s.q.Select(gctx, "SELECT count(), any(category), sum(visitors), sum(views), sum(clicks), sum(adds), sum(purchases), sum(revenue) FROM "+s.db+
			".products WHERE "+cellsOf(f.site, f.r, grain)+" AND product_id = "+q, func(b *proto.Block) error {
			if b.Rows() == 0 || clickhouse.Get[uint64](b, 0, 0) == 0 {
				return nil
			}
			pd.Published = true
			pd.Category = clickhouse.Get[string](b, 1, 0)
			pd.Visitors, pd.Views, pd.Clicks = clickhouse.Get[uint64](b, 2, 0), clickhouse.Get[uint64](b, 3, 0), clickhouse.Get[uint64](b, 4, 0)
			pd.Adds, pd.Purchases, pd.Revenue = clickhouse.Get[uint64](b, 5, 0), clickhouse.Get[uint64](b, 6, 0), clickhouse.Get[float64](b, 7, 0)
			return nil
		})
		if err != nil {
			return fmt.Errorf("product %s: %w", id, err)
		}
		return nil
	})
	g.Go(func() error {
		err := s.q.Select(gctx, "SELECT name, category, price FROM "+s.db+".catalog WHERE site = "+clickhouse.Quote(f.site)+
			" AND product_id = "+q+" ORDER BY loaded DESC LIMIT 1", func(b *proto.Block) error {
			if b.Rows() > 0 {
				cat.found = true
				cat.name, cat.category, cat.price = clickhouse.Get[string](b, 0, 0), clickhouse.Get[string](b, 1, 0), clickhouse.Get[float64](b, 2, 0)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("product %s catalog: %w", id, err)
		}
		return nil
	})
	g.Go(func() error {
		year := Range{From: f.r.To.AddDate(-1, 0, 0), To: f.r.To}
		err := s.q.Select(gctx, "SELECT toString(grain), bucket, views, adds, purchases, revenue FROM "+s.db+".products WHERE site = "+clickhouse.Quote(f.site)+
			" AND "+year.span()+" AND grain IN ('week', 'month') AND other = 0 AND product_id = "+q+" ORDER BY grain, bucket", func(b *proto.Block) error {
			for i := 0; i < b.Rows(); i++ {
				pt := ProductPoint{Bucket: clickhouse.Get[time.Time](b, 1, i).UTC(), Views: clickhouse.Get[uint64](b, 2, i), Adds: clickhouse.Get[uint64](b, 3, i),
					Purchases: clickhouse.Get[uint64](b, 4, i), Revenue: clickhouse.Get[float64](b, 5, i)}
				if clickhouse.Get[string](b, 0, i) == "week" {
					weeks = append(weeks, pt)
				} else {
					months = append(months, pt)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("product %s cells: %w", id, err)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return pd, err
	}
	pd.Weeks, pd.Months = weeks, months
	if cat.found {
		pd.InCatalog, pd.Name, pd.Category, pd.Price = true, cat.name, cat.category, cat.price
	}
	pd.priceRevenue(pd.Price)
	for _, pts := range [][]ProductPoint{pd.Weeks, pd.Months} {
		for i := range pts {
			if pd.Price > 0 {
				pts[i].Revenue = math.Round(float64(pts[i].Purchases)*pd.Price*100) / 100
			}
		}
	}
	if pd.Published {
		err = s.q.Select(ctx, "SELECT countIf(v > "+clickhouse.QuoteInt(int64(pd.Views))+"), count() FROM (SELECT sum(views) AS v FROM "+s.db+".products WHERE "+
			cellsOf(f.site, f.r, grain)+" AND category = "+clickhouse.Quote(pd.Category)+" AND product_id != 'unlisted' GROUP BY product_id)", func(b *proto.Block) error {
			pd.Rank, pd.RankOf = int(clickhouse.Get[uint64](b, 0, 0))+1, int(clickhouse.Get[uint64](b, 1, 0))
			return nil
		})
		if err != nil {
			return pd, fmt.Errorf("product %s rank: %w", id, err)
		}
	}
	return pd, nil
}

// CategoryRevenue is a category's views and revenue from the product
// release: its published products and its other row together.
type CategoryRevenue struct {
	Category  string  `json:"category"`
	Views     uint64  `json:"views"`
	Purchases uint64  `json:"purchases"`
	Revenue   float64 `json:"revenue"`
}

// categoryRevenue sums the period's product rows and other rows per
// category (one release, one grain: they add up).
func (s *store) categoryRevenue(ctx context.Context, f filters) ([]CategoryRevenue, error) {
	return typed(ctx, s, "category_revenue", f, func(t []string, n []float64) CategoryRevenue {
		return CategoryRevenue{Category: t[0], Views: uint64(n[1]), Purchases: uint64(n[2]), Revenue: n[3]}
	})
}

// ProductCoverage is how much of a period the product rows show: the
// products published, the catalog's size, and what the other rows hold.
type ProductCoverage struct {
	Published, Catalog uint64
	ListedViews        uint64 // in published product rows ("unlisted" included)
	OtherViews         uint64 // in the other rows: products below the threshold
	OtherPublished     bool
}

// productCoverage sums a period's product rows and other rows (one grain,
// as cells picks), and counts the catalog. Every figure is published or
// public, so the page may show them.
func (s *store) productCoverage(ctx context.Context, site string, r Range, category string) (ProductCoverage, error) {
	var pc ProductCoverage
	filter, catFilter := "", ""
	if category != "" {
		filter = " AND category = " + clickhouse.Quote(category)
		catFilter = filter
	}
	err := s.q.Select(ctx, "SELECT uniqExactIf(product_id, other = 0 AND product_id != 'unlisted'), sumIf(views, other = 0), sumIf(views, other = 1), countIf(other = 1) FROM "+
		s.db+".products WHERE "+s.cellsAndOther("products", site, r)+filter, func(b *proto.Block) error {
		pc.Published, pc.ListedViews = clickhouse.Get[uint64](b, 0, 0), clickhouse.Get[uint64](b, 1, 0)
		pc.OtherViews, pc.OtherPublished = clickhouse.Get[uint64](b, 2, 0), clickhouse.Get[uint64](b, 3, 0) > 0
		return nil
	})
	if err != nil {
		return pc, fmt.Errorf("product coverage: %w", err)
	}
	err = s.q.Select(ctx, "SELECT count() FROM "+s.db+".catalog WHERE site = "+clickhouse.Quote(site)+
		" AND loaded = (SELECT max(loaded) FROM "+s.db+".catalog WHERE site = "+clickhouse.Quote(site)+")"+catFilter, func(b *proto.Block) error {
		pc.Catalog = clickhouse.Get[uint64](b, 0, 0)
		return nil
	})
	if err != nil {
		return pc, fmt.Errorf("catalog size: %w", err)
	}
	return pc, nil
}

// Line says it in a sentence, in the reader's number format.
func (pc ProductCoverage) Line(num numbers) string {
	n := func(x uint64) string { return num.Count(float64(x)) }
	switch {
	case pc.Catalog > 0 && pc.OtherPublished:
		return n(pc.Published) + " of the catalog's " + n(pc.Catalog) + " products reached the threshold: " + n(pc.ListedViews) + " views; the other " +
			n(pc.Catalog-min(pc.Published, pc.Catalog)) + " products together: " + n(pc.OtherViews) + " views."
	case pc.Catalog > 0:
		return n(pc.Published) + " of the catalog's " + n(pc.Catalog) + " products reached the threshold (" + n(pc.ListedViews) + " views); the rest are too few together to publish."
	case pc.OtherPublished:
		return n(pc.Published) + " products reached the threshold (" + n(pc.ListedViews) + " views); products below it together: " + n(pc.OtherViews) + " views."
	}
	return n(pc.Published) + " products reached the threshold (" + n(pc.ListedViews) + " views)."
}

// CategoryShare is one category's views by device over a range.
type CategoryShare struct {
	Category string            `json:"category"`
	Views    map[string]uint64 `json:"views_by_device"`
}

func (s *store) categories(ctx context.Context, f filters) ([]CategoryShare, error) {
	by := map[string]map[string]uint64{}
	// Other rows hold a category's devices below the threshold: with them,
	// a category's devices add up to the category.
	err := s.q.Select(ctx, "SELECT category, if(other = 1, 'other', device) AS dev, sum(views) FROM "+s.db+".categories WHERE "+s.cellsAndOther("categories", f.site, f.r)+f.deviceCells()+" GROUP BY category, dev",
		func(b *proto.Block) error {
			for i := 0; i < b.Rows(); i++ {
				c := clickhouse.Get[string](b, 0, i)
				if by[c] == nil {
					by[c] = map[string]uint64{}
				}
				by[c][clickhouse.Get[string](b, 1, i)] = clickhouse.Get[uint64](b, 2, i)
			}
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("categories: %w", err)
	}
	var out []CategoryShare
	for c, v := range by {
		out = append(out, CategoryShare{Category: c, Views: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Category < out[j].Category })
	return out, nil
}

// SlotRow is a layout slot's published totals for one variant.
type SlotRow struct {
	PageType, Slot, Variant string
	Impressions, Clicks     float64
	Cells                   int
}

// slotRows sums the period's slot cells per page type, slot and variant.
func (s *store) slotRows(ctx context.Context, f filters) ([]SlotRow, error) {
	return typed(ctx, s, "slots", f, func(t []string, n []float64) SlotRow {
		return SlotRow{PageType: t[0], Slot: t[1], Variant: t[2], Impressions: n[3], Clicks: n[4], Cells: int(n[5])}
	})
}

// variants lists the layout variants with published slot cells in the
// period.
func (s *store) variants(ctx context.Context, f filters) ([]string, error) {
	var out []string
	err := s.q.Select(ctx, "SELECT DISTINCT variant FROM "+s.db+".slots WHERE "+s.cells("slots", f.site, f.r)+" AND variant != '' ORDER BY variant", func(b *proto.Block) error {
		for i := 0; i < b.Rows(); i++ {
			out = append(out, clickhouse.Get[string](b, 0, i))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("variants: %w", err)
	}
	return out, nil
}

// sigmas are the Gaussian σ of one published cell's metrics ("visitors"
// included) in table's newest published run of grain for site; empty when
// there is none.
func (s *store) sigmas(ctx context.Context, table, site, grain string) (map[string]float64, error) {
	if grain == "" {
		return map[string]float64{}, nil
	}
	var raw string
	err := s.q.Select(ctx, "SELECT params FROM "+s.db+".rollup_runs WHERE table_name = "+clickhouse.Quote(table)+" AND grain = "+clickhouse.Quote(grain)+
		" AND state = 'published' AND site = "+clickhouse.Quote(site)+" ORDER BY bucket DESC LIMIT 1", func(b *proto.Block) error {
		if b.Rows() > 0 {
			raw = clickhouse.Get[string](b, 0, 0)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s noise: %w", table, err)
	}
	return paramSigmas(raw), nil
}

// releaseSigmas are the σ of one published cell's values in each bucket of
// r table published at grain for site, from the bucket's own release.
// Answers are kept for cacheTTL like grainOf's (a release's parameters never
// change, new buckets come with a publication run) unless stale.
func (s *store) releaseSigmas(ctx context.Context, table, site, grain string, r Range, stale bool) (map[time.Time]map[string]float64, error) {
	fetch := func() (map[time.Time]map[string]float64, error) {
		out := map[time.Time]map[string]float64{}
		err := s.q.Select(ctx, "SELECT bucket, params FROM "+s.db+".rollup_runs WHERE table_name = "+clickhouse.Quote(table)+" AND grain = "+clickhouse.Quote(grain)+
			" AND state = 'published' AND site = "+clickhouse.Quote(site)+" AND "+r.span(),
			func(b *proto.Block) error {
				for i := 0; i < b.Rows(); i++ {
					out[clickhouse.Get[time.Time](b, 0, i).UTC()] = paramSigmas(clickhouse.Get[string](b, 1, i))
				}
				return nil
			})
		if err != nil {
			return nil, fmt.Errorf("%s noise: %w", table, err)
		}
		return out, nil
	}
	if s.noise == nil {
		return fetch()
	}
	return s.noise.get(table+"\x00"+site+"\x00"+grain+"\x00"+r.From.Format(time.DateOnly)+r.To.Format(time.DateOnly), stale, fetch)
}

// cellNoise is n cells whose values each carry sigma.
type cellNoise struct {
	n     float64
	sigma map[string]float64
}

// sumNoise is the σ of each value of a sum of cells (independent noises:
// the variances add); nil when no cell recorded any.
func sumNoise(cells []cellNoise) map[string]float64 {
	var out map[string]float64
	for _, c := range cells {
		if c.n == 0 {
			continue
		}
		for name, sigma := range c.sigma {
			if out == nil {
				out = map[string]float64{}
			}
			out[name] += c.n * sigma * sigma
		}
	}
	for name, v := range out {
		out[name] = math.Sqrt(v)
	}
	return out
}

// noiseClass is the buckets (as SQL literals) whose releases recorded the
// same σ.
type noiseClass struct {
	buckets []string
	sigma   map[string]float64
}

// noiseClasses groups the buckets of releaseSigmas by their σ, in time
// order.
func noiseClasses(noise map[time.Time]map[string]float64) []noiseClass {
	var out []noiseClass
	index := map[string]int{}
	for _, b := range slices.SortedFunc(maps.Keys(noise), time.Time.Compare) {
		key := fmt.Sprint(noise[b]) // fmt prints a map's keys sorted
		i, ok := index[key]
		if !ok {
			i = len(out)
			index[key] = i
			out = append(out, noiseClass{sigma: noise[b]})
		}
		out[i].buckets = append(out[i].buckets, "toDateTime("+clickhouse.QuoteInt(b.Unix())+")")
	}
	return out
}

// paramSigmas are the σ a release's recorded parameters give its published
// values ("visitors" included); empty when it recorded none.
func paramSigmas(raw string) map[string]float64 {
	out := map[string]float64{}
	var p privacy.Params
	if raw == "" || json.Unmarshal([]byte(raw), &p) != nil {
		return out
	}
	out["visitors"] = p.Visitors.Sigma
	for _, m := range p.Metrics {
		out[m.Name] = m.NoiseSigma()
	}
	return out
}

// downloads are the newest n downloads: when, who, role, what.
func (s *store) downloads(ctx context.Context, n int) ([][]string, error) {
	rows, _, err := s.rows(ctx, "SELECT toString(at), user, role, what FROM "+s.db+".downloads ORDER BY at DESC LIMIT "+clickhouse.QuoteInt(n))
	if err != nil {
		return nil, fmt.Errorf("downloads: %w", err)
	}
	return rows, nil
}

// ExperimentRow is one layout variant's published totals.
type ExperimentRow struct {
	Variant                   string
	Visitors, Buyers, Revenue float64
	Cells                     int
}

// arms are the variant's conversion (buyers per visitor-day) and revenue
// per visitor-day, with the noise of its cells, for internal/abtest.
func (r ExperimentRow) arms(noise map[string]float64) (abtest.Arm, abtest.Mean) {
	return abtest.Arm{Name: r.Variant, Trials: r.Visitors, Successes: r.Buyers, Cells: r.Cells, SigmaTrials: noise["visitors"], SigmaSuccesses: noise["buyers"]},
		abtest.Mean{Name: r.Variant, N: r.Visitors, Sum: r.Revenue, Cells: r.Cells, SigmaN: noise["visitors"], SigmaSum: noise["revenue"], Cap: experimentRevenueCap}
}

// experiments sums the period's experiment cells per variant, with the
// grain read and the noise of one cell of that grain.
func (s *store) experiments(ctx context.Context, f filters) ([]ExperimentRow, string, map[string]float64, error) {
	out, err := typed(ctx, s, "experiments", f, func(t []string, n []float64) ExperimentRow {
		return ExperimentRow{Variant: t[0], Visitors: n[1], Buyers: n[2], Revenue: n[3], Cells: int(n[4])}
	})
	if err != nil {
		return nil, "", nil, err
	}
	grain, err := s.grainOf(ctx, "experiments", f.site, f.r)
	if err != nil {
		return nil, "", nil, err
	}
	noise, err := s.sigmas(ctx, "experiments", f.site, grain)
	return out, grain, noise, err
}

// TermRow is a search term's published totals.
type TermRow struct {
	Term                            string
	Searches, ZeroResults, Visitors float64
}

func (s *store) terms(ctx context.Context, name string, f filters) ([]TermRow, error) {
	return typed(ctx, s, name, f, func(t []string, n []float64) TermRow {
		if name == "search_zero" { // its columns: term, zero-result searches, searches, visitors
			return TermRow{Term: t[0], ZeroResults: n[1], Searches: n[2], Visitors: n[3]}
		}
		return TermRow{Term: t[0], Searches: n[1], ZeroResults: n[2], Visitors: n[3]}
	})
}

// PeriodSearches are the searches of one published bucket.
type PeriodSearches struct {
	Period                string
	Searches, ZeroResults float64
}

func (s *store) searchTrend(ctx context.Context, f filters) ([]PeriodSearches, error) {
	return typed(ctx, s, "search_trend", f, func(t []string, n []float64) PeriodSearches {
		return PeriodSearches{Period: t[0], Searches: n[1], ZeroResults: n[2]}
	})
}

// DaypartRow is a category's views in one part of the day.
type DaypartRow struct {
	Category, Daypart string
	Views, Visitors   float64
}

func (s *store) dayparts(ctx context.Context, f filters) ([]DaypartRow, error) {
	return typed(ctx, s, "category_dayparts", f, func(t []string, n []float64) DaypartRow {
		return DaypartRow{Category: t[0], Daypart: t[1], Views: n[2], Visitors: n[3]}
	})
}

// FunnelCell is one funnel step's visitor-days on one device ("other":
// the devices below the threshold).
type FunnelCell struct {
	Funnel, Device string
	Step           int
	Visitors       float64
}

func (s *store) funnelCells(ctx context.Context, f filters) ([]FunnelCell, error) {
	return typed(ctx, s, "funnels", f, func(t []string, n []float64) FunnelCell {
		return FunnelCell{Funnel: t[0], Step: int(n[1]), Device: t[2], Visitors: n[3]}
	})
}

// SegmentCell is one funnel step's visitor-days in one segment (a layout
// variant or a traffic source), summed over Cells cells.
type SegmentCell struct {
	Funnel, Kind, Segment string
	Step                  int
	Visitors              float64
	Cells                 int
}

func (s *store) segmentCells(ctx context.Context, f filters) ([]SegmentCell, error) {
	return typed(ctx, s, "funnel_segments", f, func(t []string, n []float64) SegmentCell {
		return SegmentCell{Funnel: t[0], Step: int(n[1]), Kind: t[2], Segment: t[3], Visitors: n[4], Cells: int(n[5])}
	})
}

// PositionRow is one list position's published totals.
type PositionRow struct {
	ListKind            string
	Position            int
	Impressions, Clicks float64
}

func (s *store) positions(ctx context.Context, f filters) ([]PositionRow, error) {
	return typed(ctx, s, "positions", f, func(t []string, n []float64) PositionRow {
		return PositionRow{ListKind: t[0], Position: int(n[1]), Impressions: n[2], Clicks: n[3]}
	})
}

// HabitRow is one weekday and hour's visitor-days.
type HabitRow struct {
	Weekday, Hour       int
	Visitors, Pageviews float64
}

func (s *store) habits(ctx context.Context, f filters) ([]HabitRow, error) {
	return typed(ctx, s, "habits", f, func(_ []string, n []float64) HabitRow {
		return HabitRow{Weekday: int(n[0]), Hour: int(n[1]), Visitors: n[2], Pageviews: n[3]}
	})
}

// TrafficRow is one value of a traffic dimension (device, browser, entry
// page, referrer host).
type TrafficRow struct {
	Dimension, Value            string
	Visitors, Sessions, Bounces float64
}

func (s *store) audience(ctx context.Context, f filters) ([]TrafficRow, error) {
	return typed(ctx, s, "audience", f, func(t []string, n []float64) TrafficRow {
		return TrafficRow{Dimension: t[0], Value: t[1], Visitors: n[2], Sessions: n[3]}
	})
}

// sources are the entry pages or referrer hosts (name "entries" or
// "referrers").
func (s *store) sources(ctx context.Context, name string, f filters) ([]TrafficRow, error) {
	return typed(ctx, s, name, f, func(t []string, n []float64) TrafficRow {
		return TrafficRow{Dimension: name, Value: strings.TrimSpace(t[0]), Sessions: n[1], Bounces: n[2], Visitors: n[3]}
	})
}

// firstDay is the first day with a published cell of site (zero when
// none), from the publisher's run log.
func (s *store) firstDay(ctx context.Context, site string) (time.Time, error) {
	fetch := func() (time.Time, error) {
		var t time.Time
		err := s.q.Select(ctx, "SELECT min(bucket), count() FROM "+s.db+".rollup_runs WHERE state = 'published' AND site = "+clickhouse.Quote(site), func(b *proto.Block) error {
			if b.Rows() > 0 && clickhouse.Get[uint64](b, 1, 0) > 0 {
				t = clickhouse.Get[time.Time](b, 0, 0).UTC()
			}
			return nil
		})
		if err != nil {
			return t, fmt.Errorf("first published day: %w", err)
		}
		return t, nil
	}
	if s.firstDays == nil {
		return fetch()
	}
	return s.firstDays.get(site, false, fetch) // every page asks
}

// sites lists the sites with published data.
func (s *store) sites(ctx context.Context) ([]string, error) {
	var out []string
	err := s.q.Select(ctx, "SELECT DISTINCT site FROM "+s.db+".rollup_runs ORDER BY site", func(b *proto.Block) error {
		for i := 0; i < b.Rows(); i++ {
			out = append(out, clickhouse.Get[string](b, 0, i))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sites: %w", err)
	}
	return out, nil
}
