package spool

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/herd-analytics/herd/internal/clickhouse"
)

func sampleRows(n int) []Row {
	rows := make([]Row, n)
	for i := range rows {
		rows[i] = Row{
			EventID: [16]byte{byte(i), byte(i >> 8), 3}, Site: "demo", Received: time.Unix(1764064800+int64(i), 0).UTC(),
			Seq: uint16(i), Type: 8, Visitor: uint64(i) * 7919, Session: 42, UserHash: 9, Path: "/checkout/done",
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

func FuzzSpoolSegment(f *testing.F) {
	st := &store{}
	dir := f.TempDir()
	s, _ := Open(Config{Store: st, Table: "t", Dir: dir}, nil, nil)
	_ = s.Append(context.Background(), sampleRows(3))
	_ = s.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "seg-*"))
	good, _ := os.ReadFile(segs[0])
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, "seg-00000000000000000001.arrows"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		sp, err := Open(Config{Store: st, Table: "t", Dir: d}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		// A corrupt segment must never crash the process.
		_, _ = sp.Drain(context.Background())
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
