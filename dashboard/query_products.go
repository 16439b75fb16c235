package dashboard

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"golang.org/x/sync/errgroup"

	"github.com/herd-analytics/herd/internal/clickhouse"
)

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
	// views (noise does not trend), else 0. Both are 0 unless both periods
	// are published whole: no comparison with a partly published period.
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
	classes, counts, err := s.productNoiseClasses(ctx, site, grain, r)
	if err != nil {
		return nil, err
	}
	q := "SELECT any(product_id), any(category), sum(visitors), sum(views), sum(adds), sum(purchases), sum(revenue), any(list_price)" + counts + " FROM " + s.db +
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
		if ok, _, err := s.comparable(gctx, "products", site, r); err != nil || !ok {
			return err
		}
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
	Bucket    time.Time `json:"bucket"`
	Views     uint64    `json:"views"`
	Adds      uint64    `json:"adds"`
	Purchases uint64    `json:"purchases"`
	Revenue   float64   `json:"revenue"`
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
	// The product's noise, as for the ranking.
	classes, counts, err := s.productNoiseClasses(ctx, f.site, grain, f.r)
	if err != nil {
		return pd, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		err := s.q.Select(gctx, "SELECT count(), any(category), sum(visitors), sum(views), sum(clicks), sum(adds), sum(purchases), sum(revenue)"+counts+" FROM "+s.db+
			".products WHERE "+cellsOf(f.site, f.r, grain)+" AND product_id = "+q, func(b *proto.Block) error {
			if b.Rows() == 0 || clickhouse.Get[uint64](b, 0, 0) == 0 {
				return nil
			}
			pd.Published = true
			pd.Category = clickhouse.Get[string](b, 1, 0)
			pd.Visitors, pd.Views, pd.Clicks = clickhouse.Get[uint64](b, 2, 0), clickhouse.Get[uint64](b, 3, 0), clickhouse.Get[uint64](b, 4, 0)
			pd.Adds, pd.Purchases, pd.Revenue = clickhouse.Get[uint64](b, 5, 0), clickhouse.Get[uint64](b, 6, 0), clickhouse.Get[float64](b, 7, 0)
			cells := make([]cellNoise, len(classes))
			for ci, c := range classes {
				cells[ci] = cellNoise{n: float64(clickhouse.Get[uint64](b, 8+ci, 0)), sigma: c.sigma}
			}
			pd.Noise = sumNoise(cells)
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
	return typed(ctx, s, categoryRevenueDataset, f, func(r row) CategoryRevenue {
		return CategoryRevenue{Category: r.str("category"), Views: uint64(r.num("views")), Purchases: uint64(r.num("purchases")), Revenue: r.num("revenue")}
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

// DaypartRow is a category's views in one part of the day.
type DaypartRow struct {
	Category, Daypart string
	Views, Visitors   float64
}

func (s *store) dayparts(ctx context.Context, f filters) ([]DaypartRow, error) {
	return typed(ctx, s, categoryDaypartsDataset, f, func(r row) DaypartRow {
		return DaypartRow{Category: r.str("category"), Daypart: r.str("daypart"), Views: r.num("views"), Visitors: r.num("visitors")}
	})
}

// categoryRevenueDataset is the category_revenue dataset (/api/v1/category_revenue).
var categoryRevenueDataset = dataset{name: "category_revenue", roles: []Role{Merchandiser, Manager, Admin}, header: []string{"category", "views", "purchases", "revenue"},
	query: func(s *store, f filters) string {
		// Product rows and other rows of one release and grain: a
		// category's products below the threshold are in its total.
		// Listed products' revenue at list price (productRevenue).
		return "SELECT category, sum(views), sum(purchases), sum(" + productRevenue + ") AS r FROM " + s.db + ".products" + s.withListPrice(f.site) + " WHERE " + s.cellsAndOther("products", f.site, f.r) +
			" AND category != '' GROUP BY category ORDER BY r DESC, category"
	}}

// categoryDaypartsDataset is the category_dayparts dataset (/api/v1/category_dayparts).
var categoryDaypartsDataset = dataset{name: "category_dayparts", roles: []Role{Merchandiser, Manager, Admin}, header: []string{"category", "daypart", "views", "visitors"},
	query: func(s *store, f filters) string {
		return "SELECT category, daypart, sum(views), sum(visitors) FROM " + s.db + ".category_dayparts WHERE " + s.cells("category_dayparts", f.site, f.r) +
			" GROUP BY category, daypart ORDER BY category, daypart"
	}}

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

// productNoiseClasses are the classes of r's product buckets at grain that
// share a recorded σ, and the SELECT columns (", countIf(…)" each) that
// count a product's cells in each.
func (s *store) productNoiseClasses(ctx context.Context, site, grain string, r Range) ([]noiseClass, string, error) {
	noise, err := s.releaseSigmas(ctx, "products", site, grain, r, false)
	if err != nil {
		return nil, "", err
	}
	classes := noiseClasses(noise)
	var counts strings.Builder
	for _, c := range classes {
		counts.WriteString(", countIf(bucket IN (" + strings.Join(c.buckets, ", ") + "))")
	}
	return classes, counts.String(), nil
}
