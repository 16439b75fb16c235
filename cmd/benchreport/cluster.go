package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/herd-analytics/herd/aggregate"
	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/clickhouse/local"
	"github.com/herd-analytics/herd/schemas"
)

// benchCluster runs herd on the local cluster (ZooKeeper, 2 shards × 2
// replicas, every process on this machine) and measures, side by side:
// ingest throughput through one ingest node and through two, and the
// publication of one day on the cluster and on the single server.
func benchCluster(ctx context.Context, single *clickhouse.Client, dir string, events int) (string, error) {
	bin, err := buildHerd(ctx, dir)
	if err != nil {
		return "", err
	}
	cl, err := local.StartCluster(ctx, local.ClusterConfig{Dir: filepath.Join(dir, "cluster"), Shards: 2, Replicas: 2, ReaderDatabases: []string{"herd"}})
	if err != nil {
		return "", err
	}
	defer cl.Stop(context.Background())
	dbs := clickhouse.DefaultDatabases
	dbs.Cluster = cl.Name
	c, err := clickhouse.New(cl.Nodes[0][0].Writer().WithSetting("insert_distributed_sync", "1"), nil)
	if err != nil {
		return "", err
	}
	defer c.Close()
	ms, err := clickhouse.LoadMigrations(schemas.Migrations, schemas.MigrationsDir)
	if err != nil {
		return "", err
	}
	if err := clickhouse.MigrateOnCluster(ctx, c, clickhouse.DefaultDatabases, ms, cl.Name, nil); err != nil {
		return "", err
	}
	secret := filepath.Join(dir, "key-secret")
	var b [32]byte
	_, _ = rand.Read(b[:])
	if err := os.WriteFile(secret, []byte(hex.EncodeToString(b[:])), 0o600); err != nil {
		return "", err
	}
	zk := "127.0.0.1:" + strconv.Itoa(cl.ZK.Port)
	var nodes []*child
	for i := range 2 {
		n, err := startChild(ctx, "ingest", bin, []string{"ingest", "--clickhouse", cl.Nodes[i][0].Writer().URL(), "--cluster", cl.Name,
			"--zookeeper", zk, "--key-secret-file", secret, "--data-dir", filepath.Join(dir, "cluster-ingest"+strconv.Itoa(i)),
			"--ingest-addr", "127.0.0.1:0", "--log-level", "warn", "--allow-imports", "--import-backfill"})
		if err != nil {
			return "", err
		}
		defer n.stop()
		nodes = append(nodes, n)
	}
	var chPIDs []int
	for _, row := range cl.Nodes {
		for _, l := range row {
			chPIDs = append(chPIDs, l.PID())
		}
	}
	cpu := func(pids []int) float64 {
		var sum float64
		for _, p := range pids {
			sum += cpuSeconds(p)
		}
		return sum
	}
	// load sends 20-event requests from ingestConns connections spread
	// over the given nodes, for a window.
	load := func(ns []*child) (rate, herdCPU, chCPU float64, acked int64, err error) {
		var pids []int
		for _, n := range ns {
			pids = append(pids, n.pid())
		}
		h0, c0 := cpu(pids), cpu(chPIDs)
		results := make([]loadResult, len(ns))
		var wg sync.WaitGroup
		for i, n := range ns {
			wg.Go(func() { results[i] = closedLoopConns(ctx, n.url, 20, ingestWindow, ingestConns/len(ns)) })
		}
		wg.Wait()
		h1, c1 := cpu(pids), cpu(chPIDs)
		var elapsed time.Duration
		for _, r := range results {
			if r.failed > 0 {
				return 0, 0, 0, 0, fmt.Errorf("cluster ingest bench: %d requests failed (last: %v)", r.failed, r.lastErr)
			}
			acked += r.events
			elapsed = max(elapsed, r.elapsed)
		}
		return float64(acked) / elapsed.Seconds(), (h1 - h0) / float64(acked) * 1e6, (c1 - c0) / float64(acked) * 1e6, acked, nil
	}
	var one, two, ratios, hc1, hc2, cc1, cc2 []float64
	var acked int64
	for i := 0; i <= ingestPairs; i++ {
		r1, h1, c1, a1, err := load(nodes[:1])
		if err != nil {
			return "", err
		}
		r2, h2, c2, a2, err := load(nodes)
		if err != nil {
			return "", err
		}
		acked += a1 + a2
		if i == 0 {
			continue // warm-up
		}
		fmt.Fprintf(os.Stderr, "cluster ingest pair %d: one node %.0f ev/s, two nodes %.0f ev/s\n", i, r1, r2)
		one, two, ratios = append(one, r1), append(two, r2), append(ratios, r2/r1)
		hc1, hc2, cc1, cc2 = append(hc1, h1), append(hc2, h2), append(cc1, c1), append(cc2, c2)
	}
	// An insert retried after a partial failure (another node's quorum
	// insert held the shard) may store some rows twice until a merge folds
	// them (ReplacingMergeTree on event_id): count events, and copies.
	var stored, rows uint64
	for deadline := time.Now().Add(3 * time.Minute); ; {
		if stored, err = countRows(ctx, c, "(SELECT DISTINCT event_id FROM herd_raw.events)"); err != nil {
			return "", err
		}
		if int64(stored) >= acked || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if int64(stored) != acked {
		return "", fmt.Errorf("cluster ingest bench: %d events acknowledged, %d stored", acked, stored)
	}
	if rows, err = countRows(ctx, c, "herd_raw.events"); err != nil {
		return "", err
	}

	// Publication of one day: the cluster against the single server.
	day := time.Now().UTC().Truncate(24 * time.Hour).Add(-48 * time.Hour)
	fmt.Fprintf(os.Stderr, "generating %d raw events for %s on the cluster and on one server\n", events, day.Format(time.DateOnly))
	for _, cc := range []*clickhouse.Client{c, single} {
		if err := generateDay(ctx, cc, dbs.Raw, day, events); err != nil {
			return "", err
		}
	}
	pc, err := aggregate.NewPublisher(c, dbs, aggregate.Config{}, nil)
	if err != nil {
		return "", err
	}
	ps, err := aggregate.NewPublisher(single, clickhouse.DefaultDatabases, aggregate.Config{}, nil)
	if err != nil {
		return "", err
	}
	var onCluster, onOne, pubRatios []float64
	for i := range 2 {
		tc, _, err := publishDay(ctx, c, pc, dbs, day)
		if err != nil {
			return "", fmt.Errorf("publish on the cluster: %w", err)
		}
		t1, _, err := publishDay(ctx, single, ps, clickhouse.DefaultDatabases, day)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(os.Stderr, "publication pair %d: cluster %.1fs, one server %.1fs\n", i, tc.Seconds(), t1.Seconds())
		onCluster, onOne, pubRatios = append(onCluster, tc.Seconds()), append(onOne, t1.Seconds()), append(pubRatios, tc.Seconds()/t1.Seconds())
	}

	var s strings.Builder
	fmt.Fprintf(&s, "Measured %s on %s/%s, %d cores shared by everything: ZooKeeper, four clickhouse-server processes (2 shards × 2 replicas), the herd processes and the load generator. Ingest inserts with `insert_quorum=2` (an event is on both replicas of its shard before the spool lets it go) through the Distributed table with synchronous inserts.\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	s.WriteString("| ingest, 20-event requests, 256 connections | events/s (median) | min–max | herd CPU µs/event | ClickHouse CPU µs/event (4 servers) |\n|---|---|---|---|---|\n")
	fmt.Fprintf(&s, "| one ingest node | %.0f | %.0f–%.0f | %.1f | %.1f |\n", median(one), slices.Min(one), slices.Max(one), median(hc1), median(cc1))
	fmt.Fprintf(&s, "| two ingest nodes (connections split) | %.0f | %.0f–%.0f | %.1f | %.1f |\n", median(two), slices.Min(two), slices.Max(two), median(hc2), median(cc2))
	fmt.Fprintf(&s, "\nTwo nodes / one, pair by pair: median **%.2f** (%.2f–%.2f); every one of %d acknowledged events stored (%d rows: %d copies from retried inserts, which merges fold by event id).\n\n",
		median(ratios), slices.Min(ratios), slices.Max(ratios), acked, rows, rows-stored)
	fmt.Fprintf(&s, "Publication of one day of %d raw events into every table and grain: cluster **%.1f s** (median of %d), one server %.1f s; cluster / one server **%.2f** (%.2f–%.2f).\n",
		events, median(onCluster), len(onCluster), median(onOne), median(pubRatios), slices.Min(pubRatios), slices.Max(pubRatios))
	return s.String(), nil
}

// buildHerd builds the herd binary into dir once.
func buildHerd(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "herd")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	build := execCommand(ctx, "go", "build", "-o", bin, "./cmd/herd")
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("build herd: %w", err)
	}
	return bin, nil
}
