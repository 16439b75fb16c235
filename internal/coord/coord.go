// Package coord is herd's use of a cluster's coordination service, the
// ZooKeeper its ClickHouse replicas already need: the publisher lock that
// holds across nodes, and the day keys every ingest node shares.
//
// Every znode herd makes lives under one root (default /herd):
//
//	/herd/locks/<name>      ephemeral; its holder's owner id (Lock)
//	/herd/day-keys/<day>    the day's pseudonym key, wrapped (DayKeys)
package coord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"
)

// DefaultRoot is the znode under which herd keeps its state.
const DefaultRoot = "/herd"

// SessionTimeout is how long ZooKeeper keeps a session whose client went
// silent: a publisher that dies frees its lock within it.
const SessionTimeout = 10 * time.Second

// Config says which ZooKeeper to use.
type Config struct {
	// Servers are host:port addresses of the ensemble. Required.
	Servers []string
	// Root is the znode under which herd keeps its state (default DefaultRoot).
	Root string
	// Secret, when set, authenticates this process (ZooKeeper's digest
	// scheme, with a password derived from it) so that it may read and
	// write znodes only holders of the same secret can (the day keys).
	Secret []byte
	Log    *slog.Logger
}

// Conn is one session with ZooKeeper. Its methods take a context: ZooKeeper
// calls that do not answer by its end return its error (the call itself
// is abandoned, and finishes or fails with the session).
type Conn struct {
	zk   *zk.Conn
	root string
	// private is the ACL of secret znodes: only this Secret's holders.
	private []zk.ACL
	log     *slog.Logger
}

// Dial opens a session; the connection is made in the background, and the
// first call waits for it until ctx ends.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	if len(cfg.Servers) == 0 {
		return nil, errors.New("zookeeper: no servers")
	}
	if cfg.Root == "" {
		cfg.Root = DefaultRoot
	}
	if !strings.HasPrefix(cfg.Root, "/") || strings.HasSuffix(cfg.Root, "/") {
		return nil, fmt.Errorf("zookeeper: root %q: want an absolute path without a trailing slash", cfg.Root)
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	conn, _, err := zk.Connect(cfg.Servers, SessionTimeout, zk.WithLogger(zkLogger{log}), zk.WithLogInfo(false))
	if err != nil {
		return nil, fmt.Errorf("zookeeper %s: %w", strings.Join(cfg.Servers, ","), err)
	}
	c := &Conn{zk: conn, root: cfg.Root, log: log}
	if len(cfg.Secret) > 0 {
		user, password := digestCredentials(cfg.Secret)
		if err := c.call(ctx, func() error { return conn.AddAuth("digest", []byte(user+":"+password)) }); err != nil {
			conn.Close()
			return nil, fmt.Errorf("zookeeper: authenticate: %w", err)
		}
		c.private = zk.DigestACL(zk.PermAll, user, password)
	}
	return c, nil
}

// Close ends the session: ephemeral znodes (locks) go at once.
func (c *Conn) Close() { c.zk.Close() }

// call runs one ZooKeeper request, giving up when ctx ends first.
func (c *Conn) call(ctx context.Context, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("zookeeper: %w", context.Cause(ctx))
	}
}

// ensure creates dir and its parents unless they exist. With a secret,
// every level is this secret's (digest: everything) and the world's to
// read (names only, never secrets) and to create under, so a publisher
// without the secret can still make its lock directory, but nobody
// without it can delete or re-ACL what is there; leaf is dir's own ACL. A
// level an earlier herd created open to the world is closed the same way.
func (c *Conn) ensure(ctx context.Context, dir string, leaf []zk.ACL) error {
	parent := zk.WorldACL(zk.PermAll)
	if c.private != nil {
		parent = append(slices.Clone(c.private), zk.WorldACL(zk.PermRead|zk.PermCreate)...)
	}
	parts := strings.Split(strings.TrimPrefix(dir, "/"), "/")
	p := ""
	for i, part := range parts {
		p += "/" + part
		acl := parent
		if i == len(parts)-1 {
			acl = leaf
		}
		err := c.call(ctx, func() error {
			_, err := c.zk.Create(p, nil, 0, acl)
			return err
		})
		if errors.Is(err, zk.ErrNodeExists) && c.private != nil {
			err = c.close(ctx, p, acl)
		}
		if err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("zookeeper: create %s: %w", p, err)
		}
	}
	return nil
}

// close sets p's ACL to acl if the world may still change it (an earlier
// herd created it open); one already closed is left as it is.
func (c *Conn) close(ctx context.Context, p string, acl []zk.ACL) error {
	return c.call(ctx, func() error {
		have, stat, err := c.zk.GetACL(p)
		if err != nil {
			return err
		}
		if worldPerms(have)&^worldPerms(acl)&(zk.PermDelete|zk.PermAdmin|zk.PermWrite) == 0 {
			return nil
		}
		_, err = c.zk.SetACL(p, acl, stat.Aversion)
		return err
	})
}

// worldPerms is what an ACL lets anyone do.
func worldPerms(acl []zk.ACL) int32 {
	var p int32
	for _, a := range acl {
		if a.Scheme == "world" {
			p |= a.Perms
		}
	}
	return p
}

func (c *Conn) path(parts ...string) string { return path.Join(append([]string{c.root}, parts...)...) }

// zkLogger sends the client's messages (reconnects, expired sessions) to slog.
type zkLogger struct{ log *slog.Logger }

func (l zkLogger) Printf(format string, args ...any) {
	l.log.Warn("zookeeper client", "msg", fmt.Sprintf(format, args...))
}
