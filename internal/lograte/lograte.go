// Package lograte keeps a repeated failure from flooding the log: a
// refusal that repeats on every request (a full disk, ClickHouse away) is
// logged once per interval, with how many were left out since.
package lograte

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Limiter logs each message at most once per Every (default a minute); the
// zero value is ready to use.
type Limiter struct {
	Every time.Duration
	// now is the clock (tests); nil is time.Now.
	now func() time.Time

	mu   sync.Mutex
	seen map[string]*entry
}

type entry struct {
	last    time.Time
	dropped int
}

// Log logs msg at level through log, unless the same msg was logged within
// Every: then it is counted, and the next line that goes out says how many
// ("repeated", n).
func (l *Limiter) Log(log *slog.Logger, level slog.Level, msg string, args ...any) {
	now := time.Now
	if l.now != nil {
		now = l.now
	}
	every := l.Every
	if every == 0 {
		every = time.Minute
	}
	t := now()
	l.mu.Lock()
	if l.seen == nil {
		l.seen = map[string]*entry{}
	}
	e := l.seen[msg]
	if e == nil {
		e = &entry{}
		l.seen[msg] = e
	}
	if !e.last.IsZero() && t.Sub(e.last) < every {
		e.dropped++
		l.mu.Unlock()
		return
	}
	dropped := e.dropped
	e.last, e.dropped = t, 0
	l.mu.Unlock()
	if dropped > 0 {
		args = append(args, "repeated", dropped)
	}
	log.Log(context.Background(), level, msg, args...)
}
