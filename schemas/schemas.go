// Package schemas holds what herd's storage and policy are made of, as data:
// the ClickHouse migrations (embedded, applied in order by herd migrate), the
// purpose inventory and the funnel and slot definitions.
package schemas

import "embed"

// Migrations holds herd's ClickHouse migrations as migrations/NNNN_name.sql;
// clickhouse.LoadMigrations(Migrations, MigrationsDir) reads them in order.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// MigrationsDir is the folder of Migrations that holds the files.
const MigrationsDir = "migrations"
