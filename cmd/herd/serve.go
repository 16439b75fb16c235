package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/herd-analytics/herd/dashboard"
	"github.com/herd-analytics/herd/internal/probe"
	"github.com/herd-analytics/herd/internal/webserver"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return serve(ctx, "serve", args, stdout, stderr, nil, nil)
}

// running is what a serve hook gets once everything listens.
type running struct {
	ingestURL, dashboardURL string
	store                   *store
	pub                     publishFlags
	users                   *dashboard.Users
	log                     *slog.Logger
}

// serve runs ingest, publisher and dashboard until ctx ends. extraFlags adds
// a command's own flags; hook, when set, runs once everything listens (herd
// demo fills the shop), and its error stops the process.
func serve(ctx context.Context, name string, args []string, stdout, stderr io.Writer, extraFlags func(*flag.FlagSet), hook func(context.Context, running) error) error {
	fs := newFlagSet(name, stderr)
	var (
		base           baseFlags
		pub            publishFlags
		ingestAddr     = fs.String("ingest-addr", "127.0.0.1:8080", "address of the event API (herd.js, /api/event, /v1/batch)")
		dashboardAddr  = fs.String("dashboard-addr", "127.0.0.1:8081", "address of the dashboard")
		sitesFile      = fs.String("sites", "", "YAML file listing the sites, their origins and Segment write keys; empty serves only the demo site")
		geoIP          = fs.String("geoip", "", "MaxMind-format country database (GeoLite2-Country.mmdb or similar); empty stores no country")
		honorDNT       = fs.Bool("honor-dnt", true, "drop events from browsers sending DNT: 1 (Sec-GPC: 1 is always honoured)")
		trustedProxies = fs.String("trusted-proxies", "127.0.0.1,::1", "comma-separated proxy addresses whose X-Forwarded-For is believed (a reverse proxy on this host; herd gen sends its shoppers' addresses this way)")
		spoolMax       = fs.Int64("spool-max-bytes", 1<<30, "disk spool bound while ClickHouse is away; beyond it ingest answers 429")
	)
	pub.register(fs)
	if extraFlags != nil {
		extraFlags(fs)
	}
	log, err := base.parse(fs, args, stderr, "info")
	if err != nil {
		return err
	}

	if err := pub.validate(); err != nil {
		return err
	}
	// Start order: storage, schema, then the servers that depend on them.
	st, err := base.store.open(ctx, log, true)
	if err != nil {
		return err
	}
	defer st.close()
	if err := st.migrate(ctx, log); err != nil {
		return err
	}

	edge, err := newEdge(ctx, edgeConfig{
		dataDir: base.store.dataDir, sitesFile: *sitesFile, honorDNT: *honorDNT, geoIP: *geoIP, trustedProxies: splitList(*trustedProxies),
		spoolMaxBytes: *spoolMax, rawRetention: pub.rawRetention,
	}, st, log)
	if err != nil {
		return err
	}
	defer edge.close(st, log)
	sctx, stopScheduler := context.WithCancel(ctx)
	defer stopScheduler()
	published, err := startScheduler(sctx, st, pub, edge.spool, log)
	if err != nil {
		return err
	}
	reportsDone, err := startReports(sctx, st, pub, filepath.Join(base.store.dataDir, "reports"), log)
	if err != nil {
		return err
	}
	defer func() { stopScheduler(); <-reportsDone }()
	ing, err := webserver.Start(edge.server.App(probe.NewReadiness(st.writer)), *ingestAddr)
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	users, err := dashboard.OpenUsers(filepath.Join(base.store.dataDir, "users.json"))
	if err != nil {
		return err
	}
	if users.Len() == 0 && name != "demo" {
		log.Warn("no dashboard users yet: create one with herd user add --name NAME --role manager")
	}
	statement, err := statementFunc(st, pub)
	if err != nil {
		return err
	}
	dash, err := webserver.Start(dashboard.NewApp(dashboard.Config{
		Reader: st.reader, Database: st.dbs.Pub, Users: users, Statement: statement,
		Downloads: &dashboard.DownloadLog{Writer: st.writer, Database: st.dbs.Pub},
		ReportDir: filepath.Join(base.store.dataDir, "reports"),
	}, probe.NewReadiness(st.reader), log), *dashboardAddr)
	if err != nil {
		_ = ing.Shutdown(context.Background())
		return fmt.Errorf("dashboard: %w", err)
	}
	log.Info("herd serving", "ingest", "http://"+ing.Addr(), "dashboard", "http://"+dash.Addr())
	fmt.Fprintf(stdout, "ingest:    http://%s\ndashboard: http://%s\n", ing.Addr(), dash.Addr())
	hookDone := make(chan error, 1)
	if hook != nil {
		go func() {
			if err := hook(sctx, running{ingestURL: "http://" + ing.Addr(), dashboardURL: "http://" + dash.Addr(), store: st, pub: pub, users: users, log: log}); err != nil {
				hookDone <- err
			}
		}()
	}

	var runErr error
	var exited <-chan struct{}
	if st.local != nil {
		exited = st.local.Exited()
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-ing.Done():
		runErr = fmt.Errorf("ingest server stopped: %w", err)
	case err := <-dash.Done():
		runErr = fmt.Errorf("dashboard server stopped: %w", err)
	case <-exited:
		runErr = errors.New("managed clickhouse exited; see " + st.local.Dir() + "/log")
	case err := <-published:
		runErr = fmt.Errorf("publisher stopped: %w", err)
	case err := <-hookDone:
		runErr = err
	}
	// The publisher finishes its bucket and records it before the store
	// closes.
	stopScheduler()
	if published != nil {
		select {
		case <-published:
		case <-time.After(30 * time.Second):
			log.Warn("publisher did not stop within 30s")
		}
	}

	// Stop order is the reverse: stop taking requests (ingest flushes its
	// batches), then the store goes last (deferred).
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := dash.Shutdown(sctx); err != nil {
		log.Warn("dashboard shutdown", "err", err)
	}
	if err := ing.Shutdown(sctx); err != nil {
		log.Warn("ingest shutdown", "err", err)
	}
	// Requests are done; the writer flushes its last batch before the
	// store closes.
	if err := edge.writer.Close(sctx); err != nil {
		log.Warn("ingest writer close", "err", err)
	}
	return runErr
}
