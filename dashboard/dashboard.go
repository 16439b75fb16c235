// Package dashboard is the Fiber app merchandisers, UX designers and
// management use. It reads the published database only, through a ClickHouse
// user that cannot read raw events.
//
// This file holds the server shell; pages, the JSON API and exports live
// beside it.
package dashboard

import (
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/herd-analytics/herd/internal/probe"
)

// Config configures the dashboard HTTP server. The zero value is usable.
type Config struct {
	// ReadTimeout and WriteTimeout bound one request; zero means 30 s.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
}

// NewApp builds the dashboard Fiber app. ready reports whether the published
// database answers.
func NewApp(cfg Config, ready *probe.Readiness, log *slog.Logger) *fiber.App {
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 30 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	app := fiber.New(fiber.Config{
		AppName:               "herd-dashboard",
		DisableStartupMessage: true,
		ReadTimeout:           cfg.ReadTimeout,
		WriteTimeout:          cfg.WriteTimeout,
	})
	probe.Register(app, ready)
	return app
}
