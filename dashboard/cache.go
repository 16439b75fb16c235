package dashboard

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/herd-analytics/herd/internal/privacy"
)

// cacheTTL is how long the sites and the privacy statement are reused:
// every request needs both, and they change with a publication run (every
// few minutes at most).
const cacheTTL = 20 * time.Second

// cache keeps values by key for cacheTTL. A miss fetches outside the lock:
// a frozen ClickHouse holds each request only to its own deadline.
type cache[T any] struct {
	mu sync.Mutex
	m  map[string]cached[T]
}

type cached[T any] struct {
	val T
	at  time.Time
}

// get is key's value, fetched again when older than cacheTTL or when
// stale is true.
func (c *cache[T]) get(key string, stale bool, fetch func() (T, error)) (T, error) {
	now := time.Now()
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if ok && !stale && now.Sub(e.at) < cacheTTL {
		return e.val, nil
	}
	v, err := fetch()
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) > 10000 { // a bound, not an LRU: keys are few
		c.m = map[string]cached[T]{}
	}
	c.m[key] = cached[T]{v, now}
	c.mu.Unlock()
	return v, nil
}

// sites lists the sites with published data (cached); a site asked for
// and not in the list is looked up again, so a new site shows at once.
func (d *Dashboard) sites(ctx context.Context, want string) ([]string, error) {
	fetch := func() ([]string, error) { return d.store.sites(ctx) }
	sites, err := d.siteCache.get("", false, fetch)
	if err != nil || want == "" || slices.Contains(sites, want) {
		return sites, err
	}
	return d.siteCache.get("", true, fetch)
}

// statementNow is the privacy statement (cached).
func (d *Dashboard) statementNow(ctx context.Context) (privacy.Statement, error) {
	if d.cfg.Statement == nil {
		return privacy.Statement{}, nil
	}
	return d.stmtCache.get("", false, func() (privacy.Statement, error) { return d.cfg.Statement(ctx) })
}
