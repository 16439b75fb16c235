package ingest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/herd-analytics/herd/internal/clickhouse"
)

// insertFunc is a hand-written fake for the one-method RawWriter: these
// tests are about batching, not storage (the ClickHouse path is tested in
// ingest_test.go).
type insertFunc func(ctx context.Context, table string, b *proto.Block) error

func (f insertFunc) Insert(ctx context.Context, table string, b *proto.Block, _ ...clickhouse.Option) error {
	return f(ctx, table, b)
}

func TestWriterBatchesRequestsIntoFewInserts(t *testing.T) {
	var mu sync.Mutex
	var inserts, rows int
	w := NewWriter(WriterConfig{MaxRows: 1000, MaxDelay: 50 * time.Millisecond}, insertFunc(func(_ context.Context, table string, b *proto.Block) error {
		mu.Lock()
		defer mu.Unlock()
		if table != "herd_raw.events" {
			t.Errorf("table %q", table)
		}
		inserts++
		rows += b.Rows()
		return nil
	}), nil, nil, nil)
	go w.Run()
	var wg sync.WaitGroup
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.Write(context.Background(), rowsOf(5)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rows != 1000 || inserts > 10 {
		t.Fatalf("%d rows in %d inserts", rows, inserts)
	}
}

func TestWriterReportsFailureWithoutSpool(t *testing.T) {
	w := NewWriter(WriterConfig{MaxDelay: time.Millisecond}, insertFunc(func(context.Context, string, *proto.Block) error {
		return errors.New("connection refused")
	}), nil, nil, nil)
	go w.Run()
	defer w.Close(context.Background())
	if err := w.Write(context.Background(), rowsOf(3)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
}

func TestWriterCloseFlushes(t *testing.T) {
	done := make(chan int, 1)
	w := NewWriter(WriterConfig{MaxDelay: time.Hour}, insertFunc(func(_ context.Context, _ string, b *proto.Block) error {
		done <- b.Rows()
		return nil
	}), nil, nil, nil)
	go w.Run()
	errc := make(chan error, 1)
	go func() { errc <- w.Write(context.Background(), rowsOf(7)) }()
	time.Sleep(20 * time.Millisecond)
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := <-done; n != 7 {
		t.Fatalf("flushed %d rows", n)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func rowsOf(n int) []Row {
	rows := make([]Row, n)
	for i := range rows {
		rows[i] = Row{Type: Pageview, Site: "demo", Path: "/", Received: time.Now()}
	}
	return rows
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

// stuckSpool is a Spool whose Append blocks until released: a disk that
// stopped answering.
type stuckSpool struct {
	release chan struct{}
	mu      sync.Mutex
	rows    int
}

func (s *stuckSpool) Append(_ context.Context, batches ...[]Row) error {
	<-s.release
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range batches {
		s.rows += len(b)
	}
	return nil
}

func TestWriterAnswersWhenACommitStalls(t *testing.T) {
	sp := &stuckSpool{release: make(chan struct{})}
	w := NewWriter(WriterConfig{CommitTimeout: 50 * time.Millisecond}, nil, sp, nil, nil)
	go w.Run()
	start := time.Now()
	err := w.Write(context.Background(), rowsOf(3))
	if !errors.Is(err, ErrCommitStalled) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("stalled commit: %v", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("answered after %v", waited)
	}
	// A request arriving while the commit is still stuck is answered too.
	if err := w.Write(context.Background(), rowsOf(2)); !errors.Is(err, ErrCommitStalled) {
		t.Fatalf("second request: %v", err)
	}
	// The disk answers again: the stalled rows are stored after all, and
	// new requests wait for their commit as usual.
	close(sp.release)
	for deadline := time.Now().Add(5 * time.Second); w.isStalled.Load(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("writer still stalled after the disk answered")
		}
	}
	if err := w.Write(context.Background(), rowsOf(4)); err != nil {
		t.Fatalf("after the stall: %v", err)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if sp.rows != 9 {
		t.Fatalf("%d rows stored, want 9", sp.rows)
	}
}
