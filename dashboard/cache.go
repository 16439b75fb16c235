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

// ttlCache holds one value for cacheTTL. A miss fetches outside the lock:
// a frozen ClickHouse holds each request only to its own deadline.
type ttlCache[T any] struct {
	mu  sync.Mutex
	val T
	at  time.Time
}

// get is the cached value, fetched again when older than cacheTTL or
// when stale is true.
func (c *ttlCache[T]) get(now time.Time, stale bool, fetch func() (T, error)) (T, error) {
	c.mu.Lock()
	v, at := c.val, c.at
	c.mu.Unlock()
	if !stale && !at.IsZero() && now.Sub(at) < cacheTTL {
		return v, nil
	}
	v, err := fetch()
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	c.val, c.at = v, now
	c.mu.Unlock()
	return v, nil
}

// sites lists the sites with published data (cached); a site asked for
// and not in the list is looked up again, so a new site shows at once.
func (d *Dashboard) sites(ctx context.Context, want string) ([]string, error) {
	fetch := func() ([]string, error) { return d.store.sites(ctx) }
	sites, err := d.siteCache.get(time.Now(), false, fetch)
	if err != nil || want == "" || slices.Contains(sites, want) {
		return sites, err
	}
	return d.siteCache.get(time.Now(), true, fetch)
}

// statementNow is the privacy statement (cached).
func (d *Dashboard) statementNow(ctx context.Context) (privacy.Statement, error) {
	if d.cfg.Statement == nil {
		return privacy.Statement{}, nil
	}
	return d.stmtCache.get(time.Now(), false, func() (privacy.Statement, error) { return d.cfg.Statement(ctx) })
}

// grainCache keeps grainOf's answers per table, site and range.
type grainCache struct {
	mu sync.Mutex
	m  map[string]cachedGrain
}

type cachedGrain struct {
	grain string
	at    time.Time
}

func (c *grainCache) get(key string, now time.Time) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := c.m[key]
	if !ok || now.Sub(g.at) >= cacheTTL {
		return "", false
	}
	return g.grain, true
}

func (c *grainCache) put(key, grain string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) > 10000 { // a bound, not an LRU: ranges are few
		c.m = map[string]cachedGrain{}
	}
	c.m[key] = cachedGrain{grain, now}
}
