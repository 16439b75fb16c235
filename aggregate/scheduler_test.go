package aggregate_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/herd-analytics/herd/aggregate"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
)

// TestSchedulerCatchUpAndOnePublisher: two herd processes' schedulers (two
// publishers with their own connections) tick together; after an
// outage of two days every missed bucket is published exactly once.
func TestSchedulerCatchUpAndOnePublisher(t *testing.T) {
	ctx := context.Background()
	db := chtest.Migrated(t)
	e := edge(t, db)
	end := time.Now().UTC().Truncate(24 * time.Hour)
	importShop(t, e, 11, 400, 3, end)

	var mu sync.Mutex
	clock := end.Add(-48 * time.Hour).Add(10 * time.Minute)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	var scheds []*aggregate.Scheduler
	for range 2 {
		pub := publisher(t, db, aggregate.Config{})
		scheds = append(scheds, &aggregate.Scheduler{Publisher: pub, Now: now, Lease: 5 * time.Second})
	}
	tickBoth := func() (skipped int) {
		var wg sync.WaitGroup
		res := make([]aggregate.TickResult, len(scheds))
		for i, s := range scheds {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := s.Tick(ctx)
				if err != nil {
					t.Error(err)
				}
				res[i] = r
			}()
		}
		wg.Wait()
		for _, r := range res {
			if r.Skipped {
				skipped++
			}
		}
		return skipped
	}
	tickBoth()
	before := rows(t, db, "SELECT count() FROM "+db.Names.Pub+".rollup_runs WHERE state = 'published' AND grain = 'day'")[0][0].(uint64)

	// Two days down, then both come back at once.
	mu.Lock()
	clock = clock.Add(48 * time.Hour)
	mu.Unlock()
	skipped := 0
	for range 3 {
		skipped += tickBoth()
	}
	t.Logf("ticks skipped because the other process held the lock: %d", skipped)

	tables := len(scheds[0].Publisher.Tables())
	after := rows(t, db, "SELECT count() FROM "+db.Names.Pub+".rollup_runs WHERE state = 'published' AND grain = 'day'")[0][0].(uint64)
	if after-before != uint64(2*tables) {
		t.Fatalf("daily publications after the outage: %d, want the 2 missed days × %d tables", after-before, tables)
	}
	dup := rows(t, db, "SELECT table_name, grain, bucket, count() AS n FROM "+db.Names.Pub+".rollup_runs WHERE state = 'published' GROUP BY table_name, grain, bucket HAVING n > 1")
	if len(dup) > 0 {
		t.Fatalf("buckets published more than once: %v", dup)
	}
	for _, tb := range scheds[0].Publisher.Tables() {
		dupCells := rows(t, db, "SELECT bucket, count() AS n FROM (SELECT DISTINCT bucket, _part FROM "+db.Names.Pub+"."+tb.Name+") GROUP BY bucket HAVING n > 1")
		if len(dupCells) > 0 {
			t.Fatalf("%s: buckets inserted more than once: %v", tb.Name, dupCells)
		}
	}
}
