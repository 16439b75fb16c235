package local_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
	"github.com/herd-analytics/herd/internal/clickhouse/local"
	"github.com/herd-analytics/herd/schemas"
)

// TestLocalClusterReplicatesAndShards: Debian's ClickHouse 18.16 with
// Debian's ZooKeeper 3.8, two shards of two replicas on loopback. ON
// CLUSTER DDL reaches every node; a synchronous insert through a
// Distributed table sharded by visitor lands each visitor on one shard and
// on both of its replicas; every node answers the whole count, and per-shard
// distinct visitors add up.
func TestLocalClusterReplicatesAndShards(t *testing.T) {
	chtest.Servers(t)
	ctx := context.Background()
	c, err := local.StartCluster(ctx, local.ClusterConfig{Dir: filepath.Join(t.TempDir(), "cluster"), Shards: 2, Replicas: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(context.Background()) })
	first := c.Nodes[0][0].Writer()
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS t ON CLUSTER herd",
		"CREATE TABLE IF NOT EXISTS t.events_local ON CLUSTER herd (visitor String, n UInt64) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/t/events_local', '{replica}') ORDER BY visitor",
		"CREATE TABLE IF NOT EXISTS t.events ON CLUSTER herd AS t.events_local ENGINE = Distributed(herd, t, events_local, cityHash64(visitor))",
	} {
		mustExec(t, first, q)
	}
	mustExec(t, first, "INSERT INTO t.events SELECT concat('v', toString(number % 700)), 1 FROM numbers(1000) SETTINGS insert_distributed_sync = 1")

	count := func(cfg clickhouse.Config, q string) int {
		t.Helper()
		n, err := strconv.Atoi(strings.TrimSpace(mustExec(t, cfg, q)))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	total, visitors := 0, 0
	for s, row := range c.Nodes {
		var counts []int
		// Replication is asynchronous: the second replica fetches the part.
		for deadline := time.Now().Add(30 * time.Second); ; {
			counts = counts[:0]
			for _, l := range row {
				counts = append(counts, count(l.Writer(), "SELECT count() FROM t.events_local"))
			}
			if counts[0] == counts[1] || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if counts[0] != counts[1] || counts[0] == 0 {
			t.Fatalf("shard %d: replicas hold %v rows, want the same, not 0", s+1, counts)
		}
		total += counts[0]
		visitors += count(row[1].Writer(), "SELECT uniqExact(visitor) FROM t.events_local")
	}
	if total != 1000 || visitors != 700 {
		t.Errorf("shards hold %d rows and %d distinct visitors, want 1000 and 700 (a visitor on one shard only)", total, visitors)
	}
	for s, row := range c.Nodes {
		for r, l := range row {
			if n := count(l.Writer(), "SELECT count() FROM t.events"); n != 1000 {
				t.Errorf("shard %d replica %d reads %d rows through Distributed, want 1000", s+1, r+1, n)
			}
		}
	}

	// Both replicas of the first shard fall behind: each takes a row the
	// other cannot fetch. A read that forbids stale replicas (the
	// publisher's) waits for them to catch up rather than fail.
	shard := c.Nodes[0]
	for i, l := range shard {
		mustExec(t, l.Writer(), "SYSTEM STOP FETCHES t.events_local")
		mustExec(t, l.Writer(), "INSERT INTO t.events_local VALUES ('late"+strconv.Itoa(i)+"', 1)")
	}
	time.Sleep(2 * time.Second)
	cfg := c.Nodes[1][0].Writer().
		WithSetting("max_replica_delay_for_distributed_queries", "1").
		WithSetting("fallback_to_stale_replicas_for_distributed_queries", "0")
	var logged bytes.Buffer
	cl, err := clickhouse.New(cfg, slog.New(slog.NewTextHandler(&logged, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	caughtUp := make(chan struct{})
	defer func() { <-caughtUp }()
	go func() {
		defer close(caughtUp)
		time.Sleep(3 * time.Second)
		for _, l := range shard {
			n, err := clickhouse.New(l.Writer(), nil)
			if err == nil {
				err = n.Exec(ctx, "SYSTEM START FETCHES t.events_local")
				n.Close()
			}
			if err != nil {
				t.Errorf("start fetches: %v", err)
			}
		}
	}()
	var got strings.Builder
	if err := cl.Raw(ctx, "SELECT count() FROM t.events", &got, clickhouse.Idempotent()); err != nil {
		t.Fatalf("read with both replicas stale, then caught up: %v\n%s", err, logged.String())
	}
	if strings.TrimSpace(got.String()) != "1002" {
		t.Errorf("read %s rows after the replicas caught up, want 1002", got.String())
	}
	if !strings.Contains(logged.String(), "code 369") {
		t.Errorf("the read never met stale replicas; log:\n%s", logged.String())
	}
}

// TestMigrateOnCluster: herd's own schema (every migration) on the 2 × 2
// cluster: every table is a ReplicatedMergeTree per shard with a
// Distributed table over it on every node, raw events sharded by visitor;
// a second run applies nothing; rows written through one node read the
// same through any other.
func TestMigrateOnCluster(t *testing.T) {
	chtest.Servers(t)
	ctx := context.Background()
	c, err := local.StartCluster(ctx, local.ClusterConfig{Dir: filepath.Join(t.TempDir(), "cluster"), Shards: 2, Replicas: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(context.Background()) })
	ms, err := clickhouse.LoadMigrations(schemas.Migrations, schemas.MigrationsDir)
	if err != nil {
		t.Fatal(err)
	}
	writer := func(l *local.Server) *clickhouse.Client {
		cfg := l.Writer()
		// Writes through Distributed reach their shard, and both its
		// replicas, before they are acknowledged.
		cfg.Settings = map[string]string{"insert_distributed_sync": "1", "insert_quorum": "2"}
		cl, err := clickhouse.New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		return cl
	}
	first, other := writer(c.Nodes[0][0]), writer(c.Nodes[1][1])
	dbs := clickhouse.DefaultDatabases
	for range 2 { // the second run finds everything applied
		if err := clickhouse.MigrateOnCluster(ctx, first, dbs, ms, c.Name, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Every node has every table, local and distributed.
	var want string
	for s, row := range c.Nodes {
		for r, l := range row {
			got := mustExec(t, l.Writer(), "SELECT groupArray(concat(database, '.', name, ' ', engine)) FROM (SELECT database, name, engine FROM system.tables WHERE database IN ('herd', 'herd_raw') ORDER BY database, name)")
			if want == "" {
				want = got
			}
			if got != want {
				t.Errorf("shard %d replica %d has other tables:\n%s\nwant\n%s", s+1, r+1, got, want)
			}
		}
	}
	for _, must := range []string{"herd_raw.events Distributed", "herd_raw.events_local ReplicatedReplacingMergeTree", "herd.products Distributed", "herd.products_local ReplicatedMergeTree",
		"herd.schema_migrations Distributed", "herd_raw.cell_partials_local ReplicatedMergeTree"} {
		if !strings.Contains(want, must) {
			t.Errorf("no %s in %s", must, want)
		}
	}
	if show := mustExec(t, c.Nodes[1][0].Writer(), "SHOW CREATE TABLE herd_raw.events"); !strings.Contains(show, "Distributed(herd, herd_raw, events_local, visitor)") {
		t.Errorf("raw events not sharded by visitor: %s", show)
	}
	if n := strings.TrimSpace(mustExec(t, c.Nodes[1][0].Writer(), "SELECT count() FROM herd.schema_migrations")); n != strconv.Itoa(len(ms)) {
		t.Errorf("%s migrations recorded, want %d", n, len(ms))
	}
	if err := first.Exec(ctx, "INSERT INTO herd.catalog (site, product_id, name, category, price, loaded) VALUES ('demo', 'P1', 'Linen shirt', 'shirts', 35, now()), ('demo', 'P2', 'Belt', 'belts', 20, now())"); err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	if err := other.Raw(ctx, "SELECT groupArray(name) FROM (SELECT name FROM herd.catalog ORDER BY product_id)", &sb); err != nil || strings.TrimSpace(sb.String()) != "['Linen shirt','Belt']" {
		t.Errorf("catalog through another node: %q %v", sb.String(), err)
	}
}
