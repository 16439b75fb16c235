package dashboard

import (
	"context"
	"strings"
)

// HabitRow is one weekday and hour's visitor-days.
type HabitRow struct {
	Weekday, Hour       int
	Visitors, Pageviews float64
}

func (s *store) habits(ctx context.Context, f filters) ([]HabitRow, error) {
	return typed(ctx, s, weekHoursDataset, f, func(r row) HabitRow {
		return HabitRow{Weekday: r.int("weekday"), Hour: r.int("hour"), Visitors: r.num("visitors"), Pageviews: r.num("pageviews")}
	})
}

// TrafficRow is one value of a traffic dimension (device, browser, entry
// page, referrer host).
type TrafficRow struct {
	Dimension, Value            string
	Visitors, Sessions, Bounces float64
}

func (s *store) audience(ctx context.Context, f filters) ([]TrafficRow, error) {
	return typed(ctx, s, audienceValuesDataset, f, func(r row) TrafficRow {
		return TrafficRow{Dimension: r.str("dimension"), Value: r.str("value"), Visitors: r.num("visitors"), Sessions: r.num("sessions")}
	})
}

// sources are the entry pages or referrer hosts (entryPagesDataset or
// referrerHostsDataset), named in their first column.
func (s *store) sources(ctx context.Context, ds dataset, f filters) ([]TrafficRow, error) {
	return typed(ctx, s, ds, f, func(r row) TrafficRow {
		return TrafficRow{Dimension: ds.name, Value: strings.TrimSpace(r.str(ds.header[0])), Sessions: r.num("sessions"), Bounces: r.num("bounces"), Visitors: r.num("visitors")}
	})
}

// weekHoursDataset is the habits dataset (/api/v1/habits).
var weekHoursDataset = dataset{name: "habits", params: []string{"device"}, header: []string{"weekday", "hour", "visitors", "pageviews"},
	query: func(s *store, f filters) string {
		return "SELECT weekday, hour, sum(visitors), sum(pageviews) FROM " + s.db + ".habits WHERE " + s.cells("habits", f.site, f.r) + f.deviceCells() +
			" GROUP BY weekday, hour ORDER BY weekday, hour"
	}}

// audienceValuesDataset is the audience dataset (/api/v1/audience).
var audienceValuesDataset = dataset{name: "audience", header: []string{"dimension", "value", "visitors", "sessions"},
	query: func(s *store, f filters) string {
		return "SELECT dimension, value, sum(visitors) AS v, sum(sessions) FROM " + s.db + ".traffic WHERE " + s.cells("traffic", f.site, f.r) +
			" AND dimension IN ('device', 'browser', 'os', 'country') GROUP BY dimension, value ORDER BY dimension, v DESC, value"
	}}

// entryPagesDataset is the entries dataset (/api/v1/entries).
var entryPagesDataset = dataset{name: "entries", header: []string{"entry_page", "sessions", "bounces", "visitors"},
	query: func(s *store, f filters) string {
		return "SELECT value, sum(sessions) AS n, sum(bounces), sum(visitors) FROM " + s.db + ".traffic WHERE " + s.cells("traffic", f.site, f.r) +
			" AND dimension = 'entry' GROUP BY value ORDER BY n DESC, value LIMIT 30"
	}}

// referrerHostsDataset is the referrers dataset (/api/v1/referrers).
var referrerHostsDataset = dataset{name: "referrers", header: []string{"referrer_host", "sessions", "bounces", "visitors"},
	query: func(s *store, f filters) string {
		return "SELECT if(value = '', '(direct)', value), sum(sessions) AS n, sum(bounces), sum(visitors) FROM " + s.db + ".traffic WHERE " + s.cells("traffic", f.site, f.r) +
			" AND dimension = 'referrer' GROUP BY value ORDER BY n DESC, value LIMIT 30"
	}}
