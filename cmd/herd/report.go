package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/herd-analytics/herd/dashboard"
)

// runReport writes one operational report: herd report --kind weekly
// --format xlsx --out FILE.
func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("report", stderr)
	var (
		base   baseFlags
		pub    publishFlags
		kind   = fs.String("kind", "weekly", "weekly (last complete ISO week) or monthly (last complete month)")
		format = fs.String("format", "csv", "csv, xlsx or parquet")
		out    = fs.String("out", "", "file to write (required; - for standard output)")
		site   = fs.String("site", "demo", "site")
		nowAt  = fs.String("now", "", "the clock, RFC 3339 or 2006-01-02T15:04 UTC (default: now)")
	)
	pub.register(fs)
	log, err := base.parse(fs, args, stderr, "warn")
	if err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("--out is required: %w", errUsage)
	}
	now, err := parseNow(*nowAt)
	if err != nil {
		return err
	}
	period, err := dashboard.ReportPeriod(*kind, now)
	if err != nil {
		return err
	}
	st, err := base.store.open(ctx, log, true)
	if err != nil {
		return err
	}
	defer st.close()
	statement, err := statementFunc(st, pub)
	if err != nil {
		return err
	}
	stmt, err := statement(ctx)
	if err != nil {
		return err
	}
	rep, err := dashboard.BuildReport(ctx, st.reader, st.dbs.Pub, *site, *kind, period, stmt)
	if err != nil {
		return err
	}
	w := stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	if err := rep.Write(w, *format); err != nil {
		return err
	}
	if *out != "-" {
		fmt.Fprintf(stderr, "%s: %d figures written to %s\n", rep.Title(), len(rep.Rows), *out)
	}
	return nil
}

// startReports writes the scheduled reports: weekly on Mondays and monthly
// on the 1st, at 01:00 UTC (after the daily buckets are published), into dir.
func startReports(ctx context.Context, st *store, pub publishFlags, dir string, log *slog.Logger) (<-chan struct{}, error) {
	statement, err := statementFunc(st, pub)
	if err != nil {
		return nil, err
	}
	job := func(kind string) func() {
		return func() {
			stmt, err := statement(ctx)
			if err != nil {
				log.Error("scheduled report", "kind", kind, "err", err)
				return
			}
			sites, err := dashboard.Sites(ctx, st.reader, st.dbs.Pub)
			if err != nil {
				log.Error("scheduled report", "kind", kind, "err", err)
				return
			}
			files, err := dashboard.WriteScheduled(ctx, st.reader, st.dbs.Pub, sites, kind, time.Now(), dir, stmt)
			if err != nil {
				log.Error("scheduled report", "kind", kind, "err", err)
			}
			for _, f := range files {
				log.Info("scheduled report written", "file", f)
			}
		}
	}
	c := cron.New(cron.WithLocation(time.UTC))
	if _, err := c.AddFunc("0 1 * * 1", job("weekly")); err != nil {
		return nil, err
	}
	if _, err := c.AddFunc("0 1 1 * *", job("monthly")); err != nil {
		return nil, err
	}
	c.Start()
	done := make(chan struct{})
	go func() {
		<-ctx.Done()
		<-c.Stop().Done()
		close(done)
	}()
	return done, nil
}
