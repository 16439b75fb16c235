// Package ingesttest runs a real ingest for tests: ingest.New, its Run, and
// its HTTP API on a free loopback port, storing into a test's ClickHouse
// databases through the same spool and inserts as production. Packages
// whose tests need events stored the way herd stores them (publication,
// audit, the CLI) start one with Start.
package ingesttest

import (
	"bytes"
	"cmp"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/herd-analytics/herd/ingest"
	"github.com/herd-analytics/herd/ingest/spool"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
	"github.com/herd-analytics/herd/internal/probe"
	"github.com/herd-analytics/herd/internal/webserver"
)

// Options vary a test ingest. The zero value stores into the test
// database's raw events, serves the demo site and stores no country.
type Options struct {
	// Store receives the rows; nil is db.Writer.
	Store spool.Inserter
	// Table is the raw events table; empty is db's.
	Table string
	// Sites are the configured sites; nil is the demo site.
	Sites *ingest.Sites
	// Country maps an IP to a country; nil stores none.
	Country func(ip string) string
	// InsertInterval is the spool's; zero is 1 s (tests see rows at once
	// through Flush or Query anyway).
	InsertInterval time.Duration
	// Ready answers /readyz; nil pings db.
	Ready probe.Pinger
	// SpoolMaxBytes bounds the spool; zero is the default (1 GiB).
	SpoolMaxBytes int64
	// Imports is the import policy; nil takes imports of any day (tests
	// build their history that way).
	Imports *ingest.ImportPolicy
}

// Edge is a running test ingest.
type Edge struct {
	*ingest.Edge
	URL     string // http://127.0.0.1:port
	DataDir string // keys/ and spool/
	Logs    *Logs  // every log line, at debug level
	db      *chtest.DB
}

// Start starts an ingest over db (nil when o.Store and o.Table say where
// rows go) and stops it when the test ends.
func Start(t testing.TB, db *chtest.DB, o Options) *Edge {
	t.Helper()
	if o.Store == nil {
		o.Store = db.Writer
	}
	if o.Table == "" {
		o.Table = db.Names.Raw + ".events"
	}
	if o.Ready == nil {
		if db != nil {
			o.Ready = db.Writer
		} else {
			o.Ready = nothing{}
		}
	}
	logs := &Logs{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dir := t.TempDir()
	e, err := ingest.New(ingest.Config{
		DataDir: dir, Table: o.Table, Sites: o.Sites, Country: o.Country,
		TrustedProxies: []string{"127.0.0.1"}, InsertInterval: o.InsertInterval, SpoolMaxBytes: o.SpoolMaxBytes,
		Imports: *cmp.Or(o.Imports, &ingest.ImportPolicy{Open: true, Backfill: true}),
	}, o.Store, log)
	if err != nil {
		t.Fatal(err)
	}
	runDone := make(chan error, 1)
	go func() { runDone <- e.Run(context.Background()) }()
	ws, err := webserver.Start(e.App(probe.NewReadiness(e.Ready(o.Ready))), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = ws.Shutdown(ctx)
		if err := e.Close(ctx); err != nil {
			t.Logf("ingest close: %v", err)
		}
		<-runDone
	})
	return &Edge{Edge: e, URL: "http://" + ws.Addr(), DataDir: dir, Logs: logs, db: db}
}

// KeyFile is the day-key file.
func (e *Edge) KeyFile() string { return filepath.Join(e.DataDir, "keys", "day-keys.json") }

// SpoolDir is the spool's directory.
func (e *Edge) SpoolDir() string { return filepath.Join(e.DataDir, "spool") }

// Sync inserts every acknowledged row into ClickHouse now.
func (e *Edge) Sync(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := e.Flush(ctx); err != nil {
		t.Fatalf("spool flush: %v", err)
	}
}

type nothing struct{}

func (nothing) Ping(context.Context) error { return nil }

// Logs collects log output from concurrent writers.
type Logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

var _ io.Writer = (*Logs)(nil)

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String is everything logged so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
