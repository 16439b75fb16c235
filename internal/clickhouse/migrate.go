package clickhouse

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

// Databases names herd's two databases. Production uses the defaults; tests
// use a fresh pair per test.
type Databases struct {
	// Raw holds pseudonymous events; only ingest and the rollup job touch it.
	Raw string
	// Pub holds published rollups, reports and the audit trail; the
	// dashboard's user can read nothing else.
	Pub string
	// Cluster, when set, is the ClickHouse cluster (remote_servers) the
	// tables span, made by MigrateOnCluster: db.t is then a Distributed
	// table over db.t_local on every shard.
	Cluster string
}

// Alter starts an ALTER of db.table's partitions or rows: on a cluster, of
// its shard-local tables on every node (a partition dropped on one
// replica is dropped on all).
func (d Databases) Alter(db, table string) string {
	if d.Cluster == "" {
		return "ALTER TABLE " + db + "." + table
	}
	return "ALTER TABLE " + db + "." + table + LocalSuffix + " ON CLUSTER " + d.Cluster
}

// ReplicasSuffix names the cluster, next to a cluster in remote_servers,
// that lists each of its replicas as a shard of its own.
const ReplicasSuffix = "_replicas"

// ReplicaParts lists the parts of every replica of a cluster (a
// Distributed table over each one's system.parts); "" on one server.
func (d Databases) ReplicaParts() string {
	if d.Cluster == "" {
		return ""
	}
	return d.Raw + ".replica_parts"
}

// Parts says where db.table's data parts are listed (system.parts, which
// holds one server's) and the name the table has there; on a cluster,
// {raw}.cluster_parts, a Distributed table over every shard's system.parts.
func (d Databases) Parts(table string) (from, name string) {
	if d.Cluster == "" {
		return "system.parts", table
	}
	return d.Raw + ".cluster_parts", table + LocalSuffix
}

// DefaultDatabases are the names herd uses unless told otherwise.
var DefaultDatabases = Databases{Raw: "herd_raw", Pub: "herd"}

// Validate checks both names are identifiers and differ.
func (d Databases) Validate() error {
	if _, err := Ident(d.Raw); err != nil {
		return fmt.Errorf("raw database: %w", err)
	}
	if _, err := Ident(d.Pub); err != nil {
		return fmt.Errorf("published database: %w", err)
	}
	if d.Raw == d.Pub {
		return fmt.Errorf("raw and published databases are both %q", d.Raw)
	}
	return nil
}

// Expand replaces {raw} and {herd} in a schema statement with the database names.
func (d Databases) Expand(sql string) string {
	return strings.NewReplacer("{raw}", d.Raw, "{herd}", d.Pub).Replace(sql)
}

// Migration is one NNNN_name.sql file: statements separated by a semicolon at
// the end of a line, each safe to run again (IF NOT EXISTS), so a migration cut
// short by a crash can simply be applied again.
type Migration struct {
	Version    int
	Name       string
	Statements []string
	Checksum   string
}

var migrationFile = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// LoadMigrations reads every NNNN_name.sql in dir of fsys, in version order.
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []Migration
	seen := map[int]string{}
	for _, e := range entries {
		m := migrationFile.FindStringSubmatch(e.Name())
		if e.IsDir() || m == nil {
			continue
		}
		v, _ := strconv.Atoi(m[1])
		if prev, ok := seen[v]; ok {
			return nil, fmt.Errorf("migrations %s and %s share version %d", prev, e.Name(), v)
		}
		seen[v] = e.Name()
		data, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		sum := sha256.Sum256(data)
		stmts := splitStatements(string(data))
		if len(stmts) == 0 {
			return nil, fmt.Errorf("migration %s has no statements", e.Name())
		}
		out = append(out, Migration{Version: v, Name: m[2], Statements: stmts, Checksum: hex.EncodeToString(sum[:])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// splitStatements cuts a file at semicolons that end a line and drops
// comment-only lines ("-- ...").
func splitStatements(text string) []string {
	var stmts []string
	var cur strings.Builder
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			stmts = append(stmts, s)
		}
		cur.Reset()
	}
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "--") {
			continue
		}
		if strings.HasSuffix(trimmed, ";") {
			cur.WriteString(strings.TrimSuffix(trimmed, ";"))
			flush()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush()
	return stmts
}

// Migrate applies every migration not yet recorded in {herd}.schema_migrations,
// in order, holding the migrate lock so that processes starting together take
// turns. It refuses to run if an applied migration's file has changed since.
func Migrate(ctx context.Context, c *Client, dbs Databases, ms []Migration, log *slog.Logger) error {
	return migrate(ctx, c, dbs, ms, "", log)
}

// MigrateOnCluster is Migrate for the cluster named in the server's
// remote_servers: every table Replicated per shard with a Distributed table
// over it, every DDL ON CLUSTER (ClusterStatements). c may be any node.
func MigrateOnCluster(ctx context.Context, c *Client, dbs Databases, ms []Migration, cluster string, log *slog.Logger) error {
	if _, err := Ident(cluster); err != nil {
		return fmt.Errorf("migrate: cluster: %w", err)
	}
	return migrate(ctx, c, dbs, ms, cluster, log)
}

// CheckMigrated returns an error unless every migration in ms is applied,
// unchanged: what a cluster's servers check at start, leaving DDL (which
// waits for every node) to herd migrate --cluster.
func CheckMigrated(ctx context.Context, c *Client, dbs Databases, ms []Migration) error {
	applied, err := appliedMigrations(ctx, c, dbs.Pub)
	if err != nil {
		// The hint names the real cause: a missing schema only when the
		// server says the tables are missing, not when it cannot answer.
		if cause := Cause(err); cause != "" {
			return fmt.Errorf("schema: %s: %w", cause, err)
		}
		return fmt.Errorf("schema: %w", err)
	}
	for _, m := range ms {
		switch sum, ok := applied[m.Version]; {
		case !ok:
			return fmt.Errorf("schema: %04d_%s.sql is not applied: run herd migrate first", m.Version, m.Name)
		case sum != m.Checksum:
			return fmt.Errorf("schema: %04d_%s.sql differs from the applied one", m.Version, m.Name)
		}
	}
	return nil
}

// appliedMigrations maps each applied migration's version to its checksum.
func appliedMigrations(ctx context.Context, c *Client, pubDB string) (map[int]string, error) {
	applied := map[int]string{}
	err := c.Select(ctx, "SELECT version, checksum FROM "+pubDB+".schema_migrations", func(b *proto.Block) error {
		for i := 0; i < b.Rows(); i++ {
			applied[int(Get[uint32](b, 0, i))] = Get[string](b, 1, i)
		}
		return nil
	})
	return applied, err
}

func migrate(ctx context.Context, c *Client, dbs Databases, ms []Migration, cluster string, log *slog.Logger) error {
	if err := dbs.Validate(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Bootstrap: the lock and the record live in the published database. Two
	// processes may race on these idempotent statements; 18.16 can still say
	// "already exists" to the loser, which is the state it wanted.
	bootstrap := []string{
		"CREATE DATABASE IF NOT EXISTS " + dbs.Pub,
		"CREATE TABLE IF NOT EXISTS " + dbs.Pub + ".schema_migrations (version UInt32, name String, checksum String, applied_at DateTime) ENGINE = MergeTree() ORDER BY version",
	}
	for _, stmt := range bootstrap {
		if err := execMigration(ctx, c, stmt, cluster); err != nil && !IsCode(err, CodeTableAlreadyExists, CodeDatabaseExists) {
			return fmt.Errorf("migrate: bootstrap: %w", err)
		}
	}
	lock, err := AcquireLock(ctx, c, dbs.Pub, "migrate", 2*time.Minute)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer func() {
		if err := lock.Release(context.WithoutCancel(ctx)); err != nil {
			log.Warn("migrate: release lock", "err", err)
		}
	}()

	applied, err := appliedMigrations(ctx, c, dbs.Pub)
	if err != nil {
		return fmt.Errorf("migrate: read applied: %w", err)
	}
	for _, m := range ms {
		if sum, ok := applied[m.Version]; ok {
			if sum != m.Checksum {
				return fmt.Errorf("migrate: %04d_%s.sql was changed after it was applied; add a new migration instead", m.Version, m.Name)
			}
			continue
		}
		for i, stmt := range m.Statements {
			if err := execMigration(ctx, c, dbs.Expand(stmt), cluster); err != nil {
				return fmt.Errorf("migrate: %04d_%s.sql statement %d: %w", m.Version, m.Name, i+1, err)
			}
		}
		if err := recordMigration(ctx, c, dbs.Pub, m, cluster); err != nil {
			return err
		}
		log.Info("migration applied", "version", m.Version, "name", m.Name)
		if err := lock.Renew(ctx); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	if cluster != "" {
		// Retention lists raw partitions of every shard through the first,
		// the audit those of every replica through the second (the
		// cluster <name>_replicas: each replica a shard of its own).
		for table, over := range map[string]string{"cluster_parts": cluster, "replica_parts": cluster + ReplicasSuffix} {
			q := "CREATE TABLE IF NOT EXISTS " + dbs.Raw + "." + table + " ON CLUSTER " + cluster +
				" AS system.parts ENGINE = Distributed(" + over + ", system, parts)"
			if err := c.Exec(ctx, q); err != nil && !IsCode(err, CodeTableAlreadyExists) {
				return fmt.Errorf("migrate: %s: %w", table, err)
			}
		}
	}
	return nil
}

// columnIfExists matches ALTER TABLE db.t DROP COLUMN IF EXISTS c and ADD
// COLUMN IF NOT EXISTS c ..., which 18.16 cannot parse.
var columnIfExists = regexp.MustCompile(`(?is)^\s*ALTER\s+TABLE\s+(\w+)\.(\w+)\s+(DROP|ADD)\s+COLUMN\s+IF\s+(?:NOT\s+)?EXISTS\s+(\w+)(.*?)\s*;?\s*$`)

// execMigration runs one migration statement, on cluster when it is set.
// DROP COLUMN IF EXISTS and ADD COLUMN IF NOT EXISTS (current releases) are
// done by looking the column up first, so a migration cut short can be run
// again on every server version.
func execMigration(ctx context.Context, c *Client, stmt, cluster string) error {
	run := func(stmt string) error {
		if cluster == "" {
			return c.Exec(ctx, stmt)
		}
		stmts, redistribute, err := ClusterStatements(stmt, cluster, VisitorShardKey)
		if err != nil {
			return err
		}
		for _, s := range stmts {
			if err := c.Exec(ctx, s); err != nil {
				return err
			}
		}
		if redistribute != "" {
			return Redistribute(ctx, c, redistribute, cluster)
		}
		return nil
	}
	m := columnIfExists.FindStringSubmatch(stmt)
	if m == nil {
		return run(stmt)
	}
	db, table, op, col, rest := m[1], m[2], strings.ToUpper(m[3]), m[4], m[5]
	exists := false
	err := c.Select(ctx, "SELECT count() FROM system.columns WHERE database = "+Quote(db)+" AND table = "+Quote(table)+" AND name = "+Quote(col), func(b *proto.Block) error {
		exists = b.Rows() > 0 && Get[uint64](b, 0, 0) > 0
		return nil
	})
	switch {
	case err != nil:
		return err
	case op == "DROP" && exists:
		return run("ALTER TABLE " + db + "." + table + " DROP COLUMN " + col)
	case op == "ADD" && !exists:
		return run("ALTER TABLE " + db + "." + table + " ADD COLUMN " + col + rest)
	}
	return nil
}

func recordMigration(ctx context.Context, c *Client, db string, m Migration, cluster string) error {
	b := proto.NewBlock()
	cols := []struct {
		name string
		typ  column.Type
		val  any
	}{
		{"version", "UInt32", uint32(m.Version)},
		{"name", "String", m.Name},
		{"checksum", "String", m.Checksum},
		{"applied_at", "DateTime", time.Now()},
	}
	vals := make([]any, len(cols))
	for i, col := range cols {
		if err := b.AddColumn(col.name, col.typ); err != nil {
			return fmt.Errorf("migrate: record: %w", err)
		}
		vals[i] = col.val
	}
	if err := b.Append(vals...); err != nil {
		return fmt.Errorf("migrate: record: %w", err)
	}
	var opts []Option
	if cluster != "" {
		// Through the Distributed table: on its shard before the next
		// migration reads what is applied.
		opts = append(opts, WithSetting("insert_distributed_sync", "1"))
	}
	if err := c.Insert(ctx, db+".schema_migrations", b, opts...); err != nil {
		return fmt.Errorf("migrate: record %04d: %w", m.Version, err)
	}
	return nil
}
