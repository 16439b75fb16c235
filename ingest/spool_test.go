package ingest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

func sampleRows(n int) []Row {
	rows := make([]Row, n)
	for i := range rows {
		rows[i] = Row{
			EventID: [16]byte{byte(i), byte(i >> 8), 3}, Site: "demo", Received: time.Unix(1764064800+int64(i), 0).UTC(),
			Seq: uint16(i), Type: Purchase, Visitor: uint64(i) * 7919, Session: 42, UserHash: 9, Path: "/checkout/done",
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
	s, err := OpenSpool(SpoolConfig{Dir: t.TempDir()}, nil, nil)
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
	n, err := s.Replay(context.Background(), insertFunc(func(_ context.Context, _ string, b *proto.Block) error {
		if b.Rows() == 0 {
			t.Fatal("empty block")
		}
		return nil
	}), "t")
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
	dir := t.TempDir()
	s, err := OpenSpool(SpoolConfig{Dir: dir}, nil, nil)
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
	st, _ := os.Stat(segs[0])
	if err := os.Truncate(segs[0], st.Size()-200); err != nil {
		t.Fatal(err)
	}
	s2, err := OpenSpool(SpoolConfig{Dir: dir}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !s2.Pending() {
		t.Fatal("restart lost the spool")
	}
	var replayed int
	n, err := s2.Replay(context.Background(), insertFunc(func(_ context.Context, _ string, b *proto.Block) error {
		replayed += b.Rows()
		return nil
	}), "t")
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

func TestSpoolFullAndFailedReplayKeepsRows(t *testing.T) {
	s, err := OpenSpool(SpoolConfig{Dir: t.TempDir(), MaxBytes: 4096}, nil, nil)
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
	if !errors.Is(err2, ErrSpoolFull) || appended == 0 {
		t.Fatalf("got %v after %d rows, want ErrSpoolFull", err2, appended)
	}
	if _, err := s.Replay(ctx, insertFunc(func(context.Context, string, *proto.Block) error { return errors.New("down") }), "t"); err == nil {
		t.Fatal("replay into a down store succeeded")
	}
	n, err := s.Replay(ctx, insertFunc(func(context.Context, string, *proto.Block) error { return nil }), "t")
	if err != nil || n != appended {
		t.Fatalf("after a failed replay, replayed %d of %d rows: %v", n, appended, err)
	}
	if err := s.Append(ctx, sampleRows(10)); err != nil {
		t.Fatalf("drained spool still full: %v", err)
	}
}

func FuzzSpoolSegment(f *testing.F) {
	dir := f.TempDir()
	s, _ := OpenSpool(SpoolConfig{Dir: dir}, nil, nil)
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
		sp, err := OpenSpool(SpoolConfig{Dir: d}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		// A corrupt segment must never crash the process.
		_, _ = sp.Replay(context.Background(), insertFunc(func(context.Context, string, *proto.Block) error { return nil }), "t")
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
