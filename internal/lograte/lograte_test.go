package lograte

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestOnceAnIntervalWithTheCount(t *testing.T) {
	var out strings.Builder
	log := slog.New(slog.NewTextHandler(&out, nil))
	clock := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	l := &Limiter{Every: time.Minute, now: func() time.Time { return clock }}
	for range 4756 { // a full disk's 50 s of refusals
		l.Log(log, slog.LevelWarn, "events not stored", "err", "disk full")
		clock = clock.Add(10 * time.Millisecond)
	}
	l.Log(log, slog.LevelWarn, "another failure")
	if n := strings.Count(out.String(), "events not stored"); n != 1 {
		t.Fatalf("%d lines in 47.56 s, want 1:\n%s", n, out.String())
	}
	clock = clock.Add(time.Minute)
	l.Log(log, slog.LevelWarn, "events not stored", "err", "disk full")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[2], "repeated=4755") || !strings.Contains(lines[1], "another failure") {
		t.Fatalf("got:\n%s", out.String())
	}
}
