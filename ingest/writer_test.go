package ingest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herd-analytics/herd/ingest/spool"
)

// appendFunc is a hand-written fake for the one-method Spool: these tests
// are about group commit, not the disk (the spool has its own tests, and
// ingest_test.go runs the real one).
type appendFunc func(ctx context.Context, batches ...[]spool.Row) error

func (f appendFunc) Append(ctx context.Context, batches ...[]spool.Row) error {
	return f(ctx, batches...)
}

func TestWriterGroupsRequestsIntoFewCommits(t *testing.T) {
	var commits, rows atomic.Int64
	w := NewWriter(WriterConfig{}, appendFunc(func(_ context.Context, batches ...[]spool.Row) error {
		time.Sleep(5 * time.Millisecond) // an fsync
		commits.Add(1)
		for _, b := range batches {
			rows.Add(int64(len(b)))
		}
		return nil
	}), nil, nil)
	go w.Run()
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			if err := w.Write(context.Background(), rowsOf(5)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rows.Load() != 1000 || commits.Load() > 40 {
		t.Fatalf("%d rows in %d commits", rows.Load(), commits.Load())
	}
}

func TestWriterReportsSpoolFailureWithItsCause(t *testing.T) {
	disk := errors.New("input/output error")
	w := NewWriter(WriterConfig{}, appendFunc(func(context.Context, ...[]spool.Row) error { return disk }), nil, nil)
	go w.Run()
	defer w.Close(context.Background())
	if err := w.Write(context.Background(), rowsOf(3)); !errors.Is(err, ErrUnavailable) || !errors.Is(err, disk) {
		t.Fatalf("got %v, want ErrUnavailable wrapping the disk's error", err)
	}
}

func TestWriterCloseCommitsWhatItTook(t *testing.T) {
	appending, release := make(chan struct{}), make(chan struct{})
	done := make(chan int, 1)
	w := NewWriter(WriterConfig{}, appendFunc(func(_ context.Context, batches ...[]spool.Row) error {
		close(appending)
		<-release
		done <- len(batches[0])
		return nil
	}), nil, nil)
	go w.Run()
	errc := make(chan error, 1)
	go func() { errc <- w.Write(context.Background(), rowsOf(7)) }()
	<-appending // the rows are the writer's, their commit under way
	closed := make(chan error, 1)
	go func() { closed <- w.Close(context.Background()) }()
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if n := <-done; n != 7 {
		t.Fatalf("committed %d rows", n)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// A Write that races Close is either committed or refused at once, never
// left waiting for a commit that will not come.
func TestWriterWriteAfterCloseIsRefused(t *testing.T) {
	for range 200 {
		w := NewWriter(WriterConfig{}, appendFunc(func(context.Context, ...[]spool.Row) error { return nil }), nil, nil)
		go w.Run()
		if err := w.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := w.Write(ctx, rowsOf(1))
		cancel()
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Write after Close: %v, want ErrUnavailable", err)
		}
	}
}

func rowsOf(n int) []spool.Row {
	rows := make([]spool.Row, n)
	for i := range rows {
		rows[i] = spool.Row{Type: uint8(Pageview), Site: "demo", Path: "/", Received: time.Now()}
	}
	return rows
}

// stuckSpool is a Spool whose Append blocks until released: a disk that
// stopped answering.
type stuckSpool struct {
	release chan struct{}
	mu      sync.Mutex
	rows    int
}

func (s *stuckSpool) Append(_ context.Context, batches ...[]spool.Row) error {
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
	w := NewWriter(WriterConfig{CommitTimeout: 50 * time.Millisecond}, sp, nil, nil)
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
