package clickhouse

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

// LocalSuffix names a clustered table's shard-local part: db.events is the
// Distributed table every client reads and writes, db.events_local the
// ReplicatedMergeTree holding one shard's rows on each of its replicas.
const LocalSuffix = "_local"

var (
	createDatabase = regexp.MustCompile(`(?is)^\s*CREATE\s+DATABASE\s+(IF\s+NOT\s+EXISTS\s+)?(\w+)\s*$`)
	createTable    = regexp.MustCompile(`(?is)^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)\.(\w+)\s*(\(.*\))\s*ENGINE\s*=\s*(\w*MergeTree)\s*\(([^)]*)\)(.*)$`)
	alterTable     = regexp.MustCompile(`(?is)^\s*ALTER\s+TABLE\s+(\w+)\.(\w+)\s+(.*)$`)
	dropTable      = regexp.MustCompile(`(?is)^\s*DROP\s+TABLE\s+(IF\s+EXISTS\s+)?(\w+)\.(\w+)\s*$`)
	// alterColumns are the ALTERs a Distributed table must follow: its
	// columns are its own copy of the local table's.
	alterColumns = regexp.MustCompile(`(?is)^\s*(ADD|DROP|MODIFY)\s+COLUMN\b`)
)

// ClusterStatements rewrites one migration statement (its databases
// already expanded) for a cluster: every MergeTree table becomes a
// Replicated one per shard (ZooKeeper path by the {shard} macro, replica by
// {replica}) under the name with LocalSuffix, and a Distributed table of
// the original name over it; every DDL runs ON CLUSTER. shardKey gives a
// table's sharding expression.
//
// A column change is made to the local tables; 18.16 refuses ALTER ON
// CLUSTER of a Distributed table over replicated shards, so redistribute
// names the Distributed table ("db.table") to create again over the
// changed local table (Redistribute).
func ClusterStatements(stmt, cluster string, shardKey func(db, table, columns string) string) (stmts []string, redistribute string, err error) {
	on := " ON CLUSTER " + cluster
	if m := createDatabase.FindStringSubmatch(stmt); m != nil {
		return []string{"CREATE DATABASE IF NOT EXISTS " + m[2] + on}, "", nil
	}
	if m := createTable.FindStringSubmatch(stmt); m != nil {
		db, table, columns, engine, args, rest := m[1], m[2], m[3], m[4], strings.TrimSpace(m[5]), m[6]
		replArgs := "'/clickhouse/tables/{shard}/" + db + "/" + table + LocalSuffix + "', '{replica}'"
		if args != "" {
			replArgs += ", " + args
		}
		local := db + "." + table + LocalSuffix
		return []string{
			"CREATE TABLE IF NOT EXISTS " + local + on + " " + columns + " ENGINE = Replicated" + engine + "(" + replArgs + ")" + rest,
			"CREATE TABLE IF NOT EXISTS " + db + "." + table + on + " AS " + local +
				" ENGINE = Distributed(" + cluster + ", " + db + ", " + table + LocalSuffix + ", " + shardKey(db, table, columns) + ")",
		}, "", nil
	}
	if m := alterTable.FindStringSubmatch(stmt); m != nil {
		db, table, op := m[1], m[2], m[3]
		out := []string{"ALTER TABLE " + db + "." + table + LocalSuffix + on + " " + op}
		if alterColumns.MatchString(op) {
			return out, db + "." + table, nil
		}
		return out, "", nil
	}
	if m := dropTable.FindStringSubmatch(stmt); m != nil {
		db, table := m[2], m[3]
		return []string{"DROP TABLE IF EXISTS " + db + "." + table + on, "DROP TABLE IF EXISTS " + db + "." + table + LocalSuffix + on}, "", nil
	}
	return nil, "", fmt.Errorf("cluster schema: no cluster form for %.80q", stmt)
}

var distributedEngine = regexp.MustCompile(`(?is)ENGINE\s*=\s*(Distributed\(.*\))\s*$`)

// Redistribute creates the Distributed table name ("db.table") again over
// its local table, with the same engine (cluster, shard key), so that it
// has the local table's columns.
func Redistribute(ctx context.Context, c *Client, name, cluster string) error {
	var show strings.Builder
	if err := c.Raw(ctx, "SHOW CREATE TABLE "+name, &show); err != nil {
		return fmt.Errorf("redistribute %s: %w", name, err)
	}
	// SHOW CREATE answers TabSeparated: quotes come escaped.
	engine := distributedEngine.FindStringSubmatch(strings.ReplaceAll(show.String(), "\\'", "'"))
	if engine == nil {
		return fmt.Errorf("redistribute %s: not a Distributed table", name)
	}
	for _, stmt := range []string{
		"DROP TABLE IF EXISTS " + name + " ON CLUSTER " + cluster,
		"CREATE TABLE IF NOT EXISTS " + name + " ON CLUSTER " + cluster + " AS " + name + LocalSuffix + " ENGINE = " + engine[1],
	} {
		if err := c.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("redistribute %s: %w", name, err)
		}
	}
	return nil
}

// VisitorShardKey shards tables with a visitor column by it (the pseudonym
// is a keyed hash, so already uniform), so that each visitor-day's rows
// live on one shard and distinct visitors add up across shards; it spreads
// the others evenly.
func VisitorShardKey(_, _, columns string) string {
	if visitorColumn.MatchString(columns) {
		return "visitor"
	}
	return "rand()"
}

var visitorColumn = regexp.MustCompile(`(?m)(^|\(|,)\s*visitor\s+\w`)

// ClusterReplicas is the fewest replicas any shard of cluster has, as the
// server's remote_servers lists them.
func ClusterReplicas(ctx context.Context, c *Client, cluster string) (int, error) {
	var n uint64
	err := c.Select(ctx, "SELECT min(replicas) FROM (SELECT shard_num, count() AS replicas FROM system.clusters WHERE cluster = "+Quote(cluster)+" GROUP BY shard_num)",
		func(b *proto.Block) error {
			if b.Rows() > 0 {
				n = Get[uint64](b, 0, 0)
			}
			return nil
		})
	if err != nil {
		return 0, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	if n == 0 {
		return 0, fmt.Errorf("cluster %s: not in the server's remote_servers", cluster)
	}
	return int(n), nil
}
