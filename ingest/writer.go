package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herd-analytics/herd/ingest/spool"
	"github.com/herd-analytics/herd/internal/lograte"
)

// Spool keeps rows durably until ClickHouse has them; *spool.Disk is one.
type Spool interface {
	// Append writes batches of rows to disk and returns once they are fsync'd.
	Append(ctx context.Context, batches ...[]spool.Row) error
}

// ErrUnavailable is returned when rows could not be stored at all.
var ErrUnavailable = errors.New("raw store unavailable")

// ErrCommitStalled is returned to a request whose commit ran past
// CommitTimeout; the writer still holds its rows and may yet store them.
var ErrCommitStalled = fmt.Errorf("commit stalled: %w", ErrUnavailable)

// WriterConfig tunes batching. The zero value is usable.
type WriterConfig struct {
	// MaxRows bounds one group commit; default 20,000.
	MaxRows int
	// CommitTimeout bounds a request's wait for its commit: while a commit
	// has run longer, waiting requests get ErrUnavailable (their rows may
	// still be stored when it ends). Default 10 s.
	CommitTimeout time.Duration
}

// Writer batches rows from many requests and tells each request when its
// rows are safe: when the batch is in the spool's write-ahead log, fsync'd.
// While one fsync runs, the requests that arrive queue up and the next fsync
// commits them all (group commit), so acknowledgement takes about one fsync
// at low load and batches grow with load, however slow ClickHouse is; the
// spool inserts into ClickHouse in large batches behind it.
type Writer struct {
	cfg     WriterConfig
	spool   Spool
	log     *slog.Logger
	metrics *Metrics

	in chan *pending
	// failures keeps a failing disk to a log line a minute.
	failures lograte.Limiter
	// closeMu orders Write's hand-off against Close: a Write either queues
	// before Close begins (and Run commits it before returning) or sees
	// closed and refuses; none can queue after Run's last look.
	closeMu sync.RWMutex
	closed  bool
	stop    chan struct{}
	done    chan struct{}
	// commitCtx is what commits run under; Close cancels it when its own
	// deadline passes, so a stuck disk cannot hold shutdown forever.
	commitCtx    context.Context
	cancelCommit context.CancelFunc

	// A commit running past CommitTimeout closes stalled; requests wait on
	// it instead of a timer each. The next commit to finish replaces it.
	busySince atomic.Int64 // UnixNano of the running commit's start; 0 when idle
	stallMu   sync.Mutex
	stalled   chan struct{}
	isStalled atomic.Bool
}

type pending struct {
	rows []spool.Row
	done chan error
}

// pendings are recycled once answered; one a request gave up on stays with
// the writer, which answers into its channel later.
var pendings = sync.Pool{New: func() any { return &pending{done: make(chan error, 1)} }}

// NewWriter builds a writer over a spool; call Run to start it.
func NewWriter(cfg WriterConfig, sp Spool, m *Metrics, log *slog.Logger) *Writer {
	if cfg.MaxRows == 0 {
		cfg.MaxRows = 20_000
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
	ctx, cancel := context.WithCancel(context.Background())
	return &Writer{cfg: cfg, spool: sp, log: log, metrics: m, commitCtx: ctx, cancelCommit: cancel,
		in: make(chan *pending, 1024), stop: make(chan struct{}), done: make(chan struct{}), stalled: make(chan struct{})}
}

// Write hands rows to the batcher and waits until they are stored.
func (w *Writer) Write(ctx context.Context, rows []spool.Row) error {
	if len(rows) == 0 {
		return nil
	}
	p := pendings.Get().(*pending)
	p.rows = rows
	w.closeMu.RLock()
	if w.closed {
		w.closeMu.RUnlock()
		return fmt.Errorf("writer stopped: %w", ErrUnavailable)
	}
	select {
	case w.in <- p: // Run keeps taking until Close holds closeMu
	case <-ctx.Done():
		w.closeMu.RUnlock()
		return ctx.Err()
	}
	w.closeMu.RUnlock()
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

// Run commits batches until Close; it commits what it holds before returning.
func (w *Writer) Run() {
	defer close(w.done)
	go w.watch()
	var batch []*pending
	rows := 0
	take := func(p *pending) {
		batch, rows = append(batch, p), rows+len(p.rows)
	}
	commit := func() {
		if len(batch) > 0 {
			w.flush(batch, rows)
		}
		batch, rows = nil, 0
	}
	for {
		select {
		case p := <-w.in:
			// Group commit: take what queued meanwhile, commit now.
			take(p)
			for more := true; more && rows < w.cfg.MaxRows; {
				select {
				case p := <-w.in:
					take(p)
				default:
					more = false
				}
			}
			commit()
		case <-w.stop:
			for {
				select {
				case p := <-w.in:
					take(p)
				default:
					commit()
					return
				}
			}
		}
	}
}

// Close stops taking rows, commits the last batch and waits for it. When
// ctx ends first, the commit in progress is abandoned (its requests get
// 503) and Close returns.
func (w *Writer) Close(ctx context.Context) error {
	w.closeMu.Lock()
	if !w.closed {
		w.closed = true
		close(w.stop)
	}
	w.closeMu.Unlock()
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		w.cancelCommit()
		return fmt.Errorf("writer close: %w", ctx.Err())
	}
}

func (w *Writer) flush(batch []*pending, n int) {
	parts := make([][]spool.Row, len(batch))
	for i, p := range batch {
		parts[i] = p.rows
	}
	w.busySince.Store(time.Now().UnixNano())
	err := w.append(parts, n)
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

func (w *Writer) append(parts [][]spool.Row, n int) error {
	if err := w.spool.Append(w.commitCtx, parts...); err != nil {
		if errors.Is(err, spool.ErrFull) {
			return err
		}
		w.failures.Log(w.log, slog.LevelWarn, "spool append failed", "rows", n, "err", err)
		return errors.Join(ErrUnavailable, err)
	}
	w.metrics.spooled.Add(int64(n))
	return nil
}
