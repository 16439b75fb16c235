package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/clickhouse/local"
	"github.com/herd-analytics/herd/schemas"
)

// localCluster is what herd demo --local-cluster runs besides itself: the
// cluster (ZooKeeper and 2 shards × 2 replicas) and a second ingest node,
// a child process on another shard's server.
type localCluster struct {
	cluster   *local.Cluster
	ingest    *exec.Cmd
	ingestURL string
}

// startLocalCluster starts the cluster afresh under --data-dir, migrates
// it ON CLUSTER, starts the second ingest node, and points this process's
// flags at the cluster: its first server, the cluster's name, ZooKeeper
// and the ingest nodes' shared key secret.
func startLocalCluster(ctx context.Context, base *baseFlags, ef *edgeFlags, log *slog.Logger) (*localCluster, error) {
	if base.store.url != "" || base.store.cluster != "" {
		return nil, errors.New("--local-cluster starts its own cluster: leave --clickhouse and --cluster unset")
	}
	dir, err := filepath.Abs(filepath.Join(base.store.dataDir, "cluster"))
	if err != nil {
		return nil, err
	}
	// A demo starts from an empty cluster (its ports change every start).
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	c, err := local.StartCluster(ctx, local.ClusterConfig{Dir: dir, Shards: 2, Replicas: 2, ReaderDatabases: []string{clickhouse.DefaultDatabases.Pub}, Log: log})
	if err != nil {
		return nil, err
	}
	lc := &localCluster{cluster: c}
	ok := false
	defer func() {
		if !ok {
			lc.stop()
		}
	}()
	secret := filepath.Join(dir, "key-secret")
	var b [32]byte
	_, _ = rand.Read(b[:])
	if err := os.WriteFile(secret, []byte(hex.EncodeToString(b[:])+"\n"), 0o600); err != nil {
		return nil, err
	}
	ms, err := clickhouse.LoadMigrations(schemas.Migrations, schemas.MigrationsDir)
	if err != nil {
		return nil, err
	}
	first, err := clickhouse.New(c.Nodes[0][0].Writer(), log)
	if err != nil {
		return nil, err
	}
	defer first.Close()
	if err := clickhouse.MigrateOnCluster(ctx, first, clickhouse.DefaultDatabases, ms, c.Name, log); err != nil {
		return nil, err
	}
	zk := "127.0.0.1:" + strconv.Itoa(c.ZK.Port)

	// The second ingest node: this binary, on shard 2's first server.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	out, err := os.OpenFile(filepath.Join(dir, "ingest2.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	// The writer's URL holds its password: in the child's environment,
	// which only its user can read, never on its command line (ps).
	lc.ingest = exec.Command(exe, "ingest", "--cluster", c.Name, "--zookeeper", zk,
		"--key-secret-file", secret, "--data-dir", filepath.Join(dir, "ingest2"), "--ingest-addr", addr, "--log-level", "warn", "--allow-imports", "--import-backfill")
	lc.ingest.Env = append(os.Environ(), envName("clickhouse")+"="+c.Nodes[1][0].Writer().URL())
	lc.ingest.Stdout, lc.ingest.Stderr = out, out
	if err := lc.ingest.Start(); err != nil {
		return nil, fmt.Errorf("second ingest node: %w", err)
	}
	lc.ingestURL = "http://" + addr
	if err := waitHealthy(ctx, lc.ingestURL+"/readyz", time.Minute); err != nil {
		return nil, fmt.Errorf("second ingest node (log: %s): %w", filepath.Join(dir, "ingest2.log"), err)
	}

	base.store.url, base.store.readerURL = c.Nodes[0][0].Writer().URL(), c.Nodes[0][0].Reader().URL()
	base.store.cluster, base.store.zookeeper = c.Name, zk
	ef.keySecretFile = secret
	ok = true
	return lc, nil
}

// stop ends the second ingest node, then the cluster.
func (lc *localCluster) stop() {
	if lc.ingest != nil && lc.ingest.Process != nil {
		_ = lc.ingest.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = lc.ingest.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = lc.ingest.Process.Kill()
			<-done
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lc.cluster.Stop(ctx)
}

// waitHealthy polls url until it answers 200 or within has passed.
func waitHealthy(ctx context.Context, url string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	hc := &http.Client{Timeout: time.Second}
	for {
		if resp, err := hc.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w", url, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
