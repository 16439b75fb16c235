// Package ingest is herd's edge: the HTTP API that receives shoppers'
// browsing events, desensitizes and pseudonymizes them, and writes them to
// ClickHouse. After this package no raw identifier exists anywhere.
//
// This file holds the server shell; the event endpoints, decoders and writer
// live beside it.
package ingest

import (
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/herd-analytics/herd/internal/probe"
)

// Config configures the ingest HTTP server. The zero value is usable.
type Config struct {
	// ReadTimeout and WriteTimeout bound one request; zero means 10 s.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
}

// NewApp builds the ingest Fiber app. ready reports whether the raw store
// can take writes.
func NewApp(cfg Config, ready *probe.Readiness, log *slog.Logger) *fiber.App {
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 10 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	app := fiber.New(fiber.Config{
		AppName:               "herd-ingest",
		DisableStartupMessage: true,
		ReadTimeout:           cfg.ReadTimeout,
		WriteTimeout:          cfg.WriteTimeout,
		BodyLimit:             1 << 20,
	})
	probe.Register(app, ready)
	return app
}
