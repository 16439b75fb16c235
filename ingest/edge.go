package ingest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/herd-analytics/herd/ingest/keyring"
	"github.com/herd-analytics/herd/ingest/spool"
	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/probe"
	"github.com/herd-analytics/herd/schemas"
)

// Config configures the edge. DataDir is required; the zero value of every
// other field is usable.
type Config struct {
	// DataDir holds the day-key file (keys/day-keys.json) and the spool
	// (spool/).
	DataDir string
	// Table is the raw events table; default herd_raw.events.
	Table string
	// Sites are the sites events may name; nil serves the demo site alone.
	Sites *Sites
	// IgnoreDNT stores events sent with DNT: 1 (Sec-GPC: 1 is always honoured).
	IgnoreDNT bool
	// Country maps an IP to an ISO country code; nil stores no country.
	Country func(ip string) string
	// TrustedProxies may set X-Forwarded-For; empty means the peer address
	// is the client's.
	TrustedProxies []string
	// RequestTimeout bounds reading a request and writing its answer; default 10 s.
	RequestTimeout time.Duration
	// SpoolMaxBytes bounds the spool (then 429); default 1 GiB.
	SpoolMaxBytes int64
	// RawRetention: spooled rows older than this are deleted unreplayed; default 48 h.
	RawRetention time.Duration
	// Imports says which history imports (herd gen --import, events with
	// their own past times) are taken; the zero value takes none from
	// anyone without a sites file, and none older than ImportWindow.
	Imports ImportPolicy
	// InsertInterval is how often the spool inserts into ClickHouse; default 1 s.
	InsertInterval time.Duration
	// Now is the key ring's clock; nil is time.Now.
	Now func() time.Time
	// SharedKeys, for one of several ingest nodes, is where every node
	// finds each day's key (coord.DayKeys); nil keeps keys to this node.
	SharedKeys keyring.Shared
}

// Edge is the running ingest: key ring, pipeline, group-commit writer, spool
// and HTTP API. New builds it, Run runs its background work (the writer, the
// spool's inserter, key expiry) and Close stops it in order.
type Edge struct {
	cfg     Config
	log     *slog.Logger
	keys    *keyring.KeyRing
	spool   *spool.Disk
	writer  *Writer
	server  *server
	metrics *Metrics

	started   atomic.Bool
	closing   chan struct{}
	closeOnce sync.Once
	runDone   chan struct{}
}

// New opens the key ring and the spool under cfg.DataDir and wires the
// pipeline, the writer and the API over store, which receives the rows.
func New(cfg Config, store spool.Inserter, log *slog.Logger) (*Edge, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("ingest: DataDir is empty")
	}
	if cfg.Table == "" {
		cfg.Table = clickhouse.DefaultDatabases.Raw + ".events"
	}
	if cfg.Sites == nil {
		cfg.Sites = DefaultSites()
	}
	if cfg.Imports.Window == 0 {
		// The raw retention plus the publication grace (aggregate's 5 min
		// default): a day older than that is published and its raw rows
		// on their way out.
		cfg.Imports.Window = cmp.Or(cfg.RawRetention, 48*time.Hour) + 5*time.Minute
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	layout, err := schemas.Layout()
	if err != nil {
		return nil, err
	}
	slots := map[string]bool{}
	for _, page := range layout {
		for _, slot := range page.Slots {
			slots[slot.Slot] = true
		}
	}
	keys, err := keyring.OpenShared(filepath.Join(cfg.DataDir, "keys", "day-keys.json"), cfg.Now, cfg.SharedKeys)
	if err != nil {
		return nil, err
	}
	metrics := NewMetrics()
	sp, err := spool.Open(spool.Config{
		Store: store, Table: cfg.Table, Dir: filepath.Join(cfg.DataDir, "spool"),
		MaxBytes: cfg.SpoolMaxBytes, Retention: cfg.RawRetention, Interval: cfg.InsertInterval,
	}, metrics, log)
	if err != nil {
		return nil, err
	}
	metrics.SpoolBytes = sp.Bytes
	pipeline := NewPipeline(keys)
	metrics.Unlisted = pipeline.Unlisted
	pipeline.HonorDNT = !cfg.IgnoreDNT
	pipeline.Country = cfg.Country
	pipeline.Slots = slots
	writer := NewWriter(WriterConfig{}, sp, metrics, log)
	return &Edge{
		cfg: cfg, log: log, keys: keys, spool: sp, writer: writer, metrics: metrics,
		server:  newServer(serverConfig{RequestTimeout: cfg.RequestTimeout, TrustedProxies: cfg.TrustedProxies, Imports: cfg.Imports}, cfg.Sites, pipeline, writer, metrics, log),
		closing: make(chan struct{}),
		runDone: make(chan struct{}),
	}, nil
}

// App is the event API: the event endpoints, herd.js, health and metrics.
func (e *Edge) App(ready *probe.Readiness) *fiber.App { return e.server.App(ready) }

// Ready is what this ingest's readiness checks: store answers, and the
// spool's inserts into it do not fail. On a cluster a node can answer while
// every insert fails (a replica down breaks the quorum; ZooKeeper down
// makes the tables read-only): the spool grows, and readiness says so.
func (e *Edge) Ready(store probe.Pinger) probe.Pinger { return spoolReady{store, e.spool} }

type spoolReady struct {
	store probe.Pinger
	spool *spool.Disk
}

func (r spoolReady) Ping(ctx context.Context) error {
	if err := r.store.Ping(ctx); err != nil {
		return err
	}
	if err := r.spool.InsertFailing(); err != nil {
		return &probe.Unready{Reason: "spool inserts failing: " + cmp.Or(clickhouse.Cause(err), "see the log"), Err: err}
	}
	return nil
}

// Spool is the write-ahead log, for the retention job's pruning.
func (e *Edge) Spool() *spool.Disk { return e.spool }

// Run runs the writer, the spool's inserter (rows spooled by an earlier
// run, or during an outage, go in as soon as ClickHouse takes them) and key
// expiry (day keys are destroyed on time even when no events arrive). It
// returns once Close has stopped them. When ctx ends first, the inserter
// and key expiry stop; the writer keeps committing until Close.
func (e *Edge) Run(ctx context.Context) error {
	if !e.started.CompareAndSwap(false, true) {
		return errors.New("ingest: Run called twice")
	}
	defer close(e.runDone)
	var wg sync.WaitGroup
	wg.Go(e.writer.Run)
	bg, stop := context.WithCancel(ctx)
	defer stop()
	wg.Go(func() { e.spool.Run(bg) })
	wg.Go(func() { e.expireKeys(bg) })
	select {
	case <-e.closing:
	case <-bg.Done():
	}
	stop()
	wg.Wait() // the writer's Run ends with Close
	return nil
}

func (e *Edge) expireKeys(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := e.keys.Expire(); err != nil {
				e.log.Error("expire day keys", "err", err)
			}
		}
	}
}

// Flush inserts what the spool holds now and returns the number of rows
// inserted. Acknowledged rows reach ClickHouse this way within a second
// anyway; Flush is for callers that must see them at once (tests, imports).
func (e *Edge) Flush(ctx context.Context) (int, error) { return e.spool.Drain(ctx) }

// Close stops the edge within ctx: the writer commits what it took (call it
// after the HTTP server has stopped), the background work stops, and the
// spool inserts what it holds if ClickHouse answers in time; what it cannot
// insert stays on disk for the next start.
func (e *Edge) Close(ctx context.Context) error {
	var errs []error
	if e.started.Load() {
		if err := e.writer.Close(ctx); err != nil {
			errs = append(errs, err)
		}
		e.closeOnce.Do(func() { close(e.closing) })
		select {
		case <-e.runDone:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("ingest: stop: %w", ctx.Err()))
		}
	}
	if ctx.Err() == nil {
		if n, err := e.spool.Drain(ctx); err != nil {
			e.log.Warn("spool: rows left for the next start", "inserted", n, "err", err)
		}
	}
	if err := e.spool.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
