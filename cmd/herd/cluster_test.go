package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herd-analytics/herd/aggregate"
	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
	"github.com/herd-analytics/herd/internal/clickhouse/local"
	"github.com/herd-analytics/herd/internal/coord"
)

// TestClusterTwoIngestNodesOnePublisher runs herd on a local cluster of two
// shards of two replicas and ZooKeeper, as docs/operations.md deploys it:
// the schema made ON CLUSTER, two ingest processes on different nodes
// sharing day keys through ZooKeeper, two publishers on different nodes.
//
// Every shopper's requests alternate between the two ingest nodes, and in
// the middle of the load one ingest node is killed with SIGKILL and one
// replica's server too; while they are down, publication and the
// read-only user keep working; both come back. Then: every acknowledged event is
// stored exactly once, on both replicas of its shard; the raw rows and the
// true cells of every table are those the same requests give through one
// ingest node on one server; each shopper has one pseudonym living on one
// shard; two publishers
// started at once publish each bucket once; the dashboard's read-only user
// reads the published tables through any node.
func TestClusterTwoIngestNodesOnePublisher(t *testing.T) {
	chtest.Servers(t)
	ctx := context.Background()
	dir := t.TempDir()
	c, err := local.StartCluster(ctx, local.ClusterConfig{Dir: filepath.Join(dir, "cluster"), Shards: 2, Replicas: 2, ReaderDatabases: []string{"herd"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(context.Background()) })
	zk := "127.0.0.1:" + strconv.Itoa(c.ZK.Port)
	secret := filepath.Join(dir, "key-secret")
	if err := os.WriteFile(secret, []byte("6d1f0c5e9a8b7c6d5e4f30211203f4e5d6c7b8a99a8b7c6d5e4f3021120304f5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	node := func(s, r int) string { return c.Nodes[s][r].Writer().URL() }
	herd := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(ctx, args, &out, &errb)
		return out.String() + errb.String(), err
	}
	if out, err := herd("migrate", "--clickhouse", node(0, 0), "--cluster", "herd", "--log-level", "warn"); err != nil {
		t.Fatalf("migrate --cluster: %v\n%s", err, out)
	}

	// Two ingest nodes, each on its own ClickHouse node and data directory.
	var urls []string
	var argv [][]string
	var procs []*exec.Cmd
	for i := range 2 {
		addr := freeAddr(t)
		args := []string{"ingest", "--clickhouse", node(i, 0), "--cluster", "herd", "--zookeeper", zk, "--key-secret-file", secret,
			"--data-dir", filepath.Join(dir, "ingest"+strconv.Itoa(i)), "--ingest-addr", addr, "--log-level", "warn"}
		procs = append(procs, startHerdProcess(t, args...))
		urls = append(urls, "http://"+addr)
		argv = append(argv, args)
		waitReady(t, urls[i])
	}

	// The reference: one ingest node on one ClickHouse server, with the
	// same day keys (ZooKeeper), taking the same requests.
	single, err := local.Start(ctx, local.Config{Dir: filepath.Join(dir, "single")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = single.Stop(context.Background()) })
	if out, err := herd("migrate", "--clickhouse", single.Writer().URL(), "--log-level", "warn"); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	refAddr := freeAddr(t)
	startHerdProcess(t, "ingest", "--clickhouse", single.Writer().URL(), "--zookeeper", zk, "--key-secret-file", secret,
		"--data-dir", filepath.Join(dir, "ingest-ref"), "--ingest-addr", refAddr, "--log-level", "warn")
	refURL := "http://" + refAddr
	waitReady(t, refURL)

	const shoppers, requests, perRequest = 40, 8, 5
	var mu sync.Mutex
	acked := map[string]bool{}
	post := func(target, body string, shopper int) (int, error) {
		hr, _ := http.NewRequest("POST", target+"/api/events", strings.NewReader(body))
		hr.Header.Set("Content-Type", "application/json")
		hr.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0")
		hr.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", shopper+1))
		resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(hr)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	send := func(shopper, req int) {
		var b strings.Builder
		b.WriteString("[")
		var ids []string
		for e := range perRequest {
			id := fmt.Sprintf("S%02d-%d-%d", shopper, req, e)
			ids = append(ids, id)
			if e > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"id":%q,"type":"product_view","url":"/product/%s","product":{"id":%q}}`, id, id, id)
		}
		b.WriteString("]")
		// A shopper's requests alternate between the nodes; a load
		// balancer sends a request to the other node when one is down.
		n := (shopper + req) % 2
		for attempt := 0; attempt < 100; attempt++ {
			status, err := post(urls[(n+attempt)%2], b.String(), shopper)
			if err != nil {
				continue
			}
			if status == http.StatusAccepted {
				if status, err := post(refURL, b.String(), shopper); err != nil || status != http.StatusAccepted {
					t.Errorf("reference node: %d %v", status, err)
				}
				mu.Lock()
				for _, id := range ids {
					acked[id] = true
				}
				mu.Unlock()
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("shopper %d request %d never accepted", shopper, req)
	}
	load := func(reqs []int) {
		var wg sync.WaitGroup
		for s := range shoppers {
			wg.Go(func() {
				for _, r := range reqs {
					send(s, r)
				}
			})
		}
		wg.Wait()
	}
	sql := func(s, r int, q string) string {
		t.Helper()
		cl, err := clickhouse.New(c.Nodes[s][r].Writer(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var sb strings.Builder
		if err := cl.Raw(ctx, q+" FORMAT TSV", &sb); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return strings.TrimSpace(sb.String())
	}
	load([]int{0, 1, 2, 3})
	// What was acknowledged so far reaches ClickHouse (both replicas).
	for deadline := time.Now().Add(60 * time.Second); ; {
		mu.Lock()
		n := strconv.Itoa(len(acked))
		mu.Unlock()
		if sql(0, 0, "SELECT count() FROM (SELECT DISTINCT event_id FROM herd_raw.events)") == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first events did not reach ClickHouse within 60 s")
		}
		time.Sleep(200 * time.Millisecond)
	}

	// One replica and one ingest node fail; the other node keeps taking
	// events (into its spool: inserts need both replicas of a shard), then
	// both come back.
	c.Kill(1, 1)
	// Both nodes take the next requests into their spools (inserts wait for
	// the replica); then the second node is killed with its spool full.
	load([]int{4})
	if pending := spooled(t, filepath.Join(dir, "ingest1", "spool")); pending == 0 {
		t.Fatal("the second ingest node's spool is empty: nothing to recover")
	}
	if err := procs[1].Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = procs[1].Wait()
	load([]int{5})
	// The node that took them says its inserts fail, and why, rather than
	// ready while its spool grows.
	chtest.WaitFor(t, 60*time.Second, func() bool {
		code, body, _ := timedGet(t, urls[0]+"/readyz")
		return code == 503 && strings.Contains(body, "spool inserts failing")
	})
	// While the replica is down, publication and the read-only user keep
	// working on the other replica of its shard.
	tomorrow := time.Now().UTC().Truncate(24 * time.Hour).Add(26 * time.Hour).Format(time.RFC3339)
	out, err := herd("rollup", "--once", "--now", tomorrow, "--clickhouse", node(1, 0), "--cluster", "herd", "--zookeeper", zk, "--log-level", "warn")
	if err != nil || !strings.HasPrefix(out, "published") {
		t.Fatalf("rollup with a replica down: %v\n%s", err, out)
	}
	downReader, err := clickhouse.New(c.Nodes[0][1].Reader().WithDatabase("herd"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var runs strings.Builder
	err = downReader.Raw(ctx, "SELECT count() > 0 FROM herd.rollup_runs FORMAT TSV", &runs)
	downReader.Close()
	if err != nil || strings.TrimSpace(runs.String()) != "1" {
		t.Fatalf("reader with a replica down: %q %v (rollup: %s)", runs.String(), err, out)
	}
	startHerdProcess(t, argv[1]...)
	// Up (its spool waits for the replica, so not ready yet).
	chtest.WaitFor(t, 60*time.Second, func() bool { code, _, _ := timedGet(t, urls[1]+"/healthz"); return code == 200 })
	if err := c.Restart(ctx, 1, 1); err != nil {
		t.Fatal(err)
	}
	waitReady(t, urls[1])
	load([]int{6, 7})

	// Every acknowledged event is stored once, on both replicas of its shard.
	want := strconv.Itoa(len(acked))
	if len(acked) != shoppers*requests*perRequest {
		t.Fatalf("%d events acknowledged, want %d", len(acked), shoppers*requests*perRequest)
	}
	var stored string
	for deadline := time.Now().Add(90 * time.Second); ; {
		stored = sql(0, 1, "SELECT count(), uniqExact(product_id) FROM herd_raw.events FINAL")
		if stored == want+"\t"+want || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if stored != want+"\t"+want {
		t.Fatalf("stored rows and distinct events %q, want %s of each", stored, want)
	}
	for s := range 2 {
		var counts []string
		for deadline := time.Now().Add(60 * time.Second); ; {
			counts = []string{sql(s, 0, "SELECT count() FROM herd_raw.events_local FINAL"), sql(s, 1, "SELECT count() FROM herd_raw.events_local FINAL")}
			if counts[0] == counts[1] || time.Now().After(deadline) {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if counts[0] != counts[1] || counts[0] == "0" {
			t.Errorf("shard %d: replicas hold %v rows, want the same, not 0", s+1, counts)
		}
	}

	// One pseudonym per shopper, whichever node took each request, and
	// each pseudonym on one shard.
	if got := sql(1, 0, "SELECT (SELECT uniqExact(visitor) FROM herd_raw.events), max(n) FROM (SELECT substring(product_id, 1, 3) AS shopper, uniqExact(visitor) AS n FROM herd_raw.events GROUP BY shopper)"); got != strconv.Itoa(shoppers)+"\t1" {
		t.Errorf("visitors and most pseudonyms of one shopper: %q, want %d and 1", got, shoppers)
	}
	perShard := 0
	for s := range 2 {
		n, _ := strconv.Atoi(sql(s, 0, "SELECT uniqExact(visitor) FROM herd_raw.events_local"))
		perShard += n
	}
	if perShard != shoppers {
		t.Errorf("shards hold %d distinct visitors in all, want %d (each on one shard)", perShard, shoppers)
	}

	// The same rows as through the one node (received times aside: the
	// reference took each request a moment later), and the same true cells.
	rowsQ := "SELECT event_id, visitor, type, product_id, path, session FROM herd_raw.events FINAL ORDER BY event_id"
	refClient, err := clickhouse.New(single.Writer(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer refClient.Close()
	var refRows strings.Builder
	if err := refClient.Raw(ctx, rowsQ+" FORMAT TSV", &refRows); err != nil {
		t.Fatal(err)
	}
	if got := sql(1, 1, rowsQ); got != strings.TrimSpace(refRows.String()) {
		t.Errorf("rows through two nodes differ from rows through one (%d and %d bytes)", len(got), len(strings.TrimSpace(refRows.String())))
	}
	clusterDBs := clickhouse.DefaultDatabases
	clusterDBs.Cluster = "herd"
	clusterClient, err := clickhouse.New(c.Nodes[0][1].Writer().WithSetting("distributed_product_mode", "global"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer clusterClient.Close()
	today := aggregate.Bucket{Site: "demo", Grain: aggregate.Day, Start: time.Now().UTC().Truncate(24 * time.Hour)}
	trueCells := func(cl *clickhouse.Client, dbs clickhouse.Databases) map[string]string {
		p, err := aggregate.NewPublisher(cl, dbs, aggregate.Config{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, tb := range p.Tables() {
			cells, err := p.TrueCells(ctx, tb, today)
			if err != nil {
				t.Fatal(err)
			}
			sort.Slice(cells, func(i, j int) bool { return cells[i].Key() < cells[j].Key() })
			out[tb.Name] = fmt.Sprint(cells)
		}
		return out
	}
	want1, got2 := trueCells(refClient, clickhouse.DefaultDatabases), trueCells(clusterClient, clusterDBs)
	for name, w := range want1 {
		if got2[name] != w {
			t.Errorf("true cells of %s through two nodes on the cluster:\n%s\nthrough one node on one server:\n%s", name, got2[name], w)
		}
	}
	if want1["products"] == "[]" {
		t.Error("no product cells to compare")
	}

	// Two publishers on different nodes, started together, then again.
	for range 2 {
		var wg sync.WaitGroup
		results := make([]string, 2)
		for i := range 2 {
			wg.Go(func() {
				out, err := herd("rollup", "--once", "--now", tomorrow, "--clickhouse", node(i, 1-i), "--cluster", "herd", "--zookeeper", zk, "--log-level", "warn")
				results[i] = fmt.Sprintf("%v %s", err, out)
			})
		}
		wg.Wait()
		published := 0
		for _, r := range results {
			if strings.HasPrefix(r, "<nil> published") {
				published++
			} else if !strings.Contains(r, "another herd is publishing") {
				t.Fatalf("rollup: %s", r)
			}
		}
		if published == 0 {
			t.Fatalf("no publisher ran: %v", results)
		}
	}
	if twice := sql(1, 1, "SELECT count() FROM (SELECT table_name, site, grain, bucket, count() AS n FROM herd.rollup_runs WHERE state = 'published' GROUP BY table_name, site, grain, bucket HAVING n > 1)"); twice != "0" {
		t.Errorf("%s buckets published more than once", twice)
	}
	if runs := sql(0, 0, "SELECT countIf(state = 'published') FROM herd.rollup_runs"); runs == "0" {
		t.Error("nothing published")
	}

	// The audit holds on the cluster: every replica's raw hours, the keys
	// shared through ZooKeeper.
	reader := c.Nodes[1][0].Reader().URL()
	auditArgs := []string{"audit", "--clickhouse", node(1, 0), "--clickhouse-reader", reader, "--cluster", "herd", "--zookeeper", zk,
		"--data-dir", filepath.Join(dir, "ingest0"), "--log-level", "warn"}
	out, err = herd(auditArgs...)
	if err != nil || !strings.Contains(out, "raw retention on every replica") || !strings.Contains(out, "ZooKeeper holds keys for 1 days") {
		t.Fatalf("audit on the cluster: %v\n%s", err, out)
	}
	// A key made for a day still to come (it would outlive its lifetime;
	// an expired one the ingest nodes delete within a minute) and a raw
	// hour past the 7-day maximum are found.
	secretBytes, err := coord.ReadSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	zc, err := coord.Dial(ctx, coord.Config{Servers: []string{zk}, Secret: secretBytes})
	if err != nil {
		t.Fatal(err)
	}
	defer zc.Close()
	dk, err := zc.DayKeys(secretBytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dk.Claim(ctx, "2099-01-01", [32]byte{7}); err != nil {
		t.Fatal(err)
	}
	old := time.Now().UTC().Add(-8 * 24 * time.Hour).Unix()
	ins, err := clickhouse.New(c.Nodes[0][0].Writer().WithSetting("insert_distributed_sync", "1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ins.Close()
	if err := ins.Exec(ctx, fmt.Sprintf("INSERT INTO herd_raw.events (event_id, site, received, type, visitor) VALUES ('00000000-0000-4000-8000-000000000001', 'demo', %d, 'pageview', 1)", old)); err != nil {
		t.Fatal(err)
	}
	out, err = herd(auditArgs...)
	if err == nil || !strings.Contains(out, "a shared key exists for 2099-01-01, a day still to come") || !strings.Contains(out, "older than the 7-day maximum on a replica") {
		t.Errorf("audit with a stale shared key and an old raw hour: %v\n%s", err, out)
	}

	// The dashboard's user reads published tables through any node, and
	// raw events through none.
	readerClient, err := clickhouse.New(c.Nodes[1][1].Reader().WithDatabase("herd"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer readerClient.Close()
	var sb strings.Builder
	if err := readerClient.Raw(ctx, "SELECT count() > 0 FROM herd.rollup_runs FORMAT TSV", &sb); err != nil || strings.TrimSpace(sb.String()) != "1" {
		t.Errorf("reader through a node: %q %v", sb.String(), err)
	}
	if err := readerClient.Raw(ctx, "SELECT count() FROM herd_raw.events FORMAT TSV", &sb); err == nil {
		t.Error("the reader read raw events")
	}
}

// spooled is the size of the spool segments in dir that wait for ClickHouse.
func spooled(t *testing.T, dir string) int64 {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range entries {
		if info, err := e.Info(); err == nil && strings.HasPrefix(e.Name(), "seg-") {
			n += info.Size()
		}
	}
	return n
}
