package ingest

import (
	"sync"
	"time"
)

// Sessions splits a visitor's events into sessions after 30 minutes of
// inactivity. State is in memory only; a restart starts new sessions.
type Sessions struct {
	Gap time.Duration

	mu      sync.Mutex
	last    map[uint64]sessionState
	touches int
}

type sessionState struct {
	id   uint64
	seen time.Time
}

// NewSessions tracks sessions with the given inactivity gap.
func NewSessions(gap time.Duration) *Sessions {
	return &Sessions{Gap: gap, last: map[uint64]sessionState{}}
}

// Active reports the session visitor is in at t, if any.
func (s *Sessions) Active(visitor uint64, t time.Time) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.last[visitor]
	if !ok || t.Sub(st.seen) > s.Gap {
		return 0, false
	}
	return st.id, true
}

// Touch records activity of visitor at t and returns its session id.
func (s *Sessions) Touch(visitor uint64, t time.Time) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.last[visitor]
	if !ok || t.Sub(st.seen) > s.Gap {
		st.id = mix64(visitor ^ uint64(t.UnixNano()))
	}
	if t.After(st.seen) {
		st.seen = t
	}
	s.last[visitor] = st
	s.touches++
	if s.touches%65536 == 0 {
		for v, x := range s.last {
			if t.Sub(x.seen) > s.Gap {
				delete(s.last, v)
			}
		}
	}
	return st.id
}

// mix64 is SplitMix64's finalizer: a bijection that spreads bits.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
