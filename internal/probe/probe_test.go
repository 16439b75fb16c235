package probe

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
)

// pingFunc is a hand-written fake for the one-method dependency; readiness
// against a real ClickHouse is tested by cmd/herd's serve test.
type pingFunc func(context.Context) error

func (f pingFunc) Ping(ctx context.Context) error { return f(ctx) }

func TestReadyzFollowsDependency(t *testing.T) {
	var down atomic.Bool
	var calls atomic.Int32
	r := NewReadiness(pingFunc(func(context.Context) error {
		calls.Add(1)
		if down.Load() {
			return errors.New("connection refused")
		}
		return nil
	}))
	app := fiber.New()
	Register(app, r)
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := app.Test(httptest.NewRequest("GET", path, nil))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("/readyz"); code != 200 || !strings.Contains(body, `"ready"`) {
		t.Fatalf("up: %d %s", code, body)
	}
	down.Store(true)
	// Within a second the cached answer stands; no query storm.
	get("/readyz")
	if calls.Load() != 1 {
		t.Fatalf("%d pings within the cache second", calls.Load())
	}
	r.mu.Lock()
	r.checked = time.Time{}
	r.mu.Unlock()
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "clickhouse: unavailable") {
		t.Fatalf("down: %d %s", code, body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("healthz while dependency down: %d", code)
	}
}

// A dependency that never answers (a frozen ClickHouse) still gets a prompt
// 503, and concurrent checks share the one ping in flight.
func TestReadyzAnswersWhenTheDependencyHangs(t *testing.T) {
	var calls atomic.Int32
	r := NewReadiness(pingFunc(func(ctx context.Context) error {
		calls.Add(1)
		<-ctx.Done()
		return ctx.Err()
	}))
	app := fiber.New()
	Register(app, r)
	done := make(chan string, 4)
	start := time.Now()
	for range 4 {
		go func() {
			resp, err := app.Test(httptest.NewRequest("GET", "/readyz", nil), 5000)
			if err != nil {
				done <- err.Error()
				return
			}
			body, _ := io.ReadAll(resp.Body)
			done <- strings.Join([]string{resp.Status, string(body)}, " ")
		}()
	}
	for range 4 {
		if got := <-done; !strings.HasPrefix(got, "503") || !strings.Contains(got, "no answer within") {
			t.Fatalf("got %q", got)
		}
	}
	if took := time.Since(start); took > 3*PingTimeout {
		t.Fatalf("answered after %v", took)
	}
	if calls.Load() != 1 {
		t.Fatalf("%d pings for 4 concurrent checks", calls.Load())
	}
}

// The public answer says what is wrong, never where: the address and query
// id of the error go to the log, once per change.
func TestReadyzHidesTheServer(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	r := NewReadiness(pingFunc(func(context.Context) error {
		if down.Load() {
			return errors.New(`clickhouse: Post "http://127.0.0.1:8123/?query_id=4f2a": dial tcp 127.0.0.1:8123: connect: connection refused`)
		}
		return nil
	}))
	var logs strings.Builder
	r.Log = slog.New(slog.NewTextHandler(&logs, nil))
	app := fiber.New()
	Register(app, r)
	for range 3 {
		resp, err := app.Test(httptest.NewRequest("GET", "/readyz", nil))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 503 || !strings.Contains(string(body), "clickhouse: unavailable") || strings.Contains(string(body), "127.0.0.1") || strings.Contains(string(body), "4f2a") {
			t.Fatalf("readyz: %d %s", resp.StatusCode, body)
		}
	}
	if n := strings.Count(logs.String(), "not ready: clickhouse"); n != 1 || !strings.Contains(logs.String(), "127.0.0.1:8123") {
		t.Errorf("the cause logged %d times, want once:\n%s", n, logs.String())
	}
	if got := Reason(errors.New("no answer within 800ms")); got != "clickhouse: no answer within 800ms" {
		t.Errorf("timeout reason %q", got)
	}
}
