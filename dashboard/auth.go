package dashboard

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
)

const (
	sessionCookie = "herd_session"
	sessionTTL    = 12 * time.Hour
	// freeFailures wrong passwords per name and address are answered at
	// once; after that each attempt must wait twice as long, up to a minute.
	// An address trying many names gets freeAddressFailures in all.
	freeFailures        = 5
	freeAddressFailures = 20
	maxLockout          = time.Minute
	// Password checks (bcrypt, ~60 ms of a core each here) run one at a
	// time and at most checksPerSecond on average (bursts of checkBurst)
	// for each account, and as much for all names that are no account
	// together: a login flood from many addresses gets 429s instead of
	// taking the cores from the users who are logged in, and a flood of
	// made-up names does not take the checks of a user who logs in
	// correctly. An account's own attempts wait up to checkWait for a
	// check in turn rather than being refused at once.
	checksPerSecond = 8
	checkBurst      = 16
	checkWait       = 3 * time.Second
)

// bucket is a token bucket of password checks.
type bucket struct {
	tokens float64   // checks allowed now
	filled time.Time // when tokens was last topped up
}

// take takes a token at now, or says how long until one is there.
func (b *bucket) take(now time.Time) time.Duration {
	if b.filled.IsZero() {
		b.tokens = checkBurst
	}
	b.tokens = min(checkBurst, b.tokens+now.Sub(b.filled).Seconds()*checksPerSecond)
	b.filled = now
	if b.tokens < 1 {
		return time.Duration((1 - b.tokens) / checksPerSecond * float64(time.Second))
	}
	b.tokens--
	return 0
}

type session struct {
	user    User
	csrf    string
	expires time.Time
}

type failures struct {
	n     int
	until time.Time
}

// auth holds the sessions (in memory: a restart logs everyone out) and the
// login throttle.
type auth struct {
	users *Users
	log   *slog.Logger
	now   func() time.Time

	mu       sync.Mutex
	sessions map[string]*session
	fails    map[string]*failures // by name and address, and by address ("|" + address)
	forms    map[string]time.Time // login form tokens this server handed out, until they expire
	buckets  map[string]*bucket   // password checks by account; "" for the names that are none
	// checking lets one password check run at a time for accounts, and
	// one for the names that are none: a flood of made-up names never
	// makes an account's check wait behind it.
	checking, checkingUnknown chan struct{}
}

func newAuth(users *Users, log *slog.Logger) *auth {
	return &auth{users: users, log: log, now: time.Now, sessions: map[string]*session{}, fails: map[string]*failures{},
		forms: map[string]time.Time{}, buckets: map[string]*bucket{},
		checking: make(chan struct{}, 1), checkingUnknown: make(chan struct{}, 1)}
}

// lockedOut reports how long key must still wait, locked.
func (a *auth) lockedOutLocked(key string) time.Duration {
	if f := a.fails[key]; f != nil && a.now().Before(f.until) {
		return f.until.Sub(a.now())
	}
	return 0
}

// failLocked counts a wrong password against key; after free failures
// each further one locks key out twice as long as the last, up to a minute.
func (a *auth) failLocked(key string, free int) int {
	f := a.fails[key]
	if f == nil {
		f = &failures{}
		a.fails[key] = f
	}
	if len(a.fails) > maxTracked {
		a.pruneLocked()
	}
	f.n++
	if f.n >= free {
		f.until = a.now().Add(min(time.Second<<min(f.n-free, 10), maxLockout))
	}
	return f.n
}

// takeCheck takes a password check from name's bucket: an account's own
// (account: name is one), or the one all names that are no account share. An account's attempt
// waits its turn up to checkWait; the others are refused at once.
func (a *auth) takeCheck(name string, account bool) bool {
	key := ""
	if account {
		key = name
	}
	deadline := a.now().Add(checkWait)
	for {
		a.mu.Lock()
		b := a.buckets[key]
		if b == nil {
			b = &bucket{}
			a.buckets[key] = b
		}
		wait := b.take(a.now())
		a.mu.Unlock()
		if wait == 0 {
			return true
		}
		if key == "" || a.now().Add(wait).After(deadline) {
			return false
		}
		time.Sleep(wait)
	}
}

// refusedLoginDelay holds every refused login's answer: a person retyping
// a password does not notice, a flood of attempts slows to what its
// connections can wait for instead of what the cores can answer. An
// address that is locked out waits lockedOutDelay for every answer of the
// login page, the form included.
const (
	refusedLoginDelay = 300 * time.Millisecond
	lockedOutDelay    = 2 * time.Second
)

func refused(err error) error {
	time.Sleep(refusedLoginDelay)
	return err
}

// lockedOutLonger holds an answer to a locked-out address a while longer.
func lockedOutLonger(err error) error {
	time.Sleep(lockedOutDelay - refusedLoginDelay)
	return refused(err)
}

// addressLockedOut reports whether c's address is locked out.
func (a *auth) addressLockedOut(c *fiber.Ctx) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lockedOutLocked("|"+c.IP()) > 0
}

// tooMany answers 429 with a Retry-After of wait.
func tooMany(c *fiber.Ctx, wait time.Duration, why string) error {
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(wait/time.Second)+1))
	return fiber.NewError(fiber.StatusTooManyRequests, why)
}

func token() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func secure(c *fiber.Ctx) bool { return c.Protocol() == "https" }

func equal(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// maxTracked bounds the throttle's and the login forms' memory under a flood.
const maxTracked = 50_000

// pruneLocked forgets failures whose lockout is over and form tokens that
// expired; if a flood still fills the maps, it forgets the oldest half.
func (a *auth) pruneLocked() {
	now := a.now()
	for k, f := range a.fails {
		if now.After(f.until) {
			delete(a.fails, k)
		}
	}
	for t, until := range a.forms {
		if now.After(until) {
			delete(a.forms, t)
		}
	}
	for _, m := range []int{len(a.fails), len(a.forms)} {
		if m > maxTracked {
			// Map order is random: this drops about half, whichever.
			n := 0
			for k := range a.fails {
				if n++; n > maxTracked/2 {
					break
				}
				delete(a.fails, k)
			}
			n = 0
			for t := range a.forms {
				if n++; n > maxTracked/2 {
					break
				}
				delete(a.forms, t)
			}
			break
		}
	}
}

// formToken hands out a login form token: random, remembered by this
// server for an hour, good for one login attempt.
func (a *auth) formToken() string {
	t := token()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.forms) > maxTracked {
		a.pruneLocked()
	}
	a.forms[t] = a.now().Add(time.Hour)
	return t
}

// useFormToken reports whether t is a live token of this server, and
// spends it.
func (a *auth) useFormToken(t string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	until, ok := a.forms[t]
	delete(a.forms, t)
	return ok && a.now().Before(until)
}

// sameOrigin: a browser posting the login form from another site says so,
// in Sec-Fetch-Site (every current browser), else in Origin or Referer
// (the login page lets them carry this origin); a client sending none of
// them is not a browser. Hosts are compared (with port), not schemes: behind
// a TLS proxy herd may see http.
func sameOrigin(c *fiber.Ctx) bool {
	switch c.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return true
	case "same-site", "cross-site":
		return false
	}
	from := c.Get(fiber.HeaderOrigin)
	if from == "" {
		from = c.Get(fiber.HeaderReferer)
	}
	if from == "" {
		return true
	}
	u, err := url.Parse(from)
	return err == nil && u.Host == c.Hostname()
}

// loginForm renders the form with a token this server remembers. Its
// post carries this origin (the rest of the dashboard sends no referrer).
func (a *auth) loginForm(render func(c *fiber.Ctx, csrf, problem string) error) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if a.addressLockedOut(c) {
			time.Sleep(lockedOutDelay)
		}
		c.Set(fiber.HeaderReferrerPolicy, "same-origin")
		return render(c, a.formToken(), "")
	}
}

// login checks the CSRF token, the throttle, then the password.
func (a *auth) login(render func(c *fiber.Ctx, csrf, problem string) error) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if !sameOrigin(c) || !a.useFormToken(c.FormValue("csrf")) {
			return refused(fiber.NewError(fiber.StatusForbidden, "missing, used or wrong login token: reload the login page"))
		}
		name := strings.TrimSpace(c.FormValue("name"))
		key, addrKey := name+"|"+c.IP(), "|"+c.IP()
		a.mu.Lock()
		if wait := max(a.lockedOutLocked(key), a.lockedOutLocked(addrKey)); wait > 0 {
			a.mu.Unlock()
			return lockedOutLonger(tooMany(c, wait, "too many wrong passwords: wait "+wait.Round(time.Second).String()))
		}
		a.mu.Unlock()
		account := a.users.Has(name)
		if !a.takeCheck(name, account) {
			return lockedOutLonger(tooMany(c, time.Second, "too many logins at once: try again in a second"))
		}
		slot := a.checkingUnknown
		if account {
			slot = a.checking
		}
		select {
		case slot <- struct{}{}:
		case <-time.After(checkWait):
			return lockedOutLonger(tooMany(c, time.Second, "too many logins at once: try again in a second"))
		}
		// Checks run one at a time: looked at again now, the lockout counts
		// every guess that was checked while this one waited.
		a.mu.Lock()
		wait := max(a.lockedOutLocked(key), a.lockedOutLocked(addrKey))
		a.mu.Unlock()
		if wait > 0 {
			<-slot
			return lockedOutLonger(tooMany(c, wait, "too many wrong passwords: wait "+wait.Round(time.Second).String()))
		}
		u, err := a.users.Check(name, c.FormValue("password"))
		<-slot
		if err != nil && !errors.Is(err, ErrBadLogin) {
			return err // the account file could not be read: herd's fault
		}
		if err != nil {
			a.mu.Lock()
			n := a.failLocked(key, freeFailures)
			a.failLocked(addrKey, freeAddressFailures)
			a.mu.Unlock()
			a.log.Warn("dashboard login refused", "failures", n)
			c.Status(fiber.StatusUnauthorized)
			return refused(render(c, a.formToken(), ErrBadLogin.Error()))
		}
		a.mu.Lock()
		delete(a.fails, key)
		delete(a.fails, addrKey)
		s := &session{user: u, csrf: token(), expires: a.now().Add(sessionTTL)}
		id := token()
		a.sessions[id] = s
		a.mu.Unlock()
		c.Cookie(&fiber.Cookie{Name: sessionCookie, Value: id, Path: "/", HTTPOnly: true, SameSite: "Strict", Secure: secure(c), Expires: s.expires})
		return c.Redirect("/", fiber.StatusSeeOther)
	}
}

// current returns the request's live session.
func (a *auth) current(c *fiber.Ctx) *session {
	id := c.Cookies(sessionCookie)
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.sessions[id]
	if s == nil {
		return nil
	}
	if a.now().After(s.expires) {
		delete(a.sessions, id)
		return nil
	}
	return s
}

// require lets a request through with a session of one of roles (any role
// when none are given), and checks the CSRF token on every non-GET.
func (a *auth) require(roles ...Role) fiber.Handler {
	return func(c *fiber.Ctx) error {
		s := a.current(c)
		api := strings.HasPrefix(c.Path(), "/api/")
		if s == nil {
			if api || c.Method() != fiber.MethodGet {
				return fiber.NewError(fiber.StatusUnauthorized, "log in first")
			}
			return c.Redirect("/login", fiber.StatusSeeOther)
		}
		if len(roles) > 0 && !slices.Contains(roles, s.user.Role) {
			return fiber.NewError(fiber.StatusForbidden, "your role ("+string(s.user.Role)+") does not include this page")
		}
		if c.Method() != fiber.MethodGet && c.Method() != fiber.MethodHead {
			t := c.FormValue("csrf")
			if t == "" {
				t = c.Get("X-CSRF-Token")
			}
			if !equal(t, s.csrf) {
				return fiber.NewError(fiber.StatusForbidden, "missing or wrong CSRF token")
			}
		}
		c.Locals("session", s)
		return c.Next()
	}
}

func (a *auth) logout(c *fiber.Ctx) error {
	a.mu.Lock()
	delete(a.sessions, c.Cookies(sessionCookie))
	a.mu.Unlock()
	c.ClearCookie(sessionCookie)
	return c.Redirect("/login", fiber.StatusSeeOther)
}

func sessionOf(c *fiber.Ctx) *session {
	s, _ := c.Locals("session").(*session)
	return s
}
