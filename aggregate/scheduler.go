package aggregate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/herd-analytics/herd/internal/clickhouse"
)

// DefaultSchedule runs the publisher every five minutes: each tick publishes
// whatever has closed (hourly buckets after the grace, daily ones after
// midnight UTC plus the grace), counts late events and applies retention.
const DefaultSchedule = "*/5 * * * *"

// lockName is the ClickHouse lock that makes one publisher at a time, however
// many herd processes run.
const lockName = "publisher"

// Scheduler runs ticks on a cron schedule, and once at start to catch up on
// every bucket missed while herd was down.
type Scheduler struct {
	Publisher *Publisher
	// Schedule is a cron spec in UTC (default DefaultSchedule).
	Schedule string
	// Spool, when set, has its expired files pruned by the retention job.
	Spool SpoolPruner
	// Lease of the publisher lock (default 2 minutes; renewed while working).
	Lease time.Duration
	// Locks hands out the publisher lock; nil is the ClickHouse lock on the
	// publisher's server, which holds for one server only. A cluster's
	// publishers share its ZooKeeper's (coord.Conn).
	Locks Locker
	// Now is the clock (default time.Now).
	Now func() time.Time
	Log *slog.Logger
}

// Locker hands out a named lock that holds across processes.
type Locker interface {
	TryLock(ctx context.Context, name string, lease time.Duration) (Held, bool, error)
}

// Held is a lock this process holds: Renew keeps it (or says it was lost),
// Release gives it up.
type Held interface {
	Renew(ctx context.Context) error
	Release(ctx context.Context) error
}

// clickhouseLocks is the lock on one ClickHouse server.
type clickhouseLocks struct {
	c  *clickhouse.Client
	db string
}

func (l clickhouseLocks) TryLock(ctx context.Context, name string, lease time.Duration) (Held, bool, error) {
	lock, ok, err := clickhouse.TryLock(ctx, l.c, l.db, name, lease)
	if !ok {
		return nil, ok, err
	}
	return lock, ok, err
}

// TickResult is what one tick did; Skipped means another process held the
// publisher lock.
type TickResult struct {
	Summary Summary
	Dropped []Dropped
	Skipped bool
}

// Run ticks once, then on the schedule, until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	spec := s.Schedule
	if spec == "" {
		spec = DefaultSchedule
	}
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return fmt.Errorf("rollup schedule %q: %w", spec, err)
	}
	log := s.log()
	c := cron.New(cron.WithLocation(time.UTC), cron.WithChain(cron.SkipIfStillRunning(cron.DiscardLogger)))
	tick := func() {
		res, err := s.Tick(ctx)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			log.Error("rollup tick", "cause", clickhouse.Cause(err), "err", err)
		case res.Skipped:
			log.Debug("rollup tick skipped: another process is publishing")
		default:
			log.Info("rollup tick", "runs", res.Summary.Runs, "published", res.Summary.Published,
				"suppressed", res.Summary.Suppressed, "dropped", len(res.Dropped))
		}
	}
	c.Schedule(sched, cron.FuncJob(tick))
	tick() // catch up on what was missed while down
	c.Start()
	<-ctx.Done()
	<-c.Stop().Done()
	return nil
}

// Tick publishes every due bucket, counts late events and applies retention,
// holding the publisher lock; it skips when another process holds it.
func (s *Scheduler) Tick(ctx context.Context) (TickResult, error) {
	var res TickResult
	p := s.Publisher
	lease := s.Lease
	if lease == 0 {
		lease = 2 * time.Minute
	}
	locks := s.Locks
	if locks == nil {
		locks = clickhouseLocks{p.c, p.dbs.Pub}
	}
	lock, ok, err := locks.TryLock(ctx, lockName, lease)
	if err != nil {
		return res, fmt.Errorf("publisher lock: %w", err)
	}
	if !ok {
		res.Skipped = true
		return res, nil
	}
	wctx, cancel := context.WithCancelCause(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(lease / 3)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-t.C:
				if err := lock.Renew(wctx); err != nil && wctx.Err() == nil {
					// Lost the lock: stop publishing before another
					// process starts on the same buckets.
					cancel(fmt.Errorf("publisher lock: %w", err))
					return
				}
			}
		}
	}()
	defer func() {
		cancel(nil)
		<-renewed
		if err := lock.Release(context.WithoutCancel(ctx)); err != nil && !errors.Is(err, clickhouse.ErrLockLost) {
			s.log().Warn("release publisher lock", "err", err)
		}
	}()
	now := s.now()
	var errs []error
	res.Summary, err = p.RunOnce(wctx, now)
	if err != nil {
		errs = append(errs, err)
	}
	if err := p.CountLate(wctx); err != nil {
		errs = append(errs, err)
	}
	res.Dropped, err = p.Retain(wctx, now, s.Spool)
	if err != nil {
		errs = append(errs, err)
	}
	if cause := context.Cause(wctx); cause != nil && ctx.Err() == nil && !errors.Is(cause, context.Canceled) {
		errs = append(errs, cause)
	}
	return res, errors.Join(errs...)
}

func (s *Scheduler) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Scheduler) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}
