package ingesttest

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Load posts batches of 20 events to an ingest from four workers until
// Stop, each event of a unique product id, and keeps the ids of every
// event acknowledged (202 with all 20 accepted): what a fault test must
// find stored exactly once afterwards. A refused or failed request (herd
// or ClickHouse down) is counted and retried with new ids.
type Load struct {
	url, prefix, event string
	stop               chan struct{}
	wg                 sync.WaitGroup

	mu          sync.Mutex
	acked       map[string]bool
	ok, refused atomic.Int64
}

// StartLoad starts the workers against base (http://host:port), naming
// events prefix-worker-request-index, of type event.
func StartLoad(base, prefix, event string) *Load {
	l := &Load{url: base + "/api/events", prefix: prefix, event: event, stop: make(chan struct{}), acked: map[string]bool{}}
	for g := range 4 {
		l.wg.Add(1)
		go l.work(g)
	}
	return l
}

func (l *Load) work(g int) {
	defer l.wg.Done()
	c := &http.Client{Timeout: 30 * time.Second}
	for n := 0; ; n++ {
		select {
		case <-l.stop:
			return
		default:
		}
		ids := make([]string, 20)
		var b strings.Builder
		b.WriteString("[")
		for i := range ids {
			ids[i] = fmt.Sprintf("%s%d-%d-%d", l.prefix, g, n, i)
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"type":%q,"product":{"id":%q}}`, l.event, ids[i])
		}
		b.WriteString("]")
		req, _ := http.NewRequest("POST", l.url, strings.NewReader(b.String()))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15")
		resp, err := c.Do(req)
		if err != nil {
			l.refused.Add(1)
			select { // herd is down: try again shortly
			case <-l.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			continue
		}
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted || !strings.Contains(body.String(), `"accepted":20`) {
			l.refused.Add(1)
			continue
		}
		l.ok.Add(1)
		l.mu.Lock()
		for _, id := range ids {
			l.acked[id] = true
		}
		l.mu.Unlock()
	}
}

// Requests is how many requests were acknowledged so far.
func (l *Load) Requests() int64 { return l.ok.Load() }

// Refused is how many requests were refused or failed so far.
func (l *Load) Refused() int64 { return l.refused.Load() }

// WaitRequests waits until more than n requests were acknowledged in all,
// failing t after within.
func (l *Load) WaitRequests(t testing.TB, n int64, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); l.ok.Load() <= n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("load: %d requests acknowledged after %v, want more than %d", l.ok.Load(), within, n)
		}
	}
}

// Stop stops the workers and returns the ids of every event acknowledged.
func (l *Load) Stop() map[string]bool {
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acked
}
