package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/herd-analytics/herd/aggregate"
	"github.com/herd-analytics/herd/dashboard"
	"github.com/herd-analytics/herd/ingest"
	"github.com/herd-analytics/herd/internal/probe"
	"github.com/herd-analytics/herd/internal/webserver"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	softMemoryLimit(1 << 30) // the publisher's day pass included
	return serve(ctx, "serve", allRoles, args, stdout, stderr, serveHooks{})
}

// softMemoryLimit sets the Go runtime's soft memory limit of a role that
// takes requests, unless GOMEMLIMIT says otherwise: past it the collector
// works harder instead of letting garbage (of refused bombs, say) pile up.
func softMemoryLimit(bytes int64) {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(bytes)
	}
}

// runIngest runs only the event API, for deployments that scale ingest out.
func runIngest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	tuneGCForIngest()
	return serve(ctx, "ingest", roles{ingest: true}, args, stdout, stderr, serveHooks{})
}

// tuneGCForIngest trades memory the ingest role does not need for CPU it
// does: its live heap is small (about a second of rows on their way to
// ClickHouse) and its garbage is plentiful, so it collects at 4× the live
// heap instead of 2×, under a soft limit that keeps the process near
// 160 MiB. GOGC and GOMEMLIMIT in the environment win.
func tuneGCForIngest() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(300)
	}
	softMemoryLimit(160 << 20)
}

// runDashboard runs only the dashboard and the scheduled reports.
func runDashboard(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	softMemoryLimit(256 << 20)
	return serve(ctx, "dashboard", roles{dashboard: true}, args, stdout, stderr, serveHooks{})
}

// roles are the parts a serving process runs (docs/operations.md): herd serve runs
// all three, herd ingest / aggregate / dashboard one each.
type roles struct {
	ingest, publisher, dashboard bool
}

var allRoles = roles{ingest: true, publisher: true, dashboard: true}

// stopBudget bounds a shutdown: systemd's default stop timeout is 90 s and
// container runtimes give 30 s before SIGKILL.
//
// A managed ClickHouse that has not stopped when it runs out gets 5 s more
// before it is killed: herd is gone within 20 s (docs/operations.md,
// TestFrozenClickHouse), also under load.
const stopBudget = 13 * time.Second

// running is what a serve hook gets once everything listens.
type running struct {
	ingestURL, dashboardURL string
	dataDir                 string
	store                   *store
	pub                     publishFlags
	users                   *dashboard.Users
	log                     *slog.Logger
	// reportsNow writes (and mails) the scheduled reports due and missing;
	// nil without the dashboard role.
	reportsNow func()
}

// serveHooks are what a command adds to serve; each may be nil.
type serveHooks struct {
	// flags adds the command's own flags.
	flags func(*flag.FlagSet)
	// prepare runs once the flags are parsed, before anything starts; it
	// may set them (herd demo --local-cluster starts the cluster it then
	// points them at). Its cleanup runs when serve returns.
	prepare func(ctx context.Context, base *baseFlags, ef *edgeFlags, log *slog.Logger) (cleanup func(), err error)
	// ready runs once everything listens (herd demo fills the shop); its
	// error stops the process.
	ready func(context.Context, running) error
}

// serve runs the given roles until ctx ends.
func serve(ctx context.Context, name string, r roles, args []string, stdout, stderr io.Writer, h serveHooks) error {
	fs := newFlagSet(name, stderr)
	var (
		base          baseFlags
		pub           publishFlags
		ef            edgeFlags
		dashboardAddr string
		hsts          bool
		mail          mailFlags
	)
	if r.ingest {
		ef.register(fs)
	}
	if r.dashboard {
		fs.StringVar(&dashboardAddr, "dashboard-addr", "127.0.0.1:8081", "address of the dashboard")
		fs.BoolVar(&hsts, "hsts", false, "send Strict-Transport-Security: set when the dashboard is reached over TLS (directly or through a proxy)")
		mail.register(fs)
	}
	if r.publisher || r.dashboard {
		pub.register(fs) // the dashboard states the publication rules
	} else {
		pub.registerRetention(fs)
	}
	if h.flags != nil {
		h.flags(fs)
	}
	log, err := base.parse(fs, args, stderr, "info")
	if err != nil {
		return err
	}
	// Each part registers its stop as it starts; they stop in reverse
	// order (the servers, then what they feed, the store last) under one
	// deadline, whether serve returns early or at the end.
	stops := &stopList{log: log}
	defer stops.run(stopBudget)
	if h.prepare != nil {
		cleanup, err := h.prepare(ctx, &base, &ef, log)
		if err != nil {
			return err
		}
		stops.add("prepared", func(context.Context) error { cleanup(); return nil })
	}

	validate := pub.validateRetention // all ingest has of the rules
	if r.publisher || r.dashboard {
		validate = pub.validate
	}
	if err := validate(); err != nil {
		return err
	}
	relay, err := mail.config()
	if err != nil {
		return err
	}
	st, err := base.store.open(ctx, log, r.dashboard)
	if err != nil {
		return err
	}
	stops.add("store", func(ctx context.Context) error { st.closeWithin(ctx); return nil })
	if err := st.migrate(ctx, log); err != nil {
		return err
	}

	var (
		ingestURL, dashboardURL string
		ing, dash               *webserver.Server
		edge                    *ingest.Edge
		users                   *dashboard.Users
		published               <-chan error
		catchUpReports          func()
	)
	// The publisher and the scheduled reports run under sctx: stopping
	// either step cancels both, each then waits for its own.
	sctx, stopScheduler := context.WithCancel(ctx)
	defer stopScheduler()
	if r.ingest {
		if edge, err = ef.open(ctx, base.store.dataDir, pub.rawRetention, st, base.store.zookeeper, log); err != nil {
			return err
		}
		edgeDone := make(chan error, 1)
		go func() { edgeDone <- edge.Run(context.WithoutCancel(ctx)); close(edgeDone) }()
		// Closed after the ingest server stopped; what the spool cannot
		// insert in time waits on disk for the next start.
		stops.add("ingest", func(ctx context.Context) error {
			err := edge.Close(ctx)
			return errors.Join(err, waitFor(ctx, edgeDone))
		})
	}
	if r.publisher {
		var spool aggregate.SpoolPruner
		if edge != nil {
			spool = edge.Spool()
		}
		if published, err = startScheduler(sctx, st, pub, spool, log); err != nil {
			return err
		}
		// The publisher finishes its bucket and records it before the
		// store closes, if ClickHouse lets it in time.
		stops.add("publisher", func(ctx context.Context) error { stopScheduler(); return waitFor(ctx, published) })
	}
	if r.dashboard {
		reportsDone, reportsNow, err := startReports(sctx, st, pub, filepath.Join(base.store.dataDir, "reports"), relay, log)
		if err != nil {
			return err
		}
		catchUpReports = reportsNow
		stops.add("scheduled reports", func(ctx context.Context) error { stopScheduler(); return waitFor(ctx, reportsDone) })
	}
	if r.ingest {
		if ing, err = webserver.Start(edge.App(readiness(edge.Ready(st.writer), log.With("server", "ingest"))), ef.addr); err != nil {
			return fmt.Errorf("ingest: %w", err)
		}
		stops.add("ingest server", ing.Shutdown)
		ingestURL = "http://" + ing.Addr()
		log.Info("ingest serving", "url", ingestURL)
		fmt.Fprintf(stdout, "ingest:    %s\n", ingestURL)
	}
	if r.dashboard {
		if dash, users, err = startDashboard(st, pub, dashboardAddr, hsts, base.store.dataDir, name, log); err != nil {
			return err
		}
		stops.add("dashboard server", dash.Shutdown)
		dashboardURL = "http://" + dash.Addr()
		log.Info("dashboard serving", "url", dashboardURL)
		if h.ready == nil { // herd demo prints it with the login, once both exist
			fmt.Fprintf(stdout, "dashboard: %s\n", dashboardURL)
		}
	}
	hookDone := make(chan error, 1)
	if h.ready != nil {
		go func() {
			if err := h.ready(sctx, running{ingestURL: ingestURL, dashboardURL: dashboardURL, dataDir: base.store.dataDir, store: st, pub: pub, users: users, log: log, reportsNow: catchUpReports}); err != nil {
				hookDone <- err
			}
		}()
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down")
		return nil
	case err := <-ing.Done(): // a nil server's Done never fires
		return fmt.Errorf("ingest server stopped: %w", err)
	case err := <-dash.Done():
		return fmt.Errorf("dashboard server stopped: %w", err)
	case err := <-published:
		return fmt.Errorf("publisher stopped: %w", err)
	case err := <-hookDone:
		return err
	}
}

// stopList is what a serving process started, each with its stop.
type stopList struct {
	log   *slog.Logger
	steps []stopStep
}

type stopStep struct {
	name string
	stop func(context.Context) error
}

// add registers the stop of a part that just started.
func (l *stopList) add(name string, stop func(context.Context) error) {
	l.steps = append(l.steps, stopStep{name, stop})
}

// run stops every part in reverse order of start within budget in all: a
// part that overruns it (a frozen ClickHouse) leaves the rest less time,
// never more, and a failure is logged without stopping the rest.
func (l *stopList) run(budget time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	for i := len(l.steps) - 1; i >= 0; i-- {
		if err := l.steps[i].stop(ctx); err != nil {
			l.log.Warn("stop", "part", l.steps[i].name, "err", err)
		}
	}
}

// waitFor waits until done delivers or closes, or ctx ends.
func waitFor[T any](ctx context.Context, done <-chan T) error {
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("did not stop in time: %w", ctx.Err())
	}
}

// startDashboard serves the dashboard over the published rollups.
func startDashboard(st *store, pub publishFlags, addr string, hsts bool, dataDir, name string, log *slog.Logger) (*webserver.Server, *dashboard.Users, error) {
	users, err := dashboard.OpenUsers(filepath.Join(dataDir, "users.json"))
	if err != nil {
		return nil, nil, err
	}
	if users.Len() == 0 && name != "demo" {
		log.Warn("no dashboard users yet: create one with herd user add --name NAME --role manager")
	}
	statement, err := statementFunc(st, pub)
	if err != nil {
		return nil, nil, err
	}
	dash, err := webserver.Start(dashboard.NewApp(dashboard.Config{
		Reader: st.reader, Database: st.dbs.Pub, Users: users, Statement: statement,
		Downloads: &dashboard.DownloadLog{Writer: st.writer, Database: st.dbs.Pub},
		ReportDir: filepath.Join(dataDir, "reports"), HSTS: hsts,
	}, readiness(st.reader, log.With("server", "dashboard")), log), addr)
	if err != nil {
		return nil, nil, fmt.Errorf("dashboard: %w", err)
	}
	return dash, users, nil
}

// readiness checks p, logging its changes to log.
func readiness(p probe.Pinger, log *slog.Logger) *probe.Readiness {
	r := probe.NewReadiness(p)
	r.Log = log
	return r
}
