package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"

	"github.com/herd-analytics/herd/internal/clickhouse"
)

func sampleRows(n int) []Row {
	rows := make([]Row, n)
	for i := range rows {
		rows[i] = Row{
			EventID: [16]byte{byte(i), byte(i >> 8), 3}, Site: "demo", Received: time.Unix(1764064800+int64(i), 0).UTC(),
			Seq: uint16(i), Type: 8, Visitor: uint64(i) * 7919, Session: 42, Path: "/checkout/done",
			PageType: "checkout", UTMSource: "nl", UTMMedium: "email", UTMCampaign: "bf", ReferrerHost: "google.com",
			Browser: "Firefox", BrowserMajor: 128, OS: "Linux", Device: "desktop", Country: "DE", ProductID: "p1",
			ProductCategory: "shoes", ProductPrice: 5990, Position: 3, List: "home", Slot: "hero", Variant: "B", Step: 4,
			OrderValue: 11980, Currency: "EUR", Items: 2, Products: []string{"p1", "p2"}, SearchTerm: "boots",
			SearchResults: int32(i % 3), Imported: i%2 == 0,
		}
	}
	rows[0].Products = nil
	return rows
}

func TestSpoolRoundTripsRows(t *testing.T) {
	st := &store{}
	s, err := Open(Config{Store: st, Table: "t", Dir: t.TempDir()}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := sampleRows(300)
	if err := s.Append(context.Background(), want[:100]); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(context.Background(), want[100:]); err != nil {
		t.Fatal(err)
	}
	var got []Row
	st.set(func(b *proto.Block) error {
		if b.Rows() == 0 {
			t.Fatal("empty block")
		}
		return nil
	})
	n, err := s.Drain(context.Background())
	if err != nil || n != 300 {
		t.Fatalf("replayed %d: %v", n, err)
	}
	// Read back what the segments held, through the Arrow decoder.
	rec := rowsToRecord(want)
	got = recordToRows(rec)
	rec.Release()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows changed through Arrow:\n%+v\n%+v", got[0], want[0])
	}
	if s.Bytes() != 0 || s.Pending() {
		t.Fatalf("spool not empty after replay: %d bytes", s.Bytes())
	}
}

func TestSpoolSurvivesRestartAndTornTail(t *testing.T) {
	st := &store{}
	dir := t.TempDir()
	s, err := Open(Config{Store: st, Table: "t", Dir: dir}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rows := sampleRows(50)
	for i := 0; i < 5; i++ {
		if err := s.Append(context.Background(), rows[i*10:(i+1)*10]); err != nil {
			t.Fatal(err)
		}
	}
	// Crash: no Close. Then tear the last batch in half.
	segs, _ := filepath.Glob(filepath.Join(dir, "seg-*"))
	if len(segs) != 1 {
		t.Fatalf("segments: %v", segs)
	}
	info, _ := os.Stat(segs[0])
	if err := os.Truncate(segs[0], info.Size()-200); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(Config{Store: st, Table: "t", Dir: dir}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !s2.Pending() {
		t.Fatal("restart lost the spool")
	}
	var replayed int
	st.set(func(b *proto.Block) error {
		replayed += b.Rows()
		return nil
	})
	n, err := s2.Drain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != 40 || replayed != 40 {
		t.Fatalf("replayed %d rows, want the 40 before the torn batch", n)
	}
	// New appends go to a new segment after the old ones.
	if err := s2.Append(context.Background(), rows[:1]); err != nil {
		t.Fatal(err)
	}
	if segs, _ := filepath.Glob(filepath.Join(dir, "seg-*")); len(segs) != 1 || segs[0] <= filepath.Join(dir, "seg-00000000000000000000") {
		t.Fatalf("segments after restart: %v", segs)
	}
}

func TestSpoolFullAndFailedInsertKeepsRows(t *testing.T) {
	st := &store{}
	s, err := Open(Config{Store: st, Table: "t", Dir: t.TempDir(), MaxBytes: 4096}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var err2 error
	appended := 0
	for i := 0; i < 100 && err2 == nil; i++ {
		if err2 = s.Append(ctx, sampleRows(10)); err2 == nil {
			appended += 10
		}
	}
	if !errors.Is(err2, ErrFull) || appended == 0 {
		t.Fatalf("got %v after %d rows, want ErrFull", err2, appended)
	}
	st.set(func(*proto.Block) error { return errors.New("down") })
	if _, err := s.Drain(ctx); err == nil {
		t.Fatal("insert into a down store succeeded")
	}
	st.set(nil)
	n, err := s.Drain(ctx)
	if err != nil || n != appended {
		t.Fatalf("after a failed replay, replayed %d of %d rows: %v", n, appended, err)
	}
	if err := s.Append(ctx, sampleRows(10)); err != nil {
		t.Fatalf("drained spool still full: %v", err)
	}
}

// FuzzSpoolSegment reads arbitrary bytes as a segment, into a Native block
// as the inserter would: it must never crash, hang or allocate what the
// bytes claim. (The file handling around it is tested above.)
func FuzzSpoolSegment(f *testing.F) {
	dir := f.TempDir()
	s, _ := Open(Config{Store: &store{}, Table: "t", Dir: dir}, nil, nil)
	_ = s.Append(context.Background(), sampleRows(3))
	_ = s.Append(context.Background(), sampleRows(5))
	_ = s.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "seg-*"))
	good, _ := os.ReadFile(segs[0])
	f.Add(good)
	f.Add(good[:len(good)/2])
	for _, commit := range []string{"d913bbd", "999e62c"} { // earlier releases' layouts
		old, _ := os.ReadFile(filepath.Join("testdata", "releases", commit+".arrows"))
		f.Add(old)
	}
	block := newRawBlock()
	f.Fuzz(func(t *testing.T, data []byte) {
		block.reset()
		_, _ = readRecords(bytes.NewReader(data), int64(len(data)), block.add)
	})
}

// Recycled record buffers come back zeroed and never shared: records made
// after earlier ones were released read back exactly their own rows.
func TestRecycledRecordBuffersHoldOnlyTheirRows(t *testing.T) {
	for round := range 5 {
		a := sampleRows(50 + round*37)
		for i := range a {
			a[i].Path = strings.Repeat("x", i%7) + "/p"
			a[i].Products = a[i].Products[:i%3]
		}
		rec := rowsToRecord(a)
		got := recordToRows(rec)
		for i := range a {
			if got[i].Path != a[i].Path || len(got[i].Products) != len(a[i].Products) || got[i].Visitor != a[i].Visitor || got[i].Imported != a[i].Imported {
				t.Fatalf("round %d row %d: %+v, want %+v", round, i, got[i], a[i])
			}
		}
		rec.Release()
	}
	// The allocator's own promises.
	var alloc classAllocator
	b := alloc.Allocate(100)
	for i := range b {
		b[i] = 0xff
	}
	if uintptr(unsafe.Pointer(&b[0]))%64 != 0 || cap(b) != 128 {
		t.Fatalf("buffer not 64-byte aligned in its class: cap %d", cap(b))
	}
	alloc.Free(b)
	c := alloc.Allocate(120)
	c = alloc.Reallocate(128, c)
	for i, v := range c {
		if v != 0 {
			t.Fatalf("recycled buffer byte %d = %#x", i, v)
		}
	}
}

func TestSplitByHours(t *testing.T) {
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var rows []Row
	for h := range 250 {
		for range 3 {
			rows = append(rows, Row{Received: base.Add(time.Duration(h)*time.Hour + time.Minute)})
		}
	}
	groups := splitByHours(rows, 90)
	if len(groups) != 3 {
		t.Fatalf("%d groups", len(groups))
	}
	total := 0
	for _, g := range groups {
		hours := map[int64]bool{}
		for _, r := range g {
			hours[r.Received.Unix()/3600] = true
		}
		if len(hours) > 90 {
			t.Fatalf("group spans %d hours", len(hours))
		}
		total += len(g)
	}
	if total != len(rows) {
		t.Fatalf("%d rows in groups, want %d", total, len(rows))
	}
	if g := splitByHours(rows[:30], 90); len(g) != 1 || len(g[0]) != 30 {
		t.Fatal("live traffic was split")
	}
}

// store is a hand-written fake for the one-method Inserter: these tests are
// about the log on disk (ingest's tests insert into a real ClickHouse).
type store struct {
	mu     sync.Mutex
	insert func(*proto.Block) error // nil accepts every block
}

func (s *store) set(f func(*proto.Block) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.insert = f
}

func (s *store) Insert(_ context.Context, _ string, b *proto.Block, _ ...clickhouse.Option) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.insert == nil {
		return nil
	}
	return s.insert(b)
}

// quarantines counts ObserveQuarantine calls.
type quarantines struct{ n atomic.Int64 }

func (*quarantines) ObserveCommit(time.Duration, int)        {}
func (*quarantines) ObserveInsert(time.Duration, int, error) {}
func (q *quarantines) ObserveQuarantine()                    { q.n.Add(1) }

// A damaged segment (found by FuzzSpoolSegment: its lengths ask the Arrow
// reader for about 248 GB) is moved aside without allocating what it
// claims, and the good segment after it is inserted.
func TestDamagedSegmentIsQuarantined(t *testing.T) {
	dir := t.TempDir()
	damaged, err := os.ReadFile(filepath.Join("testdata", "damaged-segment.arrows"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "seg-00000000000000000001.arrows"), damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	st := &store{}
	obs := &quarantines{}
	s, err := Open(Config{Store: st, Table: "t", Dir: dir}, obs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append(context.Background(), sampleRows(30)); err != nil {
		t.Fatal(err)
	}
	inserted := 0
	st.set(func(b *proto.Block) error { inserted += b.Rows(); return nil })
	n, err := s.Drain(context.Background())
	if err != nil || n != 30 || inserted != 30 {
		t.Fatalf("drained %d (%d inserted): %v, want the good segment's 30 rows", n, inserted, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "quarantine", "seg-00000000000000000001.arrows")); err != nil {
		t.Fatalf("not quarantined: %v", err)
	}
	if obs.n.Load() != 1 || s.Pending() {
		t.Fatalf("quarantined %d, pending %v", obs.n.Load(), s.Pending())
	}
	// Quarantined rows go at the raw retention like any other.
	old := time.Now().Add(-72 * time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "quarantine", "seg-00000000000000000001.arrows"), old, old); err != nil {
		t.Fatal(err)
	}
	dropped, err := s.Prune()
	if err != nil || len(dropped) != 1 || dropped[0] != "quarantine/seg-00000000000000000001.arrows" {
		t.Fatalf("prune: %v %v", dropped, err)
	}
}

// checkFraming keeps the whole messages of a torn segment and flags bytes
// that are not Arrow messages at all.
func TestCheckFraming(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{Store: &store{}, Table: "t", Dir: dir}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := s.Append(context.Background(), sampleRows(10)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "seg-*"))
	good, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	check := func(b []byte) (int64, error) { return checkFraming(bytes.NewReader(b), int64(len(b))) }
	if n, err := check(good); err != nil || n != int64(len(good)) {
		t.Fatalf("whole segment: %d of %d: %v", n, len(good), err)
	}
	n, err := check(good[:len(good)-100])
	if err != nil || n == 0 || n >= int64(len(good)-100) {
		t.Fatalf("torn segment: %d: %v", n, err)
	}
	garbled := append([]byte{}, good...)
	copy(garbled[n:], "garbage!")
	if m, err := check(garbled); !errors.Is(err, errCorrupt) || m != n {
		t.Fatalf("garbled after %d bytes: %d, %v", n, m, err)
	}
	if m, err := check(damagedSegment(t)); !errors.Is(err, errCorrupt) && m != 0 {
		t.Fatalf("the fuzzer's segment: %d, %v", m, err)
	}
}

func damagedSegment(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "damaged-segment.arrows"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAppendHonoursContext(t *testing.T) {
	s, err := Open(Config{Store: &store{}, Table: "t", Dir: t.TempDir()}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Append(ctx, sampleRows(3)); !errors.Is(err, context.Canceled) || s.Pending() {
		t.Fatalf("append after the caller gave up: %v, pending %v", err, s.Pending())
	}
}

// Segments written by earlier releases' own code (testdata/releases: the
// release's commit; spoolfixture.go.txt made them) are read, upgraded to
// this release's columns and kept whole: none is mistaken for damage.
func TestSegmentsOfEarlierReleases(t *testing.T) {
	for _, commit := range []string{"d913bbd", "999e62c"} {
		data, err := os.ReadFile(filepath.Join("testdata", "releases", commit+".arrows"))
		if err != nil {
			t.Fatal(err)
		}
		var rows []Row
		torn, err := readRecords(bytes.NewReader(data), int64(len(data)), func(rec arrow.Record) error {
			if !rec.Schema().Equal(spoolSchema) {
				return errors.New("handed on in its own layout")
			}
			rows = append(rows, recordToRows(rec)...)
			return nil
		})
		if err != nil || torn != 0 {
			t.Fatalf("%s: torn %d, %v", commit, torn, err)
		}
		if len(rows) != 3 {
			t.Fatalf("%s: %d rows, want 3", commit, len(rows))
		}
		for i, r := range rows {
			if r.Path != fmt.Sprintf("/upgrade/%s/%d", commit, i) || r.ProductID != fmt.Sprintf("%s-P%d", commit, i) || r.Site != "demo" ||
				r.Visitor != 1000+uint64(i) || r.ProductPrice != 3500 || r.Currency != "EUR" || r.SearchResults != -1 || r.Device != "desktop" {
				t.Errorf("%s row %d: %+v", commit, i, r)
			}
		}
	}
	// A segment of a format newer than this release's is not read as if
	// it were one (it waits in quarantine for a herd that knows it).
	md := arrow.NewMetadata([]string{formatKey}, []string{strconv.Itoa(format + 1)})
	future := arrow.NewSchema(spoolSchema.Fields(), &md)
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(future))
	rec := rowsToRecord(make([]Row, 2))
	fut := array.NewRecord(future, rec.Columns(), rec.NumRows())
	if err := w.Write(fut); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	if _, err := readRecords(bytes.NewReader(buf.Bytes()), int64(buf.Len()), func(arrow.Record) error { return nil }); !errors.Is(err, errCorrupt) {
		t.Errorf("a segment of format %d read: %v", format+1, err)
	}
}
