package clickhouse_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
)

func TestLockIsExclusive(t *testing.T) {
	db := chtest.New(t)
	ctx := context.Background()
	var holders, maxHolders atomic.Int32
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				l, err := clickhouse.AcquireLock(ctx, db.Writer, db.Names.Pub, "x", 30*time.Second)
				if err != nil {
					t.Error(err)
					return
				}
				n := holders.Add(1)
				for {
					m := maxHolders.Load()
					if n <= m || maxHolders.CompareAndSwap(m, n) {
						break
					}
				}
				time.Sleep(20 * time.Millisecond)
				holders.Add(-1)
				if err := l.Release(ctx); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if maxHolders.Load() != 1 {
		t.Fatalf("%d holders at once", maxHolders.Load())
	}
}

func TestLockExpiredLeaseIsTakenOver(t *testing.T) {
	db := chtest.New(t)
	ctx := context.Background()
	dead, ok, err := clickhouse.TryLock(ctx, db.Writer, db.Names.Pub, "y", time.Second)
	if err != nil || !ok {
		t.Fatalf("first TryLock: %v %v", ok, err)
	}
	if _, ok, err := clickhouse.TryLock(ctx, db.Writer, db.Names.Pub, "y", time.Second); err != nil || ok {
		t.Fatalf("second TryLock while held: ok=%v err=%v", ok, err)
	}
	// The holder "died": no renewal. Its lease of a second ends, and then
	// (not before) another takes the lock over.
	start := time.Now()
	var next *clickhouse.Lock
	chtest.WaitFor(t, 10*time.Second, func() bool {
		l, ok, err := clickhouse.TryLock(ctx, db.Writer, db.Names.Pub, "y", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		next = l
		return ok
	})
	if waited := time.Since(start); waited < 500*time.Millisecond {
		t.Fatalf("the lock was taken over %v after its holder's last renewal, within its lease", waited)
	}
	if err := dead.Renew(ctx); !errors.Is(err, clickhouse.ErrLockLost) {
		t.Fatalf("old holder Renew: got %v, want ErrLockLost", err)
	}
	if err := next.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	if err := next.Release(ctx); err != nil {
		t.Fatal(err)
	}
}
