// Package deploy carries the configuration files herd ships for servers it
// does not run itself (ClickHouse, ZooKeeper, systemd), so that the test
// harness starts real servers with exactly these files.
package deploy

import "embed"

// Files are clickhouse/, zookeeper/ and systemd/ as shipped.
//
//go:embed clickhouse zookeeper systemd
var Files embed.FS
