package audit_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/herd-analytics/herd/aggregate"
	"github.com/herd-analytics/herd/audit"
	"github.com/herd-analytics/herd/ingest/ingesttest"
	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
	"github.com/herd-analytics/herd/internal/shopsim"
)

func TestMain(m *testing.M) { os.Exit(chtest.Run(m)) }

// TestAuditCatchesPlantedViolations runs herd's audit over a published day
// of a synthetic shop, then plants one violation at a time and expects
// exactly the check that guards against it to fail.
func TestAuditCatchesPlantedViolations(t *testing.T) {
	ctx := context.Background()
	db := chtest.Migrated(t)
	e := ingesttest.Start(t, db, ingesttest.Options{})
	day := time.Now().UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour)
	st, err := shopsim.Generate(ctx, shopsim.GenConfig{
		Target: e.URL, Shop: shopsim.Config{Site: "demo", Seed: 7, Products: 300, Categories: 8},
		Visitors: 2000, Days: 1, Import: true, Now: day.Add(24 * time.Hour), Workers: 32,
	}, nil)
	if err != nil || st.Failed > 0 || st.Accepted == 0 {
		t.Fatalf("import: %v %v", st, err)
	}
	e.Sync(t)
	p, err := aggregate.NewPublisher(db.Writer, db.Names, aggregate.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := day.Add(24*time.Hour + 10*time.Minute)
	if sum, err := p.RunOnce(ctx, now); err != nil || sum.Published == 0 {
		t.Fatalf("publish: %+v %v", sum, err)
	}
	keyFile := e.KeyFile()
	a := &audit.Auditor{Publisher: p, Reader: db.Reader, KeyFile: keyFile, Now: func() time.Time { return now }}
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
		if rep.Statement.K != 10 || rep.Statement.CellsPublished == 0 || rep.Statement.CellsSuppressed == 0 || len(rep.Statement.Releases) != len(p.Budget().Releases) || rep.Statement.Spent > rep.Statement.Rho {
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

	// A raw hour dated in the future (an import from a wrong clock) escapes
	// every age-based rule: the audit flags it and retention drops it.
	future := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := db.Writer.Exec(ctx, "INSERT INTO "+db.Names.Raw+".events (event_id, site, received, visitor) SELECT generateUUIDv4(), 'demo', toDateTime("+clickhouse.QuoteInt(future.Unix())+"), 1"); err != nil {
		t.Fatal(err)
	}
	expect("future raw hour", "raw retention")
	dropped, err := p.Retain(ctx, now, nil)
	if err != nil || len(dropped) != 1 || dropped[0].Reason != "dated in the future" {
		t.Fatalf("retention of the future hour: %+v %v", dropped, err)
	}
	expect("future raw hour dropped")

	// A key for a day still to come.
	keys, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	planted := strings.Replace(string(keys), "{", `{"2030-01-01":"`+strings.Repeat("ab", 32)+`",`, 1)
	if err := os.WriteFile(keyFile, []byte(planted), 0o600); err != nil {
		t.Fatal(err)
	}
	expect("future key", "pseudonym keys")
	if err := os.WriteFile(keyFile, keys, 0o600); err != nil {
		t.Fatal(err)
	}
	expect("future key removed")

	// A published cell no k shoppers support.
	plant := func(table, cols, values string) {
		t.Helper()
		if err := db.Writer.Exec(ctx, "INSERT INTO "+db.Names.Pub+"."+table+" (site, grain, bucket, "+cols+") VALUES ('demo', 'day', toDateTime("+
			clickhouse.QuoteInt(day.Unix())+"), "+values+")"); err != nil {
			t.Fatal(err)
		}
	}
	plant("products", "product_id, category, visitors, views", "'P-PLANTED', 'shoes', 25, 40")
	expect("cell below k", "k floor")
	db.DeleteWhere(t, db.Names.Pub+".products", "product_id = 'P-PLANTED'")

	// A cell stating one visitor, on a day whose raw events are long gone:
	// nothing is left to recompute, and the stored number alone fails.
	longAgo := now.Add(-30 * 24 * time.Hour).Truncate(24 * time.Hour)
	if err := db.Writer.Exec(ctx, "INSERT INTO "+db.Names.Pub+".products (site, grain, bucket, product_id, category, visitors, views) VALUES ('demo', 'day', toDateTime("+
		clickhouse.QuoteInt(longAgo.Unix())+"), 'P-OLD', 'shoes', 1, 3)"); err != nil {
		t.Fatal(err)
	}
	expect("a stored cell of one visitor", "k floor", "consistent values")
	db.DeleteWhere(t, db.Names.Pub+".products", "product_id = 'P-OLD'")

	// A product with more purchases than add-to-carts.
	plant("products", "product_id, category, visitors, views, adds, purchases", "'P-ODD', 'shoes', 300, 400, 10, 30")
	expect("purchases over adds", "k floor", "consistent values")
	db.DeleteWhere(t, db.Names.Pub+".products", "product_id = 'P-ODD'")

	// An other row (a parent's cells below the threshold) that covers fewer
	// than k visitor-days.
	if err := db.Writer.Exec(ctx, "INSERT INTO "+db.Names.Pub+".products (site, grain, bucket, product_id, category, visitors, views, other) VALUES ('demo', 'day', toDateTime("+
		clickhouse.QuoteInt(day.Unix())+"), '', 'no-such-category', 40, 90, 1)"); err != nil {
		t.Fatal(err)
	}
	expect("other row below k", "k floor")
	db.DeleteWhere(t, db.Names.Pub+".products", "category = 'no-such-category'")

	// A release that spent more than the budget leaves: a week of slots
	// recorded at ρ 0.5 (the whole budget is 0.33).
	monday := day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
	if err := db.Writer.Exec(ctx, "INSERT INTO "+db.Names.Pub+".rollup_runs (table_name, site, grain, bucket, cells_published, rho, state) VALUES ('slots', 'demo', 'week', toDateTime("+
		clickhouse.QuoteInt(monday.Unix())+"), 3, 0.5, 'published')"); err != nil {
		t.Fatal(err)
	}
	expect("a release over the budget", "privacy budget")
	db.DeleteWhere(t, db.Names.Pub+".rollup_runs", "rho = 0.5")

	// Partial sums kept past their 40 days.
	if err := db.Writer.Exec(ctx, "INSERT INTO "+db.Names.Raw+".cell_partials (site, table_name, day, cell, true_visitor_days, true_sums) VALUES ('demo', 'searches', toDate("+
		clickhouse.Quote(now.AddDate(0, 0, -45).Format(time.DateOnly))+"), '[\"old term\"]', 12, [12, 0])"); err != nil {
		t.Fatal(err)
	}
	expect("partial sums past 40 days", "raw retention")
	db.DeleteWhere(t, db.Names.Raw+".cell_partials", "day < today() - 40")

	// Personal data in a published string (and a cell nobody supports).
	plant("searches", "term, visitors, searches", "'write to jane.doe@example.com', 12, 12")
	expect("email in a published term", "k floor", "personal data scan")
	db.DeleteWhere(t, db.Names.Pub+".searches", "term LIKE '%@%'")
	// A JWT lowercased, as an old scrubber stored it: still one.
	plant("searches", "term, visitors, searches", "'reset eyjhbgcioijiuzi1nij9.eyjzdwiioijjyw5hcnkifq.c2lnbmf0dxjl', 12, 12")
	expect("lowercased JWT in a published term", "k floor", "personal data scan")
	db.DeleteWhere(t, db.Names.Pub+".searches", "term LIKE 'reset%'")

	// A copy of the raw events in another database, out of retention's
	// reach.
	copyDB := db.Names.Raw + "_copy"
	for _, q := range []string{"CREATE DATABASE " + copyDB, "CREATE TABLE " + copyDB + ".events_backup ENGINE = Memory AS SELECT * FROM " + db.Names.Raw + ".events"} {
		if err := db.Writer.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	expect("a copy of raw events in another database", "raw events outside the raw database")
	if err := db.Writer.Exec(ctx, "DROP DATABASE "+copyDB); err != nil {
		t.Fatal(err)
	}

	// A column nobody declared a purpose for.
	if err := db.Writer.Exec(ctx, "ALTER TABLE "+db.Names.Raw+".events ADD COLUMN ip_address String"); err != nil {
		t.Fatal(err)
	}
	expect("undeclared column", "purpose inventory")
	if err := db.Writer.Exec(ctx, "ALTER TABLE "+db.Names.Raw+".events DROP COLUMN ip_address"); err != nil {
		t.Fatal(err)
	}

	// An exact figure where the dashboard's user can read it.
	if err := db.Writer.Exec(ctx, "ALTER TABLE "+db.Names.Pub+".rollup_runs ADD COLUMN raw_events UInt64"); err != nil {
		t.Fatal(err)
	}
	expect("exact figure readable by the reader", "exact figures", "purpose inventory")
	if err := db.Writer.Exec(ctx, "ALTER TABLE "+db.Names.Pub+".rollup_runs DROP COLUMN raw_events"); err != nil {
		t.Fatal(err)
	}
	expect("clean again")
}
