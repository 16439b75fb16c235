package keyring

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestPseudonymsPerDaySiteAndPurpose(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	k, err := Open("", func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	ip, ua := "203.0.113.7", "Mozilla/5.0"
	p := func(day time.Time, site, purpose string, parts ...string) uint64 {
		v, err := k.Pseudonym(day, site, purpose, parts...)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	a := p(now, "demo", PurposeAnalytics, ip, ua)
	if b := p(now.Add(-11*time.Hour), "demo", PurposeAnalytics, ip, ua); a != b {
		t.Fatal("same day, same inputs: different pseudonyms")
	}
	if p(now.Add(-24*time.Hour), "demo", PurposeAnalytics, ip, ua) == a {
		t.Fatal("next day gives the same pseudonym")
	}
	if p(now, "other", PurposeAnalytics, ip, ua) == a {
		t.Fatal("another site gives the same pseudonym")
	}
	if p(now, "demo", PurposeSecurity, ip, ua) == a {
		t.Fatal("another purpose gives the same pseudonym")
	}
	// ip‖0‖ua is not ip+ua run together.
	if p(now, "demo", PurposeAnalytics, "203.0.113.7M", "ozilla/5.0") == a {
		t.Fatal("field boundary ignored")
	}
	k2, _ := Open("", func() time.Time { return now })
	if v, _ := k2.Pseudonym(now, "demo", PurposeAnalytics, ip, ua); v == a {
		t.Fatal("a different key ring (key) gives the same pseudonym")
	}
}

func TestKeyFileKeepsTheDayAndDestroysOldKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	k, err := Open(path, clock)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := k.Pseudonym(now, "demo", PurposeAnalytics, "x")
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", err, st)
	}
	// A restart keeps the day's continuity.
	k2, err := Open(path, clock)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := k2.Pseudonym(now, "demo", PurposeAnalytics, "x"); a != b {
		t.Fatal("restart changed today's pseudonym")
	}
	// 47 h after the day ended the key is still there (sessions across
	// midnight); at 48 h it is gone, from memory and from the file.
	now = time.Date(2026, 11, 27, 23, 59, 0, 0, time.UTC)
	if err := k2.Expire(); err != nil {
		t.Fatal(err)
	}
	if days := k2.Days(); len(days) != 1 || days[0] != "2026-11-25" {
		t.Fatalf("days after 47 h: %v", days)
	}
	now = time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	if err := k2.Expire(); err != nil {
		t.Fatal(err)
	}
	if days := k2.Days(); len(days) != 0 {
		t.Fatalf("days after 48 h: %v", days)
	}
	k3, err := Open(path, clock)
	if err != nil {
		t.Fatal(err)
	}
	if len(k3.Days()) != 0 {
		t.Fatal("destroyed key still in the file")
	}
	// Asking for that day again (an import) makes a new, ephemeral key:
	// the old pseudonyms cannot be recomputed.
	if c, _ := k3.Pseudonym(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), "demo", PurposeAnalytics, "x"); c == a {
		t.Fatal("destroyed key came back")
	}
	if len(k3.Days()) != 0 {
		t.Fatal("an ephemeral import key was persisted")
	}
}

func TestNoKeyForAFutureDay(t *testing.T) {
	now := time.Date(2026, 11, 25, 23, 58, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "keys.json")
	k, err := Open(path, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	// Within the skew (two minutes to midnight): tomorrow is allowed.
	if _, err := k.Pseudonym(now.Add(3*time.Minute), "demo", PurposeAnalytics, "a"); err != nil {
		t.Fatalf("within the skew: %v", err)
	}
	if _, err := k.Pseudonym(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), "demo", PurposeAnalytics, "a"); !errors.Is(err, ErrFutureDay) {
		t.Fatalf("2030: %v, want ErrFutureDay", err)
	}
	days, _, future, _, err := InspectKeyFile(path, now)
	if err != nil || len(future) != 0 || slices.Contains(days, "2030-01-01") {
		t.Fatalf("key file days %v, future %v: %v", days, future, err)
	}
}
