package coord_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/herd-analytics/herd/ingest/keyring"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
	"github.com/herd-analytics/herd/internal/clickhouse/local"
	"github.com/herd-analytics/herd/internal/coord"
)

// zooKeeper starts a real ZooKeeper (Debian's 3.8) for one test.
func zooKeeper(t *testing.T) []string {
	t.Helper()
	z, err := local.StartZooKeeper(context.Background(), filepath.Join(t.TempDir(), "zk"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(z.Stop)
	return []string{"127.0.0.1:" + strconv.Itoa(z.Port)}
}

func dial(t *testing.T, servers []string, secret []byte) *coord.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := coord.Dial(ctx, coord.Config{Servers: servers, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestLockAcrossSessions: one holder at a time; a released or dead holder's
// lock goes to the next, and the old holder learns it lost it.
func TestLockAcrossSessions(t *testing.T) {
	chtest.Servers(t)
	servers := zooKeeper(t)
	ctx := context.Background()
	a, b := dial(t, servers, nil), dial(t, servers, nil)
	la, ok, err := a.TryLock(ctx, "publisher")
	if err != nil || !ok {
		t.Fatalf("first TryLock: %v %v", ok, err)
	}
	if _, ok, err := b.TryLock(ctx, "publisher"); err != nil || ok {
		t.Fatalf("second TryLock while held: %v %v", ok, err)
	}
	if err := la.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	if err := la.Release(ctx); err != nil {
		t.Fatal(err)
	}
	lb, ok, err := b.TryLock(ctx, "publisher")
	if err != nil || !ok {
		t.Fatalf("TryLock after release: %v %v", ok, err)
	}
	if err := la.Renew(ctx); !errors.Is(err, coord.ErrLockLost) {
		t.Errorf("stale holder's Renew: %v, want ErrLockLost", err)
	}
	if err := la.Release(ctx); !errors.Is(err, coord.ErrLockLost) {
		t.Errorf("stale holder's Release: %v, want ErrLockLost", err)
	}
	// A holder whose session ends (a process that died) frees the lock.
	b.Close()
	c := dial(t, servers, nil)
	if _, ok, err := c.TryLock(ctx, "publisher"); err != nil || !ok {
		t.Fatalf("TryLock after the holder's session ended: %v %v", ok, err)
	}
	_ = lb
}

// TestDayKeysSharedAndDestroyed: two ingest nodes' key rings, each with its
// own ZooKeeper session and key file, give the same pseudonyms, also when
// both ask for a new day at once; a node with another secret cannot use
// the day's key, and one without a secret cannot read it. 48 h after its
// day, a key is gone from ZooKeeper and from both files.
func TestDayKeysSharedAndDestroyed(t *testing.T) {
	chtest.Servers(t)
	servers := zooKeeper(t)
	ctx := context.Background()
	secret := []byte("0123456789abcdef0123456789abcdef")
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	dir := t.TempDir()
	var rings []*keyring.KeyRing
	for i := range 2 {
		c := dial(t, servers, secret)
		dk, err := c.DayKeys(secret)
		if err != nil {
			t.Fatal(err)
		}
		k, err := keyring.OpenShared(filepath.Join(dir, strconv.Itoa(i), "day-keys.json"), clock, dk)
		if err != nil {
			t.Fatal(err)
		}
		rings = append(rings, k)
	}
	pseudonyms := make([]uint64, 2)
	var wg sync.WaitGroup
	for i, k := range rings {
		wg.Go(func() {
			v, err := k.Pseudonym(now, "demo", keyring.PurposeAnalytics, "203.0.113.7", "Mozilla/5.0")
			if err != nil {
				t.Error(err)
			}
			pseudonyms[i] = v
		})
	}
	wg.Wait()
	if pseudonyms[0] != pseudonyms[1] || pseudonyms[0] == 0 {
		t.Fatalf("two nodes, same shopper and day: pseudonyms %x, want one", pseudonyms)
	}

	other := dial(t, servers, []byte("another secret, another shop....!"))
	odk, err := other.DayKeys([]byte("another secret, another shop....!"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := odk.Claim(ctx, "2026-11-25", [32]byte{1}); !errors.Is(err, coord.ErrWrongSecret) {
		t.Errorf("claim with another secret: %v, want ErrWrongSecret", err)
	}
	auditor := dial(t, servers, nil)
	days, err := auditor.ListDayKeys(ctx)
	if err != nil || len(days) != 1 || days[0] != "2026-11-25" {
		t.Fatalf("days listed without the secret: %v %v", days, err)
	}
	if _, err := auditor.DayKeys(nil); err == nil {
		t.Error("day keys opened without a secret")
	}
	// Without the secret nobody can delete a day's key, nor the directory,
	// nor open them up: every level is the secret's, the world's to read.
	owner := dial(t, servers, secret)
	for _, p := range []string{"/herd/day-keys/2026-11-25", "/herd/day-keys", "/herd"} {
		if err := auditor.DeleteForTest(ctx, p); !errors.Is(err, zk.ErrNoAuth) && !errors.Is(err, zk.ErrNotEmpty) {
			t.Errorf("delete %s without the secret: %v, want refused", p, err)
		}
		acl, err := owner.ACLForTest(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		digest, open := false, false
		for _, a := range acl {
			digest = digest || a.Scheme == "digest"
			open = open || a.Scheme == "world" && a.Perms&(zk.PermDelete|zk.PermWrite|zk.PermAdmin) != 0
		}
		if !digest || open {
			t.Errorf("%s's ACL %+v: want the secret's digest, the world reading only", p, acl)
		}
	}

	// 47 h after the day ended the key is still there; at 48 h it is gone
	// from ZooKeeper and from every node's file.
	mu.Lock()
	now = now.Add(12*time.Hour + 47*time.Hour)
	mu.Unlock()
	for _, k := range rings {
		if err := k.Expire(); err != nil {
			t.Fatal(err)
		}
	}
	if days, _ := auditor.ListDayKeys(ctx); len(days) != 1 {
		t.Fatalf("at 47 h the shared keys are %v, want the day's", days)
	}
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	if err := rings[0].Expire(); err != nil {
		t.Fatal(err)
	}
	if days, err := auditor.ListDayKeys(ctx); err != nil || len(days) != 0 {
		t.Fatalf("at 48 h ZooKeeper holds keys of %v (%v), want none", days, err)
	}
	if err := rings[1].Expire(); err != nil { // the znode is gone already: no error
		t.Fatal(err)
	}
	for i := range rings {
		days, expired, _, _, err := keyring.InspectKeyFile(filepath.Join(dir, strconv.Itoa(i), "day-keys.json"), clock())
		if err != nil || len(days) != 0 || len(expired) != 0 {
			t.Errorf("node %d's key file at 48 h: days %v, expired %v, %v", i, days, expired, err)
		}
	}
}

func TestReadSecret(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := "8f1c0e5a0c1b2d3e4f5061728394a5b6c7d8e9f00112233445566778899aabbc\n"
	if s, err := coord.ReadSecret(write("good", good, 0o600)); err != nil || len(s) != 32 {
		t.Errorf("good secret: %d bytes, %v", len(s), err)
	}
	for name, c := range map[string]struct {
		content string
		mode    os.FileMode
	}{
		"world-readable": {good, 0o644},
		"short":          {"abcd", 0o600},
		"not hex":        {"zz" + good[2:], 0o600},
	} {
		if _, err := coord.ReadSecret(write(name, c.content, c.mode)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := coord.ReadSecret(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file accepted")
	}
}
