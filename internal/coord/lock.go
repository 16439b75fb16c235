package coord

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/go-zookeeper/zk"
)

// ErrLockLost is returned by Renew and Release when the lock is no longer
// held: the session that held it expired, and perhaps another took it.
var ErrLockLost = errors.New("lock lost")

// Lock is a mutex across every process that uses the same ZooKeeper: an
// ephemeral znode, which ZooKeeper removes when its holder's session ends
// (the process died or was cut off for SessionTimeout). Unlike a lease in
// ClickHouse it needs no clock agreement between nodes.
type Lock struct {
	c     *Conn
	path  string
	owner string
}

// TryLock takes the lock called name if nobody holds it, and reports
// whether it did.
func (c *Conn) TryLock(ctx context.Context, name string) (*Lock, bool, error) {

	dir := c.path("locks")
	if err := c.ensure(ctx, dir, zk.WorldACL(zk.PermAll)); err != nil {
		return nil, false, err
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	l := &Lock{c: c, path: dir + "/" + name, owner: hex.EncodeToString(b[:])}
	err := c.call(ctx, func() error {
		_, err := c.zk.Create(l.path, []byte(l.owner), zk.FlagEphemeral, zk.WorldACL(zk.PermAll))
		return err
	})
	switch {
	case err == nil:
		return l, true, nil
	case errors.Is(err, zk.ErrNodeExists):
		return nil, false, nil
	default:
		return nil, false, fmt.Errorf("lock %s: %w", l.path, err)
	}
}

// Renew checks the lock is still held; an ephemeral znode needs no renewal
// while the session lives, but a holder must stop once it is gone.
func (l *Lock) Renew(ctx context.Context) error {
	_, err := l.held(ctx)
	return err
}

// Release gives the lock up.
func (l *Lock) Release(ctx context.Context) error {
	version, err := l.held(ctx)
	if err != nil {
		return err
	}
	err = l.c.call(ctx, func() error { return l.c.zk.Delete(l.path, version) })
	switch {
	case err == nil:
		return nil
	case errors.Is(err, zk.ErrNoNode), errors.Is(err, zk.ErrBadVersion):
		return fmt.Errorf("%s: %w", l.path, ErrLockLost)
	default:
		return fmt.Errorf("release lock %s: %w", l.path, err)
	}
}

// held returns the lock znode's version if this owner holds it.
func (l *Lock) held(ctx context.Context) (int32, error) {
	var data []byte
	var version int32
	err := l.c.call(ctx, func() error {
		d, st, err := l.c.zk.Get(l.path)
		if err == nil {
			data, version = d, st.Version
		}
		return err
	})
	switch {
	case errors.Is(err, zk.ErrNoNode), err == nil && string(data) != l.owner:
		return 0, fmt.Errorf("%s: %w", l.path, ErrLockLost)
	case err != nil:
		return 0, fmt.Errorf("lock %s: %w", l.path, err)
	}
	return version, nil
}
