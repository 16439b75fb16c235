package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/schemas"
)

// storeFlags say which ClickHouse to use: a given one, or the managed local
// server under --data-dir.
type storeFlags struct {
	url       string
	readerURL string
	dataDir   string
}

func (f *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "clickhouse", "", "ClickHouse HTTP URL of a user that may write both databases, http(s)://user:password@host:port/; empty starts a managed local ClickHouse under --data-dir")
	fs.StringVar(&f.readerURL, "clickhouse-reader", "", "ClickHouse URL of the read-only user the dashboard uses, limited to the published database (required with --clickhouse)")
	fs.StringVar(&f.dataDir, "data-dir", ".herd", "directory for herd's state: managed ClickHouse, keys, spool")
}

// store is the ClickHouse herd talks to, and the managed server if herd runs it.
type store struct {
	writer *clickhouse.Client
	reader *clickhouse.Client // nil when the command needs none
	local  *clickhouse.Local  // nil for an external or borrowed server
	dbs    clickhouse.Databases
}

// open connects to the configured ClickHouse. Without a URL it uses the
// managed server under --data-dir: the one another herd runs there already,
// or one it starts.
func (f *storeFlags) open(ctx context.Context, log *slog.Logger, needReader bool) (*store, error) {
	s := &store{dbs: clickhouse.DefaultDatabases}
	var writerCfg, readerCfg clickhouse.Config
	switch {
	case f.url != "":
		var err error
		if writerCfg, err = clickhouse.ParseURL(f.url); err != nil {
			return nil, fmt.Errorf("--clickhouse: %w", err)
		}
		if f.readerURL == "" && needReader {
			return nil, errors.New("--clickhouse-reader is required with --clickhouse: the dashboard reads through a user that cannot read raw events (deploy/clickhouse/users.d/herd.xml shows one)")
		}
		if f.readerURL != "" {
			if readerCfg, err = clickhouse.ParseURL(f.readerURL); err != nil {
				return nil, fmt.Errorf("--clickhouse-reader: %w", err)
			}
		}
	default:
		dir := filepath.Join(f.dataDir, "clickhouse")
		if w, r, ok := clickhouse.RunningLocal(dir); ok {
			log.Info("using the managed clickhouse another herd runs", "dir", dir)
			writerCfg, readerCfg = w, r
			break
		}
		l, err := clickhouse.StartLocal(ctx, clickhouse.LocalConfig{Dir: dir, ReaderDatabases: []string{s.dbs.Pub}, Log: log})
		if err != nil {
			return nil, err
		}
		s.local = l
		writerCfg, readerCfg = l.Writer(), l.Reader()
	}
	var err error
	if s.writer, err = clickhouse.New(writerCfg, log); err != nil {
		s.close()
		return nil, err
	}
	if needReader {
		if s.reader, err = clickhouse.New(readerCfg.WithDatabase(s.dbs.Pub), log); err != nil {
			s.close()
			return nil, err
		}
	}
	if err := s.writer.Ping(ctx); err != nil {
		s.close()
		return nil, fmt.Errorf("clickhouse %s: %w", writerCfg, err)
	}
	return s, nil
}

func (s *store) migrate(ctx context.Context, log *slog.Logger) error {
	ms, err := clickhouse.LoadMigrations(schemas.Migrations, schemas.MigrationsDir)
	if err != nil {
		return err
	}
	return clickhouse.Migrate(ctx, s.writer, s.dbs, ms, log)
}

// close stops the managed server last, after every client is done with it.
func (s *store) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s.closeWithin(ctx)
}

// closeWithin closes the clients and stops a managed server by ctx's
// deadline (at least 5 s from now).
func (s *store) closeWithin(ctx context.Context) {
	if s.writer != nil {
		s.writer.Close()
	}
	if s.reader != nil {
		s.reader.Close()
	}
	if s.local != nil {
		// A server that does not stop in time is killed; ClickHouse
		// recovers from that on its next start.
		if d, ok := ctx.Deadline(); ok && time.Until(d) < 5*time.Second {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
		}
		_ = s.local.Stop(ctx)
	}
}
