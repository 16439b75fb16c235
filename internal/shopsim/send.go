package shopsim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// GenConfig says what traffic to drive at an ingest.
type GenConfig struct {
	// Target is the ingest base URL, http://127.0.0.1:8080.
	Target string
	// Also are more ingest nodes: requests go to Target and these in turn,
	// as through a load balancer.
	Also []string
	Shop Config
	// Visitors is the number of distinct shoppers (default 1,000).
	Visitors int
	// VisitorsPerDay, when set, sizes Visitors so that an import holds
	// about this many visitor-days a day (a shopper visits MeanVisits
	// times over the period).
	VisitorsPerDay int
	// Days of history to replay with Import (default 7).
	Days int
	// Import replays history: every event carries its own past time and
	// the request is marked X-Herd-Import: 1, which only a site with
	// allow_import accepts. Without it, sessions happen now, for Duration.
	Import bool
	// WriteKey authenticates imports to a configured site (Basic auth, the
	// key as the user name); the configuration-free demo site needs none.
	WriteKey string
	// Duration of live traffic; zero means until ctx ends.
	Duration time.Duration
	// Rate caps events per second; zero means as fast as the ingest takes them.
	Rate float64
	// Workers sending in parallel (default 8).
	Workers int
	// Now is the end of the imported history (default time.Now()).
	Now time.Time
}

// Stats counts what was sent and what the ingest said.
type Stats struct {
	Sessions, Requests, Events int64
	Accepted, Dropped, Problem int64
	Failed                     int64 // requests answered 4xx/5xx or not at all
}

func (s *Stats) String() string {
	return fmt.Sprintf("%d sessions, %d events in %d requests: %d accepted, %d dropped by policy, %d invalid, %d requests failed",
		s.Sessions, s.Events, s.Requests, s.Accepted, s.Dropped, s.Problem, s.Failed)
}

// MeanVisits is how many days an imported shopper visits on average: once,
// plus ⌊1.5·X⌋ returns for X ~ Exp(1), i.e. 1 + e^(−2/3)/(1 − e^(−2/3)).
var MeanVisits = 1 + math.Exp(-2.0/3)/(1-math.Exp(-2.0/3))

// Generate drives synthetic shoppers at the ingest over real HTTP.
func Generate(ctx context.Context, cfg GenConfig, log *slog.Logger) (*Stats, error) {
	if cfg.Visitors <= 0 {
		cfg.Visitors = 1000
	}
	if cfg.Days <= 0 {
		cfg.Days = 7
	}
	if cfg.VisitorsPerDay > 0 {
		cfg.Visitors = max(1, int(math.Round(float64(cfg.VisitorsPerDay*cfg.Days)/MeanVisits)))
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.Now.IsZero() {
		cfg.Now = time.Now()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	shop := New(cfg.Shop)
	r := rand.New(rand.NewPCG(cfg.Shop.Seed, 1))
	shoppers := make([]Shopper, cfg.Visitors)
	for i := range shoppers {
		shoppers[i] = shop.NewShopper(r)
	}
	st := &Stats{}
	sessions := make(chan Session, cfg.Workers*2)
	lim := newLimiter(cfg.Rate)
	client := &http.Client{Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ss := range sessions {
				send(ctx, client, cfg, ss, st, lim)
			}
		}()
	}

	produce := func() {
		defer close(sessions)
		emit := func(ss Session) bool {
			atomic.AddInt64(&st.Sessions, 1)
			select {
			case sessions <- ss:
				return true
			case <-ctx.Done():
				return false
			}
		}
		if cfg.Import {
			from := cfg.Now.Add(-time.Duration(cfg.Days) * 24 * time.Hour)
			// Every shopper visits once or more over the period; loyal ones
			// come back. Per-shopper randomness keeps the seed reproducible.
			// Sessions are sent in time order, as the history happened; to
			// keep memory to a few bytes a visit whatever the shop's size,
			// only each visit's start and the state of its shopper's
			// generator are kept, and the session is made again (the same)
			// when its turn comes.
			type visit struct {
				start   time.Time
				shopper int
				state   []byte
			}
			var all []visit
			for i, sh := range shoppers {
				src := rand.NewPCG(cfg.Shop.Seed, uint64(i)+2)
				sr := rand.New(src)
				visits := 1 + int(sr.ExpFloat64()*1.5)
				for range visits {
					state, _ := src.MarshalBinary()
					start := SessionStart(sr, from, cfg.Now)
					shop.Session(sr, sh, start) // to move the generator past it
					all = append(all, visit{start, i, state})
				}
			}
			sort.SliceStable(all, func(i, j int) bool { return all[i].start.Before(all[j].start) })
			for _, v := range all {
				src := &rand.PCG{}
				if err := src.UnmarshalBinary(v.state); err != nil {
					panic(err) // a state MarshalBinary made
				}
				sr := rand.New(src)
				if !emit(shop.Session(sr, shoppers[v.shopper], SessionStart(sr, from, cfg.Now))) {
					return
				}
			}
			return
		}
		var end <-chan time.Time
		if cfg.Duration > 0 {
			end = time.After(cfg.Duration)
		}
		for n := uint64(0); ; n++ {
			select {
			case <-end:
				return
			case <-ctx.Done():
				return
			default:
			}
			sr := rand.New(rand.NewPCG(cfg.Shop.Seed, n+1<<32))
			sh := shoppers[sr.IntN(len(shoppers))]
			if !emit(shop.Session(sr, sh, time.Now())) {
				return
			}
		}
	}
	produce()
	wg.Wait()
	log.Info("gen done", "stats", st.String())
	if ctx.Err() != nil && cfg.Duration == 0 && !cfg.Import {
		return st, nil // live traffic until stopped is a normal end
	}
	return st, ctx.Err()
}

// send posts a session's events in requests of up to 20, as a browser
// tracker batching would, with the shopper's address and browser.
func send(ctx context.Context, client *http.Client, cfg GenConfig, ss Session, st *Stats, lim *limiter) {
	for start := 0; start < len(ss.Events); start += 20 {
		batch := ss.Events[start:min(start+20, len(ss.Events))]
		if cfg.Import {
			// A session that began just before Now must not report the future.
			kept := batch[:0:0]
			for _, ev := range batch {
				if ev.TS <= cfg.Now.UnixMilli() {
					kept = append(kept, ev)
				}
			}
			if batch = kept; len(batch) == 0 {
				continue
			}
		} else {
			now := time.Now().UnixMilli()
			for i := range batch {
				batch[i].TS = now
			}
		}
		if err := lim.wait(ctx, len(batch)); err != nil {
			return
		}
		body, _ := json.Marshal(batch)
		// Each request to the next ingest node, as a load balancer would.
		n := atomic.AddInt64(&st.Requests, 1)
		target := cfg.Target
		if len(cfg.Also) > 0 {
			if i := int(n % int64(len(cfg.Also)+1)); i > 0 {
				target = cfg.Also[i-1]
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target+"/api/events", bytes.NewReader(body))
		if err != nil {
			atomic.AddInt64(&st.Failed, 1)
			return
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", ss.UserAgent)
		req.Header.Set("X-Forwarded-For", ss.IP)
		if ss.GPC {
			req.Header.Set("Sec-GPC", "1")
		}
		if cfg.Import {
			req.Header.Set("X-Herd-Import", "1")
		}
		if cfg.WriteKey != "" {
			req.SetBasicAuth(cfg.WriteKey, "")
		}
		atomic.AddInt64(&st.Events, int64(len(batch)))
		resp, err := client.Do(req)
		if err != nil {
			atomic.AddInt64(&st.Failed, 1)
			continue
		}
		var ans struct {
			Accepted int            `json:"accepted"`
			Dropped  map[string]int `json:"dropped"`
			Problems []struct{}     `json:"problems"`
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		_ = json.Unmarshal(data, &ans)
		if resp.StatusCode != http.StatusAccepted {
			atomic.AddInt64(&st.Failed, 1)
		}
		atomic.AddInt64(&st.Accepted, int64(ans.Accepted))
		atomic.AddInt64(&st.Problem, int64(len(ans.Problems)))
		for _, n := range ans.Dropped {
			atomic.AddInt64(&st.Dropped, int64(n))
		}
	}
}

// limiter spaces out events to a rate per second; nil-safe when unlimited.
type limiter struct {
	mu    sync.Mutex
	every time.Duration
	next  time.Time
}

func newLimiter(rate float64) *limiter {
	if rate <= 0 {
		return nil
	}
	return &limiter{every: time.Duration(float64(time.Second) / rate)}
}

func (l *limiter) wait(ctx context.Context, n int) error {
	if l == nil {
		return ctx.Err()
	}
	l.mu.Lock()
	now := time.Now()
	if l.next.Before(now) {
		l.next = now
	}
	at := l.next
	l.next = l.next.Add(time.Duration(n) * l.every)
	l.mu.Unlock()
	select {
	case <-time.After(time.Until(at)):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Send posts one session's events to the ingest at target, as Generate's
// workers do; with imported, as history (each event keeps its own time).
func Send(ctx context.Context, target string, ss Session, imported bool) *Stats {
	st := &Stats{}
	cfg := GenConfig{Target: target, Import: imported, Now: time.Now()}
	send(ctx, &http.Client{Timeout: 30 * time.Second}, cfg, ss, st, newLimiter(0))
	return st
}
