package dashboard

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
)

const (
	sessionCookie = "herd_session"
	loginCSRF     = "herd_login_csrf"
	sessionTTL    = 12 * time.Hour
	// freeFailures wrong passwords per name and address are answered at
	// once; after that each attempt must wait twice as long, up to a minute.
	freeFailures = 5
	maxLockout   = time.Minute
)

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
	fails    map[string]*failures
}

func newAuth(users *Users, log *slog.Logger) *auth {
	return &auth{users: users, log: log, now: time.Now, sessions: map[string]*session{}, fails: map[string]*failures{}}
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

// loginForm sets the login CSRF cookie (double submit) and renders the form.
func (a *auth) loginForm(render func(c *fiber.Ctx, csrf, problem string) error) fiber.Handler {
	return func(c *fiber.Ctx) error {
		t := token()
		c.Cookie(&fiber.Cookie{Name: loginCSRF, Value: t, Path: "/login", HTTPOnly: true, SameSite: "Strict", Secure: secure(c), MaxAge: 3600})
		return render(c, t, "")
	}
}

// login checks the CSRF token, the throttle, then the password.
func (a *auth) login(render func(c *fiber.Ctx, csrf, problem string) error) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if !equal(c.FormValue("csrf"), c.Cookies(loginCSRF)) {
			return fiber.NewError(fiber.StatusForbidden, "missing or wrong CSRF token: reload the login page")
		}
		name := strings.TrimSpace(c.FormValue("name"))
		key := name + "|" + c.IP()
		a.mu.Lock()
		f := a.fails[key]
		if f != nil && a.now().Before(f.until) {
			wait := f.until.Sub(a.now())
			a.mu.Unlock()
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(wait/time.Second)+1))
			return fiber.NewError(fiber.StatusTooManyRequests, "too many wrong passwords: wait "+wait.Round(time.Second).String())
		}
		a.mu.Unlock()
		u, err := a.users.Check(name, c.FormValue("password"))
		if err != nil {
			a.mu.Lock()
			if a.fails[key] == nil {
				a.fails[key] = &failures{}
			}
			f := a.fails[key]
			f.n++
			if f.n >= freeFailures {
				f.until = a.now().Add(min(time.Second<<(f.n-freeFailures), maxLockout))
			}
			a.mu.Unlock()
			a.log.Warn("dashboard login refused", "failures", f.n)
			c.Status(fiber.StatusUnauthorized)
			t := token()
			c.Cookie(&fiber.Cookie{Name: loginCSRF, Value: t, Path: "/login", HTTPOnly: true, SameSite: "Strict", Secure: secure(c), MaxAge: 3600})
			return render(c, t, ErrBadLogin.Error())
		}
		a.mu.Lock()
		delete(a.fails, key)
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
