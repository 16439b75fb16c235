package dashboard

import (
	"sync"
	"time"
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
