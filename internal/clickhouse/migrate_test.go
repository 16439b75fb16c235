package clickhouse_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
	"github.com/herd-analytics/herd/schemas"
)

// schemaOf lists every table and column of the test's databases, so two runs
// can be compared.
func schemaOf(t *testing.T, db *chtest.DB) string {
	t.Helper()
	var out strings.Builder
	q := "SELECT database, table, name, type FROM system.columns WHERE database IN (" +
		clickhouse.Quote(db.Names.Raw) + ", " + clickhouse.Quote(db.Names.Pub) + ") ORDER BY database, table, name FORMAT TSV"
	if err := db.Writer.Raw(context.Background(), q, &out); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func migrations(t *testing.T) []clickhouse.Migration {
	t.Helper()
	ms, err := clickhouse.LoadMigrations(schemas.Migrations, schemas.MigrationsDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 2 {
		t.Fatalf("found %d migrations", len(ms))
	}
	return ms
}

func TestMigrateTwiceIsIdempotent(t *testing.T) {
	db := chtest.New(t)
	ms := migrations(t)
	ctx := context.Background()
	if err := clickhouse.Migrate(ctx, db.Writer, db.Names, ms, nil); err != nil {
		t.Fatal(err)
	}
	first := schemaOf(t, db)
	if !strings.Contains(first, db.Names.Raw+"\tevents\tvisitor\tUInt64") {
		t.Fatalf("raw events table missing:\n%s", first)
	}
	if err := clickhouse.Migrate(ctx, db.Writer, db.Names, ms, nil); err != nil {
		t.Fatal(err)
	}
	if second := schemaOf(t, db); second != first {
		t.Fatalf("schema changed on second run:\n%s\nvs\n%s", first, second)
	}
	var n strings.Builder
	if err := db.Writer.Raw(ctx, "SELECT count(), uniqExact(version) FROM schema_migrations", &n); err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(len(ms)) + "\t" + strconv.Itoa(len(ms)) + "\n"; n.String() != want {
		t.Fatalf("schema_migrations has %q, want %q", n.String(), want)
	}
}

func TestMigrateConcurrentGoroutines(t *testing.T) {
	db := chtest.New(t)
	ms := migrations(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := clickhouse.New(db.Writer.Config(), nil)
			if err == nil {
				err = clickhouse.Migrate(context.Background(), c, db.Names, ms, nil)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	assertMigratedOnce(t, db, len(ms))
}

func TestMigrateConcurrentProcesses(t *testing.T) {
	db := chtest.New(t)
	ms := migrations(t)
	env := []string{"HERD_TEST_URL=" + db.Writer.Config().URL(), "HERD_TEST_RAW=" + db.Names.Raw, "HERD_TEST_PUB=" + db.Names.Pub}
	a, b := helper(t, "migrate", env...), helper(t, "migrate", env...)
	var outA, outB strings.Builder
	a.Stdout, a.Stderr, b.Stdout, b.Stderr = &outA, &outA, &outB, &outB
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	if err := a.Wait(); err != nil {
		t.Fatalf("process A: %v\n%s", err, outA.String())
	}
	if err := b.Wait(); err != nil {
		t.Fatalf("process B: %v\n%s", err, outB.String())
	}
	assertMigratedOnce(t, db, len(ms))
}

func assertMigratedOnce(t *testing.T, db *chtest.DB, n int) {
	t.Helper()
	var out strings.Builder
	if err := db.Writer.Raw(context.Background(), "SELECT count() = "+clickhouse.QuoteInt(n)+" AND uniqExact(version) = "+clickhouse.QuoteInt(n)+" FROM schema_migrations", &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "1\n" {
		t.Fatal("each migration should be recorded exactly once")
	}
	// The lock is released, and the schema is the same as a lone run's.
	other := chtest.New(t)
	if err := clickhouse.Migrate(context.Background(), other.Writer, other.Names, migrations(t), nil); err != nil {
		t.Fatal(err)
	}
	norm := func(s string, names clickhouse.Databases) string {
		return strings.NewReplacer(names.Raw+"\t", "RAW\t", names.Pub+"\t", "PUB\t").Replace(s)
	}
	if got, want := norm(schemaOf(t, db), db.Names), norm(schemaOf(t, other), other.Names); got != want {
		t.Fatalf("concurrent schema differs from a lone run's:\n%s\nvs\n%s", got, want)
	}
}

func TestMigrateRefusesChangedFile(t *testing.T) {
	db := chtest.New(t)
	ctx := context.Background()
	v1 := fstest.MapFS{"m/0001_one.sql": {Data: []byte("CREATE TABLE IF NOT EXISTS {herd}.one (x UInt8) ENGINE = TinyLog;\n")}}
	ms, err := clickhouse.LoadMigrations(v1, "m")
	if err != nil {
		t.Fatal(err)
	}
	if err := clickhouse.Migrate(ctx, db.Writer, db.Names, ms, nil); err != nil {
		t.Fatal(err)
	}
	v2 := fstest.MapFS{"m/0001_one.sql": {Data: []byte("CREATE TABLE IF NOT EXISTS {herd}.one (x UInt16) ENGINE = TinyLog;\n")}}
	ms, err = clickhouse.LoadMigrations(v2, "m")
	if err != nil {
		t.Fatal(err)
	}
	err = clickhouse.Migrate(ctx, db.Writer, db.Names, ms, nil)
	if err == nil || !strings.Contains(err.Error(), "changed after it was applied") {
		t.Fatalf("got %v, want a refusal", err)
	}
}
