package dashboard

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/herd-analytics/herd/internal/clickhouse"
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
func (r Range) Previous() Range { return Range{From: r.From.Add(-r.To.Sub(r.From)), To: r.From} }

func (r Range) where(site string) string {
	return "site = " + clickhouse.Quote(site) + " AND grain = 'day' AND bucket >= toDateTime(" + clickhouse.QuoteInt(r.From.Unix()) +
		") AND bucket < toDateTime(" + clickhouse.QuoteInt(r.To.Unix()) + ")"
}

// store reads published rollups. Every number it returns is a sum of
// published (k-anonymous, noised) daily cells; nothing else exists to read.
type store struct {
	q  Querier
	db string
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

// DayKPIs is one day's published KPIs.
type DayKPIs struct {
	Day time.Time
	KPIs
}

// kpis returns the range's daily KPIs, one entry per day with a published
// row (days whose cell was suppressed are absent).
func (s *store) kpis(ctx context.Context, site string, r Range) ([]DayKPIs, error) {
	var out []DayKPIs
	err := s.q.Select(ctx, "SELECT bucket, visitors, sessions, pageviews, orders, buyers, revenue FROM "+s.db+".kpis WHERE "+r.where(site)+" ORDER BY bucket",
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
	Category  string  `json:"category"`
	Visitors  uint64  `json:"visitors"`
	Views     uint64  `json:"views"`
	Adds      uint64  `json:"adds"`
	Purchases uint64  `json:"purchases"`
	Revenue   float64 `json:"revenue"`
	// Previous is the same product's views in the previous period; Trend is
	// the growth against it when both periods have at least minTrendBase
	// views (noise does not trend), else 0.
	Previous uint64  `json:"previous_views"`
	Trend    float64 `json:"trend"`
}

// minTrendBase is the fewest views in both periods for a growth figure: on
// smaller bases the DP noise alone would make products "trend".
const minTrendBase = 200

// productSort are the orders hot products can be ranked by.
var productSort = map[string]string{"views": "views", "adds": "adds", "purchases": "purchases", "revenue": "revenue", "visitors": "visitors"}

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
	q := "SELECT any(product_id), any(category), sum(visitors), sum(views), sum(adds), sum(purchases), sum(revenue) FROM " + s.db +
		".products WHERE " + r.where(site) + filter + " GROUP BY cityHash64(product_id) ORDER BY sum(" + col + ") DESC LIMIT " + clickhouse.QuoteInt(limit)
	var out []ProductRow
	err := s.q.Select(ctx, q, func(b *proto.Block) error {
		for i := 0; i < b.Rows(); i++ {
			out = append(out, ProductRow{
				ProductID: clickhouse.Get[string](b, 0, i), Category: clickhouse.Get[string](b, 1, i),
				Visitors: clickhouse.Get[uint64](b, 2, i), Views: clickhouse.Get[uint64](b, 3, i),
				Adds: clickhouse.Get[uint64](b, 4, i), Purchases: clickhouse.Get[uint64](b, 5, i),
				Revenue: clickhouse.Get[float64](b, 6, i),
			})
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
	previous := map[string]uint64{}
	err = s.q.Select(ctx, "SELECT product_id, sum(views) FROM "+s.db+".products WHERE "+r.Previous().where(site)+
		" AND product_id IN ("+strings.Join(ids, ", ")+") GROUP BY product_id", func(b *proto.Block) error {
		for i := 0; i < b.Rows(); i++ {
			previous[clickhouse.Get[string](b, 0, i)] = clickhouse.Get[uint64](b, 1, i)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("products, previous period: %w", err)
	}
	for i := range out {
		p := &out[i]
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

// CategoryShare is one category's views by device over a range.
type CategoryShare struct {
	Category string            `json:"category"`
	Views    map[string]uint64 `json:"views_by_device"`
}

func (s *store) categories(ctx context.Context, site string, r Range) ([]CategoryShare, error) {
	by := map[string]map[string]uint64{}
	err := s.q.Select(ctx, "SELECT category, device, sum(views) FROM "+s.db+".categories WHERE "+r.where(site)+" GROUP BY category, device",
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
