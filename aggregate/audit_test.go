package aggregate_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/herd-analytics/herd/aggregate"
	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
)

// audit runs herd's audit over a published day, then plants one violation at
// a time and expects exactly the check that guards against it to fail.
func audit(t *testing.T, db *chtest.DB, p *aggregate.Publisher, keyFile string, now time.Time) {
	ctx := context.Background()
	a := &aggregate.Auditor{Publisher: p, Reader: db.Reader, KeyFile: keyFile, Now: func() time.Time { return now }}
	failing := func() []string {
		t.Helper()
		rep, err := a.Audit(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var bad []string
		for _, c := range rep.Checks {
			if c.NotRun != "" {
				t.Errorf("check %q did not run: %s", c.Name, c.NotRun)
			}
			if !c.OK {
				bad = append(bad, c.Name)
				t.Logf("%s: %s %v", c.Name, c.Detail, c.Findings)
			}
		}
		if rep.OK != (len(bad) == 0) {
			t.Errorf("report OK = %v with failing checks %v", rep.OK, bad)
		}
		if rep.Statement.K != 10 || rep.Statement.CellsPublished == 0 || len(rep.Statement.Tables) != len(p.Tables()) {
			t.Errorf("statement: %+v", rep.Statement)
		}
		return bad
	}
	expect := func(what string, want ...string) {
		t.Helper()
		if got := failing(); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("%s: failing checks %v, want %v", what, got, want)
		}
	}
	expect("clean")

	// A raw hour older than the 7-day maximum.
	old := now.Add(-8 * 24 * time.Hour)
	if err := db.Writer.Exec(ctx, "INSERT INTO "+db.Names.Raw+".events (event_id, site, received, visitor) SELECT generateUUIDv4(), 'demo', toDateTime("+clickhouse.QuoteInt(old.Unix())+"), 1"); err != nil {
		t.Fatal(err)
	}
	expect("old raw hour", "raw retention")
	if err := db.Writer.Exec(ctx, "ALTER TABLE "+db.Names.Raw+".events DROP PARTITION ID "+clickhouse.Quote(clickhouse.QuoteInt(old.Truncate(time.Hour).Unix()))); err != nil {
		t.Fatal(err)
	}
	expect("old raw hour dropped")

	// A published cell no k shoppers support.
	day := now.Truncate(24 * time.Hour).Add(-24 * time.Hour)
	plant := func(table, cols, values string) {
		t.Helper()
		if err := db.Writer.Exec(ctx, "INSERT INTO "+db.Names.Pub+"."+table+" (site, grain, bucket, "+cols+") VALUES ('demo', 'day', toDateTime("+
			clickhouse.QuoteInt(day.Unix())+"), "+values+")"); err != nil {
			t.Fatal(err)
		}
	}
	plant("products", "product_id, category, visitors, views", "'P-PLANTED', 'shoes', 25, 40")
	expect("cell below k", "k floor")
	deleteRows(t, db, db.Names.Pub+".products", "product_id = 'P-PLANTED'")

	// Personal data in a published string (and a cell nobody supports).
	plant("searches", "term, visitors, searches", "'write to jane.doe@example.com', 12, 12")
	expect("email in a published term", "k floor", "personal data scan")
	deleteRows(t, db, db.Names.Pub+".searches", "term LIKE '%@%'")

	// A column nobody declared a purpose for.
	if err := db.Writer.Exec(ctx, "ALTER TABLE "+db.Names.Raw+".events ADD COLUMN ip_address String"); err != nil {
		t.Fatal(err)
	}
	expect("undeclared column", "purpose inventory")
	if err := db.Writer.Exec(ctx, "ALTER TABLE "+db.Names.Raw+".events DROP COLUMN ip_address"); err != nil {
		t.Fatal(err)
	}
	expect("clean again")
}
