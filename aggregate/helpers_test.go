package aggregate_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/herd-analytics/herd/aggregate"
	"github.com/herd-analytics/herd/ingest"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
	"github.com/herd-analytics/herd/internal/probe"
	"github.com/herd-analytics/herd/internal/shopsim"
	"github.com/herd-analytics/herd/internal/webserver"
)

func TestMain(m *testing.M) { os.Exit(chtest.Run(m)) }

// edge starts a real ingest writing into db's raw events and returns its URL
// and key file.
func edge(t *testing.T, db *chtest.DB) (url, keyFile string) {
	t.Helper()
	keyFile = filepath.Join(t.TempDir(), "keys.json")
	keys, err := ingest.OpenKeyRing(keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := ingest.NewMetrics()
	w := ingest.NewWriter(ingest.WriterConfig{Table: db.Names.Raw + ".events", MaxDelay: 5 * time.Millisecond}, db.Writer, nil, m, nil)
	go w.Run()
	srv := ingest.NewServer(ingest.Config{TrustedProxies: []string{"127.0.0.1"}}, nil,
		ingest.NewPipeline(keys, ingest.NewSessions(30*time.Minute)), w, m, nil)
	ws, err := webserver.Start(srv.App(probe.NewReadiness(db.Writer)), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = ws.Shutdown(context.Background())
		_ = w.Close(context.Background())
	})
	return "http://" + ws.Addr(), keyFile
}

// importShop replays days of synthetic history ending at end through the
// ingest's import mode, as herd gen --import does.
func importShop(t *testing.T, url string, seed uint64, visitors, days int, end time.Time) *shopsim.Stats {
	t.Helper()
	st, err := shopsim.Generate(context.Background(), shopsim.GenConfig{
		Target: url, Shop: shopsim.Config{Site: "demo", Seed: seed, Products: 300, Categories: 8},
		Visitors: visitors, Days: days, Import: true, Now: end, Workers: 32,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Failed > 0 || st.Accepted == 0 {
		t.Fatalf("import: %s", st)
	}
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

// rows runs q and returns every row as values.
func rows(t *testing.T, db *chtest.DB, q string) [][]any {
	t.Helper()
	var out [][]any
	err := db.Writer.Select(context.Background(), q, func(b *proto.Block) error {
		for i := 0; i < b.Rows(); i++ {
			r := make([]any, len(b.Columns))
			for j, c := range b.Columns {
				r[j] = c.Row(i, false)
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

// deleteRows deletes with a mutation and waits for it: 18.16 runs mutations
// in the background.
func deleteRows(t *testing.T, db *chtest.DB, table, where string) {
	t.Helper()
	if err := db.Writer.Exec(context.Background(), "ALTER TABLE "+table+" DELETE WHERE "+where); err != nil {
		t.Fatal(err)
	}
	db0, name, _ := strings.Cut(table, ".")
	for i := 0; ; i++ {
		n := rows(t, db, "SELECT count() FROM system.mutations WHERE database = '"+db0+"' AND table = '"+name+"' AND is_done = 0")[0][0].(uint64)
		if n == 0 {
			return
		}
		if i > 300 {
			t.Fatalf("mutation on %s not done after 30s", table)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
