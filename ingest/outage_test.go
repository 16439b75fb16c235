package ingest_test

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herd-analytics/herd/ingest/ingesttest"
	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
	"github.com/herd-analytics/herd/internal/clickhouse/local"
	"github.com/herd-analytics/herd/schemas"
)

// ClickHouse stops in the middle of a load and comes back: every event
// acknowledged with 202 ends up in ClickHouse exactly once, the ones taken
// during the outage through the disk spool.
func TestClickHouseOutageLosesNothingAcknowledged(t *testing.T) {
	chtest.Servers(t)
	ctx := context.Background()
	chDir := filepath.Join(t.TempDir(), "clickhouse")
	srv, err := local.Start(ctx, local.Config{Dir: chDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	c, err := clickhouse.New(srv.Writer(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := clickhouse.LoadMigrations(schemas.Migrations, schemas.MigrationsDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := clickhouse.Migrate(ctx, c, clickhouse.DefaultDatabases, ms, nil); err != nil {
		t.Fatal(err)
	}
	const table = "herd_raw.events"
	e := startEdgeWith(t, nil, ingesttest.Options{Store: c, Table: table})

	load := ingesttest.StartLoad(e.url, "L", "product_view")
	load.WaitRequests(t, 20, 30*time.Second) // under way
	t0 := time.Now()
	// The harshest stop: SIGKILL, mid-insert.
	if err := syscall.Kill(srv.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-srv.Exited()
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// Acknowledged while ClickHouse is down: through the spool.
	load.WaitRequests(t, load.Requests()+20, 30*time.Second)
	srv, err = local.Start(ctx, local.Config{Dir: chDir, HTTPPort: srv.HTTPPort(), TCPPort: srv.TCPPort()})
	if err != nil {
		t.Fatal(err)
	}
	load.WaitRequests(t, load.Requests()+20, 30*time.Second)
	acked := load.Stop()

	t.Logf("load over at %v", time.Since(t0))
	deadline := time.Now().Add(60 * time.Second)
	for e.Spool().Pending() {
		if time.Now().After(deadline) {
			t.Fatal("spool not drained within 60 s of ClickHouse's return")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("drained at %v", time.Since(t0))
	want := len(acked)
	var out strings.Builder
	if err := c.Raw(ctx, "SELECT product_id, uniqExact(event_id) FROM "+table+" GROUP BY product_id HAVING uniqExact(event_id) != 1 LIMIT 5 FORMAT TSV", &out); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Fatalf("events stored more or less than once:\n%s", out.String())
	}
	out.Reset()
	if err := c.Raw(ctx, "SELECT groupArray(product_id) FROM "+table+" FORMAT TSV", &out); err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, id := range strings.Split(strings.Trim(out.String(), "[]\n"), ",") {
		stored[strings.Trim(id, "'")] = true
	}
	missing := 0
	for id := range acked {
		if !stored[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged events are missing", missing, want)
	}
	t.Logf("%d events acknowledged (%d requests, %d refused), all stored once", want, load.Requests(), load.Refused())
}

// A server that answers while every insert fails (on a cluster: a replica
// down breaks the quorum, ZooKeeper down makes the tables read-only; here:
// the raw table is missing): events are still acknowledged into the spool,
// and readiness says the spool's inserts fail, and why, instead of
// answering ready while the spool grows.
func TestReadinessSaysSpoolInsertsFail(t *testing.T) {
	db := chtest.Migrated(t)
	e := startEdgeWith(t, db, ingesttest.Options{Table: db.Names.Raw + ".no_such_table", InsertInterval: 100 * time.Millisecond})
	if r := e.post(t, "/api/events", "application/json", `[{"type":"pageview","url":"/"}]`); r.status != 202 {
		t.Fatalf("got %+v", r)
	}
	var body []byte
	chtest.WaitFor(t, 20*time.Second, func() bool {
		resp, err := http.Get(e.url + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ = io.ReadAll(resp.Body)
		return resp.StatusCode == 503
	})
	if !strings.Contains(string(body), "spool inserts failing: herd's tables are missing: run herd migrate") || strings.Contains(string(body), "127.0.0.1") {
		t.Fatalf("readyz: %s", body)
	}
}
