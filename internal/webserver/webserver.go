// Package webserver runs a Fiber app on a listener with an orderly shutdown,
// the same way for ingest and the dashboard.
package webserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"

	"github.com/herd-analytics/herd/internal/lograte"
	"github.com/herd-analytics/herd/internal/probe"
)

// Server is a Fiber app bound to an address.
type Server struct {
	app  *fiber.App
	ln   net.Listener
	done chan error
}

// Start binds addr (":0" picks a free port) and serves app in the background.
func Start(app *fiber.App, addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	s := &Server{app: app, ln: ln, done: make(chan error, 1)}
	go func() { s.done <- app.Listener(ln) }()
	return s, nil
}

// Addr is the bound address, host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Done delivers the serve loop's error if it stops on its own.
func (s *Server) Done() <-chan error {
	if s == nil {
		return nil // a server not started never stops
	}
	return s.done
}

// Shutdown stops accepting, lets requests in flight finish until ctx ends,
// and returns once the server has stopped.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.app.ShutdownWithContext(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return err
}

// AppConfig is what differs between herd's HTTP servers.
type AppConfig struct {
	Name         string
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// BodyLimit caps a request body; zero means Fiber's default (4 MiB).
	BodyLimit int
	// ProxyHeader names the header carrying the client address
	// (X-Forwarded-For), believed only from TrustedProxies.
	ProxyHeader    string
	TrustedProxies []string
	// Log receives every 500 with its cause (the answer carries none);
	// nil discards.
	Log *slog.Logger
	// Unavailable tells errors that mean a dependency cannot serve now
	// (answered 503 with Retry-After) from herd's own failures (500); nil
	// treats every error as herd's.
	Unavailable func(error) bool
	// ErrorPage, when set, answers a browser's request for a page (Accept
	// names text/html, the path is not under /api/) with an HTML page
	// instead of JSON; the status and message are the same.
	ErrorPage func(c *fiber.Ctx, code int, msg string) error
}

// errorHandler answers every error not handled by a handler as JSON (or a
// page, for a browser, when page is set) with the
// right status: Fiber's own (413 body too large, 404, 405) keep theirs,
// anything else is a 500 whose details stay out of the answer and go to
// the log (the route, never the request's payload or address).
func errorHandler(log *slog.Logger, unavailable func(error) bool, page func(*fiber.Ctx, int, string) error) fiber.ErrorHandler {
	var unavailableLog lograte.Limiter // a line a minute while the dependency is away
	return func(c *fiber.Ctx, err error) error {
		code, msg := fiber.StatusInternalServerError, "internal error"
		var fe *fiber.Error
		switch {
		case errors.As(err, &fe):
			code, msg = fe.Code, fe.Message
		case unavailable != nil && unavailable(err):
			unavailableLog.Log(log, slog.LevelWarn, "dependency unavailable", "method", c.Method(), "route", c.Route().Path, "err", err)
			c.Set(fiber.HeaderRetryAfter, "10")
			code, msg = fiber.StatusServiceUnavailable, "ClickHouse is unavailable; retry later"
		}
		if code == fiber.StatusInternalServerError {
			log.Error("request failed", "method", c.Method(), "route", c.Route().Path, "err", err)
		}
		if page != nil && WantsPage(c) {
			c.Status(code)
			if err := page(c, code, msg); err == nil {
				return nil
			}
		}
		return c.Status(code).JSON(fiber.Map{"error": msg})
	}
}

// WantsPage reports whether a request is a browser's for a page: not under
// /api/, and its Accept header names text/html.
func WantsPage(c *fiber.Ctx) bool {
	return !strings.HasPrefix(c.Path(), "/api/") && strings.Contains(c.Get(fiber.HeaderAccept), "text/html")
}

// NewApp builds a Fiber app with herd's defaults: no banner, bounded
// timeouts, a handler that panics answers 500 (logged) instead of killing
// the process, and /healthz and /readyz answered from ready.
func NewApp(cfg AppConfig, ready *probe.Readiness) *fiber.App {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	app := fiber.New(fiber.Config{
		AppName:                 cfg.Name,
		DisableStartupMessage:   true,
		ReadTimeout:             cfg.ReadTimeout,
		WriteTimeout:            cfg.WriteTimeout,
		BodyLimit:               cfg.BodyLimit,
		ErrorHandler:            errorHandler(log, cfg.Unavailable, cfg.ErrorPage),
		ProxyHeader:             cfg.ProxyHeader,
		EnableTrustedProxyCheck: len(cfg.TrustedProxies) > 0,
		TrustedProxies:          cfg.TrustedProxies,
		// herd reads no multipart forms; parsing one before the handler
		// would answer a malformed one with fasthttp's own 400.
		DisablePreParseMultipartForm: true,
	})
	app.Use(recover.New())
	probe.Register(app, ready)
	return app
}
