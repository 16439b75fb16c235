package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	v := version
	if v == "" {
		v = "devel"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	fmt.Fprintln(stdout, "herd", v)
	return nil
}

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", stderr)
	var base baseFlags
	log, err := base.parse(fs, args, stderr, "info")
	if err != nil {
		return err
	}
	if base.store.cluster != "" && base.store.url == "" {
		return fmt.Errorf("--cluster needs the cluster's ClickHouse (--clickhouse URL of any node): %w", errUsage)
	}
	st, err := base.store.open(ctx, log, false)
	if err != nil {
		return err
	}
	defer st.close()
	if err := st.migrateDDL(ctx, log); err != nil {
		return err
	}
	if st.dbs.Cluster != "" {
		fmt.Fprintf(stdout, "migrations applied on cluster %s\n", st.dbs.Cluster)
		return nil
	}
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}

// runSQL is the operator's escape hatch: one statement, answer as TSV.
func runSQL(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sql", stderr)
	var (
		base     baseFlags
		asReader = fs.Bool("reader", false, "run as the dashboard's read-only user")
	)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: herd sql [flags] \"QUERY\"   (or - to read the query from standard input)")
		fs.PrintDefaults()
	}
	log, err := base.parse(fs, args, stderr, "warn")
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("want exactly one query: %w", errUsage)
	}
	query := fs.Arg(0)
	if query == "-" {
		data, err := io.ReadAll(os.Stdin)
		if err != nil {
			return err
		}
		query = string(data)
	}
	query = strings.TrimSuffix(strings.TrimSpace(query), ";")
	if query == "" {
		return errors.New("empty query")
	}
	st, err := base.store.open(ctx, log, *asReader)
	if err != nil {
		return err
	}
	defer st.close()
	c := st.writer
	if *asReader {
		c = st.reader
	}
	if !strings.Contains(strings.ToUpper(query), "FORMAT ") && looksLikeSelect(query) {
		query += "\nFORMAT TabSeparatedWithNames"
	}
	return c.Raw(ctx, query, stdout)
}

func looksLikeSelect(q string) bool {
	head := strings.ToUpper(strings.Fields(q + " x")[0])
	switch head {
	case "SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS":
		return true
	}
	return false
}
