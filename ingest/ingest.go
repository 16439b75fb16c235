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
	"github.com/herd-analytics/herd/internal/webserver"
)

// Config configures the ingest HTTP server. The zero value is usable.
type Config struct {
	// RequestTimeout bounds reading a request and writing its answer; zero means 10 s.
	RequestTimeout time.Duration
}

// NewApp builds the ingest Fiber app. ready reports whether the raw store
// can take writes.
func NewApp(cfg Config, ready *probe.Readiness, log *slog.Logger) *fiber.App {
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	return webserver.NewApp(webserver.AppConfig{
		Name:        "herd-ingest",
		ReadTimeout: cfg.RequestTimeout, WriteTimeout: cfg.RequestTimeout,
		BodyLimit: 1 << 20,
	}, ready)
}
