package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// newFlagSet makes the flag set of one subcommand; its errors are returned,
// not printed and exited on.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("herd "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args, then fills every flag not given on the command line
// from HERD_<NAME> in the environment (dashes become underscores).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errUsage
		}
		return fmt.Errorf("%v: %w", err, errUsage)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		key := envName(f.Name)
		if v, ok := os.LookupEnv(key); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %w", key, v, e)
			}
		}
	})
	return err
}

func envName(flagName string) string {
	return "HERD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// logFlags are the logging flags every subcommand has.
type logFlags struct {
	level  string
	format string
}

func (l *logFlags) register(fs *flag.FlagSet, level string) {
	fs.StringVar(&l.level, "log-level", level, "debug, info, warn or error")
	fs.StringVar(&l.format, "log-format", "text", "text or json")
}

// logger builds the process logger. Log lines carry counts and reasons,
// never payloads, IPs or user agents.
func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", l.level, err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch l.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", l.format)
}

// baseFlags are the flags of every subcommand that talks to ClickHouse.
type baseFlags struct {
	log   logFlags
	store storeFlags
}

// parse registers the base flags on fs, parses args and builds the logger.
func (b *baseFlags) parse(fs *flag.FlagSet, args []string, stderr io.Writer, level string) (*slog.Logger, error) {
	b.log.register(fs, level)
	b.store.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	return b.log.logger(stderr)
}
