// Package dashboard is the Fiber app merchandisers, UX designers and
// management use. It reads the published database only, through a ClickHouse
// user that cannot read raw events, and shows nothing but published
// (k-anonymous, noised) cells.
//
// One request's path: auth.go (session, role, CSRF) → pages.go (filters,
// handler, chart) → query.go (SQL over the rollup tables) → a template with
// go-echarts snippets drawn by the ECharts served from assets/.
package dashboard

import (
	"context"
	"slices"
	"time"

	"github.com/herd-analytics/herd/internal/privacy"
)

// Config configures the dashboard.
type Config struct {
	// Reader queries the published database as the read-only user.
	Reader Querier
	// Database is the published database's name (default "herd").
	Database string
	// Users are the accounts that may log in.
	Users *Users
	// Statement returns the privacy statement shown on every page.
	Statement func(ctx context.Context) (privacy.Statement, error)
	// Downloads records report and CSV downloads; without it none are served.
	Downloads DownloadRecorder
	// ReportDir holds the scheduled reports' archive.
	ReportDir string
	// HSTS sends Strict-Transport-Security (a year): set it when the
	// dashboard is served over TLS, directly or by a proxy.
	HSTS bool
	// RequestTimeout bounds one request; zero means 30 s (report downloads).
	RequestTimeout time.Duration
	// Currency is the shop's currency, ISO 4217 (default EUR).
	Currency string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Dashboard is the running app's state.
type Dashboard struct {
	cfg       Config
	store     *store
	auth      *auth
	now       func() time.Time
	siteCache cache[[]string]
	stmtCache cache[privacy.Statement]
}

// sites lists the sites with published data (cached); a site asked for
// and not in the list is looked up again, so a new site shows at once.
func (d *Dashboard) sites(ctx context.Context, want string) ([]string, error) {
	fetch := func() ([]string, error) { return d.store.sites(ctx) }
	sites, err := d.siteCache.get("", false, fetch)
	if err != nil || want == "" || slices.Contains(sites, want) {
		return sites, err
	}
	return d.siteCache.get("", true, fetch)
}

// statementNow is the privacy statement (cached).
func (d *Dashboard) statementNow(ctx context.Context) (privacy.Statement, error) {
	if d.cfg.Statement == nil {
		return privacy.Statement{}, nil
	}
	return d.stmtCache.get("", false, func() (privacy.Statement, error) { return d.cfg.Statement(ctx) })
}
