package audit

import (
	"context"
	"strings"
	"testing"
	"time"
)

// listedKeys is ZooKeeper's key days as the audit sees them.
type listedKeys []string

func (l listedKeys) ListDayKeys(context.Context) ([]string, error) { return l, nil }

// The shared keys check flags a key past its 48 h, a key for a day still
// to come, and a node that names no day; it passes today's and yesterday's.
func TestSharedKeysCheck(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	a := &Auditor{SharedKeys: listedKeys{"2026-11-29", "2026-11-30", "2026-12-01", "2026-12-02", "2099-01-01", "junk"}}
	c := a.checkSharedKeys(context.Background(), now)
	got := strings.Join(c.Findings, "\n")
	for _, want := range []string{"the shared key of 2026-11-29 is past its lifetime", "a shared key exists for 2099-01-01", `a key node "junk"`} {
		if !strings.Contains(got, want) {
			t.Errorf("findings %q lack %q", got, want)
		}
	}
	if c.OK || len(c.Findings) != 3 {
		t.Errorf("OK %v with %d findings, want false and 3:\n%s", c.OK, len(c.Findings), got)
	}
	a.SharedKeys = listedKeys{"2026-11-30", "2026-12-01", "2026-12-02"}
	if c := a.checkSharedKeys(context.Background(), now); !c.OK {
		t.Errorf("keys within their lifetime flagged: %v", c.Findings)
	}
}
