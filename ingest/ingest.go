// Package ingest is herd's edge: the HTTP API that receives shoppers'
// browsing events, desensitizes and pseudonymizes them, and writes them to
// ClickHouse. After this package no raw identifier exists anywhere.
//
// One event's path: handler (this file) → decoder (decode.go, segment.go)
// → Pipeline.Process (pipeline.go: consent, bots, scrub.go, pseudonym.go)
// → Writer (writer.go: batch, insert, spool) → 202.
package ingest

import (
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/herd-analytics/herd/ingest/keyring"
	"github.com/herd-analytics/herd/ingest/spool"
	"github.com/herd-analytics/herd/internal/lograte"
	"github.com/herd-analytics/herd/internal/probe"
	"github.com/herd-analytics/herd/internal/webserver"
)

//go:embed assets/herd.js
var trackerJS []byte

// serverConfig configures the HTTP API. The zero value is usable.
type serverConfig struct {
	// RequestTimeout bounds reading a request and writing its answer; zero means 10 s.
	RequestTimeout time.Duration
	// TrustedProxies may set X-Forwarded-For; empty means the peer address is
	// the client's.
	TrustedProxies []string
	Imports        ImportPolicy
}

// ImportPolicy is the operator's word on history imports. With a sites
// file a site takes imports when it says allow_import (and the request
// carries its write key); without one, the demo site takes them only when
// Open. Either way, an event dated further back than Window is refused
// unless Backfill: its day's raw rows would be past their retention, and
// the publisher would publish a day it closed long ago.
type ImportPolicy struct {
	Open     bool
	Window   time.Duration // set by New: the raw retention plus the publication grace
	Backfill bool
}

// window is how far back an import may reach, 0 for any day.
func (p ImportPolicy) window() time.Duration {
	if p.Backfill {
		return 0
	}
	return p.Window
}

// server is the ingest API.
type server struct {
	cfg      serverConfig
	sites    *Sites
	pipeline *Pipeline
	writer   *Writer
	metrics  *Metrics
	log      *slog.Logger
	// refusals keeps a failure that repeats on every request to a line a
	// minute (with how many it stands for).
	refusals lograte.Limiter
}

// newServer wires the API over a pipeline and a writer.
func newServer(cfg serverConfig, sites *Sites, p *Pipeline, w *Writer, m *Metrics, log *slog.Logger) *server {
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if sites == nil {
		sites = DefaultSites()
	}
	return &server{cfg: cfg, sites: sites, pipeline: p, writer: w, metrics: m, log: log}
}

// App builds the Fiber app: the event endpoints, herd.js, health and metrics.
func (s *server) App(ready *probe.Readiness) *fiber.App {
	app := webserver.NewApp(webserver.AppConfig{
		Name:        "herd-ingest",
		ReadTimeout: s.cfg.RequestTimeout, WriteTimeout: s.cfg.RequestTimeout,
		BodyLimit:      MaxBodyBytes,
		ProxyHeader:    proxyHeader(s.cfg.TrustedProxies),
		TrustedProxies: s.cfg.TrustedProxies,
		Log:            s.log,
	}, ready)
	app.Use(func(c *fiber.Ctx) error {
		err := c.Next()
		status := c.Response().StatusCode()
		var fe *fiber.Error
		if errors.As(err, &fe) {
			status = fe.Code
		} else if err != nil {
			status = fiber.StatusInternalServerError
		}
		s.metrics.answered(status)
		return err
	})
	// Browsers send from the shop's pages, another origin: every event
	// route answers CORS (trackers such as analytics.js post with headers
	// that need a preflight).
	app.Use(s.cors)
	app.Post("/api/event", s.event)
	app.Post("/api/events", s.ownJSON((*decoder).decodeMany))
	// Segment's HTTP API, its short paths (analytics.js builds them from
	// the call: /v1/t, /v1/p, ...) and its beacon path.
	for short, kind := range segmentPaths {
		app.Post("/v1/"+kind, s.segment(kind))
		app.Post("/v1/"+short, s.segment(kind))
	}
	app.Post("/beacon/v1/batch", s.segment("batch"))
	app.Get("/v1/projects/:writeKey/settings", s.segmentSettings)
	app.Get("/herd.js", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, "text/javascript; charset=utf-8")
		c.Set(fiber.HeaderCacheControl, "public, max-age=3600")
		c.Set("Cross-Origin-Resource-Policy", "cross-origin")
		return c.Send(trackerJS)
	})
	app.Get("/metrics", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, "text/plain; version=0.0.4")
		_, err := s.metrics.WriteTo(c)
		return err
	})
	return app
}

func proxyHeader(trusted []string) string {
	if len(trusted) == 0 {
		return ""
	}
	return fiber.HeaderXForwardedFor
}

// Answer is the JSON body of every event endpoint's reply.
type Answer struct {
	Accepted int            `json:"accepted"`
	Dropped  map[string]int `json:"dropped"`
	Problems []Problem      `json:"problems,omitempty"`
	Error    string         `json:"error,omitempty"`
}

// segmentPaths are analytics.js's short paths and the calls they stand for.
var segmentPaths = map[string]string{"t": "track", "p": "page", "s": "screen", "i": "identify", "g": "group", "a": "alias", "b": "batch"}

// corsHeaders are the request headers browser trackers send: herd.js and
// own JSON (Content-Type), Segment's analytics.js (Authorization with the
// write key, and its retry and delivery headers), herd's import marker.
const corsHeaders = "Content-Type, Content-Encoding, Authorization, X-Retry-Count, AnonymousId, SentAt, X-Herd-Import"

// cors answers preflights and sets CORS headers for browser senders. An
// origin no site allows gets no CORS headers (a preflight gets 403), so
// browsers refuse to send. No credentials: herd sets no cookies.
func (s *server) cors(c *fiber.Ctx) error {
	origin := c.Get(fiber.HeaderOrigin)
	c.Vary(fiber.HeaderOrigin)
	allowed := origin != "" && s.originAllowed(origin)
	if allowed {
		c.Set(fiber.HeaderAccessControlAllowOrigin, origin)
	}
	if c.Method() != fiber.MethodOptions {
		return c.Next()
	}
	if !allowed {
		return c.Status(fiber.StatusForbidden).JSON(Answer{Error: "origin not allowed by any site"})
	}
	c.Set(fiber.HeaderAccessControlAllowMethods, "POST, GET, OPTIONS")
	c.Set(fiber.HeaderAccessControlAllowHeaders, corsHeaders)
	c.Set(fiber.HeaderAccessControlMaxAge, "86400")
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *server) originAllowed(origin string) bool {
	for _, site := range s.sites.All() {
		if site.AllowsOrigin(origin) {
			return true
		}
	}
	return false
}

type decodeFunc func(*decoder, []Event, []byte) ([]Event, []Problem, error)

// A request's events, the slab holding their strings, and its rows are
// recycled: at tens of thousands of requests a second they are most of what
// ingest allocates. They go back only when the writer no longer holds the
// rows (whose strings may point into the slab), cleared.
type requestBuf struct {
	events []Event
	dec    decoder
}

var (
	requestBufs = sync.Pool{New: func() any { return new(requestBuf) }}
	rowSlices   = sync.Pool{New: func() any { return new([]spool.Row) }}
)

// ownJSON serves /api/events (and /api/event through event).
func (s *server) ownJSON(decode decodeFunc) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if !contentTypeOK(c, "application/json", "text/plain", "application/x-ndjson") {
			return unsupportedType(c, "application/json, text/plain, application/x-ndjson")
		}
		body, err := requestBody(c)
		if err != nil {
			return s.badBody(c, err)
		}
		return s.ownBody(c, decode, body)
	}
}

// ownBody decodes and accepts a body in herd's own format.
func (s *server) ownBody(c *fiber.Ctx, decode decodeFunc, body []byte) error {
	buf := requestBufs.Get().(*requestBuf)
	buf.dec.slab = buf.dec.slab[:0]
	events, problems, err := decode(&buf.dec, buf.events, body)
	held := false
	defer func() {
		if held {
			return // the writer still has rows that may point into the slab
		}
		clear(events) // no shopper's data waits in the pool
		clear(buf.dec.slab)
		buf.events = events[:0]
		requestBufs.Put(buf)
	}()
	if err != nil {
		return s.badBody(c, err)
	}
	held, err = s.accept(c, events, problems, nil, nil)
	return err
}

// event serves /api/event: herd's own single event, or Plausible's event
// API body (the Plausible tracker pointed at herd).
func (s *server) event(c *fiber.Ctx) error {
	if !contentTypeOK(c, "application/json", "text/plain", "application/x-ndjson") {
		return unsupportedType(c, "application/json, text/plain, application/x-ndjson")
	}
	body, err := requestBody(c)
	if err != nil {
		return s.badBody(c, err)
	}
	if !isPlausible(body) {
		return s.ownBody(c, (*decoder).decodeOne, body)
	}
	events, site, dropped, err := DecodePlausible(body, s.sites)
	if err != nil {
		return s.badBody(c, err)
	}
	if site == nil { // unknown domain: nothing to store, said in dropped
		return c.Status(fiber.StatusAccepted).JSON(Answer{Dropped: dropped})
	}
	_, err = s.accept(c, events, nil, dropped, site)
	return err
}

// segment serves Segment's /v1/batch, /v1/track and /v1/page. The write key
// comes as the Basic auth user name (Segment's libraries) or as "writeKey"
// in the body.
func (s *server) segment(kind string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if !contentTypeOK(c, "application/json", "text/plain") {
			return unsupportedType(c, "application/json, text/plain")
		}
		body, err := requestBody(c)
		if err != nil {
			return s.badBody(c, err)
		}
		key := writeKey(c.Get(fiber.HeaderAuthorization))
		if key == "" {
			var k struct {
				WriteKey string `json:"writeKey"`
			}
			_ = json.Unmarshal(body, &k) // a bad body is reported by the decoder
			key = k.WriteKey
		}
		if key == "" {
			key = c.Query("writeKey") // the beacon path: no headers
		}
		site, err := s.sites.ByWriteKey(key)
		if err != nil {
			return c.Status(fiber.StatusUnauthorized).JSON(Answer{Error: "unknown or missing write key"})
		}
		events, problems, dropped, err := DecodeSegment(kind, body, site.Name)
		if err != nil {
			return s.badBody(c, err)
		}
		_, err = s.accept(c, events, problems, dropped, site)
		return err
	}
}

func (s *server) badBody(c *fiber.Ctx, err error) error {
	switch {
	case errors.Is(err, ErrTooManyEvents):
		return c.Status(fiber.StatusRequestEntityTooLarge).JSON(Answer{Error: "more than 500 events in one request"})
	case errors.Is(err, errBodyTooLarge):
		return c.Status(fiber.StatusRequestEntityTooLarge).JSON(Answer{Error: "body over 1 MiB once decompressed"})
	case errors.Is(err, errUnsupportedEncoding):
		return c.Status(fiber.StatusUnsupportedMediaType).JSON(Answer{Error: "content encoding must be gzip, deflate, br or none"})
	}
	var p Problem
	if errors.As(err, &p) {
		return c.Status(fiber.StatusBadRequest).JSON(Answer{Error: p.Reason, Problems: []Problem{p}})
	}
	return c.Status(fiber.StatusBadRequest).JSON(Answer{Error: "unreadable body"})
}

// accept runs decoded events through the pipeline and the writer and
// answers: 202 when at least one event was stored or every event was dropped
// by policy, 400 when none was valid, 503/429 when storage failed.
//
// held reports that the writer may still hold the rows (their commit
// stalled): the request's buffers must not be reused.
func (s *server) accept(c *fiber.Ctx, events []Event, problems []Problem, dropped map[string]int, site *Site) (held bool, err error) {
	drop := func(reason string) {
		if dropped == nil {
			dropped = map[string]int{}
		}
		dropped[reason]++
	}
	req := Request{
		IP:        c.IP(),
		UserAgent: c.Get(fiber.HeaderUserAgent),
		GPC:       c.Get("Sec-GPC") == "1",
		DNT:       c.Get("DNT") == "1",
		Received:  time.Now(),
		memo:      &requestMemo{},
	}
	importMode := c.Get("X-Herd-Import") == "1"
	importKey := writeKey(c.Get(fiber.HeaderAuthorization))
	origin := c.Get(fiber.HeaderOrigin)
	rowBuf := rowSlices.Get().(*[]spool.Row)
	rows := slices.Grow((*rowBuf)[:0], len(events))
	recycle := true
	defer func() {
		if recycle {
			clear(rows)
			*rowBuf = rows[:0]
			rowSlices.Put(rowBuf)
		}
	}()
	for i := range events {
		ev := &events[i]
		evSite := site
		if evSite == nil {
			var err error
			if evSite, err = s.sites.Named(ev.Site); err != nil {
				drop(DropUnknownSite)
				continue
			}
		}
		if origin != "" && !evSite.AllowsOrigin(origin) {
			drop("origin")
			continue
		}
		r := req
		if importMode {
			if !s.sites.ImportAllowed(evSite, importKey, s.cfg.Imports.Open) || ev.TS.IsZero() {
				problems = append(problems, Problem{Index: ev.Index, Field: "ts", Reason: "imports need a site with allow_import (or, without a sites file, herd started with --allow-imports), its write key, and a ts on every event"})
				continue
			}
			if w := s.cfg.Imports.window(); w > 0 && ev.TS.Before(req.Received.Add(-w)) {
				problems = append(problems, Problem{Index: ev.Index, Field: "ts", Reason: "older than the raw retention plus the publication grace (" + w.String() + "): a back-fill needs --import-backfill"})
				continue
			}
			if ev.TS.After(req.Received.Add(keyring.MaxSkew)) {
				// Rows dated in the future would escape retention and
				// need keys made before their day.
				problems = append(problems, Problem{Index: ev.Index, Field: "ts", Reason: "in the future"})
				continue
			}
			r.Received, r.Imported = ev.TS.Time, true
		}
		row, reason, prob, err := s.pipeline.Process(evSite, &r, ev, ev.Index)
		if err != nil {
			// herd's own failure, not the client's: nothing of the request
			// is stored, and the client may send it again.
			s.log.Error("events not processed", "events", len(events), "err", err)
			c.Set(fiber.HeaderRetryAfter, "10")
			return false, c.Status(fiber.StatusInternalServerError).JSON(Answer{Dropped: map[string]int{}, Error: "internal error: pseudonyms unavailable; retry later"})
		}
		switch {
		case prob != nil:
			problems = append(problems, *prob)
		case reason != "":
			drop(reason)
		default:
			rows = append(rows, row)
		}
	}
	for reason, n := range dropped {
		s.metrics.drop(reason, n)
	}
	s.metrics.invalid.Add(int64(len(problems)))
	slices.SortStableFunc(problems, func(a, b Problem) int { return a.Index - b.Index })
	if dropped == nil && (len(problems) > 0 || len(rows) == 0) {
		dropped = map[string]int{} // the JSON answer says "dropped": {}
	}
	ans := Answer{Accepted: len(rows), Dropped: dropped, Problems: problems}
	if len(rows) == 0 && len(problems) > 0 {
		ans.Error = problems[0].Error()
		return false, c.Status(fiber.StatusBadRequest).JSON(ans)
	}
	// The writer bounds the wait (CommitTimeout). Not even a shutdown cuts
	// it short: the writer commits what it took before it stops, and an
	// answer of 503 for stored rows would make senders send them again.
	if err := s.writer.Write(context.Background(), rows); err != nil {
		if ans.Dropped == nil {
			ans.Dropped = map[string]int{}
		}
		// Rows the writer may still hold are not recycled.
		recycle = !errors.Is(err, ErrCommitStalled) && !errors.Is(err, context.Canceled)
		ans.Accepted = 0
		if errors.Is(err, spool.ErrFull) {
			c.Set(fiber.HeaderRetryAfter, "30")
			ans.Error = "storage is behind and the spool is full; retry later"
			return !recycle, c.Status(fiber.StatusTooManyRequests).JSON(ans)
		}
		s.refusals.Log(s.log, slog.LevelWarn, "events not stored", "events", len(rows), "err", err)
		c.Set(fiber.HeaderRetryAfter, "10")
		ans.Error = "storage unavailable; retry later"
		return !recycle, c.Status(fiber.StatusServiceUnavailable).JSON(ans)
	}
	s.metrics.accepted.Add(int64(len(rows)))
	c.Status(fiber.StatusAccepted)
	if len(ans.Problems) > 0 {
		return false, c.JSON(ans)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	var buf [128]byte
	return false, c.Send(appendAccepted(buf[:0], ans.Accepted, ans.Dropped))
}

// appendAccepted writes the common answer, {"accepted":n,"dropped":{...}},
// as encoding/json would (reasons sorted), without reflection.
func appendAccepted(b []byte, accepted int, dropped map[string]int) []byte {
	b = append(b, `{"accepted":`...)
	b = strconv.AppendInt(b, int64(accepted), 10)
	b = append(b, `,"dropped":{`...)
	reasons := make([]string, 0, len(dropped))
	for r := range dropped {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for i, r := range reasons {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, r) // reasons are herd's own ASCII words
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(dropped[r]), 10)
	}
	return append(b, "}}"...)
}

// contentTypeOK accepts text/plain too: navigator.sendBeacon with a string
// body sends it, and it needs no CORS preflight. A charset other than UTF-8
// is refused: the decoders read UTF-8 only.
func contentTypeOK(c *fiber.Ctx, allowed ...string) bool {
	ct := c.Get(fiber.HeaderContentType)
	if slices.Contains(allowed, ct) {
		return true // the usual case, without parsing
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || !slices.Contains(allowed, mt) {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8") || strings.EqualFold(cs, "utf8")
}

func unsupportedType(c *fiber.Ctx, allowed string) error {
	return c.Status(fiber.StatusUnsupportedMediaType).JSON(Answer{Error: "content type must be one of " + allowed + ", in UTF-8"})
}

func writeKey(auth string) string {
	const prefix = "Basic "
	if !strings.HasPrefix(auth, prefix) {
		return ""
	}
	dec, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(auth, prefix))
	if err != nil {
		return ""
	}
	user, _, _ := strings.Cut(string(dec), ":")
	return user
}

// segmentSettings answers analytics.js's settings request
// (cdnURL pointed at herd): send everything to this herd's /v1 with the
// write key, no other integration, no plan filtering.
func (s *server) segmentSettings(c *fiber.Ctx) error {
	key := c.Params("writeKey")
	if _, err := s.sites.ByWriteKey(key); err != nil {
		return c.Status(fiber.StatusNotFound).JSON(Answer{Error: "unknown write key"})
	}
	proto := "https"
	if c.Protocol() == "http" {
		proto = "http"
	}
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	return c.JSON(fiber.Map{
		"integrations": fiber.Map{"Segment.io": fiber.Map{
			"apiKey": key, "apiHost": c.Hostname() + "/v1", "protocol": proto,
			"unbundledIntegrations": []string{}, "addBundledMetadata": false,
		}},
		"plan":                      fiber.Map{"track": fiber.Map{"__default": fiber.Map{"enabled": true}}, "identify": fiber.Map{"__default": fiber.Map{"enabled": true}}, "group": fiber.Map{"__default": fiber.Map{"enabled": true}}},
		"analyticsNextEnabled":      true,
		"middlewareSettings":        fiber.Map{},
		"enabledMiddleware":         fiber.Map{},
		"metrics":                   fiber.Map{"sampleRate": 0},
		"legacyVideoPluginsEnabled": false,
		"remotePlugins":             []any{},
	})
}
