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
	"github.com/herd-analytics/herd/internal/webserver"
)

// Config configures the dashboard HTTP server. The zero value is usable.
type Config struct {
	// RequestTimeout bounds one request; zero means 30 s (report downloads).
	RequestTimeout time.Duration
}

// NewApp builds the dashboard Fiber app. ready reports whether the published
// database answers.
func NewApp(cfg Config, ready *probe.Readiness, log *slog.Logger) *fiber.App {
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	return webserver.NewApp(webserver.AppConfig{
		Name:        "herd-dashboard",
		ReadTimeout: cfg.RequestTimeout, WriteTimeout: cfg.RequestTimeout,
	}, ready)
}
