package coord

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/go-zookeeper/zk"
)

// ErrWrongSecret is returned when a day's key was wrapped with another
// secret than this node's: every ingest node needs the same secret file.
var ErrWrongSecret = errors.New("day key wrapped with another secret")

// DayKeys is where the ingest nodes of a cluster find each day's pseudonym
// key. The first node that needs a day's key makes it at random and offers
// it; ZooKeeper's create is atomic, so every other node gets that one.
//
// A key is stored wrapped (AES-256-GCM, the day as associated data) with a
// key derived from the nodes' shared secret, in a znode only holders of the
// secret may read (digest ACL). ZooKeeper's own operators and ClickHouse,
// which share the ensemble, see neither the key nor, without the secret,
// anything to unwrap. Deleting a day's znode (Delete) is its destruction:
// the secret alone derives no key (docs/privacy.md, threat model).
type DayKeys struct {
	c    *Conn
	dir  string
	aead cipher.AEAD
}

// DayKeys opens the shared day keys; the connection must have been dialled
// with the secret.
func (c *Conn) DayKeys(secret []byte) (*DayKeys, error) {
	if len(secret) < 32 || c.private == nil {
		return nil, errors.New("day keys: a secret of at least 32 bytes is required, and the connection must be dialled with it")
	}
	block, err := aes.NewCipher(derive(secret, "herd day-key wrap"))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &DayKeys{c: c, dir: c.path("day-keys"), aead: aead}, nil
}

// Claim offers key as day's key and returns the day's key: key itself if
// none existed, else the one another node made first.
func (d *DayKeys) Claim(ctx context.Context, day string, key [32]byte) ([32]byte, error) {
	// The directory: this secret's, read by all (the audit lists days),
	// created under and deleted from by nobody else.
	if err := d.c.ensure(ctx, d.dir, append(slices.Clone(d.c.private), zk.WorldACL(zk.PermRead)...)); err != nil {
		return [32]byte{}, err
	}
	nonce := make([]byte, d.aead.NonceSize(), d.aead.NonceSize()+len(key)+d.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return [32]byte{}, err
	}
	wrapped := d.aead.Seal(nonce, nonce, key[:], []byte(day))
	p := d.dir + "/" + day
	err := d.c.call(ctx, func() error {
		_, err := d.c.zk.Create(p, wrapped, 0, d.c.private)
		return err
	})
	switch {
	case err == nil:
		return key, nil
	case errors.Is(err, zk.ErrNoAuth):
		// The directory is another secret's.
		return [32]byte{}, fmt.Errorf("day key %s: %w", day, ErrWrongSecret)
	case !errors.Is(err, zk.ErrNodeExists):
		return [32]byte{}, fmt.Errorf("day key %s: %w", day, err)
	}
	err = d.c.call(ctx, func() error {
		var err error
		wrapped, _, err = d.c.zk.Get(p)
		return err
	})
	if errors.Is(err, zk.ErrNoAuth) {
		// The znode's ACL is another secret's.
		err = ErrWrongSecret
	}
	if err != nil {
		return [32]byte{}, fmt.Errorf("day key %s: %w", day, err)
	}
	n := d.aead.NonceSize()
	if len(wrapped) < n {
		return [32]byte{}, fmt.Errorf("day key %s: %w", day, ErrWrongSecret)
	}
	plain, err := d.aead.Open(nil, wrapped[:n], wrapped[n:], []byte(day))
	if err != nil || len(plain) != 32 {
		return [32]byte{}, fmt.Errorf("day key %s: %w", day, ErrWrongSecret)
	}
	return [32]byte(plain), nil
}

// Delete destroys day's key; a key already gone is no error.
func (d *DayKeys) Delete(ctx context.Context, day string) error {
	err := d.c.call(ctx, func() error { return d.c.zk.Delete(d.dir+"/"+day, -1) })
	if err != nil && !errors.Is(err, zk.ErrNoNode) {
		return fmt.Errorf("destroy day key %s: %w", day, err)
	}
	return nil
}

// Days lists the days whose keys exist, oldest first.
func (d *DayKeys) Days(ctx context.Context) ([]string, error) {
	var days []string
	err := d.c.call(ctx, func() error {
		var err error
		days, _, err = d.c.zk.Children(d.dir)
		return err
	})
	if err != nil && !errors.Is(err, zk.ErrNoNode) {
		return nil, fmt.Errorf("day keys: %w", err)
	}
	sort.Strings(days)
	return days, nil
}

// ListDayKeys lists the days whose keys exist without the secret (an
// auditor's view: names are readable by all, contents are not).
func (c *Conn) ListDayKeys(ctx context.Context) ([]string, error) {
	return (&DayKeys{c: c, dir: c.path("day-keys")}).Days(ctx)
}

// digestCredentials are the ZooKeeper digest user and password of a secret's
// holders.
func digestCredentials(secret []byte) (user, password string) {
	return "herd-ingest", hex.EncodeToString(derive(secret, "herd zookeeper digest"))
}

func derive(secret []byte, label string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// ReadSecret reads the ingest nodes' shared secret: at least 64 hex digits
// in a file no one but its owner may read. Make one with
// `openssl rand -hex 32 > FILE && chmod 600 FILE` and copy it to every
// ingest node.
func ReadSecret(file string) ([]byte, error) {
	st, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("secret file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secret file %s: mode %v, want 0600 (readable by its owner only)", file, st.Mode().Perm())
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("secret file: %w", err)
	}
	secret, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(secret) < 32 {
		return nil, fmt.Errorf("secret file %s: want at least 64 hex digits (openssl rand -hex 32)", file)
	}
	return secret, nil
}
