package dashboard

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Role decides which pages and downloads a user sees.
type Role string

// The dashboard roles (docs/operations.md).
const (
	Merchandiser Role = "merchandiser"
	UX           Role = "ux"
	Manager      Role = "manager"
	Admin        Role = "admin"
)

// Roles lists every role.
var Roles = []Role{Merchandiser, UX, Manager, Admin}

// ErrBadLogin is the one answer to a wrong name or password.
var ErrBadLogin = errors.New("wrong name or password")

// User is a dashboard account.
type User struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
	Hash []byte `json:"bcrypt"`
}

// Users is the account file (<data-dir>/users.json, 0600): names, roles and
// bcrypt hashes.
type Users struct {
	path string
	mu   sync.Mutex
	m    map[string]User
	// dummy is compared against for unknown names, so that a wrong name
	// takes as long as a wrong password.
	dummy []byte
	// loaded is the file's modification time and size when last read: a
	// user added by `herd user add` (another process) is seen at the next
	// login without a restart.
	loadedMod  time.Time
	loadedSize int64
}

// OpenUsers reads the account file; a missing file is an empty set.
func OpenUsers(path string) (*Users, error) {
	dummy, err := bcrypt.GenerateFromPassword([]byte("no such user"), bcrypt.DefaultCost)
	if err != nil {
		return nil, err
	}
	u := &Users{path: path, m: map[string]User{}, dummy: dummy}
	if err := u.reloadLocked(); err != nil {
		return nil, err
	}
	return u, nil
}

// reloadLocked reads the file again if it changed since it was last read.
func (u *Users) reloadLocked() error {
	st, err := os.Stat(u.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("users: %w", err)
	case st.ModTime().Equal(u.loadedMod) && st.Size() == u.loadedSize:
		return nil
	}
	data, err := os.ReadFile(u.path)
	if err != nil {
		return fmt.Errorf("users: %w", err)
	}
	var list []User
	if err := json.Unmarshal(data, &list); err != nil {
		return fmt.Errorf("users %s: %w", u.path, err)
	}
	m := make(map[string]User, len(list))
	for _, x := range list {
		m[x.Name] = x
	}
	u.m, u.loadedMod, u.loadedSize = m, st.ModTime(), st.Size()
	return nil
}

// Add creates or replaces a user. Passwords have at least 10 characters.
func (u *Users) Add(name string, role Role, password string) error {
	if !validName(name) {
		return fmt.Errorf("user name %q: 1 to 64 of a-z, 0-9, '.', '_', '-' and '@'", name)
	}
	if !slices.Contains(Roles, role) {
		return fmt.Errorf("role %q: want one of %v", role, Roles)
	}
	if len(password) < 10 || len(password) > 72 {
		return errors.New("password: 10 to 72 characters")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.reloadLocked(); err != nil {
		return err
	}
	u.m[name] = User{Name: name, Role: role, Hash: hash}
	return u.saveLocked()
}

// Check returns the user whose name and password match.
func (u *Users) Check(name, password string) (User, error) {
	u.mu.Lock()
	if err := u.reloadLocked(); err != nil {
		u.mu.Unlock()
		return User{}, err
	}
	x, ok := u.m[name]
	u.mu.Unlock()
	hash := x.Hash
	if !ok {
		hash = u.dummy
	}
	err := bcrypt.CompareHashAndPassword(hash, []byte(password))
	if !ok || err != nil {
		return User{}, ErrBadLogin
	}
	return x, nil
}

// Has reports whether name is an account (reloading the file if it changed).
func (u *Users) Has(name string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.reloadLocked(); err != nil {
		return false
	}
	_, ok := u.m[name]
	return ok
}

// Len is the number of users.
func (u *Users) Len() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.m)
}

func (u *Users) saveLocked() error {
	list := make([]User, 0, len(u.m))
	for _, x := range u.m {
		list = append(list, x)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(u.path), 0o700); err != nil {
		return fmt.Errorf("users: %w", err)
	}
	tmp := u.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("users: %w", err)
	}
	return os.Rename(tmp, u.path)
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '@') {
			return false
		}
	}
	return true
}
