package ingest

import (
	"testing"
	"time"
)

func TestSessionsSplitAfterInactivity(t *testing.T) {
	s := NewSessions(30 * time.Minute)
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	a := s.Touch(1, t0)
	if s.Touch(1, t0.Add(29*time.Minute)) != a {
		t.Fatal("split within 30 min")
	}
	if s.Touch(1, t0.Add(58*time.Minute)) != a {
		t.Fatal("split although active every 29 min")
	}
	if b := s.Touch(1, t0.Add(89*time.Minute)); b == a {
		t.Fatal("no split after 31 min of inactivity")
	}
	if s.Touch(2, t0) == a {
		t.Fatal("two visitors share a session")
	}
}
