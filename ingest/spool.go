package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
)

// SpoolConfig configures the disk spool.
type SpoolConfig struct {
	// Dir holds the segments; created 0700.
	Dir string
	// MaxBytes bounds the spool; Append fails with ErrSpoolFull beyond it
	// (the API answers 429). Default 1 GiB.
	MaxBytes int64
	// Retention is the raw retention: segments older than this are deleted
	// unreplayed, since their rows may not exist anywhere longer. Default 48 h.
	Retention time.Duration
	// SegmentBytes and SegmentAge rotate the open segment; defaults 64 MiB, 1 min.
	SegmentBytes int64
	SegmentAge   time.Duration
	// Interval between inserts into ClickHouse; default 1 s.
	Interval time.Duration
}

// DiskSpool is ingest's write-ahead log: already-pseudonymized rows on disk,
// as Arrow IPC stream segments, inserted into ClickHouse in large batches by
// Run — within a second normally, and whenever ClickHouse is back after an
// outage. Every Append is fsync'd before it returns; the writer calls it once
// per batch, so one fsync commits many requests. After a crash the last segment
// may end in a torn record batch: the batches before it are replayed, the
// torn one was never acknowledged.
//
// A replay cut short may insert a batch twice; herd_raw.events is a
// ReplacingMergeTree on event_id and rollups count distinct event ids, so
// duplicates never inflate a published number.
type DiskSpool struct {
	cfg     SpoolConfig
	log     *slog.Logger
	metrics *Metrics

	mu    sync.Mutex
	cur   *segment
	seq   uint64
	bytes int64
}

type segment struct {
	path    string
	f       *os.File
	w       *ipc.Writer
	size    int64
	created time.Time
}

const segmentExt = ".arrows"

// OpenSpool opens (or creates) the spool directory and accounts for
// segments a previous run left.
func OpenSpool(cfg SpoolConfig, m *Metrics, log *slog.Logger) (*DiskSpool, error) {
	if cfg.Dir == "" {
		return nil, errors.New("spool: Dir is empty")
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = 1 << 30
	}
	if cfg.Retention == 0 {
		cfg.Retention = 48 * time.Hour
	}
	if cfg.SegmentBytes == 0 {
		cfg.SegmentBytes = 64 << 20
	}
	if cfg.SegmentAge == 0 {
		cfg.SegmentAge = time.Minute
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Second
	}
	if m == nil {
		m = NewMetrics()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &DiskSpool{cfg: cfg, log: log, metrics: m}
	segs, err := s.segments()
	if err != nil {
		return nil, err
	}
	for _, p := range segs {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
		s.bytes += st.Size()
		if n, ok := segmentSeq(p); ok && n >= s.seq {
			s.seq = n + 1
		}
	}
	m.SpoolBytes = s.Bytes
	if len(segs) > 0 {
		log.Info("spool: segments from an earlier run", "segments", len(segs), "bytes", s.bytes)
	}
	return s, nil
}

// Bytes is the spool's size on disk.
func (s *DiskSpool) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// Append writes rows as one record batch and fsyncs it.
func (s *DiskSpool) Append(ctx context.Context, rows []Row) error {
	if len(rows) == 0 {
		return nil
	}
	rec := rowsToRecord(rows)
	defer rec.Release()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bytes >= s.cfg.MaxBytes {
		return ErrSpoolFull
	}
	if s.cur != nil && (s.cur.size >= s.cfg.SegmentBytes || time.Since(s.cur.created) >= s.cfg.SegmentAge) {
		if err := s.closeCurrentLocked(); err != nil {
			return err
		}
	}
	if s.cur == nil {
		if err := s.openSegmentLocked(); err != nil {
			return err
		}
	}
	before := s.cur.size
	if err := s.cur.w.Write(rec); err != nil {
		return fmt.Errorf("spool: write: %w", err)
	}
	if err := s.cur.f.Sync(); err != nil {
		return fmt.Errorf("spool: fsync: %w", err)
	}
	st, err := s.cur.f.Stat()
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.cur.size = st.Size()
	s.bytes += s.cur.size - before
	return nil
}

func (s *DiskSpool) openSegmentLocked() error {
	p := filepath.Join(s.cfg.Dir, fmt.Sprintf("seg-%020d%s", s.seq, segmentExt))
	s.seq++
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	// The directory entry must survive a crash too.
	if d, err := os.Open(s.cfg.Dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	s.cur = &segment{path: p, f: f, w: ipc.NewWriter(f, ipc.WithSchema(spoolSchema)), created: time.Now()}
	return nil
}

func (s *DiskSpool) closeCurrentLocked() error {
	if s.cur == nil {
		return nil
	}
	cur := s.cur
	s.cur = nil
	before := cur.size
	err := cur.w.Close() // writes the end-of-stream marker
	if err == nil {
		err = cur.f.Sync()
	}
	if st, serr := cur.f.Stat(); serr == nil {
		s.bytes += st.Size() - before
	}
	if cerr := cur.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("spool: close segment: %w", err)
	}
	return nil
}

// Close closes the open segment; its rows stay on disk for the next run.
func (s *DiskSpool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeCurrentLocked()
}

func (s *DiskSpool) segments() ([]string, error) {
	entries, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), segmentExt) && strings.HasPrefix(e.Name(), "seg-") {
			out = append(out, filepath.Join(s.cfg.Dir, e.Name()))
		}
	}
	sort.Strings(out) // zero-padded sequence numbers: lexical is numeric order
	return out, nil
}

func segmentSeq(path string) (uint64, bool) {
	name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "seg-"), segmentExt)
	n, err := strconv.ParseUint(name, 10, 64)
	return n, err == nil
}

// Pending reports whether any rows wait on disk.
func (s *DiskSpool) Pending() bool {
	return s.Bytes() > 0
}

// Replay inserts every spooled segment, oldest first, and deletes each once
// all its batches are in. It stops at the first failed insert and returns
// the number of rows inserted.
func (s *DiskSpool) Replay(ctx context.Context, store RawWriter, table string) (int, error) {
	s.mu.Lock()
	err := s.closeCurrentLocked()
	upTo := s.seq // segments opened from now on are Append's, not ours
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	segs, err := s.segments()
	if err != nil {
		return 0, err
	}
	total := 0
	for _, p := range segs {
		if n, ok := segmentSeq(p); !ok || n >= upTo {
			continue
		}
		if expiredSegment(p, s.cfg.Retention) {
			s.drop(p, "older than the raw retention")
			continue
		}
		n, err := s.replaySegment(ctx, p, store, table)
		total += n
		if err != nil {
			return total, err
		}
		s.drop(p, "")
	}
	return total, nil
}

func expiredSegment(path string, retention time.Duration) bool {
	st, err := os.Stat(path)
	return err == nil && time.Since(st.ModTime()) > retention
}

func (s *DiskSpool) drop(path, why string) {
	st, err := os.Stat(path)
	if err := os.Remove(path); err != nil {
		s.log.Error("spool: remove segment", "segment", filepath.Base(path), "err", err)
		return
	}
	if err == nil {
		s.mu.Lock()
		s.bytes -= st.Size()
		s.mu.Unlock()
	}
	if why != "" {
		s.log.Warn("spool: segment deleted unreplayed", "segment", filepath.Base(path), "reason", why)
	}
}

func (s *DiskSpool) replaySegment(ctx context.Context, path string, store RawWriter, table string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	rd, err := ipc.NewReader(f, ipc.WithSchema(spoolSchema), ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		// Torn before the first batch was complete: nothing in it was acknowledged.
		s.log.Warn("spool: unreadable segment skipped", "segment", filepath.Base(path), "err", err)
		return 0, nil
	}
	defer rd.Release()
	// Appends are one record batch per writer flush, often small; replay
	// them in large inserts (each insert is a part on disk).
	n := 0
	var pending []Row
	insert := func() error {
		if len(pending) == 0 {
			return nil
		}
		for _, chunk := range splitByHours(pending, maxHoursPerInsert) {
			if err := insertRows(store, table, chunk, 30*time.Second, s.metrics); err != nil {
				return fmt.Errorf("spool: replay %s: %w", filepath.Base(path), err)
			}
		}
		n += len(pending)
		s.metrics.replayed.Add(int64(len(pending)))
		pending = pending[:0]
		return nil
	}
	for rd.Next() {
		pending = append(pending, recordToRows(rd.Record())...)
		if len(pending) >= replayBatchRows {
			if err := insert(); err != nil {
				return n, err
			}
		}
	}
	if err := rd.Err(); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		s.log.Warn("spool: torn segment tail ignored", "segment", filepath.Base(path), "err", err)
	}
	return n, insert()
}

const replayBatchRows = 50_000

// Run replays whenever rows are spooled, backing off while ClickHouse
// refuses, until ctx ends.
func (s *DiskSpool) Run(ctx context.Context, store RawWriter, table string) {
	wait := s.cfg.Interval
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if !s.Pending() {
			wait = s.cfg.Interval
			continue
		}
		n, err := s.Replay(ctx, store, table)
		if err != nil {
			s.log.Warn("spool: insert paused; rows stay on disk", "inserted", n, "err", err)
			wait = min(max(wait*2, time.Second), 10*time.Second)
			continue
		}
		if wait > s.cfg.Interval {
			s.log.Info("spool: inserting again", "rows", n)
		}
		wait = s.cfg.Interval
	}
}

// The spool's Arrow schema mirrors Row.
var spoolCols = []spoolColumn{
	{arrow.Field{Name: "event_id", Type: &arrow.FixedSizeBinaryType{ByteWidth: 16}},
		func(b array.Builder, r *Row) { b.(*array.FixedSizeBinaryBuilder).Append(r.EventID[:]) },
		func(a arrow.Array, i int, r *Row) { copy(r.EventID[:], a.(*array.FixedSizeBinary).Value(i)) }},
	strCol("site", func(r *Row) *string { return &r.Site }),
	{arrow.Field{Name: "received", Type: arrow.PrimitiveTypes.Int64},
		func(b array.Builder, r *Row) { b.(*array.Int64Builder).Append(r.Received.Unix()) },
		func(a arrow.Array, i int, r *Row) { r.Received = time.Unix(a.(*array.Int64).Value(i), 0).UTC() }},
	u16Col("seq", func(r *Row) *uint16 { return &r.Seq }),
	{arrow.Field{Name: "type", Type: arrow.PrimitiveTypes.Uint8},
		func(b array.Builder, r *Row) { b.(*array.Uint8Builder).Append(uint8(r.Type)) },
		func(a arrow.Array, i int, r *Row) { r.Type = EventType(a.(*array.Uint8).Value(i)) }},
	u64Col("visitor", func(r *Row) *uint64 { return &r.Visitor }),
	u64Col("session", func(r *Row) *uint64 { return &r.Session }),
	u64Col("user_hash", func(r *Row) *uint64 { return &r.UserHash }),
	strCol("path", func(r *Row) *string { return &r.Path }),
	strCol("page_type", func(r *Row) *string { return &r.PageType }),
	strCol("utm_source", func(r *Row) *string { return &r.UTMSource }),
	strCol("utm_medium", func(r *Row) *string { return &r.UTMMedium }),
	strCol("utm_campaign", func(r *Row) *string { return &r.UTMCampaign }),
	strCol("referrer_host", func(r *Row) *string { return &r.ReferrerHost }),
	strCol("browser", func(r *Row) *string { return &r.Browser }),
	u16Col("browser_major", func(r *Row) *uint16 { return &r.BrowserMajor }),
	strCol("os", func(r *Row) *string { return &r.OS }),
	strCol("device", func(r *Row) *string { return &r.Device }),
	strCol("country", func(r *Row) *string { return &r.Country }),
	strCol("product_id", func(r *Row) *string { return &r.ProductID }),
	strCol("product_category", func(r *Row) *string { return &r.ProductCategory }),
	i64Col("product_price", func(r *Row) *int64 { return &r.ProductPrice }),
	u16Col("position", func(r *Row) *uint16 { return &r.Position }),
	strCol("list", func(r *Row) *string { return &r.List }),
	strCol("slot", func(r *Row) *string { return &r.Slot }),
	strCol("variant", func(r *Row) *string { return &r.Variant }),
	{arrow.Field{Name: "step", Type: arrow.PrimitiveTypes.Uint8},
		func(b array.Builder, r *Row) { b.(*array.Uint8Builder).Append(r.Step) },
		func(a arrow.Array, i int, r *Row) { r.Step = a.(*array.Uint8).Value(i) }},
	i64Col("order_value", func(r *Row) *int64 { return &r.OrderValue }),
	strCol("currency", func(r *Row) *string { return &r.Currency }),
	u16Col("items", func(r *Row) *uint16 { return &r.Items }),
	{arrow.Field{Name: "products", Type: arrow.ListOf(arrow.BinaryTypes.String)},
		func(b array.Builder, r *Row) {
			lb := b.(*array.ListBuilder)
			lb.Append(true)
			vb := lb.ValueBuilder().(*array.StringBuilder)
			for _, p := range r.Products {
				vb.Append(p)
			}
		},
		func(a arrow.Array, i int, r *Row) {
			l := a.(*array.List)
			start, end := l.ValueOffsets(i)
			vals := l.ListValues().(*array.String)
			r.Products = nil
			for j := start; j < end; j++ {
				r.Products = append(r.Products, vals.Value(int(j)))
			}
		}},
	strCol("search_term", func(r *Row) *string { return &r.SearchTerm }),
	{arrow.Field{Name: "search_results", Type: arrow.PrimitiveTypes.Int32},
		func(b array.Builder, r *Row) { b.(*array.Int32Builder).Append(r.SearchResults) },
		func(a arrow.Array, i int, r *Row) { r.SearchResults = a.(*array.Int32).Value(i) }},
	{arrow.Field{Name: "imported", Type: arrow.FixedWidthTypes.Boolean},
		func(b array.Builder, r *Row) { b.(*array.BooleanBuilder).Append(r.Imported) },
		func(a arrow.Array, i int, r *Row) { r.Imported = a.(*array.Boolean).Value(i) }},
}

var spoolSchema = func() *arrow.Schema {
	fields := make([]arrow.Field, len(spoolCols))
	for i, c := range spoolCols {
		fields[i] = c.field
	}
	return arrow.NewSchema(fields, nil)
}()

func strCol(name string, f func(*Row) *string) spoolColumn {
	return spoolColumn{arrow.Field{Name: name, Type: arrow.BinaryTypes.String},
		func(b array.Builder, r *Row) { b.(*array.StringBuilder).Append(*f(r)) },
		func(a arrow.Array, i int, r *Row) { *f(r) = a.(*array.String).Value(i) }}
}

type spoolColumn = struct {
	field arrow.Field
	put   func(array.Builder, *Row)
	get   func(arrow.Array, int, *Row)
}

func u16Col(name string, f func(*Row) *uint16) spoolColumn {
	return spoolColumn{arrow.Field{Name: name, Type: arrow.PrimitiveTypes.Uint16},
		func(b array.Builder, r *Row) { b.(*array.Uint16Builder).Append(*f(r)) },
		func(a arrow.Array, i int, r *Row) { *f(r) = a.(*array.Uint16).Value(i) }}
}

func u64Col(name string, f func(*Row) *uint64) spoolColumn {
	return spoolColumn{arrow.Field{Name: name, Type: arrow.PrimitiveTypes.Uint64},
		func(b array.Builder, r *Row) { b.(*array.Uint64Builder).Append(*f(r)) },
		func(a arrow.Array, i int, r *Row) { *f(r) = a.(*array.Uint64).Value(i) }}
}

func i64Col(name string, f func(*Row) *int64) spoolColumn {
	return spoolColumn{arrow.Field{Name: name, Type: arrow.PrimitiveTypes.Int64},
		func(b array.Builder, r *Row) { b.(*array.Int64Builder).Append(*f(r)) },
		func(a arrow.Array, i int, r *Row) { *f(r) = a.(*array.Int64).Value(i) }}
}

func rowsToRecord(rows []Row) arrow.Record {
	b := array.NewRecordBuilder(memory.DefaultAllocator, spoolSchema)
	defer b.Release()
	for i := range rows {
		for j, c := range spoolCols {
			c.put(b.Field(j), &rows[i])
		}
	}
	return b.NewRecord()
}

func recordToRows(rec arrow.Record) []Row {
	rows := make([]Row, rec.NumRows())
	for j, c := range spoolCols {
		col := rec.Column(j)
		for i := range rows {
			c.get(col, i, &rows[i])
		}
	}
	return rows
}

// Prune deletes segments older than the raw retention that were never
// replayed (ClickHouse was down for longer than the retention) and returns
// their names, for the retention job's record.
func (s *DiskSpool) Prune() ([]string, error) {
	s.mu.Lock()
	current := s.seq
	s.mu.Unlock()
	segs, err := s.segments()
	if err != nil {
		return nil, err
	}
	var dropped []string
	for _, p := range segs {
		if n, ok := segmentSeq(p); ok && n+1 >= current {
			continue // the newest may still be written
		}
		if expiredSegment(p, s.cfg.Retention) {
			s.drop(p, "older than the raw retention")
			dropped = append(dropped, filepath.Base(p))
		}
	}
	return dropped, nil
}
