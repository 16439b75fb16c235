// Command herd is privacy-preserving clickstream analytics for an online shop:
// one binary whose subcommands run the edge ingest, the rollup publisher, the
// dashboard, or all three, against a ClickHouse it can also start itself.
//
// This package only wires: flags and their HERD_* environment equivalents, the
// logger, a signal-aware context, and the order things start and stop in.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() { os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr)) }

// runMain runs a command under a context that SIGINT and SIGTERM end, and
// returns the exit code. The tests run herd processes through it too.
func runMain(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, args, stdout, stderr)
	stop()
	if err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(stderr, "herd:", err)
		}
		return exitCode(err)
	}
	return 0
}

// errUsage marks an error whose message the flag package has printed already.
var errUsage = errors.New("usage")

func exitCode(err error) int {
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run ingest, scheduler and dashboard in one process", runServe},
		{"demo", "serve plus a synthetic shop: imported history, live shoppers, a login", runDemo},
		{"ingest", "run only the event API (scale-out)", runIngest},
		{"dashboard", "run only the dashboard and its scheduled reports (scale-out)", runDashboard},
		{"aggregate", "run only the publisher: rollups, late events, retention", runAggregate},
		{"rollup", "publish every closed, unpublished bucket now (--once)", runRollup},
		{"audit", "check the privacy model against the live databases", runAudit},
		{"report", "write an operational report (--kind weekly|monthly --format csv|xlsx|parquet --out FILE)", runReport},
		{"user", "add a dashboard user with a role (user add --name N --role R)", runUser},
		{"migrate", "apply the ClickHouse migrations in schemas/", runMigrate},
		{"sql", "run one SQL statement and print the answer as TSV", runSQL},
		{"gen", "drive synthetic shoppers at an ingest over HTTP", runGen},
		{"version", "print herd's version", runVersion},
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q: %w", args[0], errUsage)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: herd <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nEvery flag can also be set as HERD_<FLAG> in the environment (--data-dir is HERD_DATA_DIR); a flag on the command line wins.")
}
