package dashboard

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

func (d *Dashboard) apiKPIs(c *fiber.Ctx) error {
	f, _, err := d.apiRequest(c)
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
	f, _, err := d.apiRequest(c, "by", "limit", "category")
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
	f, _, err := d.apiRequest(c, "device")
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

// apiDataset serves /api/v1/:name for datasets.
func (d *Dashboard) apiDataset(c *fiber.Ctx) error {
	ds, ok := datasets[c.Params("name")]
	if !ok {
		return fiber.NewError(fiber.StatusNotFound, "no such dataset")
	}
	if s := sessionOf(c); len(ds.roles) > 0 && !slices.Contains(ds.roles, s.user.Role) {
		return fiber.NewError(fiber.StatusForbidden, "your role ("+string(s.user.Role)+") does not include this data")
	}
	f, _, err := d.apiRequest(c, ds.params...)
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

// apiProduct serves one product's detail as JSON, or its week and month
// cells as CSV.
func (d *Dashboard) apiProduct(c *fiber.Ctx) error {
	f, _, err := d.apiRequest(c)
	if err != nil {
		return err
	}
	id, err := productID(c)
	if err != nil {
		return err
	}
	pd, err := d.store.product(c.UserContext(), f, id)
	if err != nil {
		return err
	}
	header := []string{"grain", "bucket", "views", "adds", "purchases", "revenue"}
	var recs [][]string
	for _, g := range []struct {
		name string
		pts  []ProductPoint
	}{{"week", pd.Weeks}, {"month", pd.Months}} {
		for _, p := range g.pts {
			recs = append(recs, []string{g.name, p.Bucket.Format(time.DateOnly), u(p.Views), u(p.Adds), u(p.Purchases), money2(p.Revenue)})
		}
	}
	return d.answer(c, "product", header, recs, pd)
}

// datasets are the widgets' rows the API serves as /api/v1/<name>.
var datasets = byName(
	searchTermsDataset, zeroResultTermsDataset, searchTrendDataset,
	categoryRevenueDataset, categoryDaypartsDataset,
	funnelStepsDataset, funnelSegmentsDataset,
	slotCellsDataset, experimentArmsDataset, listPositionsDataset,
	weekHoursDataset, audienceValuesDataset, entryPagesDataset, referrerHostsDataset,
)

func byName(sets ...dataset) map[string]dataset {
	m := make(map[string]dataset, len(sets))
	for _, ds := range sets {
		m[ds.name] = ds
	}
	return m
}

// apiRequest is request for an API call that takes params beyond the site,
// the period and the format: any other parameter, a format but JSON or
// CSV, or a variant no slot published in the period is a 400 that names
// it, never an answer that silently ignores it.
func (d *Dashboard) apiRequest(c *fiber.Ctx, params ...string) (filters, []string, error) {
	allowed := append([]string{"site", "range", "from", "to", "format"}, params...)
	for key := range c.Queries() {
		if !slices.Contains(allowed, key) {
			return filters{}, nil, fiber.NewError(fiber.StatusBadRequest, key+": not a parameter of "+c.Path()+" (it takes "+strings.Join(allowed, ", ")+")")
		}
	}
	if format := c.Query("format"); format != "" && format != "json" && format != "csv" {
		return filters{}, nil, fiber.NewError(fiber.StatusBadRequest, "format: json or csv")
	}
	f, sites, err := d.request(c)
	if err != nil || f.variant == "" {
		return f, sites, err
	}
	all := f
	all.variant = ""
	variants, err := d.store.variants(c.UserContext(), all)
	if err != nil {
		return f, sites, err
	}
	if !slices.Contains(variants, f.variant) {
		return f, sites, fiber.NewError(fiber.StatusBadRequest, "variant: not a variant published in this period ("+strings.Join(variants, ", ")+")")
	}
	return f, sites, nil
}
