package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/herd-analytics/herd/dashboard"
	"github.com/herd-analytics/herd/internal/mailer"
	"github.com/herd-analytics/herd/internal/privacy"
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

// mailFlags configure the scheduled reports' e-mail delivery.
type mailFlags struct {
	addr, from, to, user, passwordEnv string
}

func (m *mailFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&m.addr, "smtp-addr", "", "SMTP relay host:port for the scheduled reports (empty: archive only)")
	fs.StringVar(&m.from, "smtp-from", "herd@localhost", "sender address of the report e-mails")
	fs.StringVar(&m.to, "report-to", "", "comma-separated recipients of the scheduled reports")
	fs.StringVar(&m.user, "smtp-user", "", "SMTP user (PLAIN auth, over TLS or to a loopback relay)")
	fs.StringVar(&m.passwordEnv, "smtp-password-env", "HERD_SMTP_PASSWORD", "environment variable holding the SMTP password")
}

// config is the relay's configuration; nil without --smtp-addr.
func (m mailFlags) config() (*mailer.Config, error) {
	if m.addr == "" {
		return nil, nil
	}
	c := &mailer.Config{Addr: m.addr, From: m.from, Username: m.user, Password: os.Getenv(m.passwordEnv)}
	for _, to := range strings.Split(m.to, ",") {
		if to = strings.TrimSpace(to); to != "" {
			c.To = append(c.To, to)
		}
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", err, errUsage)
	}
	return c, nil
}

// startReports writes the scheduled reports into dir: weekly on Mondays and
// monthly on the 1st, at 01:00 UTC (after the daily buckets are published),
// and every hour (and at start, and when now is called) any report due and
// missing. With a relay each report is e-mailed once; one that could not
// be sent is tried again every hour.
func startReports(ctx context.Context, st *store, pub publishFlags, dir string, relay *mailer.Config, log *slog.Logger) (done <-chan struct{}, now func(), err error) {
	statement, err := statementFunc(st, pub)
	if err != nil {
		return nil, nil, err
	}
	var mu sync.Mutex // one job at a time: the start catch-up may meet a cron run
	deliver := func(stmt privacy.Statement) {
		if relay == nil {
			return
		}
		sent, err := dashboard.MailScheduled(ctx, relay, dir, stmt)
		for _, name := range sent {
			log.Info("scheduled report mailed", "report", name, "to", len(relay.To))
		}
		if err != nil {
			log.Error("scheduled report mail", "err", err)
		}
	}
	job := func(kinds ...string) func() {
		return func() {
			mu.Lock()
			defer mu.Unlock()
			stmt, err := statement(ctx)
			if err != nil {
				log.Error("scheduled report", "err", err)
				return
			}
			sites, err := dashboard.Sites(ctx, st.reader, st.dbs.Pub)
			if err != nil {
				log.Error("scheduled report", "err", err)
				return
			}
			for _, kind := range kinds {
				files, err := dashboard.WriteScheduled(ctx, st.reader, st.dbs.Pub, sites, kind, time.Now(), dir, stmt)
				if err != nil {
					log.Error("scheduled report", "kind", kind, "err", err)
				}
				for _, f := range files {
					log.Info("scheduled report written", "file", f)
				}
			}
			deliver(stmt)
		}
	}
	c := cron.New(cron.WithLocation(time.UTC))
	// Mondays and the 1st at 01:00 the new reports; every hour any report
	// due and still missing (a partial one waits for its last days) and
	// any mail still unsent.
	for spec, fn := range map[string]func(){"0 1 * * 1": job("weekly"), "0 1 1 * *": job("monthly"), "30 * * * *": job("weekly", "monthly")} {
		if _, err := c.AddFunc(spec, fn); err != nil {
			return nil, nil, err
		}
	}
	c.Start()
	caughtUp := make(chan struct{})
	go func() {
		defer close(caughtUp)
		job("weekly", "monthly")()
	}()
	stopped := make(chan struct{})
	go func() {
		<-ctx.Done()
		<-c.Stop().Done()
		<-caughtUp
		close(stopped)
	}()
	return stopped, job("weekly", "monthly"), nil
}
