package dashboard

import (
	"context"
	"embed"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"

	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/probe"
	"github.com/herd-analytics/herd/internal/webserver"
)

//go:embed assets
var assetFS embed.FS

// NewApp builds the dashboard Fiber app. ready reports whether the published
// database answers.
func NewApp(cfg Config, ready *probe.Readiness, log *slog.Logger) *fiber.App {
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.Database == "" {
		cfg.Database = "herd"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Dashboard{cfg: cfg, store: &store{q: cfg.Reader, db: cfg.Database, grains: &cache[string]{}, noise: &cache[map[time.Time]map[string]float64]{}, firstDays: &cache[time.Time]{}}, now: cfg.Now}
	if d.now == nil {
		d.now = time.Now
	}
	users := cfg.Users
	if users == nil {
		users = &Users{m: map[string]User{}}
	}
	d.auth = newAuth(users, log)
	app := webserver.NewApp(webserver.AppConfig{
		Name:        "herd-dashboard",
		ReadTimeout: cfg.RequestTimeout, WriteTimeout: cfg.RequestTimeout,
		Log: log, Unavailable: clickhouse.IsUnavailable, ErrorPage: errorPage,
	}, ready)
	app.Use(func(c *fiber.Ctx) error {
		// Every query of a request ends before the request's own timeout,
		// so a frozen ClickHouse gets a 503 in time, not a dropped answer.
		ctx, cancel := context.WithTimeout(c.UserContext(), cfg.RequestTimeout*3/4)
		defer cancel()
		c.SetUserContext(ctx)
		return c.Next()
	})
	app.Use(func(c *fiber.Ctx) error {
		// Nothing on a page may come from, or go to, another host; the
		// only inline scripts are the charts', each with the page's nonce
		// (render).
		c.Set("Content-Security-Policy", contentSecurityPolicy(""))
		c.Set("X-Content-Type-Options", "nosniff")
		c.Set("Referrer-Policy", "no-referrer")
		// Pages and downloads show what a logged-in user may see: no
		// cache keeps them (the assets below set their own).
		c.Set(fiber.HeaderCacheControl, "no-store")
		if cfg.HSTS {
			c.Set(fiber.HeaderStrictTransportSecurity, "max-age=31536000")
		}
		return c.Next()
	})
	app.Use("/assets", filesystem.New(filesystem.Config{Root: http.FS(assetFS), PathPrefix: "assets", MaxAge: 86400}))
	loginPage := func(c *fiber.Ctx, csrf, problem string) error {
		return render(c, "login", struct{ CSRF, Problem string }{csrf, problem})
	}
	app.Get("/login", d.auth.loginForm(loginPage))
	app.Post("/login", d.auth.login(loginPage))
	app.Post("/logout", d.auth.require(), d.auth.logout)

	// Fail fast: while readiness knows the published database does not
	// answer (its last ping, at most a second old, or one bounded by
	// probe.PingTimeout), a page or API call answers 503 at once instead
	// of waiting out its own query's timeout.
	app.Use(func(c *fiber.Ctx) error {
		if ready == nil || strings.HasPrefix(c.Path(), "/api/v1/openapi.json") {
			return c.Next()
		}
		if err := ready.Check(c.UserContext()); err != nil {
			c.Set(fiber.HeaderRetryAfter, "10")
			return fiber.NewError(fiber.StatusServiceUnavailable, "ClickHouse is unavailable; retry later ("+probe.Reason(err)+")")
		}
		return c.Next()
	})
	everyone := d.auth.require()
	merch := d.auth.require(Merchandiser, Manager, Admin)
	app.Get("/", everyone, d.overview)
	app.Get("/products", merch, d.products)
	app.Get("/products/:id", merch, d.product)
	ux := d.auth.require(UX, Manager, Admin)
	app.Get("/search", merch, d.search)
	app.Get("/funnels", ux, d.funnels)
	app.Get("/layout", ux, d.layout)
	app.Get("/habits", everyone, d.habits)
	app.Get("/privacy", everyone, d.privacy)
	managers := d.auth.require(Manager, Admin)
	app.Get("/reports", managers, d.reports)
	app.Get("/reports/download", managers, d.reportDownload)
	app.Get("/reports/archive/:name", managers, d.reportArchived)
	app.Get("/admin", d.auth.require(Admin), d.admin)
	app.Get("/api/v1/kpis", everyone, d.apiKPIs)
	app.Get("/api/v1/products", merch, d.apiProducts)
	app.Get("/api/v1/products/:id", merch, d.apiProduct)
	app.Get("/api/v1/categories", merch, d.apiCategories)
	app.Get("/api/v1/openapi.json", everyone, d.apiOpenAPI)
	app.Get("/api/v1/:name", everyone, d.apiDataset)
	return app
}
