package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/herd-analytics/herd/aggregate"
	"github.com/herd-analytics/herd/dashboard"
	"github.com/herd-analytics/herd/internal/privacy"
)

// runUser manages dashboard accounts: herd user add --name N --role R.
func runUser(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "add" {
		fmt.Fprintln(stderr, "usage: herd user add --name NAME --role merchandiser|ux|manager|admin [--password-stdin]")
		return errUsage
	}
	fs := newFlagSet("user add", stderr)
	var (
		name    = fs.String("name", "", "login name (a-z, 0-9, . _ - @)")
		role    = fs.String("role", "", "merchandiser, ux, manager or admin")
		fromIn  = fs.Bool("password-stdin", false, "read the password from the first line of standard input; otherwise one is generated and printed")
		dataDir = fs.String("data-dir", ".herd", "directory for herd's state (users.json lives here)")
	)
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	password := ""
	if *fromIn {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return fmt.Errorf("read password: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
	} else {
		var b [15]byte
		_, _ = rand.Read(b[:])
		password = base64.RawURLEncoding.EncodeToString(b[:])
	}
	users, err := dashboard.OpenUsers(filepath.Join(*dataDir, "users.json"))
	if err != nil {
		return err
	}
	if err := users.Add(*name, dashboard.Role(*role), password); err != nil {
		return err
	}
	if *fromIn {
		fmt.Fprintf(stdout, "user %s (%s) saved\n", *name, *role)
	} else {
		fmt.Fprintf(stdout, "user %s (%s) saved; password: %s\n", *name, *role, password)
	}
	return nil
}

// statementFunc builds the privacy statement from what the reader may read.
func statementFunc(st *store, pub publishFlags) (func(context.Context) (privacy.Statement, error), error) {
	tables, err := aggregate.DefaultTables()
	if err != nil {
		return nil, err
	}
	cfg := pub.config()
	return func(ctx context.Context) (privacy.Statement, error) {
		return aggregate.BuildStatement(ctx, st.reader, st.dbs.Pub, cfg, tables)
	}, nil
}
