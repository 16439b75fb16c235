// Package spool is ingest's write-ahead log: already-pseudonymized rows of
// herd_raw.events on disk as Arrow IPC segments, fsync'd before a request is
// acknowledged, and inserted into ClickHouse in large Native blocks behind
// it. columns.go is the one description of a raw row in both formats.
package spool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/herd-analytics/herd/internal/clickhouse"
)

// Inserter stores a Native block; *clickhouse.Client is one.
type Inserter interface {
	Insert(ctx context.Context, table string, block *proto.Block, opts ...clickhouse.Option) error
}

// Observer is told what the spool does, for /metrics; *ingest.Metrics is one.
type Observer interface {
	// ObserveCommit is one Append: its write and fsync took d for rows rows.
	ObserveCommit(d time.Duration, rows int)
	// ObserveInsert is one insert into ClickHouse: err nil if it stored rows rows.
	ObserveInsert(d time.Duration, rows int, err error)
	// ObserveQuarantine is one damaged segment moved aside.
	ObserveQuarantine()
}

// ErrFull is returned by Append when the spool has reached MaxBytes: the
// client should retry later.
var ErrFull = errors.New("spool full")

// Config configures the disk spool.
type Config struct {
	// Store and Table are where spooled rows are inserted.
	Store Inserter
	Table string
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

// Disk is ingest's write-ahead log: already-pseudonymized rows on disk,
// as Arrow IPC stream segments. Every Append is fsync'd before it returns;
// the writer calls it once per batch, so one fsync commits many requests.
//
// Run moves the rows on to ClickHouse in large inserts, about once a second
// (sooner when many rows wait): it seals the open segment, inserts it, and
// deletes it. The records of segments this process wrote are still in
// memory, so the normal path reads nothing back; segments from an earlier
// run, or left by an insert that failed (ClickHouse down), are read from
// disk, oldest first. After a crash the last segment may end in a torn record
// batch: the batches before it are replayed, the torn one was never
// acknowledged.
//
// A replay cut short may insert a batch twice; herd_raw.events is a
// ReplacingMergeTree on event_id and rollups count distinct event ids, so
// duplicates never inflate a published number.
type Disk struct {
	cfg Config
	log *slog.Logger
	obs Observer

	mu    sync.Mutex
	cur   *segment
	seq   uint64
	bytes int64
	// mem holds the records of the segments this process wrote, by segment
	// number, until they are inserted. A failed insert empties it: the
	// segments are on disk.
	mem     map[uint64][]arrow.Record
	memRows int
	kick    chan struct{} // asks Run for an insert before the interval ends

	spare   *segment   // created ahead for the next Append
	drainMu sync.Mutex // one Drain at a time
	block   *rawBlock  // reused by Drain: its columns keep their memory

	// failing is Run's last insert error while inserts fail, nil once one
	// succeeds: what readiness reports (InsertFailing).
	failing atomic.Pointer[error]
}

// InsertFailing is why the spool's inserts fail, while rows wait on disk
// and its last insert failed; nil when it is empty or inserting.
func (s *Disk) InsertFailing() error {
	if p := s.failing.Load(); p != nil && s.Pending() {
		return *p
	}
	return nil
}

type segment struct {
	seq     uint64
	path    string
	f       *os.File
	w       *ipc.Writer
	size    int64
	created time.Time
}

const segmentExt = ".arrows"

// Open opens (or creates) the spool directory and accounts for segments a
// previous run left. A nil obs observes nothing.
func Open(cfg Config, obs Observer, log *slog.Logger) (*Disk, error) {
	if cfg.Dir == "" {
		return nil, errors.New("spool: Dir is empty")
	}
	if cfg.Store == nil || cfg.Table == "" {
		return nil, errors.New("spool: Store and Table are required")
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
	if obs == nil {
		obs = nobody{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &Disk{cfg: cfg, log: log, obs: obs, mem: map[uint64][]arrow.Record{}, kick: make(chan struct{}, 1)}
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
	if len(segs) > 0 {
		log.Info("spool: segments from an earlier run", "segments", len(segs), "bytes", s.bytes)
	}
	return s, nil
}

// Bytes is the spool's size on disk.
func (s *Disk) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// Append writes batches of rows as one record batch (more for an import
// spanning many hours) and fsyncs it.
func (s *Disk) Append(ctx context.Context, batches ...[]Row) error {
	// A write and its fsync cannot be interrupted once started; a caller
	// that has given up does not start one.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	rows := 0
	for _, b := range batches {
		rows += len(b)
	}
	if rows == 0 {
		return nil
	}
	var recs []arrow.Record
	if countHours(batches, maxHoursPerInsert+1) <= maxHoursPerInsert {
		recs = []arrow.Record{rowsToRecord(batches...)}
	} else {
		for _, g := range splitByHours(slices.Concat(batches...), maxHoursPerInsert) {
			recs = append(recs, rowsToRecord(g))
		}
	}
	kept := false
	defer func() {
		if !kept { // not spooled: the memory goes back
			for _, rec := range recs {
				rec.Release()
			}
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bytes >= s.cfg.MaxBytes {
		return ErrFull
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
	before, start := s.cur.size, time.Now()
	err := func() error {
		for _, rec := range recs {
			if err := s.cur.w.Write(rec); err != nil {
				return fmt.Errorf("spool: write: %w", err)
			}
		}
		if err := s.cur.f.Sync(); err != nil {
			return fmt.Errorf("spool: fsync: %w", err)
		}
		return nil
	}()
	if err != nil {
		// The segment may end in a torn batch now; later batches must not
		// follow it, or a replay would stop before them.
		s.abandonCurrentLocked()
		return err
	}
	st, err := s.cur.f.Stat()
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.cur.size = st.Size()
	s.bytes += s.cur.size - before
	s.obs.ObserveCommit(time.Since(start), rows)
	s.mem[s.cur.seq] = append(s.mem[s.cur.seq], recs...)
	kept = true
	s.memRows += rows
	if s.memRows >= insertBatchRows {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// countHours counts the distinct hours of rows, stopping at limit.
func countHours(batches [][]Row, limit int) int {
	hours := map[int64]bool{}
	last := int64(-1)
	for _, rows := range batches {
		for i := range rows {
			if h := rows[i].Received.Unix() / 3600; h != last {
				hours[h], last = true, h
				if len(hours) >= limit {
					return len(hours)
				}
			}
		}
	}
	return len(hours)
}

// openSegmentLocked makes the open segment: the spare one prepared
// beforehand if there is one, else a new file.
func (s *Disk) openSegmentLocked() error {
	if s.spare != nil {
		s.cur, s.spare = s.spare, nil
		s.cur.created = time.Now()
		return nil
	}
	seg, err := s.createSegment(s.seq)
	if err != nil {
		return err
	}
	s.seq++
	s.cur = seg
	return nil
}

// createSegment creates segment file seq and makes its directory entry
// durable.
func (s *Disk) createSegment(seq uint64) (*segment, error) {
	p := filepath.Join(s.cfg.Dir, fmt.Sprintf("seg-%020d%s", seq, segmentExt))
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	// The directory entry must survive a crash too.
	if d, err := os.Open(s.cfg.Dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return &segment{seq: seq, path: p, f: f, w: ipc.NewWriter(f, ipc.WithSchema(spoolSchema)), created: time.Now()}, nil
}

// prepareSpare creates the next segment outside the lock, so the Append
// that follows a seal does not wait for a file creation and a directory
// fsync.
func (s *Disk) prepareSpare() {
	s.mu.Lock()
	if s.spare != nil || s.cur != nil {
		s.mu.Unlock()
		return
	}
	seq := s.seq
	s.seq++
	s.mu.Unlock()
	seg, err := s.createSegment(seq)
	if err != nil {
		s.log.Warn("spool: prepare segment", "err", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.spare != nil || s.cur != nil {
		// Append opened one meanwhile.
		_ = seg.f.Close()
		_ = os.Remove(seg.path)
		return
	}
	s.spare = seg
}

func (s *Disk) closeCurrentLocked() error {
	if s.cur == nil {
		return nil
	}
	cur := s.cur
	s.cur = nil
	before := cur.size
	// The end-of-stream marker needs no fsync: every batch before it was
	// synced by its Append, and readers take a missing marker as the end.
	err := cur.w.Close()
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

// abandonCurrentLocked closes the open segment after a failed write,
// without adding to it.
func (s *Disk) abandonCurrentLocked() {
	if s.cur == nil {
		return
	}
	if st, err := s.cur.f.Stat(); err == nil {
		s.bytes += st.Size() - s.cur.size
	}
	_ = s.cur.f.Close()
	s.cur = nil
}

// Close closes the open segment; its rows stay on disk for the next run.
func (s *Disk) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.spare != nil {
		_ = s.spare.f.Close()
		_ = os.Remove(s.spare.path) // empty
		s.spare = nil
	}
	return s.closeCurrentLocked()
}

func (s *Disk) segments() ([]string, error) {
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
func (s *Disk) Pending() bool {
	return s.Bytes() > 0
}

// Drain seals the open segment and inserts every spooled segment, oldest
// first, deleting each once all its rows are in; it stops at the first
// failed insert, or when ctx ends, and returns the number of rows inserted.
func (s *Disk) Drain(ctx context.Context) (int, error) {
	s.drainMu.Lock()
	defer s.drainMu.Unlock()
	s.mu.Lock()
	err := s.closeCurrentLocked()
	upTo := s.seq // segments opened from now on are Append's, not ours
	spare := uint64(math.MaxUint64)
	if s.spare != nil {
		spare = s.spare.seq
	}
	inMem := s.mem
	s.mem, s.memRows = map[uint64][]arrow.Record{}, 0
	s.mu.Unlock()
	defer func() {
		// Records not inserted (an insert failed, or their segment expired)
		// are on disk; the memory goes back to the allocator.
		for _, recs := range inMem {
			for _, rec := range recs {
				rec.Release()
			}
		}
	}()
	if err != nil {
		return 0, err
	}
	defer s.prepareSpare()
	segs, err := s.segments()
	if err != nil {
		return 0, err
	}
	if s.block == nil {
		s.block = newRawBlock()
	}
	s.block.reset()
	ins := &inserter{store: s.cfg.Store, table: s.cfg.Table, obs: s.obs, block: s.block, hours: map[int64]bool{}}
	for _, p := range segs {
		seq, ok := segmentSeq(p)
		if !ok || seq >= upTo || seq == spare {
			continue
		}
		if expiredSegment(p, s.cfg.Retention) {
			s.drop(p, "older than the raw retention")
			continue
		}
		recs, ok := inMem[seq]
		if ok {
			err = ins.addAll(ctx, recs) // copies: the records can go
			for _, rec := range recs {
				rec.Release()
			}
			delete(inMem, seq)
		} else {
			err = s.readSegment(p, func(rec arrow.Record) error { return ins.add(ctx, rec) })
		}
		if errors.Is(err, errCorrupt) {
			// What came before the damage is in the block; the file goes
			// aside now so that no later Drain trips on it again.
			s.quarantine(p, err)
			err = nil
		} else if err == nil {
			ins.done = append(ins.done, p)
		}
		if err == nil && ins.block.rows() >= insertBatchRows {
			err = ins.flush(ctx)
		}
		s.dropInserted(ins)
		if err != nil {
			return ins.inserted, fmt.Errorf("spool: replay %s: %w", filepath.Base(p), err)
		}
	}
	err = ins.flush(ctx)
	s.dropInserted(ins)
	if err != nil {
		return ins.inserted, fmt.Errorf("spool: replay: %w", err)
	}
	return ins.inserted, nil
}

// dropInserted deletes the segments whose rows are all in ClickHouse.
func (s *Disk) dropInserted(ins *inserter) {
	for _, p := range ins.dropped {
		s.drop(p, "")
	}
	ins.dropped = nil
}

// inserter gathers spool records into Native blocks of at most
// insertBatchRows rows and maxHoursPerInsert hours, and inserts them.
type inserter struct {
	store    Inserter
	table    string
	obs      Observer
	block    *rawBlock
	hours    map[int64]bool
	inserted int
	done     []string // segments wholly in the block
	dropped  []string // segments wholly inserted: the caller deletes them
}

func (in *inserter) addAll(ctx context.Context, recs []arrow.Record) error {
	for _, rec := range recs {
		if err := in.add(ctx, rec); err != nil {
			return err
		}
	}
	return nil
}

func (in *inserter) add(ctx context.Context, rec arrow.Record) error {
	hours := recordHours(rec)
	fresh := 0
	for h := range hours {
		if !in.hours[h] {
			fresh++
		}
	}
	if len(in.hours)+fresh > maxHoursPerInsert || in.block.rows() >= insertBatchRows {
		if err := in.flush(ctx); err != nil {
			return err
		}
	}
	for h := range hours {
		in.hours[h] = true
	}
	return in.block.add(rec)
}

// flush inserts the block and starts a new one. Segments wholly added
// before it are then wholly inserted: the caller may delete them.
func (in *inserter) flush(ctx context.Context) error {
	if in.block.rows() == 0 {
		return nil
	}
	n := in.block.rows()
	ctx, cancel := context.WithTimeout(ctx, insertTimeout)
	defer cancel()
	start := time.Now()
	err := in.store.Insert(ctx, in.table, in.block.block)
	in.obs.ObserveInsert(time.Since(start), n, err)
	if err != nil {
		return err
	}
	in.inserted += n
	in.dropped, in.done = append(in.dropped, in.done...), nil
	in.block.reset()
	clear(in.hours)
	return nil
}

var receivedColumn = slices.IndexFunc(rawColumns, func(c rawColumn) bool { return c.name == "received" })

// recordHours is the set of hours (Unix hours) a record's rows fall in.
func recordHours(rec arrow.Record) map[int64]bool {
	received := rec.Column(receivedColumn).(*array.Int64)
	hours := map[int64]bool{}
	last := int64(-1)
	for i := 0; i < received.Len(); i++ {
		if h := received.Value(i) / 3600; h != last {
			hours[h], last = true, h
		}
	}
	return hours
}

func expiredSegment(path string, retention time.Duration) bool {
	st, err := os.Stat(path)
	return err == nil && time.Since(st.ModTime()) > retention
}

func (s *Disk) drop(path, why string) {
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

// readSegment hands every complete record batch of a segment file to add.
// A torn tail (a crash mid-write) ends the segment; damage anywhere is
// errCorrupt, after the batches before it were handed over.
func (s *Disk) readSegment(path string, add func(arrow.Record) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	torn, err := readRecords(f, st.Size(), add)
	if torn > 0 && err == nil {
		s.log.Warn("spool: torn segment tail ignored", "segment", filepath.Base(path), "bytes", torn)
	}
	return err
}

// readRecords reads the record batches of a segment of size bytes (see
// checkFraming) and returns how many bytes at the end were torn off. It
// never allocates more than the segment's size for what the bytes claim,
// and never panics, whatever the bytes are.
func readRecords(r io.ReaderAt, size int64, add func(arrow.Record) error) (torn int64, err error) {
	if size == 0 {
		return 0, nil // created for an Append that never came (or a crash right after)
	}
	valid, ferr := checkFraming(r, size)
	if ferr != nil && !errors.Is(ferr, errCorrupt) {
		return 0, ferr
	}
	if ferr == nil {
		torn = size - valid
	}
	if valid == 0 {
		return torn, ferr // nil: torn before its first batch, nothing in it was acknowledged
	}
	// The framing holds, but the batches inside may not: whatever the Arrow
	// reader or the column fill makes of damaged buffers, it must not take
	// the process down.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errCorrupt, r)
		}
	}()
	rd, err := ipc.NewReader(io.NewSectionReader(r, 0, valid), ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		return torn, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	defer rd.Release()
	// A segment an earlier release wrote is read in its own layout and
	// upgraded record by record; one a later release wrote waits (the
	// quarantine keeps it) for a herd that knows its format.
	current := rd.Schema().Equal(spoolSchema)
	if !current {
		f, err := segmentFormat(rd.Schema())
		if err != nil {
			return torn, fmt.Errorf("%w: %v", errCorrupt, err)
		}
		if f > format {
			return torn, fmt.Errorf("%w: spool format %d, written by a newer herd (this one reads up to %d)", errCorrupt, f, format)
		}
	}
	for rd.Next() {
		rec := rd.Record()
		if !current {
			up, err := upgrade(rec)
			if err != nil {
				return torn, fmt.Errorf("%w: %v", errCorrupt, err)
			}
			err = add(up)
			up.Release()
			if err != nil {
				return torn, err
			}
			continue
		}
		if err := add(rec); err != nil {
			return torn, err
		}
	}
	if err := rd.Err(); err != nil && !errors.Is(err, io.EOF) {
		return torn, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	return torn, ferr
}

// quarantine moves a damaged segment aside (quarantine/ in the spool
// directory), out of the way of the segments after it; it is deleted with
// the rest once past the raw retention.
func (s *Disk) quarantine(path string, why error) {
	dir := filepath.Join(s.cfg.Dir, quarantineDir)
	st, serr := os.Stat(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		s.log.Error("spool: quarantine", "segment", filepath.Base(path), "err", err)
		return
	}
	if err := os.Rename(path, filepath.Join(dir, filepath.Base(path))); err != nil {
		s.log.Error("spool: quarantine", "segment", filepath.Base(path), "err", err)
		return
	}
	if serr == nil {
		s.mu.Lock()
		s.bytes -= st.Size()
		s.mu.Unlock()
	}
	s.obs.ObserveQuarantine()
	s.log.Error("spool: damaged segment moved to quarantine; the segments after it go on", "segment", filepath.Base(path), "dir", dir, "err", why)
}

const quarantineDir = "quarantine"

// insertTimeout bounds one insert into ClickHouse.
const insertTimeout = 30 * time.Second

// insertBatchRows bounds one insert, and asks for an early one when this
// many rows wait in memory.
const insertBatchRows = 20_000

// Run inserts what is spooled every Interval, or sooner when many rows
// wait, backing off while ClickHouse refuses, until ctx ends.
func (s *Disk) Run(ctx context.Context) {
	wait := s.cfg.Interval
	for {
		var kick <-chan struct{}
		if wait == s.cfg.Interval {
			kick = s.kick // no early retries while ClickHouse refuses
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		case <-kick:
		}
		if !s.Pending() {
			wait = s.cfg.Interval
			continue
		}
		n, err := s.Drain(ctx)
		if clickhouse.IsCode(err, clickhouse.CodeQuorumBusy) {
			// Another ingest node's insert holds the shard's quorum for
			// the few milliseconds its replicas take: not an outage.
			s.log.Debug("spool: shard busy with another quorum insert; trying again", "inserted", n)
			wait = time.Duration(50+rand.IntN(200)) * time.Millisecond
			continue
		}
		if err != nil {
			s.failing.Store(&err)
			s.log.Warn("spool: insert paused; rows stay on disk", "inserted", n, "cause", clickhouse.Cause(err), "err", err)
			wait = min(max(wait*2, time.Second), 10*time.Second)
			continue
		}
		s.failing.Store(nil)
		if wait > s.cfg.Interval {
			s.log.Info("spool: inserting again", "rows", n)
		}
		wait = s.cfg.Interval
	}
}

// Prune deletes segments older than the raw retention that were never
// replayed (ClickHouse was down for longer than the retention) and returns
// their names, for the retention job's record.
func (s *Disk) Prune() ([]string, error) {
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
	// Quarantined segments hold rows too: they go at the same age.
	quarantined, err := filepath.Glob(filepath.Join(s.cfg.Dir, quarantineDir, "seg-*"+segmentExt))
	if err != nil {
		return dropped, fmt.Errorf("spool: %w", err)
	}
	for _, p := range quarantined {
		if !expiredSegment(p, s.cfg.Retention) {
			continue
		}
		if err := os.Remove(p); err != nil {
			return dropped, fmt.Errorf("spool: %w", err)
		}
		dropped = append(dropped, quarantineDir+"/"+filepath.Base(p))
	}
	return dropped, nil
}

type nobody struct{}

func (nobody) ObserveCommit(time.Duration, int)        {}
func (nobody) ObserveInsert(time.Duration, int, error) {}
func (nobody) ObserveQuarantine()                      {}
