package aggregate_test

import (
	"context"
	"testing"
	"time"

	"github.com/herd-analytics/herd/aggregate"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
)

func TestPublishEveryTable(t *testing.T) {
	db := chtest.Migrated(t)
	url := edge(t, db)
	day := time.Now().UTC().Truncate(24*time.Hour).Add(-24 * time.Hour)
	t0 := time.Now()
	st := importShop(t, url, 1, 3000, 1, day.Add(24*time.Hour))
	t.Logf("import %s in %v", st, time.Since(t0))
	t0 = time.Now()
	p := publisher(t, db, aggregate.Config{})
	now := day.Add(24*time.Hour + 10*time.Minute)
	sum, err := p.RunOnce(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v in %v", sum, time.Since(t0))
	for _, tb := range p.Tables() {
		n := rows(t, db, "SELECT count(), sum(visitors) FROM "+db.Names.Pub+"."+tb.Name+" WHERE grain = 'day'")
		t.Logf("%s: %v", tb.Name, n[0])
	}
}
