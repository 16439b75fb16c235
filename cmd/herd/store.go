package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"time"

	"github.com/herd-analytics/herd/aggregate"
	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/clickhouse/local"
	"github.com/herd-analytics/herd/internal/coord"
	"github.com/herd-analytics/herd/schemas"
)

// storeFlags say which ClickHouse to use: a given one, or the managed local
// server under --data-dir.
type storeFlags struct {
	url          string
	readerURL    string
	dataDir      string
	cluster      string
	zookeeper    string
	insertQuorum int
}

func (f *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "clickhouse", "", "ClickHouse HTTP URL of a user that may write both databases, http(s)://user:password@host:port/; empty starts a managed local ClickHouse under --data-dir")
	fs.StringVar(&f.readerURL, "clickhouse-reader", "", "ClickHouse URL of the read-only user the dashboard uses, limited to the published database (required with --clickhouse)")
	fs.StringVar(&f.dataDir, "data-dir", ".herd", "directory for herd's state: managed ClickHouse, keys, spool")
	fs.StringVar(&f.cluster, "cluster", "", "the ClickHouse cluster (remote_servers name) herd's tables span: migrations run ON CLUSTER, writes go through Distributed tables synchronously, retention drops partitions on every shard and replica (docs/operations.md)")
	fs.StringVar(&f.zookeeper, "zookeeper", "", "the cluster's ZooKeeper, host:port[,host:port…]: one publisher lock across nodes, and with --key-secret-file the day keys every ingest node shares")
	fs.IntVar(&f.insertQuorum, "insert-quorum", 0, "with --cluster: replicas of a shard that must hold ingested events before the spool lets them go; 0 means all of them")
}

// store is the ClickHouse herd talks to, and the managed server if herd runs it.
type store struct {
	writer *clickhouse.Client
	reader *clickhouse.Client // nil when the command needs none
	local  *local.Supervisor  // nil for an external or borrowed server
	dbs    clickhouse.Databases
	// ingest inserts raw events: the writer, or on a cluster one that waits
	// for the insert quorum.
	ingest *clickhouse.Client
	zk     *coord.Conn // nil without --zookeeper
	// conns are more ZooKeeper sessions to close with the store.
	conns []*coord.Conn
}

// keep closes c with the store.
func (s *store) keep(c *coord.Conn) { s.conns = append(s.conns, c) }

// open connects to the configured ClickHouse. Without a URL it uses the
// managed server under --data-dir: the one another herd runs there already,
// or one it starts.
func (f *storeFlags) open(ctx context.Context, log *slog.Logger, needReader bool) (*store, error) {
	s := &store{dbs: clickhouse.DefaultDatabases}
	s.dbs.Cluster = f.cluster
	if f.cluster != "" && f.url == "" {
		return nil, errors.New("--cluster needs the cluster's ClickHouse: --clickhouse URL of a node (or a load balancer over them)")
	}
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
		if w, r, ok := local.Running(dir); ok {
			log.Info("using the managed clickhouse another herd runs", "dir", dir)
			writerCfg, readerCfg = w, r
			break
		}
		l, err := local.Start(ctx, local.Config{Dir: dir, ReaderDatabases: []string{s.dbs.Pub}, Log: log})
		if err != nil {
			return nil, err
		}
		// Supervised: if it dies, it is started again on the same ports
		// while ingest keeps acknowledging into its spool.
		s.local = local.Supervise(l, 30*time.Second)
		writerCfg, readerCfg = l.Writer(), l.Reader()
	}
	if f.cluster != "" {
		// A write through a Distributed table returns once every shard has
		// it, so whatever reads next, on any node, sees it.
		writerCfg = writerCfg.WithSetting("insert_distributed_sync", "1")
		// A subquery over a Distributed table inside another's IN or JOIN
		// runs once and is sent to every shard: always right, whatever
		// either table is sharded by.
		writerCfg = writerCfg.WithSetting("distributed_product_mode", "global")
		// The publisher decides what to publish from what it published
		// before: it must not read a replica that has not caught up (one
		// back from an outage), or it would publish a bucket twice, with
		// fresh noise. Reads go to the first replica in remote_servers
		// order that is at most a second behind, and fail rather than read
		// a stale one.
		writerCfg = writerCfg.WithSetting("load_balancing", "in_order")
		writerCfg = writerCfg.WithSetting("max_replica_delay_for_distributed_queries", "1")
		writerCfg = writerCfg.WithSetting("fallback_to_stale_replicas_for_distributed_queries", "0")
	}
	var err error
	if s.writer, err = clickhouse.New(writerCfg, log); err != nil {
		s.close()
		return nil, err
	}
	s.ingest = s.writer
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
	if f.cluster != "" {
		if err := s.openIngest(ctx, writerCfg, f.insertQuorum, log); err != nil {
			s.close()
			return nil, err
		}
	}
	if f.zookeeper != "" {
		if s.zk, err = dialZooKeeper(ctx, f.zookeeper, nil, log); err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

// openIngest makes the client raw events go in through: on a cluster, an
// insert returns once quorum replicas of its shard hold it (0: all of
// them), so the spool drops nothing that one failed disk could lose.
func (s *store) openIngest(ctx context.Context, cfg clickhouse.Config, quorum int, log *slog.Logger) error {
	if quorum <= 0 {
		var err error
		if quorum, err = clickhouse.ClusterReplicas(ctx, s.writer, s.dbs.Cluster); err != nil {
			return err
		}
	}
	if quorum < 2 {
		return nil
	}
	c, err := clickhouse.New(cfg.WithSetting("insert_quorum", strconv.Itoa(quorum)), log)
	if err != nil {
		return err
	}
	s.ingest = c
	return nil
}

// dialZooKeeper opens a session with the cluster's ZooKeeper (servers
// comma-separated); secret, when set, authenticates the ingest nodes.
func dialZooKeeper(ctx context.Context, servers string, secret []byte, log *slog.Logger) (*coord.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return coord.Dial(dctx, coord.Config{Servers: splitList(servers), Secret: secret, Log: log.With("component", "zookeeper")})
}

// locks is the publisher lock every publisher of the store shares: the
// cluster's ZooKeeper's, or nil for the lock on the one ClickHouse server.
func (s *store) locks() aggregate.Locker {
	if s.zk == nil {
		return nil
	}
	return zkLocks{s.zk}
}

// zkLocks is the ZooKeeper lock as the scheduler takes it.
type zkLocks struct{ c *coord.Conn }

func (l zkLocks) TryLock(ctx context.Context, name string, _ time.Duration) (aggregate.Held, bool, error) {
	lock, ok, err := l.c.TryLock(ctx, name)
	if !ok {
		return nil, ok, err
	}
	return lock, ok, err
}

func (s *store) migrate(ctx context.Context, log *slog.Logger) error {
	ms, err := clickhouse.LoadMigrations(schemas.Migrations, schemas.MigrationsDir)
	if err != nil {
		return err
	}
	if s.dbs.Cluster != "" {
		// ON CLUSTER DDL waits for every node: servers starting while a
		// replica is down must not. herd migrate runs it (migrateDDL).
		return clickhouse.CheckMigrated(ctx, s.writer, s.dbs, ms)
	}
	return clickhouse.Migrate(ctx, s.writer, s.dbs, ms, log)
}

// migrateDDL applies the migrations, on every node of a cluster.
func (s *store) migrateDDL(ctx context.Context, log *slog.Logger) error {
	if s.dbs.Cluster == "" {
		return s.migrate(ctx, log)
	}
	ms, err := clickhouse.LoadMigrations(schemas.Migrations, schemas.MigrationsDir)
	if err != nil {
		return err
	}
	return clickhouse.MigrateOnCluster(ctx, s.writer, s.dbs, ms, s.dbs.Cluster, log)
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
	if s.ingest != nil && s.ingest != s.writer {
		s.ingest.Close()
	}
	if s.zk != nil {
		s.zk.Close()
	}
	for _, c := range s.conns {
		c.Close()
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
