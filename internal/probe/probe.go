// Package probe answers the health checks every herd HTTP server carries:
// /healthz (the process is up) and /readyz (it can do its job: ClickHouse
// answers). Load balancers and `herd serve` callers poll them.
package probe

import (
	"context"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Pinger is what readiness depends on; *clickhouse.Client has it.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Readiness remembers the last ping for a second so that a busy load
// balancer does not turn into a query storm.
type Readiness struct {
	p Pinger

	mu      sync.Mutex
	checked time.Time
	err     error
}

// NewReadiness checks p on demand.
func NewReadiness(p Pinger) *Readiness { return &Readiness{p: p} }

// Check returns nil when the dependency answered within the last second.
func (r *Readiness) Check(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) < time.Second {
		return r.err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	r.err = r.p.Ping(ctx)
	r.checked = time.Now()
	return r.err
}

// Register adds GET /healthz and GET /readyz to app. /readyz answers 503
// with the reason until the dependency answers.
func Register(app *fiber.App, r *Readiness) {
	app.Get("/healthz", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"status": "ok"})
	})
	app.Get("/readyz", func(c *fiber.Ctx) error {
		if err := r.Check(c.UserContext()); err != nil {
			return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "unavailable", "reason": "clickhouse: " + err.Error()})
		}
		return c.JSON(fiber.Map{"status": "ready"})
	})
}
