package dashboard

import (
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/herd-analytics/herd/internal/clickhouse"
)

// filters are a request's choices, all in its URL so that a link shares
// the view: the site, the period, and the published dimensions a page can
// narrow to (device where the tables carry it, layout variant).
type filters struct {
	site   string
	preset string
	// chosen: the range came from the request, not a page's default; only
	// a chosen range follows the user to the other pages.
	chosen bool
	r      Range
	// device narrows the tables that carry one (categories, funnels,
	// habits) to that device's cells; "" is every device.
	device string
	// variant narrows the layout's slots, and the funnels, to one layout
	// variant.
	variant string
	// source narrows the funnels to one traffic source.
	source string
}

// sources are the traffic sources the funnel segments publish.
var sources = []string{"direct", "search", "referral"}

// devices are the device classes the rollups publish.
var devices = []string{"desktop", "mobile", "tablet"}

var variantName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,40}$`)

// request reads a page or API request's filters against the sites that
// have published data.
func (d *Dashboard) request(c *fiber.Ctx) (filters, []string, error) {
	sites, err := d.sites(c.UserContext(), c.Query("site"))
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
	f := filters{site: c.Query("site"), preset: c.Query("range"), device: c.Query("device"), variant: c.Query("variant"), source: c.Query("source")}
	switch {
	case f.site == "" && len(sites) > 0:
		f.site = sites[0]
	case f.site != "" && !slices.Contains(sites, f.site):
		// Only sites with published data exist here: anything else would
		// reach report names and headers as sent.
		return f, fiber.NewError(fiber.StatusBadRequest, "site: not a site with published data")
	}
	if f.device != "" && !slices.Contains(devices, f.device) {
		return f, fiber.NewError(fiber.StatusBadRequest, "device: one of "+strings.Join(devices, ", "))
	}
	if f.variant != "" && !variantName.MatchString(f.variant) {
		return f, fiber.NewError(fiber.StatusBadRequest, "variant: letters, digits, '.', '_' or '-', at most 40")
	}
	if f.source != "" && !slices.Contains(sources, f.source) {
		return f, fiber.NewError(fiber.StatusBadRequest, "source: one of "+strings.Join(sources, ", "))
	}
	// Dates without a preset are a custom range: a link may carry from and
	// to alone.
	if f.preset == "" && (c.Query("from") != "" || c.Query("to") != "") {
		f.preset = "custom"
	}
	f.chosen = f.preset != ""
	if f.preset == "" {
		f.preset = def
	}
	r, err := presetRange(f.preset, d.now(), c.Query("from"), c.Query("to"))
	f.r = r
	return f, err
}

// presetRange is the days a preset covers on the day of now; custom reads
// from and to (inclusive days, YYYY-MM-DD; one day is a range).
func presetRange(preset string, now time.Time, from, to string) (Range, error) {
	today := now.UTC().Truncate(24 * time.Hour)
	monday := today.AddDate(0, 0, -((int(today.Weekday()) + 6) % 7))
	first := time.Date(today.Year(), today.Month(), 1, 0, 0, 0, 0, time.UTC)
	switch preset {
	case "week":
		return Range{From: monday.AddDate(0, 0, -7), To: monday}, nil
	case "4w":
		return Range{From: monday.AddDate(0, 0, -28), To: monday}, nil
	case "month":
		return Range{From: first.AddDate(0, -1, 0), To: first}, nil
	case "3m":
		return Range{From: first.AddDate(0, -3, 0), To: first}, nil
	case "mtd":
		if !today.After(first) { // the 1st: yesterday's month so far
			return Range{From: first.AddDate(0, -1, 0), To: today}, nil
		}
		return Range{From: first, To: today}, nil
	case "7d", "28d", "90d":
		n, _ := strconv.Atoi(strings.TrimSuffix(preset, "d"))
		return Range{From: today.AddDate(0, 0, -n), To: today}, nil
	case "custom":
		f, err1 := time.Parse(time.DateOnly, from)
		t, err2 := time.Parse(time.DateOnly, to)
		if err1 != nil || err2 != nil || t.Before(f) || t.Sub(f) >= 400*24*time.Hour {
			return Range{}, fiber.NewError(fiber.StatusBadRequest, "custom range: from and to as YYYY-MM-DD, to on or after from, at most 400 days")
		}
		return Range{From: f, To: t.AddDate(0, 0, 1)}, nil
	}
	return Range{}, fiber.NewError(fiber.StatusBadRequest, "range: one of week, 4w, month, 3m, mtd, 7d, 28d, 90d, custom")
}

// values are the filters as query parameters; with range false, the period
// is left out (each page then opens at its own default).
func (f filters) values(withRange bool) url.Values {
	v := url.Values{"site": {f.site}}
	if withRange {
		v.Set("range", f.preset)
		if f.preset == "custom" {
			v.Set("from", f.r.From.Format(time.DateOnly))
			v.Set("to", f.r.To.AddDate(0, 0, -1).Format(time.DateOnly))
		}
	}
	if f.device != "" {
		v.Set("device", f.device)
	}
	if f.variant != "" {
		v.Set("variant", f.variant)
	}
	if f.source != "" {
		v.Set("source", f.source)
	}
	return v
}

// query is the link to the same view: every filter.
func (f filters) query() string { return "?" + f.values(true).Encode() }

// navQuery is what links to the other pages carry: the site and
// dimensions, and the range when the user chose one.
func (f filters) navQuery() string { return "?" + f.values(f.chosen).Encode() }

// deviceCells narrows a table with a device column to the chosen device's
// own cells ("" for every device): the other rows, which pool devices
// below the threshold, belong to no one device.
func (f filters) deviceCells() string {
	if f.device == "" {
		return ""
	}
	return " AND other = 0 AND device = " + clickhouse.Quote(f.device)
}

// segment is the funnel segment the filters choose: a layout variant or a
// traffic source (a variant first); ok false for none.
func (f filters) segment() (kind, value string, ok bool) {
	switch {
	case f.variant != "":
		return "variant", f.variant, true
	case f.source != "":
		return "source", f.source, true
	}
	return "", "", false
}

// variantCells narrows the slots to the chosen layout variant.
func (f filters) variantCells() string {
	if f.variant == "" {
		return ""
	}
	return " AND variant = " + clickhouse.Quote(f.variant)
}
