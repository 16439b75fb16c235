// Package schemas holds what herd's storage and policy are made of, as data:
// the ClickHouse migrations (embedded, applied in order by herd migrate) and,
// in later files, the purpose inventory and the funnel and slot definitions.
package schemas

import (
	"embed"

	"github.com/herd-analytics/herd/internal/clickhouse"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations returns herd's ClickHouse migrations in version order.
func Migrations() ([]clickhouse.Migration, error) {
	return clickhouse.LoadMigrations(migrationFS, "migrations")
}
