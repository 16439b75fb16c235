package aggregate_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/herd-analytics/herd/aggregate"
	"github.com/herd-analytics/herd/ingest/ingesttest"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
	"github.com/herd-analytics/herd/internal/shopsim"
)

func TestMain(m *testing.M) { os.Exit(chtest.Run(m)) }

// edge starts a real ingest writing into db's raw events.
func edge(t *testing.T, db *chtest.DB) *ingesttest.Edge {
	t.Helper()
	return ingesttest.Start(t, db, ingesttest.Options{})
}

// importShop replays days of synthetic history ending at end through the
// ingest's import mode, as herd gen --import does.
func importShop(t *testing.T, e *ingesttest.Edge, seed uint64, visitors, days int, end time.Time) *shopsim.Stats {
	t.Helper()
	st, err := shopsim.Generate(context.Background(), shopsim.GenConfig{
		Target: e.URL, Shop: shopsim.Config{Site: "demo", Seed: seed, Products: 300, Categories: 8},
		Visitors: visitors, Days: days, Import: true, Now: end, Workers: 32,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Failed > 0 || st.Accepted == 0 {
		t.Fatalf("import: %s", st)
	}
	e.Sync(t)
	return st
}

func publisher(t *testing.T, db *chtest.DB, cfg aggregate.Config) *aggregate.Publisher {
	t.Helper()
	p, err := aggregate.NewPublisher(db.Writer, db.Names, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func rows(t *testing.T, db *chtest.DB, q string) [][]any { t.Helper(); return db.Rows(t, q) }

func deleteRows(t *testing.T, db *chtest.DB, table, where string) {
	t.Helper()
	db.DeleteWhere(t, table, where)
}
