package clickhouse

import (
	"strings"
	"testing"
)

func TestClusterStatements(t *testing.T) {
	for _, tc := range []struct {
		in, redistribute string
		want             []string
	}{
		{"CREATE DATABASE IF NOT EXISTS herd", "", []string{"CREATE DATABASE IF NOT EXISTS herd ON CLUSTER c"}},
		{"CREATE TABLE IF NOT EXISTS herd_raw.events (\n    visitor UInt64,\n    n UInt8\n) ENGINE = ReplacingMergeTree(checked) PARTITION BY day ORDER BY (visitor)", "", []string{
			"CREATE TABLE IF NOT EXISTS herd_raw.events_local ON CLUSTER c (\n    visitor UInt64,\n    n UInt8\n) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/herd_raw/events_local', '{replica}', checked) PARTITION BY day ORDER BY (visitor)",
			"CREATE TABLE IF NOT EXISTS herd_raw.events ON CLUSTER c AS herd_raw.events_local ENGINE = Distributed(c, herd_raw, events_local, visitor)",
		}},
		{"CREATE TABLE herd.kpis (site String, visitors UInt64) ENGINE = MergeTree() ORDER BY site", "", []string{
			"CREATE TABLE IF NOT EXISTS herd.kpis_local ON CLUSTER c (site String, visitors UInt64) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/herd/kpis_local', '{replica}') ORDER BY site",
			"CREATE TABLE IF NOT EXISTS herd.kpis ON CLUSTER c AS herd.kpis_local ENGINE = Distributed(c, herd, kpis_local, rand())",
		}},
		{"ALTER TABLE herd.kpis ADD COLUMN other UInt8 DEFAULT 0", "herd.kpis", []string{"ALTER TABLE herd.kpis_local ON CLUSTER c ADD COLUMN other UInt8 DEFAULT 0"}},
		{"ALTER TABLE herd.kpis MODIFY COLUMN grain Enum8('day' = 2)", "herd.kpis", []string{"ALTER TABLE herd.kpis_local ON CLUSTER c MODIFY COLUMN grain Enum8('day' = 2)"}},
		{"ALTER TABLE herd.catalog DELETE WHERE loaded < now()", "", []string{"ALTER TABLE herd.catalog_local ON CLUSTER c DELETE WHERE loaded < now()"}},
		{"DROP TABLE IF EXISTS herd.rollup_late", "", []string{"DROP TABLE IF EXISTS herd.rollup_late ON CLUSTER c", "DROP TABLE IF EXISTS herd.rollup_late_local ON CLUSTER c"}},
	} {
		got, redistribute, err := ClusterStatements(tc.in, "c", VisitorShardKey)
		if err != nil || strings.Join(got, "\n;\n") != strings.Join(tc.want, "\n;\n") || redistribute != tc.redistribute {
			t.Errorf("%s:\n got %q (%q, %v)\nwant %q (%q)", tc.in, got, redistribute, err, tc.want, tc.redistribute)
		}
	}
	if _, _, err := ClusterStatements("INSERT INTO herd.kpis VALUES (1)", "c", VisitorShardKey); err == nil {
		t.Error("an INSERT got a cluster form")
	}
	if _, _, err := ClusterStatements("CREATE TABLE herd.l ENGINE = Log AS SELECT 1", "c", VisitorShardKey); err == nil {
		t.Error("a Log table got a cluster form")
	}
}
