// Package keyring holds the pseudonym keys: one random key per UTC day,
// per-site and per-purpose subkeys derived from it, a 0600 file so a restart
// keeps the day, and destruction KeyLifetime after the day ends.
package keyring

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/herd-analytics/herd/internal/privacy"
)

// Purposes a pseudonym can be derived for. Pseudonyms of different purposes
// come from different subkeys and cannot be joined.
const (
	PurposeAnalytics = "analytics"
	PurposeSecurity  = "security"
)

// KeyLifetime is how long after its UTC day ends a day key is destroyed
// (docs/privacy.md): the bound the privacy policy states. After its day a
// key serves only imports of that day's history.
const KeyLifetime = privacy.KeyLifetime

// MaxSkew is how far ahead of this server's clock an event may be dated
// (clients' and servers' clocks differ a little); no key is ever made for a
// day beyond it, so no key outlives its lifetime by being made early.
const MaxSkew = 5 * time.Minute

// SharedTimeout bounds one call to the shared key store: an event waits
// that long at most for its day's key (once per day and node).
const SharedTimeout = 5 * time.Second

// Shared is where the ingest nodes of a cluster find each day's key
// (coord.DayKeys keeps them in ZooKeeper). Claim offers a fresh random key
// for day and returns the day's key, the offered one or one another node
// made first.
type Shared interface {
	Claim(ctx context.Context, day string, key [32]byte) ([32]byte, error)
	Delete(ctx context.Context, day string) error
	Days(ctx context.Context) ([]string, error)
}

// ErrFutureDay is returned for a day after today (as of now plus MaxSkew).
var ErrFutureDay = errors.New("day in the future")

// KeyRing holds one random 32-byte key per UTC day and derives per-site,
// per-purpose subkeys from it. Without the key nobody, herd's operators
// included, can test which IP and user agent produced a pseudonym.
//
// Keys live in memory and in a 0600 file so that a restart keeps the day's
// pseudonyms continuous. Keys for days long past (history imports) are made
// on demand, kept in memory only, and forgotten soon after.
type KeyRing struct {
	path   string
	now    func() time.Time
	shared Shared // nil: keys are this node's own

	mu        sync.Mutex
	keys      map[string][32]byte // day "2006-01-02" → key, persisted
	ephemeral map[string]ephemeralKey
	subkeys   map[subkeyID]*sync.Pool // of *macState (HMAC with the subkey)
	// The last day asked for, as a day number and as its name.
	lastDay     int64
	lastDayName string
}

// macState is a pooled HMAC and a scratch buffer for its input.
type macState struct {
	h   hash.Hash
	buf []byte
}

type ephemeralKey struct {
	key      [32]byte
	lastUsed time.Time
}

type subkeyID struct{ day, site, purpose string }

// Open loads the key file at path (created if missing; "" keeps keys
// in memory only) and destroys keys past their lifetime.
func Open(path string, now func() time.Time) (*KeyRing, error) {
	return OpenShared(path, now, nil)
}

// OpenShared is Open for one of several ingest nodes: each day's key comes
// from shared (the first node to need it makes it), the file keeps a copy
// for restarts, and Expire destroys expired keys there too. Keys for days
// past their lifetime (history imports) stay this node's own.
func OpenShared(path string, now func() time.Time, shared Shared) (*KeyRing, error) {
	if now == nil {
		now = time.Now
	}
	k := &KeyRing{path: path, now: now, shared: shared, keys: map[string][32]byte{}, ephemeral: map[string]ephemeralKey{}, subkeys: map[subkeyID]*sync.Pool{}}
	if path != "" {
		data, err := os.ReadFile(path)
		switch {
		case err == nil:
			var stored map[string]string
			if err := json.Unmarshal(data, &stored); err != nil {
				return nil, fmt.Errorf("key file %s: %w", path, err)
			}
			for day, hexKey := range stored {
				b, err := hex.DecodeString(hexKey)
				if err != nil || len(b) != 32 {
					return nil, fmt.Errorf("key file %s: bad key for %s", path, day)
				}
				k.keys[day] = [32]byte(b)
			}
		case os.IsNotExist(err):
		default:
			return nil, fmt.Errorf("key file: %w", err)
		}
	}
	if err := k.Expire(); err != nil {
		return nil, err
	}
	return k, nil
}

func dayOf(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// expired reports whether the key of day must not exist at now.
func expired(day string, now time.Time) bool {
	d, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return true
	}
	return !now.Before(d.Add(24*time.Hour + KeyLifetime))
}

// Expire destroys persisted keys past their lifetime (in the shared store
// too) and ephemeral keys unused for ten minutes. Call it periodically (the
// ingest server does, every minute).
func (k *KeyRing) Expire() error {
	err := k.expireLocal()
	if k.shared == nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), SharedTimeout)
	defer cancel()
	days, serr := k.shared.Days(ctx)
	for _, day := range days {
		if serr == nil && expired(day, k.now()) {
			serr = k.shared.Delete(ctx, day)
		}
	}
	return errors.Join(err, serr)
}

func (k *KeyRing) expireLocal() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	changed := false
	for day, key := range k.keys {
		if expired(day, now) {
			clear(key[:])
			delete(k.keys, day)
			changed = true
		}
	}
	for day, e := range k.ephemeral {
		if now.Sub(e.lastUsed) > 10*time.Minute {
			delete(k.ephemeral, day)
		}
	}
	for id := range k.subkeys {
		if _, ok := k.keys[id.day]; !ok {
			if _, ok := k.ephemeral[id.day]; !ok {
				delete(k.subkeys, id)
			}
		}
	}
	if changed {
		return k.saveLocked()
	}
	return nil
}

// Days lists the days whose keys exist (persisted ones), oldest first.
func (k *KeyRing) Days() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var days []string
	for d := range k.keys {
		days = append(days, d)
	}
	sort.Strings(days)
	return days
}

func (k *KeyRing) saveLocked() error {
	if k.path == "" {
		return nil
	}
	stored := make(map[string]string, len(k.keys))
	for day, key := range k.keys {
		stored[day] = hex.EncodeToString(key[:])
	}
	data, err := json.Marshal(stored)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(k.path), 0o700); err != nil {
		return fmt.Errorf("key file: %w", err)
	}
	tmp := k.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("key file: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("key file: %w", err)
	}
	return os.Rename(tmp, k.path)
}

// mac returns an HMAC-SHA256 keyed with the subkey of (day, site, purpose),
// from a pool; put it back with the returned func.
func (k *KeyRing) mac(day time.Time, site, purpose string) (*macState, *sync.Pool, error) {
	k.mu.Lock()
	if n := day.Unix() / 86400; n != k.lastDay || k.lastDayName == "" {
		k.lastDay, k.lastDayName = n, dayOf(day)
	}
	id := subkeyID{k.lastDayName, site, purpose}
	pool, ok := k.subkeys[id]
	if !ok {
		dk, err := k.dayKeyLocked(id.day)
		if err != nil {
			k.mu.Unlock()
			return nil, nil, err
		}
		m := hmac.New(sha256.New, dk[:])
		m.Write([]byte("herd/v1\x00"))
		m.Write([]byte(site))
		m.Write([]byte{0})
		m.Write([]byte(purpose))
		sub := m.Sum(nil)
		pool = &sync.Pool{New: func() any { return &macState{h: hmac.New(sha256.New, sub)} }}
		k.subkeys[id] = pool
	}
	if e, ok := k.ephemeral[id.day]; ok {
		e.lastUsed = k.now()
		k.ephemeral[id.day] = e
	}
	k.mu.Unlock()
	m := pool.Get().(*macState)
	m.h.Reset()
	return m, pool, nil
}

func (k *KeyRing) dayKeyLocked(day string) ([32]byte, error) {
	if key, ok := k.keys[day]; ok {
		return key, nil
	}
	if e, ok := k.ephemeral[day]; ok {
		return e.key, nil
	}
	var key [32]byte
	if day > dayOf(k.now().Add(MaxSkew)) {
		return key, fmt.Errorf("day key for %s: %w", day, ErrFutureDay)
	}
	if _, err := rand.Read(key[:]); err != nil {
		return key, fmt.Errorf("day key: %w", err)
	}
	if expired(day, k.now()) {
		// History import: a key that must not outlive the import.
		k.ephemeral[day] = ephemeralKey{key: key, lastUsed: k.now()}
		return key, nil
	}
	if k.shared != nil {
		ctx, cancel := context.WithTimeout(context.Background(), SharedTimeout)
		shared, err := k.shared.Claim(ctx, day, key)
		cancel()
		clear(key[:])
		if err != nil {
			return shared, fmt.Errorf("day key: %w", err)
		}
		key = shared
	}
	k.keys[day] = key
	if err := k.saveLocked(); err != nil {
		delete(k.keys, day)
		return key, err
	}
	return key, nil
}

// Pseudonym returns the first 8 bytes of HMAC-SHA256(k(site, purpose, day),
// part₀ ‖ 0 ‖ part₁ ‖ 0 …) as a number.
func (k *KeyRing) Pseudonym(day time.Time, site, purpose string, parts ...string) (uint64, error) {
	m, pool, err := k.mac(day, site, purpose)
	if err != nil {
		return 0, err
	}
	defer func() {
		clear(m.buf) // the raw inputs do not wait in the pool
		pool.Put(m)
	}()
	m.buf = m.buf[:0]
	for i, p := range parts {
		if i > 0 {
			m.buf = append(m.buf, 0)
		}
		m.buf = append(m.buf, p...)
	}
	m.h.Write(m.buf)
	var sum [sha256.Size]byte
	return binary.BigEndian.Uint64(m.h.Sum(sum[:0])), nil
}

// EventID derives a stable 16-byte id from a sender's own message id, so
// that a retried message gets the same id and counts once.
func (k *KeyRing) EventID(day time.Time, site, messageID string) ([16]byte, error) {
	m, pool, err := k.mac(day, site, "event-id")
	if err != nil {
		return [16]byte{}, err
	}
	defer func() {
		clear(m.buf)
		pool.Put(m)
	}()
	m.buf = append(m.buf[:0], messageID...)
	m.h.Write(m.buf)
	var sum [sha256.Size]byte
	var id [16]byte
	copy(id[:], m.h.Sum(sum[:0]))
	id[6] = id[6]&0x0f | 0x80 // UUID version 8: custom
	id[8] = id[8]&0x3f | 0x80
	return id, nil
}

// InspectKeyFile reads a key file as the audit sees it: the days it holds
// keys for, those among them past their lifetime at now, those for days
// after today (a key made early would outlive its lifetime), and its
// permissions.
func InspectKeyFile(path string, now time.Time) (days, expiredDays, futureDays []string, mode os.FileMode, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, nil, 0, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, nil, 0, err
	}
	var stored map[string]string
	if err := json.Unmarshal(data, &stored); err != nil {
		return nil, nil, nil, 0, fmt.Errorf("key file %s: %w", path, err)
	}
	tomorrow := dayOf(now.Add(MaxSkew))
	for day := range stored {
		days = append(days, day)
		if expired(day, now) {
			expiredDays = append(expiredDays, day)
		}
		if day > tomorrow {
			futureDays = append(futureDays, day)
		}
	}
	sort.Strings(days)
	sort.Strings(expiredDays)
	sort.Strings(futureDays)
	return days, expiredDays, futureDays, st.Mode().Perm(), nil
}
