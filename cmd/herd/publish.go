package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/herd-analytics/herd/aggregate"
	"github.com/herd-analytics/herd/audit"
)

// publishFlags are the publication rules (docs/privacy.md), shared by every
// command that publishes or audits.
type publishFlags struct {
	k            int
	epsilon      float64
	delta        float64
	grace        time.Duration
	rawRetention time.Duration
	schedule     string
	catalog      string
	catalogSite  string
}

func (p *publishFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&p.k, "k", 10, "publish only cells covering at least k distinct visitor-days (at least 2)")
	fs.Float64Var(&p.epsilon, "epsilon", 4, "total differential-privacy ε per visitor-day, across every table and grain")
	fs.Float64Var(&p.delta, "delta", 1e-6, "total differential-privacy δ per visitor-day")
	fs.DurationVar(&p.grace, "grace", 5*time.Minute, "wait this long after a bucket closes before publishing it")
	fs.StringVar(&p.catalog, "catalog", "", "the shop's product catalog, CSV with product_id, name, category, price (and optionally site); re-read when it changes")
	fs.StringVar(&p.catalogSite, "catalog-site", "demo", "site of catalog rows that name none")
	p.registerRetention(fs)
	fs.StringVar(&p.schedule, "rollup-schedule", aggregate.DefaultSchedule, "cron schedule (UTC) of the publisher")
}

// registerRetention registers only --raw-retention, for herd ingest: its
// spool keeps rows no longer than raw events may exist.
func (p *publishFlags) registerRetention(fs *flag.FlagSet) {
	fs.DurationVar(&p.rawRetention, "raw-retention", 48*time.Hour, "how long raw events (and spooled rows) may exist once published, at most 168h")
}

func (p *publishFlags) config() aggregate.Config {
	return aggregate.Config{K: p.k, Epsilon: p.epsilon, Delta: p.delta, Grace: p.grace, RawRetention: p.rawRetention, Catalog: p.catalog, CatalogSite: p.catalogSite}
}

func (p *publishFlags) validateRetention() error {
	if p.rawRetention <= 0 || p.rawRetention > aggregate.MaxRawRetention {
		return fmt.Errorf("--raw-retention %v: must be more than 0 and at most 168h", p.rawRetention)
	}
	return nil
}

func (p *publishFlags) validate() error {
	if err := p.validateRetention(); err != nil {
		return err
	}
	if _, err := p.config().WithDefaults(); err != nil {
		return fmt.Errorf("publication rules: %w", err)
	}
	return nil
}

// runRollup publishes every closed, unpublished bucket now and applies the
// retention, once.
func runRollup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rollup", stderr)
	var (
		base  baseFlags
		pub   publishFlags
		once  = fs.Bool("once", false, "publish every closed, unpublished bucket, then exit (required: the scheduler runs inside herd serve and herd aggregate)")
		nowAt = fs.String("now", "", "the clock, RFC 3339 or 2006-01-02T15:04 UTC, for tests and back-fills (default: now)")
	)
	pub.register(fs)
	log, err := base.parse(fs, args, stderr, "warn")
	if err != nil {
		return err
	}
	if !*once {
		return fmt.Errorf("herd rollup needs --once (the schedule runs in herd serve / herd aggregate): %w", errUsage)
	}
	if err := pub.validate(); err != nil {
		return err
	}
	now, err := parseNow(*nowAt)
	if err != nil {
		return err
	}
	st, p, err := openPublisher(ctx, &base, pub, log, false, true)
	if err != nil {
		return err
	}
	defer st.close()
	s := &aggregate.Scheduler{Publisher: p, Now: func() time.Time { return now }, Locks: st.locks(), Log: log}
	res, err := s.Tick(ctx)
	if res.Skipped {
		return fmt.Errorf("another herd is publishing right now (lock %q held); try again when it is done", "publisher")
	}
	fmt.Fprintf(stdout, "published %d cells in %d table-buckets (%d buckets), suppressed %d, failed %d; retention dropped %d\n",
		res.Summary.Published, res.Summary.Runs, res.Summary.Buckets, res.Summary.Suppressed, res.Summary.Failed, len(res.Dropped))
	return err
}

func parseNow(s string) (time.Time, error) {
	if s == "" {
		return time.Now().UTC(), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02 15:04", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("--now %q: want RFC 3339 or 2006-01-02T15:04 (UTC)", s)
}

var errAuditFailed = fmt.Errorf("audit found violations")

func printAudit(w io.Writer, rep *audit.Report) {
	fmt.Fprintln(w, "herd privacy audit")
	for _, c := range rep.Checks {
		mark := "ok  "
		switch {
		case c.NotRun != "":
			mark = "skip"
		case !c.OK:
			mark = "FAIL"
		}
		detail := c.Detail
		if c.NotRun != "" {
			detail = "not run: " + c.NotRun
		}
		fmt.Fprintf(w, "  [%s] %-32s %s\n", mark, c.Name, detail)
		for _, f := range c.Findings {
			fmt.Fprintf(w, "         - %s\n", f)
		}
	}
	s := rep.Statement
	fmt.Fprintf(w, "\nprivacy statement\n  %s\n", s.Line())
	fmt.Fprintf(w, "  cells published %d, suppressed %d, late events counted (not re-published) %d\n", s.CellsPublished, s.CellsSuppressed, s.LateEvents)
	fmt.Fprintf(w, "  budget per visitor-day: ρ = %.4f (ε = %g, δ = %g), releases spend ρ = %.4f\n", s.Rho, s.Epsilon, s.Delta, s.Spent)
	fmt.Fprintf(w, "  %-18s %-6s %4s %9s %9s %10s\n", "table", "grain", "L", "ρ", "σ visits", "threshold")
	for _, r := range s.Releases {
		fmt.Fprintf(w, "  %-18s %-6s %4d %9.5f %9.2f %10.1f\n", r.Table, r.Grain, r.L, r.Rho, r.Sigma, r.Threshold)
	}
	fmt.Fprintln(w, "\npurpose inventory (schemas/purposes.yaml)")
	for _, p := range rep.Inventory.Purposes {
		served := "not served by herd"
		if p.Herd {
			served = "served by herd"
		}
		fmt.Fprintf(w, "  %-13s %-19s %s\n", p.ID, served, p.Policy)
	}
	var cats []string
	for table, t := range rep.Inventory.Tables {
		byCat := map[string]int{}
		for _, c := range t.Columns {
			byCat[c.Category]++
		}
		var parts []string
		for c, n := range byCat {
			parts = append(parts, fmt.Sprintf("%s %d", c, n))
		}
		sort.Strings(parts)
		cats = append(cats, fmt.Sprintf("  %-28s %-10s %s", table, t.Retention, strings.Join(parts, ", ")))
	}
	sort.Strings(cats)
	for _, l := range cats {
		fmt.Fprintln(w, l)
	}
}

// startScheduler runs the publisher in the background until ctx ends.
func startScheduler(ctx context.Context, st *store, pub publishFlags, spool aggregate.SpoolPruner, log *slog.Logger) (<-chan error, error) {
	p, err := aggregate.NewPublisher(st.writer, st.dbs, pub.config(), log)
	if err != nil {
		return nil, err
	}
	s := &aggregate.Scheduler{Publisher: p, Schedule: pub.schedule, Spool: spool, Locks: st.locks(), Log: log.With("component", "publisher")}
	// Closed after its one error, so that both the run loop and the stop
	// may wait on it.
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx); close(done) }()
	return done, nil
}

// runAggregate runs only the publisher, for deployments that scale ingest and
// dashboard out separately.
func runAggregate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("aggregate", stderr)
	var (
		base baseFlags
		pub  publishFlags
	)
	pub.register(fs)
	log, err := base.parse(fs, args, stderr, "info")
	if err != nil {
		return err
	}
	if err := pub.validate(); err != nil {
		return err
	}
	st, p, err := openPublisher(ctx, &base, pub, log, false, true)
	if err != nil {
		return err
	}
	defer st.close()
	fmt.Fprintln(stdout, "publisher running on", pub.schedule)
	s := &aggregate.Scheduler{Publisher: p, Schedule: pub.schedule, Locks: st.locks(), Log: log}
	return s.Run(ctx)
}

// openPublisher opens the store (migrated when asked) and a publisher on it;
// the caller closes the store.
func openPublisher(ctx context.Context, base *baseFlags, pub publishFlags, log *slog.Logger, needReader, migrate bool) (*store, *aggregate.Publisher, error) {
	st, err := base.store.open(ctx, log, needReader)
	if err != nil {
		return nil, nil, err
	}
	if migrate {
		if err := st.migrate(ctx, log); err != nil {
			st.close()
			return nil, nil, err
		}
	}
	p, err := aggregate.NewPublisher(st.writer, st.dbs, pub.config(), log)
	if err != nil {
		st.close()
		return nil, nil, err
	}
	return st, p, nil
}
