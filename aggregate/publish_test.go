package aggregate_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/herd-analytics/herd/aggregate"
	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
	"github.com/herd-analytics/herd/internal/shopsim"
)

// canary is one shopper with a product, slot, search term and browser no one
// else has. None of it may ever be published.
func canary(day time.Time) shopsim.Session {
	t := day.Add(14 * time.Hour)
	ev := func(i int, e shopsim.Event) shopsim.Event {
		e.ID = fmt.Sprintf("canary-%d", i)
		e.Site = "demo"
		e.TS = t.Add(time.Duration(i) * time.Minute).UnixMilli()
		return e
	}
	prod := &shopsim.EventProduct{ID: "CANARY-PRODUCT-7731", Category: "canarycategory", Price: 77.31}
	return shopsim.Session{
		IP: "198.51.100.77", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) CanaryBrowser/99.1", Device: "desktop", Start: t,
		Events: []shopsim.Event{
			ev(0, shopsim.Event{Type: "pageview", URL: "https://shop.example/canary-landing-page"}),
			ev(1, shopsim.Event{Type: "slot_impression", URL: "https://shop.example/", Slot: "canary-slot"}),
			ev(2, shopsim.Event{Type: "product_view", URL: "https://shop.example/product/canary", Product: prod}),
			ev(3, shopsim.Event{Type: "add_to_cart", URL: "https://shop.example/product/canary", Product: prod}),
			ev(4, shopsim.Event{Type: "search", URL: "https://shop.example/search", Search: &shopsim.EventSearch{Term: "canaryterm zzyzx", Results: 0}}),
		},
	}
}

// snapshot is every published row of every table, as text.
func snapshot(t *testing.T, db *chtest.DB, p *aggregate.Publisher) []string {
	t.Helper()
	var out []string
	for _, tb := range p.Tables() {
		for _, r := range rows(t, db, "SELECT * FROM "+db.Names.Pub+"."+tb.Name+" ORDER BY tuple(*)") {
			out = append(out, fmt.Sprint(tb.Name, r))
		}
	}
	return out
}

func TestPublication(t *testing.T) {
	ctx := context.Background()
	db := chtest.Migrated(t)
	e := edge(t, db)
	day := time.Now().UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour)
	importShop(t, e, 7, 5000, 1, day.Add(24*time.Hour))
	if st := shopsim.Send(ctx, e.URL, canary(day), true); st.Accepted != 5 {
		t.Fatalf("canary: %s", st)
	}
	e.Sync(t)
	p := publisher(t, db, aggregate.Config{})
	now := day.Add(24*time.Hour + 10*time.Minute)

	sum, err := p.RunOnce(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	// The day, for every table; and the week and month holding it where
	// they closed with it.
	if want := expectedRuns(p, day, now); sum.Runs != want || sum.Failed != 0 || sum.Published == 0 {
		t.Fatalf("first run: %+v, want %d runs", sum, want)
	}
	daily := rows(t, db, "SELECT table_name, cells_published FROM "+db.Names.Pub+".rollup_runs WHERE grain = 'day' AND state = 'published' ORDER BY table_name")
	if len(daily) != len(p.Tables()) {
		t.Fatalf("daily runs: %v", daily)
	}
	for _, r := range daily {
		_, releases := p.Budget().Release(r[0].(string), aggregate.Day)
		if releases && r[1].(uint32) == 0 {
			t.Errorf("%s published no daily cell from a day of 5,000 shoppers", r[0])
		}
		if !releases && r[1].(uint32) != 0 {
			t.Errorf("%s publishes no daily cells, yet recorded %d", r[0], r[1])
		}
	}
	before := snapshot(t, db, p)

	t.Run("canary never published", func(t *testing.T) {
		for _, r := range before {
			if strings.Contains(strings.ToLower(r), "canary") {
				t.Errorf("published: %s", r)
			}
		}
		// The canary did reach raw events, so its absence is the rules'.
		if n := rows(t, db, "SELECT count() FROM "+db.Names.Raw+".events WHERE product_id = 'CANARY-PRODUCT-7731'")[0][0].(uint64); n != 2 {
			t.Fatalf("canary raw events: %d", n)
		}
	})

	t.Run("every published cell covers k", func(t *testing.T) {
		checkFloor(t, p, aggregate.Bucket{Site: "demo", Grain: aggregate.Day, Start: day})
	})

	t.Run("re-running publishes nothing new", func(t *testing.T) {
		again, err := p.RunOnce(ctx, now)
		if err != nil || again.Runs != 0 {
			t.Fatalf("second run: %+v, %v", again, err)
		}
		// A publisher that died after storing cells but before recording
		// the run adopts the stored cells instead of drawing new noise,
		// and an empty release stays empty.
		// Tables that publish no daily cells keep the day's partial sums
		// and record it at once: those runs are redone from the stored sums.
		deleteRows(t, db, db.Names.Pub+".rollup_runs", "state = 'published'")
		redo := rows(t, db, "SELECT count() FROM "+db.Names.Pub+".rollup_runs WHERE state = 'releasing' AND cells_published > 0")[0][0].(uint64)
		for _, tb := range p.Tables() {
			if _, ok := p.Budget().Release(tb.Name, aggregate.Day); !ok {
				redo++
			}
		}
		third, err := p.RunOnce(ctx, now)
		if err != nil || uint64(third.Runs) != redo || third.Published != sum.Published {
			t.Fatalf("after losing the run records: %+v, %v; want %d adopted runs of %d cells", third, err, redo, sum.Published)
		}
		if after := snapshot(t, db, p); strings.Join(after, "\n") != strings.Join(before, "\n") {
			t.Fatal("published rows changed")
		}
	})

	t.Run("late events are counted, not published", func(t *testing.T) {
		late := canary(day)
		late.IP, late.UserAgent = "203.0.113.9", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
		for i := range late.Events {
			late.Events[i].ID = fmt.Sprintf("late-%d", i)
		}
		if st := shopsim.Send(ctx, e.URL, late, true); st.Accepted != 5 {
			t.Fatalf("late: %s", st)
		}
		e.Sync(t)
		if s, err := p.RunOnce(ctx, now.Add(time.Hour)); err != nil || s.Runs != 0 {
			t.Fatalf("run after late events: %+v, %v", s, err)
		}
		if err := p.CountLate(ctx); err != nil {
			t.Fatal(err)
		}
		got := rows(t, db, "SELECT toString(grain), late_events FROM "+db.Names.Raw+".rollup_late FINAL ORDER BY grain")
		if len(got) != 1 || got[0][1].(uint64) != 5 {
			t.Fatalf("late events: %v, want 5 for the day", got)
		}
		if after := snapshot(t, db, p); strings.Join(after, "\n") != strings.Join(before, "\n") {
			t.Fatal("published rows changed after late events")
		}
	})

	t.Run("differencing a parent and its children does not reveal a child", func(t *testing.T) {
		differencing(t, p, day)
	})
	t.Run("utility", func(t *testing.T) {
		utility(t, p, day)
	})
	t.Run("duplicated raw events change no cell", func(t *testing.T) {
		b := aggregate.Bucket{Site: "demo", Grain: aggregate.Day, Start: day}
		cells := func() string {
			var out []string
			for _, tb := range p.Tables() {
				cs, err := p.TrueCells(ctx, tb, b)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range cs {
					// Sums of scaled contributions: equal up to float
					// summation order.
					out = append(out, fmt.Sprintf("%s%v %d %.6f", tb.Name, c.Dims, c.Visitors, c.Values))
				}
			}
			sort.Strings(out)
			return strings.Join(out, "\n")
		}
		before := cells()
		// A spool replay cut short inserts the same events again.
		if err := db.Writer.Exec(ctx, "INSERT INTO "+db.Names.Raw+".events SELECT * FROM "+db.Names.Raw+".events WHERE received >= toDateTime("+
			clickhouse.QuoteInt(day.Unix())+") AND received < toDateTime("+clickhouse.QuoteInt(day.Add(12*time.Hour).Unix())+")"); err != nil {
			t.Fatal(err)
		}
		if after := cells(); after != before {
			a, b := strings.Split(before, "\n"), strings.Split(after, "\n")
			for i := range min(len(a), len(b)) {
				if a[i] != b[i] {
					t.Fatalf("true cells changed when raw events were duplicated: %d → %d cells; first difference\n%s\n%s", len(a), len(b), a[i], b[i])
				}
			}
			t.Fatalf("true cells changed when raw events were duplicated: %d → %d cells", len(a), len(b))
		}
	})
}

func TestRawRetention(t *testing.T) {
	ctx := context.Background()
	db := chtest.Migrated(t)
	e := edge(t, db)
	day := time.Now().UTC().Truncate(24 * time.Hour).Add(-3 * 24 * time.Hour)
	importShop(t, e, 3, 300, 3, day.Add(3*24*time.Hour))
	p := publisher(t, db, aggregate.Config{RawRetention: 48 * time.Hour})
	now := day.Add(3*24*time.Hour + 10*time.Minute)
	hours := func() int {
		return int(rows(t, db, "SELECT uniqExact(toStartOfHour(received)) FROM "+db.Names.Raw+".events")[0][0].(uint64))
	}
	start := hours()

	// Nothing published yet: an outage must not lose a day, so nothing
	// under the 7-day maximum is dropped.
	dropped, err := p.Retain(ctx, now, nil)
	if err != nil || len(dropped) != 0 {
		t.Fatalf("before publication dropped %v, %v", dropped, err)
	}
	if _, err := p.RunOnce(ctx, now); err != nil {
		t.Fatal(err)
	}
	dropped, err = p.Retain(ctx, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Only hours that ended at least 48 h before now go.
	dropped = slices.DeleteFunc(dropped, func(d aggregate.Dropped) bool { return d.Kind != "raw_partition" })
	for _, d := range dropped {
		h, err := time.Parse(time.DateTime, d.Item)
		if err != nil {
			t.Fatal(err)
		}
		if h.Add(time.Hour).After(now.Add(-48 * time.Hour)) {
			t.Errorf("dropped %s, younger than the retention", d.Item)
		}
	}
	if len(dropped) == 0 || hours() != start-len(dropped) {
		t.Fatalf("dropped %d partitions, hours %d → %d", len(dropped), start, hours())
	}
	var old uint64
	cutoff := now.Add(-48 * time.Hour).Truncate(time.Hour) // partitions are whole hours
	for _, r := range rows(t, db, "SELECT count() FROM "+db.Names.Raw+".events WHERE received < toDateTime("+clickhouse.QuoteInt(cutoff.Unix())+")") {
		old = r[0].(uint64)
	}
	if old != 0 {
		t.Fatalf("%d raw events older than the retention remain", old)
	}
	rec := rows(t, db, "SELECT count() FROM "+db.Names.Raw+".retention_runs WHERE kind = 'raw_partition'")
	if rec[0][0].(uint64) != uint64(len(dropped)) {
		t.Fatalf("retention_runs has %v rows for %d drops", rec, len(dropped))
	}
	// The 7-day maximum holds even for unpublished hours.
	later := now.Add(8 * 24 * time.Hour)
	if _, err := p.Retain(ctx, later, nil); err != nil {
		t.Fatal(err)
	}
	if h := hours(); h != 0 {
		t.Fatalf("%d raw hours left 8 days later", h)
	}
}

// expectedRuns is how many table publications a first run at now does for
// one day of data: the day in every table, and the week and month holding
// it in the tables that publish them, when they have closed.
func expectedRuns(p *aggregate.Publisher, day, now time.Time) int {
	n := len(p.Tables())
	for _, r := range p.Budget().Releases {
		if r.Grain == aggregate.Day {
			continue
		}
		b := aggregate.Bucket{Site: "demo", Grain: r.Grain, Start: r.Grain.Start(day)}
		if !b.End().Add(p.Config().Grace).After(now) {
			n++
		}
	}
	return n
}

// checkFloor recomputes every published cell and other row of bucket b in
// every table against the k floor.
func checkFloor(t *testing.T, p *aggregate.Publisher, b aggregate.Bucket) {
	t.Helper()
	total := 0
	for _, tb := range p.Tables() {
		n, findings, err := p.CheckFloor(context.Background(), tb, b, nil)
		if err != nil {
			t.Fatal(err)
		}
		total += n
		for _, f := range findings {
			t.Error(f)
		}
	}
	if total == 0 {
		t.Fatalf("%s: no published cell to check", b)
	}
}
