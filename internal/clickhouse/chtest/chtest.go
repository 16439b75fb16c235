// Package chtest gives integration tests a real ClickHouse: one managed server
// per test binary, started on first use, and a fresh pair of databases per
// test, dropped when the test ends.
//
// Every package that uses it runs its tests through Run:
//
//	func TestMain(m *testing.M) { os.Exit(chtest.Run(m)) }
//
// A missing clickhouse-server fails the test with the install command; it
// never skips.
package chtest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/clickhouse/local"
	"github.com/herd-analytics/herd/schemas"
)

// maxDatabases is how many test database pairs one test binary may create; the
// reader user is allowed exactly these published databases.
const maxDatabases = 400

var (
	mu       sync.Mutex
	running  bool
	server   *local.Server
	tempDir  string
	startErr error
	counter  atomic.Int64
)

// Run runs the tests and stops the server afterwards. Use it from TestMain.
func Run(m *testing.M) int {
	mu.Lock()
	running = true
	mu.Unlock()
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := server.Stop(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "chtest: stop clickhouse:", err)
		}
		cancel()
	}
	if tempDir != "" {
		os.RemoveAll(tempDir)
	}
	return code
}

// Servers marks a test that needs real servers or processes (ClickHouse,
// ZooKeeper, Chromium, herd itself): `make check` (go test -short) leaves
// it out, `make test` and CI run it, and there a missing server fails it.
func Servers(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs real servers: make test runs it")
	}
}

// WaitFor polls cond until it holds, failing t after limit.
func WaitFor(t testing.TB, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Server returns the test binary's ClickHouse server, starting it if needed.
func Server(t testing.TB) *local.Server {
	t.Helper()
	Servers(t)
	mu.Lock()
	defer mu.Unlock()
	if !running {
		t.Fatal("chtest: call os.Exit(chtest.Run(m)) from TestMain")
	}
	if server == nil && startErr == nil {
		server, startErr = start()
	}
	if startErr != nil {
		t.Fatalf("chtest: %v", startErr)
	}
	return server
}

func start() (*local.Server, error) {
	dir, err := os.MkdirTemp("", "herd-chtest-")
	if err != nil {
		return nil, err
	}
	tempDir = dir
	dbs := []string{clickhouse.DefaultDatabases.Pub}
	for i := 1; i <= maxDatabases; i++ {
		dbs = append(dbs, names(int64(i)).Pub)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return local.Start(ctx, local.Config{
		Dir:             filepath.Join(dir, "clickhouse"),
		ReaderDatabases: dbs,
		Log:             slog.New(slog.DiscardHandler),
	})
}

func names(n int64) clickhouse.Databases {
	return clickhouse.Databases{Raw: fmt.Sprintf("t%d_herd_raw", n), Pub: fmt.Sprintf("t%d_herd", n)}
}

// DB is one test's view of the server: its own database pair and clients for
// both users.
type DB struct {
	Server *local.Server
	// Names of this test's databases; the reader may read Pub only.
	Names clickhouse.Databases
	// Writer has Pub as its default database; Reader likewise.
	Writer *clickhouse.Client
	Reader *clickhouse.Client
}

// New creates an empty database pair for t and drops it when t ends.
func New(t testing.TB) *DB {
	t.Helper()
	srv := Server(t)
	n := counter.Add(1)
	if n > maxDatabases {
		t.Fatalf("chtest: more than %d test databases in one binary", maxDatabases)
	}
	db := &DB{Server: srv, Names: names(n)}
	var err error
	if db.Writer, err = clickhouse.New(srv.Writer().WithDatabase(db.Names.Pub), nil); err != nil {
		t.Fatal(err)
	}
	if db.Reader, err = clickhouse.New(srv.Reader().WithDatabase(db.Names.Pub), nil); err != nil {
		t.Fatal(err)
	}
	admin, err := clickhouse.New(srv.Writer(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, name := range []string{db.Names.Raw, db.Names.Pub} {
		if err := admin.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+name); err != nil {
			t.Fatalf("chtest: create database %s: %v", name, err)
		}
	}
	t.Cleanup(func() {
		db.Writer.Close()
		db.Reader.Close()
		for _, name := range []string{db.Names.Raw, db.Names.Pub} {
			if err := admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name); err != nil {
				t.Errorf("chtest: drop database %s: %v", name, err)
			}
		}
		admin.Close()
	})
	return db
}

// Migrated is New followed by herd's migrations.
func Migrated(t testing.TB) *DB {
	t.Helper()
	db := New(t)
	ms, err := clickhouse.LoadMigrations(schemas.Migrations, schemas.MigrationsDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := clickhouse.Migrate(context.Background(), db.Writer, db.Names, ms, nil); err != nil {
		t.Fatal(err)
	}
	return db
}

// Rows runs q as the writer and returns every row as values.
func (db *DB) Rows(t testing.TB, q string) [][]any {
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

// DeleteWhere deletes rows of table (db.table) with a mutation and waits
// for it: 18.16 runs mutations in the background.
func (db *DB) DeleteWhere(t testing.TB, table, where string) {
	t.Helper()
	if err := db.Writer.Exec(context.Background(), "ALTER TABLE "+table+" DELETE WHERE "+where); err != nil {
		t.Fatal(err)
	}
	database, name, _ := strings.Cut(table, ".")
	for i := 0; ; i++ {
		n := db.Rows(t, "SELECT count() FROM system.mutations WHERE database = "+clickhouse.Quote(database)+" AND table = "+clickhouse.Quote(name)+" AND is_done = 0")[0][0].(uint64)
		if n == 0 {
			return
		}
		if i > 300 {
			t.Fatalf("mutation on %s not done after 30s", table)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
