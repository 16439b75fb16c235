package dashboard

import (
	"net/url"
	"regexp"
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
