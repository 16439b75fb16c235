package clickhouse

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

// ErrLockLost is returned by Renew and Release when the lock is no longer held
// by its owner (its lease ran out and another process took it).
var ErrLockLost = errors.New("lock lost")

// Lock is a lease-based mutex shared by every process that talks to the same
// ClickHouse server: one migrator, one publisher at a time.
//
// ClickHouse has no locks or transactions, but CREATE TABLE of a name that
// exists fails on every version, so creating the table db.lock_<name> is the
// acquire and dropping it the release. The table holds (owner, expires) rows;
// a holder renews by appending one. A lock whose newest lease has expired (its
// holder died) is taken over by renaming the table away, which only one
// contender can do.
type Lock struct {
	c     *Client
	table string
	owner string
	lease time.Duration
}

// AcquireLock blocks until it holds the lock called name in database db, or
// ctx ends. The lease should be several times the holder's renewal interval.
func AcquireLock(ctx context.Context, c *Client, db, name string, lease time.Duration) (*Lock, error) {
	for {
		l, ok, err := TryLock(ctx, c, db, name, lease)
		if err != nil || ok {
			return l, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("acquire lock %s: %w", name, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// TryLock takes the lock if it is free or its lease has expired, and reports
// whether it did.
func TryLock(ctx context.Context, c *Client, db, name string, lease time.Duration) (*Lock, bool, error) {
	if _, err := Ident(db); err != nil {
		return nil, false, fmt.Errorf("lock database: %w", err)
	}
	if _, err := Ident(name); err != nil {
		return nil, false, fmt.Errorf("lock name: %w", err)
	}
	if lease < time.Second {
		return nil, false, fmt.Errorf("lock %s: lease %v is under a second", name, lease)
	}
	l := &Lock{c: c, table: db + ".lock_" + name, owner: newOwner(), lease: lease}
	created, err := l.create(ctx)
	if err != nil || created {
		return l, created, err
	}
	st, err := l.state(ctx)
	if err != nil {
		if IsCode(err, CodeUnknownTable) {
			return nil, false, nil // released meanwhile; the caller tries again
		}
		return nil, false, err
	}
	if st.owner == "" {
		// An empty table is either a lock whose creator died before writing
		// its lease or one being created this very moment: look again later.
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case <-time.After(time.Second):
		}
		if st, err = l.state(ctx); err != nil {
			return nil, false, nil
		}
	}
	if !st.expired {
		return nil, false, nil
	}
	// The holder's lease ran out. Rename its table away (only one contender
	// can), check it was the lease we saw, and try to take the name.
	stale := l.table + "_stale_" + newOwner()[:8]
	if err := c.Exec(ctx, "RENAME TABLE "+l.table+" TO "+stale); err != nil {
		if IsCode(err, CodeUnknownTable, CodeTableAlreadyExists) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("lock %s: take over expired lease: %w", name, err)
	}
	moved, err := (&Lock{c: c, table: stale}).state(ctx)
	if err == nil && moved.owner != st.owner {
		// Someone else took over and renewed between our look and our rename:
		// give them their lock back.
		err = c.Exec(ctx, "RENAME TABLE "+stale+" TO "+l.table)
		return nil, false, err
	}
	if err := c.Exec(ctx, "DROP TABLE IF EXISTS "+stale); err != nil {
		return nil, false, fmt.Errorf("lock %s: drop expired lease: %w", name, err)
	}
	created, err = l.create(ctx)
	return l, created, err
}

func (l *Lock) create(ctx context.Context) (bool, error) {
	err := l.c.Exec(ctx, "CREATE TABLE "+l.table+" ENGINE = Log AS SELECT "+
		Quote(l.owner)+" AS owner, now() + "+QuoteInt(int64(l.lease/time.Second))+" AS expires")
	switch {
	case err == nil:
		return true, nil
	case IsCode(err, CodeTableAlreadyExists):
		return false, nil
	default:
		return false, fmt.Errorf("lock %s: %w", l.table, err)
	}
}

type lockState struct {
	owner   string
	expired bool
}

// state reads the newest lease. A table without rows (its creator died between
// CREATE and the first row, or a Memory engine lost it) counts as expired.
func (l *Lock) state(ctx context.Context) (lockState, error) {
	st := lockState{expired: true}
	err := l.c.Select(ctx, "SELECT owner, toUInt8(expires < now()) FROM "+l.table+" ORDER BY expires DESC LIMIT 1",
		func(b *proto.Block) error {
			if b.Rows() > 0 {
				st.owner = Get[string](b, 0, 0)
				st.expired = Get[uint8](b, 1, 0) == 1
			}
			return nil
		})
	return st, err
}

// Renew extends the lease from now.
func (l *Lock) Renew(ctx context.Context) error {
	if err := l.check(ctx); err != nil {
		return err
	}
	return l.c.Exec(ctx, "INSERT INTO "+l.table+" SELECT "+Quote(l.owner)+", now() + "+QuoteInt(int64(l.lease/time.Second)))
}

// Release gives the lock up. Releasing a lock that was lost returns ErrLockLost.
func (l *Lock) Release(ctx context.Context) error {
	if err := l.check(ctx); err != nil {
		return err
	}
	if err := l.c.Exec(ctx, "DROP TABLE IF EXISTS "+l.table); err != nil {
		return fmt.Errorf("release lock %s: %w", l.table, err)
	}
	return nil
}

func (l *Lock) check(ctx context.Context) error {
	st, err := l.state(ctx)
	if IsCode(err, CodeUnknownTable) || (err == nil && st.owner != l.owner) {
		return fmt.Errorf("%s: %w", l.table, ErrLockLost)
	}
	return err
}

func newOwner() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
