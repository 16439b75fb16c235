package aggregate_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/herd-analytics/herd/aggregate"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
)

// Sessions come from the times of a visitor-day's events, not from
// ingest: more than 30 minutes without any event starts a new one. The
// true cells of kpis and traffic count them, with entry pages and bounces,
// whatever ingest node took which event.
func TestSessionsFromEventTimes(t *testing.T) {
	db := chtest.Migrated(t)
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	type ev struct {
		visitor       int
		at, typ, path string
		ref           string
	}
	events := []ev{
		// Visitor 1: two sessions (the product view at 10:20 keeps the
		// first alive until 10:45; 11:30 is 45 minutes later).
		{1, "10:00", "pageview", "/a", "search.example"},
		{1, "10:20", "product_view", "", ""},
		{1, "10:45", "pageview", "/b", ""},
		{1, "11:30", "pageview", "/c", "mail.example"},
		{1, "11:40", "add_to_cart", "", ""},
		// Visitor 2: one pageview, a bounce.
		{2, "09:00", "pageview", "/a", "search.example"},
		// Visitor 3: a purchase and no pageview (a server-side event).
		{3, "12:00", "purchase", "", ""},
	}
	var values []string
	for i, e := range events {
		at, _ := time.Parse("15:04", e.at)
		ts := day.Add(time.Duration(at.Hour())*time.Hour + time.Duration(at.Minute())*time.Minute)
		values = append(values, fmt.Sprintf("('00000000-0000-4000-8000-%012d', 'demo', %d, %d, '%s', %d, '%s', '%s', 'desktop', 'Firefox', 'Linux')",
			i, ts.Unix(), i, e.typ, 1000+e.visitor, e.path, e.ref))
	}
	if err := db.Writer.Exec(context.Background(), "INSERT INTO "+db.Names.Raw+".events (event_id, site, received, seq, type, visitor, path, referrer_host, device, browser, os) VALUES "+strings.Join(values, ", ")); err != nil {
		t.Fatal(err)
	}
	p := publisher(t, db, aggregate.Config{})
	cells := func(name string) map[string][]float64 {
		for _, tb := range p.Tables() {
			if tb.Name != name {
				continue
			}
			cs, err := p.TrueCells(context.Background(), tb, aggregate.Bucket{Site: "demo", Grain: aggregate.Day, Start: day})
			if err != nil {
				t.Fatal(err)
			}
			out := map[string][]float64{}
			for _, c := range cs {
				out[strings.ReplaceAll(c.Key(), "\x00", " ")] = append([]float64{float64(c.Visitors)}, c.Values...)
			}
			return out
		}
		t.Fatalf("no table %s", name)
		return nil
	}
	// kpis: visitors, sessions, pageviews, orders, buyers, revenue.
	if got := fmt.Sprint(cells("kpis")[""][:4]); got != "[3 4 4 1]" {
		t.Errorf("kpis visitors, sessions, pageviews, orders: %s, want [3 4 4 1]", got)
	}
	// traffic counts sessions with pageviews, each with its entry page
	// and referrer (before contributions are bounded).
	got, err := p.SessionsTSV(context.Background(), aggregate.Bucket{Site: "demo", Grain: aggregate.Day, Start: day})
	if err != nil {
		t.Fatal(err)
	}
	want := "1001\t0\t2\t/a\tsearch.example\n" + // the product view at 10:20 keeps it alive until 10:45
		"1001\t1\t1\t/c\tmail.example\n" + // 45 minutes later: a second session, a bounce
		"1002\t0\t1\t/a\tsearch.example\n"
	if got != want {
		t.Errorf("sessions:\n%s\nwant:\n%s", got, want)
	}
	// Every part of traffic runs over them (entry, referrer, path, device…).
	if traffic := cells("traffic"); len(traffic) == 0 {
		t.Error("no traffic cells")
	}
}
