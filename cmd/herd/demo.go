package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/herd-analytics/herd/aggregate"
	"github.com/herd-analytics/herd/dashboard"
	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/shopsim"
)

// runDemo is herd serve plus a synthetic shop: on first start it imports
// weeks of history through the ingest's import mode and publishes it, then
// keeps live shoppers coming; it prints the dashboard URL and a login.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		perDay   int
		days     int
		products int
		rate     float64
		cluster  bool
		// also are the local cluster's other ingest nodes.
		also []string
	)
	// The demo publishes at the production rules (k, ε, δ): what it shows
	// is what a shop of its size would see.
	flags := func(fs *flag.FlagSet) {
		fs.IntVar(&perDay, "visitors-per-day", 1500, "synthetic visitor-days a day")
		fs.IntVar(&products, "products", 300, "products in the synthetic catalog")
		fs.IntVar(&days, "days", 28, "days of history imported on first start")
		fs.Float64Var(&rate, "rate", 40, "live events per second after the import")
		fs.BoolVar(&cluster, "local-cluster", false, "run on a local cluster under --data-dir: ZooKeeper, 2 shards × 2 replicas of ClickHouse, a second ingest node (make demo-cluster)")
	}
	prepare := func(ctx context.Context, base *baseFlags, ef *edgeFlags, log *slog.Logger) (func(), error) {
		// The demo fills its shop with weeks of history: imports of any
		// day, on this node and on the cluster's second.
		ef.allowImports, ef.importBackfill = true, true
		if !cluster {
			return func() {}, nil
		}
		lc, err := startLocalCluster(ctx, base, ef, log)
		if err != nil {
			return nil, err
		}
		also = []string{lc.ingestURL}
		fmt.Fprintf(stdout, "local cluster: ZooKeeper 127.0.0.1:%d, 2 shards × 2 replicas of ClickHouse, ingest nodes %s and this one\n", lc.cluster.ZK.Port, lc.ingestURL)
		return lc.stop, nil
	}
	ready := func(ctx context.Context, r running) error {
		password, err := demoLogin(r.users)
		if err != nil {
			return err
		}
		shop := shopsim.Config{Site: "demo", Seed: 1, Products: products}
		// The shop's catalog, as a shop would export it for --catalog.
		catalog := filepath.Join(r.dataDir, "catalog.csv")
		if err := writeCatalog(catalog, shop); err != nil {
			return err
		}
		published, err := countRows(ctx, r, "SELECT count() FROM "+r.store.dbs.Pub+".rollup_runs")
		if err != nil {
			return err
		}
		if published == 0 {
			fmt.Fprintf(stdout, "importing %d days of a synthetic shop's history (about %d visitor-days a day, %d products)…\n", days, perDay, products)
			start := time.Now()
			st, err := shopsim.Generate(ctx, shopsim.GenConfig{Target: r.ingestURL, Also: also, Shop: shop, VisitorsPerDay: perDay, Days: days, Import: true, Workers: 16}, r.log)
			if err != nil {
				return fmt.Errorf("demo import: %w", err)
			}
			fmt.Fprintf(stdout, "imported %s in %v\n", st, time.Since(start).Round(time.Second))
			// The spool hands rows to ClickHouse within a second or two.
			for deadline := time.Now().Add(time.Minute); ; {
				n, err := countRows(ctx, r, "SELECT count() FROM "+r.store.dbs.Raw+".events")
				if err != nil {
					return err
				}
				if n >= uint64(st.Accepted) || time.Now().After(deadline) {
					break
				}
				time.Sleep(500 * time.Millisecond)
			}
			fmt.Fprintln(stdout, "publishing the history (k floor, differential privacy)…")
			if err := publishNow(ctx, r, catalog); err != nil {
				return err
			}
			if r.reportsNow != nil {
				r.reportsNow() // the archive of last week's and month's reports
			}
		}
		fmt.Fprintf(stdout, "\ndashboard: %s\nlogin:     demo / %s   (role manager)\n\n", r.dashboardURL, password)
		_, err = shopsim.Generate(ctx, shopsim.GenConfig{Target: r.ingestURL, Also: also, Shop: shop, VisitorsPerDay: perDay, Days: days, Rate: rate, Workers: 2}, r.log)
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	softMemoryLimit(1 << 30)
	return serve(ctx, "demo", allRoles, args, stdout, stderr, serveHooks{flags: flags, prepare: prepare, ready: ready})
}

// demoLogin (re)creates the demo user with a fresh password.
func demoLogin(users *dashboard.Users) (string, error) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	password := base64.RawURLEncoding.EncodeToString(b[:])
	return password, users.Add("demo", dashboard.Manager, password)
}

// publishNow loads the catalog and runs the publisher's tick, waiting while
// the scheduler's own start-up tick holds the lock.
func publishNow(ctx context.Context, r running, catalog string) error {
	pf := r.pub
	pf.catalog, pf.catalogSite = catalog, "demo"
	p, err := aggregate.NewPublisher(r.store.writer, r.store.dbs, pf.config(), r.log)
	if err != nil {
		return err
	}
	s := &aggregate.Scheduler{Publisher: p, Locks: r.store.locks(), Log: r.log}
	for {
		res, err := s.Tick(ctx)
		if err != nil {
			return err
		}
		if !res.Skipped {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func countRows(ctx context.Context, r running, q string) (uint64, error) {
	var n uint64
	err := r.store.writer.Select(ctx, q, func(b *proto.Block) error {
		if b.Rows() > 0 {
			n = clickhouse.Get[uint64](b, 0, 0)
		}
		return nil
	})
	return n, err
}

// writeCatalog writes the synthetic shop's catalog to path.
func writeCatalog(path string, shop shopsim.Config) error {
	var b bytes.Buffer
	if err := shopsim.New(shop).WriteCatalog(&b); err != nil {
		return err
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("demo catalog: %w", err)
	}
	return nil
}
