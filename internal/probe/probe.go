// Package probe answers the health checks every herd HTTP server carries:
// /healthz (the process is up) and /readyz (it can do its job: ClickHouse
// answers). Load balancers and `herd serve` callers poll them.
package probe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Pinger is what readiness depends on; *clickhouse.Client has it.
type Pinger interface {
	Ping(ctx context.Context) error
}

// PingTimeout bounds one readiness ping: /readyz answers within it whatever
// the dependency does (down, frozen or slow).
const PingTimeout = 800 * time.Millisecond

// Readiness remembers the last ping for a second so that a busy load
// balancer does not turn into a query storm; concurrent checks share one
// ping.
type Readiness struct {
	p Pinger
	// Log receives the dependency's own error when readiness changes (nil:
	// none): /readyz is public and says only what is wrong, never where
	// (no host, port or query id).
	Log *slog.Logger

	mu       sync.Mutex
	checked  time.Time
	err      error
	inflight chan struct{} // closed when the running ping ends; nil when none runs
}

// NewReadiness checks p on demand.
func NewReadiness(p Pinger) *Readiness { return &Readiness{p: p} }

// Check returns nil when the dependency answered within the last second. It
// returns within PingTimeout (or when ctx ends).
func (r *Readiness) Check(ctx context.Context) error {
	r.mu.Lock()
	if !r.checked.IsZero() && time.Since(r.checked) < time.Second {
		err := r.err
		r.mu.Unlock()
		return err
	}
	if r.inflight == nil {
		r.inflight = make(chan struct{})
		go r.ping(r.inflight)
	}
	done := r.inflight
	r.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

func (r *Readiness) ping(done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), PingTimeout)
	err := r.p.Ping(ctx)
	cancel()
	if err != nil && errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("no answer within %v", PingTimeout)
	}
	r.mu.Lock()
	changed := (err == nil) != (r.err == nil) || r.checked.IsZero()
	r.err, r.checked, r.inflight = err, time.Now(), nil
	r.mu.Unlock()
	if changed && r.Log != nil {
		if err != nil {
			r.Log.Warn("not ready: clickhouse", "err", err)
		} else {
			r.Log.Info("ready: clickhouse answers")
		}
	}
	close(done)
}

// Register adds GET /healthz and GET /readyz to app. /readyz answers 503
// with the reason until the dependency answers. A nil r is always ready.
func Register(app *fiber.App, r *Readiness) {
	app.Get("/healthz", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"status": "ok"})
	})
	app.Get("/readyz", func(c *fiber.Ctx) error {
		if r != nil {
			if err := r.Check(c.UserContext()); err != nil {
				return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "unavailable", "reason": Reason(err)})
			}
		}
		return c.JSON(fiber.Map{"status": "ready"})
	})
}

// Unready is a readiness error whose Reason may be said in public: what is
// wrong, without the address, query id or server text Err carries.
type Unready struct {
	Reason string
	Err    error
}

func (u *Unready) Error() string { return u.Reason + ": " + u.Err.Error() }
func (u *Unready) Unwrap() error { return u.Err }

// Reason is what a public answer may say of a readiness error: that
// ClickHouse does not answer in time, or is unavailable, without the
// address, query id or server text the error carries (those go to the log).
func Reason(err error) string {
	var u *Unready
	if errors.As(err, &u) {
		return u.Reason
	}
	if strings.HasPrefix(err.Error(), "no answer within") || errors.Is(err, context.DeadlineExceeded) {
		return "clickhouse: no answer within " + PingTimeout.String()
	}
	return "clickhouse: unavailable"
}
