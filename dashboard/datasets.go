package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"github.com/gofiber/fiber/v2"

	"github.com/herd-analytics/herd/internal/clickhouse"
)

// A dataset is one widget's rows: what a chart or table shows, served as
// /api/v1/<name> in JSON or CSV. Each is a GROUP BY over the published
// cells of the filtered range, of the one grain that tiles it (store.cells).
type dataset struct {
	roles  []Role
	header []string
	query  func(s *store, f filters) string
}

var datasets = map[string]dataset{
	"search": {roles: []Role{Merchandiser, Manager, Admin}, header: []string{"term", "searches", "zero_result_searches", "visitors"},
		query: func(s *store, f filters) string {
			return "SELECT term, sum(searches) AS n, sum(zero_results), sum(visitors) FROM " + s.db + ".searches WHERE " + s.cells("searches", f.site, f.r) +
				" GROUP BY term ORDER BY n DESC, term LIMIT 50"
		}},
	"search_zero": {roles: []Role{Merchandiser, Manager, Admin}, header: []string{"term", "zero_result_searches", "searches", "visitors"},
		query: func(s *store, f filters) string {
			return "SELECT term, sum(zero_results) AS z, sum(searches), sum(visitors) FROM " + s.db + ".searches WHERE " + s.cells("searches", f.site, f.r) +
				" GROUP BY term HAVING z > 0 ORDER BY z DESC, term LIMIT 50"
		}},
	"search_trend": {roles: []Role{Merchandiser, Manager, Admin}, header: []string{"day", "searches", "zero_result_searches"},
		query: func(s *store, f filters) string {
			return "SELECT toString(toDate(bucket)), sum(searches), sum(zero_results) FROM " + s.db + ".searches WHERE " + s.cells("searches", f.site, f.r) +
				" GROUP BY bucket ORDER BY bucket"
		}},
	"category_revenue": {roles: []Role{Merchandiser, Manager, Admin}, header: []string{"category", "views", "purchases", "revenue"},
		query: func(s *store, f filters) string {
			// Product rows and other rows of one release and grain: a
			// category's products below the threshold are in its total.
			// Listed products' revenue at list price (productRevenue).
			return "SELECT category, sum(views), sum(purchases), sum(" + productRevenue + ") AS r FROM " + s.db + ".products" + s.withListPrice(f.site) + " WHERE " + s.cellsAndOther("products", f.site, f.r) +
				" AND category != '' GROUP BY category ORDER BY r DESC, category"
		}},
	"category_dayparts": {roles: []Role{Merchandiser, Manager, Admin}, header: []string{"category", "daypart", "views", "visitors"},
		query: func(s *store, f filters) string {
			return "SELECT category, daypart, sum(views), sum(visitors) FROM " + s.db + ".category_dayparts WHERE " + s.cells("category_dayparts", f.site, f.r) +
				" GROUP BY category, daypart ORDER BY category, daypart"
		}},
	"funnels": {roles: []Role{UX, Manager, Admin}, header: []string{"funnel", "step", "device", "visitors"},
		query: func(s *store, f filters) string {
			// Other rows hold the devices below the threshold, so that a
			// step's devices add up to the step.
			return "SELECT funnel, step, if(other = 1, 'other', device) AS dev, sum(visitors) FROM " + s.db + ".funnels WHERE " + s.cellsAndOther("funnels", f.site, f.r) + f.deviceCells() +
				" GROUP BY funnel, step, dev ORDER BY funnel, step, dev"
		}},
	"funnel_segments": {roles: []Role{UX, Manager, Admin}, header: []string{"funnel", "step", "segment_kind", "segment", "visitors", "cells"},
		query: func(s *store, f filters) string {
			narrow := ""
			if kind, value, ok := f.segment(); ok {
				narrow = " AND segment_kind = " + clickhouse.Quote(kind) + " AND segment = " + clickhouse.Quote(value)
			}
			return "SELECT funnel, step, segment_kind, segment, sum(visitors), count() FROM " + s.db + ".funnel_segments WHERE " + s.cells("funnel_segments", f.site, f.r) + narrow +
				" GROUP BY funnel, step, segment_kind, segment ORDER BY funnel, segment_kind, segment, step"
		}},
	"slots": {roles: []Role{UX, Manager, Admin}, header: []string{"page_type", "slot", "variant", "impressions", "clicks", "cells"},
		query: func(s *store, f filters) string {
			return "SELECT page_type, slot, variant, sum(impressions), sum(clicks), count() FROM " + s.db + ".slots WHERE " + s.cells("slots", f.site, f.r) + f.variantCells() +
				" GROUP BY page_type, slot, variant ORDER BY page_type, slot, variant"
		}},
	"experiments": {roles: []Role{UX, Manager, Admin}, header: []string{"variant", "visitors", "buyers", "revenue", "cells"},
		query: func(s *store, f filters) string {
			return "SELECT variant, sum(visitors), sum(buyers), sum(revenue), count() FROM " + s.db + ".experiments WHERE " + s.cells("experiments", f.site, f.r) + f.variantCells() +
				" GROUP BY variant ORDER BY variant"
		}},
	"positions": {roles: []Role{UX, Manager, Admin}, header: []string{"list_kind", "position", "impressions", "clicks"},
		query: func(s *store, f filters) string {
			return "SELECT list_kind, position, sum(impressions), sum(clicks) FROM " + s.db + ".positions WHERE " + s.cells("positions", f.site, f.r) +
				" GROUP BY list_kind, position ORDER BY list_kind, position"
		}},
	"habits": {header: []string{"weekday", "hour", "visitors", "pageviews"},
		query: func(s *store, f filters) string {
			return "SELECT weekday, hour, sum(visitors), sum(pageviews) FROM " + s.db + ".habits WHERE " + s.cells("habits", f.site, f.r) + f.deviceCells() +
				" GROUP BY weekday, hour ORDER BY weekday, hour"
		}},
	"audience": {header: []string{"dimension", "value", "visitors", "sessions"},
		query: func(s *store, f filters) string {
			return "SELECT dimension, value, sum(visitors) AS v, sum(sessions) FROM " + s.db + ".traffic WHERE " + s.cells("traffic", f.site, f.r) +
				" AND dimension IN ('device', 'browser', 'os', 'country') GROUP BY dimension, value ORDER BY dimension, v DESC, value"
		}},
	"entries": {header: []string{"entry_page", "sessions", "bounces", "visitors"},
		query: func(s *store, f filters) string {
			return "SELECT value, sum(sessions) AS n, sum(bounces), sum(visitors) FROM " + s.db + ".traffic WHERE " + s.cells("traffic", f.site, f.r) +
				" AND dimension = 'entry' GROUP BY value ORDER BY n DESC, value LIMIT 30"
		}},
	"referrers": {header: []string{"referrer_host", "sessions", "bounces", "visitors"},
		query: func(s *store, f filters) string {
			return "SELECT if(value = '', '(direct)', value), sum(sessions) AS n, sum(bounces), sum(visitors) FROM " + s.db + ".traffic WHERE " + s.cells("traffic", f.site, f.r) +
				" AND dimension = 'referrer' GROUP BY value ORDER BY n DESC, value LIMIT 30"
		}},
}

// rows runs a dataset's query; every value comes back as text (for tables
// and CSV) and as a number where it is one (for charts; NaN where not).
func (s *store) rows(ctx context.Context, q string) ([][]string, [][]float64, error) {
	var text [][]string
	var nums [][]float64
	err := s.q.Select(ctx, q, func(b *proto.Block) error {
		for i := 0; i < b.Rows(); i++ {
			t := make([]string, len(b.Columns))
			n := make([]float64, len(b.Columns))
			for j, c := range b.Columns {
				switch v := c.Row(i, false).(type) {
				case string:
					t[j], n[j] = v, math.NaN()
				case uint64:
					t[j], n[j] = strconv.FormatUint(v, 10), float64(v)
				case uint8:
					t[j], n[j] = strconv.Itoa(int(v)), float64(v)
				case uint16:
					t[j], n[j] = strconv.Itoa(int(v)), float64(v)
				case uint32:
					t[j], n[j] = strconv.FormatUint(uint64(v), 10), float64(v)
				case int64:
					t[j], n[j] = strconv.FormatInt(v, 10), float64(v)
				case int32:
					t[j], n[j] = strconv.FormatInt(int64(v), 10), float64(v)
				case float64:
					t[j], n[j] = strconv.FormatFloat(v, 'f', 2, 64), v
				default:
					t[j], n[j] = fmt.Sprint(v), math.NaN()
				}
			}
			text, nums = append(text, t), append(nums, n)
		}
		return nil
	})
	return text, nums, err
}

// apiDataset serves /api/v1/:name for the datasets above.
func (d *Dashboard) apiDataset(c *fiber.Ctx) error {
	ds, ok := datasets[c.Params("name")]
	if !ok {
		return fiber.NewError(fiber.StatusNotFound, "no such dataset")
	}
	if s := sessionOf(c); len(ds.roles) > 0 && !slices.Contains(ds.roles, s.user.Role) {
		return fiber.NewError(fiber.StatusForbidden, "your role ("+string(s.user.Role)+") does not include this data")
	}
	f, _, err := d.request(c)
	if err != nil {
		return err
	}
	text, nums, err := d.store.rows(c.UserContext(), ds.query(d.store, f))
	if err != nil {
		return err
	}
	// Numbers are JSON numbers, text is text: a column is numeric when
	// ClickHouse answers it as one (rows leaves text columns NaN).
	var out []map[string]any
	for _, r := range text {
		m := map[string]any{}
		for i, h := range ds.header {
			if !math.IsNaN(nums[0][i]) {
				m[h] = json.Number(r[i])
			} else {
				m[h] = r[i]
			}
		}
		out = append(out, m)
	}
	return d.answer(c, c.Params("name"), ds.header, text, out)
}

// typed runs dataset name for f and decodes each row into a T: the pages
// read typed rows, the API and CSV the same rows as text.
func typed[T any](ctx context.Context, s *store, name string, f filters, decode func(text []string, num []float64) T) ([]T, error) {
	text, nums, err := s.load(ctx, name, f)
	if err != nil {
		return nil, err
	}
	out := make([]T, len(text))
	for i := range text {
		out[i] = decode(text[i], nums[i])
	}
	return out, nil
}

// load runs dataset name for f.
func (s *store) load(ctx context.Context, name string, f filters) ([][]string, [][]float64, error) {
	text, nums, err := s.rows(ctx, datasets[name].query(s, f))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return text, nums, nil
}
