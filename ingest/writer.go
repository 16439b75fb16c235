package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/herd-analytics/herd/internal/clickhouse"
)

// RawWriter stores a block of rows; *clickhouse.Client is one.
type RawWriter interface {
	Insert(ctx context.Context, table string, block *proto.Block, opts ...clickhouse.Option) error
}

// Spool keeps rows durably while ClickHouse cannot take them.
type Spool interface {
	// Append writes batches of rows to disk and returns once they are fsync'd.
	Append(ctx context.Context, batches ...[]Row) error
}

// ErrSpoolFull is returned when rows can be neither inserted nor spooled
// because the spool has reached its size limit: the client should retry later.
var ErrSpoolFull = errors.New("spool full")

// ErrUnavailable is returned when rows could not be stored at all.
var ErrUnavailable = errors.New("raw store unavailable")

// ErrCommitStalled is returned to a request whose commit ran past
// CommitTimeout; the writer still holds its rows and may yet store them.
var ErrCommitStalled = fmt.Errorf("commit stalled: %w", ErrUnavailable)

// WriterConfig tunes batching. The zero value is usable.
type WriterConfig struct {
	// Table is the raw events table, "herd_raw.events" by default.
	Table string
	// MaxRows flushes a batch at this many rows; default 20,000.
	MaxRows int
	// MaxDelay flushes a batch this long after its first row. With a spool
	// the default is zero: a batch is committed as soon as the last commit
	// (an fsync) is done, holding every request that arrived meanwhile.
	// Without a spool (each batch a ClickHouse insert) the default is 200 ms.
	MaxDelay time.Duration
	// InsertTimeout bounds one insert before the batch goes to the spool; default 10 s.
	InsertTimeout time.Duration
	// CommitTimeout bounds a request's wait for its commit: while a commit
	// has run longer, waiting requests get ErrUnavailable (their rows may
	// still be stored when it ends). Default 10 s.
	CommitTimeout time.Duration
}

// Writer batches rows from many requests and tells each request when its
// rows are safe. With a spool (herd serve) that is when the batch is in the
// spool's write-ahead log, fsync'd: while one fsync runs, the requests that
// arrive queue up and the next fsync commits them all (group commit), so
// acknowledgement takes about one fsync at low load and batches grow with
// load, however slow ClickHouse is; the spool inserts into ClickHouse in
// large batches behind it (DiskSpool.Run). Without a spool the batch is
// inserted directly and acknowledged once ClickHouse has it.
type Writer struct {
	cfg     WriterConfig
	store   RawWriter
	spool   Spool // nil: insert directly
	log     *slog.Logger
	metrics *Metrics

	in       chan *pending
	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}

	// A commit running past CommitTimeout closes stalled; requests wait on
	// it instead of a timer each. The next commit to finish replaces it.
	busySince atomic.Int64 // UnixNano of the running commit's start; 0 when idle
	stallMu   sync.Mutex
	stalled   chan struct{}
	isStalled atomic.Bool
}

type pending struct {
	rows []Row
	done chan error
}

// pendings are recycled once answered; one a request gave up on stays with
// the writer, which answers into its channel later.
var pendings = sync.Pool{New: func() any { return &pending{done: make(chan error, 1)} }}

// NewWriter builds a writer; call Run to start it.
func NewWriter(cfg WriterConfig, store RawWriter, spool Spool, m *Metrics, log *slog.Logger) *Writer {
	if cfg.Table == "" {
		cfg.Table = clickhouse.DefaultDatabases.Raw + ".events"
	}
	if cfg.MaxRows == 0 {
		cfg.MaxRows = 20_000
	}
	if cfg.MaxDelay == 0 && spool == nil {
		cfg.MaxDelay = 200 * time.Millisecond
	}
	if cfg.InsertTimeout == 0 {
		cfg.InsertTimeout = 10 * time.Second
	}
	if cfg.CommitTimeout == 0 {
		cfg.CommitTimeout = 10 * time.Second
	}
	if m == nil {
		m = NewMetrics()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Writer{cfg: cfg, store: store, spool: spool, log: log, metrics: m,
		in: make(chan *pending, 1024), stop: make(chan struct{}), done: make(chan struct{}), stalled: make(chan struct{})}
}

// Write hands rows to the batcher and waits until they are stored.
func (w *Writer) Write(ctx context.Context, rows []Row) error {
	if len(rows) == 0 {
		return nil
	}
	p := pendings.Get().(*pending)
	p.rows = rows
	select {
	case w.in <- p:
	case <-w.stop:
		return fmt.Errorf("writer stopped: %w", ErrUnavailable)
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued, the rows are the writer's: it stores them even if this
	// request gives up waiting.
	w.stallMu.Lock()
	stalled := w.stalled
	w.stallMu.Unlock()
	select {
	case err := <-p.done:
		p.rows = nil
		pendings.Put(p) // answered: the writer is done with it
		return err
	case <-stalled:
		return ErrCommitStalled
	case <-ctx.Done():
		return ctx.Err()
	}
}

// watch closes stalled while a commit runs past CommitTimeout.
func (w *Writer) watch() {
	t := time.NewTicker(max(w.cfg.CommitTimeout/10, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-w.done:
			return
		case now := <-t.C:
			if b := w.busySince.Load(); b != 0 && now.UnixNano()-b > int64(w.cfg.CommitTimeout) && !w.isStalled.Load() {
				w.stallMu.Lock()
				close(w.stalled)
				w.isStalled.Store(true)
				w.stallMu.Unlock()
			}
		}
	}
}

// Run batches until Close; it flushes what it holds before returning.
func (w *Writer) Run() {
	defer close(w.done)
	go w.watch()
	var batch []*pending
	rows := 0
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	flush := func() {
		if len(batch) > 0 {
			w.flush(batch, rows)
		}
		batch, rows = nil, 0
	}
	for {
		select {
		case p := <-w.in:
			if w.cfg.MaxDelay <= 0 {
				// Group commit: take what queued meanwhile, commit now.
				batch, rows = append(batch, p), rows+len(p.rows)
				for more := true; more && rows < w.cfg.MaxRows; {
					select {
					case p := <-w.in:
						batch, rows = append(batch, p), rows+len(p.rows)
					default:
						more = false
					}
				}
				flush()
				continue
			}
			if len(batch) == 0 {
				timer.Reset(w.cfg.MaxDelay)
			}
			batch = append(batch, p)
			rows += len(p.rows)
			if rows >= w.cfg.MaxRows {
				timer.Stop()
				flush()
			}
		case <-timer.C:
			flush()
		case <-w.stop:
			timer.Stop()
			for {
				select {
				case p := <-w.in:
					batch = append(batch, p)
					rows += len(p.rows)
				default:
					flush()
					return
				}
			}
		}
	}
}

// Close stops taking rows, flushes the last batch and waits for it.
func (w *Writer) Close(ctx context.Context) error {
	w.stopOnce.Do(func() { close(w.stop) })
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("writer close: %w", ctx.Err())
	}
}

func (w *Writer) flush(batch []*pending, n int) {
	parts := make([][]Row, len(batch))
	for i, p := range batch {
		parts[i] = p.rows
	}
	w.busySince.Store(time.Now().UnixNano())
	err := w.store1(parts, n)
	w.busySince.Store(0)
	if w.isStalled.Load() {
		w.stallMu.Lock()
		w.stalled = make(chan struct{})
		w.isStalled.Store(false)
		w.stallMu.Unlock()
	}
	for _, p := range batch {
		p.done <- err
	}
}

// maxHoursPerInsert keeps an insert under current ClickHouse releases'
// max_partitions_per_insert_block (100): the table is partitioned by hour,
// and history imports can span weeks in one batch.
const maxHoursPerInsert = 90

func (w *Writer) store1(parts [][]Row, n int) error {
	if w.spool != nil {
		if err := w.spool.Append(context.Background(), parts...); err != nil {
			if errors.Is(err, ErrSpoolFull) {
				return err
			}
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		w.metrics.spooled.Add(int64(n))
		return nil
	}
	rows := slices.Concat(parts...)
	for _, chunk := range splitByHours(rows, maxHoursPerInsert) {
		if err := insertRows(w.store, w.cfg.Table, chunk, w.cfg.InsertTimeout, w.metrics); err != nil {
			w.log.Warn("insert failed", "rows", len(chunk), "err", err)
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
	}
	return nil
}

// insertRows inserts rows in one request, through the same columnar path
// as the spool's inserts.
func insertRows(store RawWriter, table string, rows []Row, timeout time.Duration, m *Metrics) error {
	block, err := EncodeRows(rows)
	if err != nil {
		return fmt.Errorf("encode rows: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	err = store.Insert(ctx, table, block)
	m.observeInsert(time.Since(start), len(rows), err)
	return err
}

// splitByHours cuts rows into groups that each touch at most max distinct
// hours. Live traffic is one group; only imports are ever cut.
func splitByHours(rows []Row, max int) [][]Row {
	hours := map[int64]int{}
	for i := range rows {
		h := rows[i].Received.Unix() / 3600
		if _, ok := hours[h]; !ok {
			hours[h] = len(hours) / max
		}
	}
	if len(hours) <= max {
		return [][]Row{rows}
	}
	groups := make([][]Row, (len(hours)+max-1)/max)
	for _, r := range rows {
		g := hours[r.Received.Unix()/3600]
		groups[g] = append(groups[g], r)
	}
	return groups
}
