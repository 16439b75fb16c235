package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/herd-analytics/herd/aggregate"
	"github.com/herd-analytics/herd/dashboard"
	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/privacy"
	"github.com/herd-analytics/herd/internal/probe"
	"github.com/herd-analytics/herd/internal/webserver"
)

// benchDashboard fills a year of published rollups for three sites and a
// 100,000-product catalogue, then times every widget API and every page
// through HTTP as a logged-in manager.
func benchDashboard(ctx context.Context, c *clickhouse.Client, local *clickhouse.Local, dir string, iterations int) (string, error) {
	db := clickhouse.DefaultDatabases.Pub
	today := time.Now().UTC().Truncate(24 * time.Hour)
	start := today.Add(-365 * 24 * time.Hour).Unix()
	fmt.Fprintln(os.Stderr, "generating a year of rollups for 3 sites")
	// Per site and day: the KPIs, 5,000 published product cells drawn from
	// 100,000 products, 60 categories × 3 devices, 2,000 search terms,
	// funnels, slots, positions, habits and 400 traffic values.
	gen := []string{
		`INSERT INTO %[1]s.kpis SELECT s, 'day', b, 20000 + rand() %% 5000, 26000 + rand() %% 6000, 90000 + rand() %% 9000, 600 + rand() %% 90, 560 + rand() %% 80, 50000 + (rand() %% 9000), 0
		 FROM (SELECT ['shop-a', 'shop-b', 'shop-c'][number %% 3 + 1] AS s, toDateTime(%[2]d + intDiv(number, 3) * 86400) AS b FROM numbers(1095))`,
		`INSERT INTO %[1]s.products SELECT s, 'day', b, concat('P', toString(p)), concat('cat', toString(p %% 60)), 20 + rand() %% 800, 30 + rand() %% 1200, rand() %% 100, rand() %% 60, rand() %% 20, (rand() %% 2000) / 1.7, 0
		 FROM (SELECT ['shop-a', 'shop-b', 'shop-c'][intDiv(number, 5000) %% 3 + 1] AS s, toDateTime(%[2]d + intDiv(number, 15000) * 86400) AS b,
		       (intHash32(number) %% 100000) AS p FROM numbers(5475000))`,
		`INSERT INTO %[1]s.categories SELECT s, 'day', b, concat('cat', toString(number %% 60)), ['desktop', 'mobile', 'tablet'][intDiv(number, 60) %% 3 + 1], 100 + rand() %% 900, 300 + rand() %% 3000, rand() %% 300, rand() %% 100, 0
		 FROM (SELECT number, ['shop-a', 'shop-b', 'shop-c'][intDiv(number, 180) %% 3 + 1] AS s, toDateTime(%[2]d + intDiv(number, 540) * 86400) AS b FROM numbers(197100))`,
		`INSERT INTO %[1]s.searches SELECT s, 'day', b, concat('term ', toString(intHash32(number) %% 20000)), 10 + rand() %% 300, 12 + rand() %% 400, rand() %% 20, 0
		 FROM (SELECT number, ['shop-a', 'shop-b', 'shop-c'][intDiv(number, 2000) %% 3 + 1] AS s, toDateTime(%[2]d + intDiv(number, 6000) * 86400) AS b FROM numbers(2190000))`,
		`INSERT INTO %[1]s.funnels SELECT s, 'day', b, ['purchase', 'search'][intDiv(number, 27) %% 2 + 1], toUInt8(number %% 9 + 1), ['desktop', 'mobile', 'tablet'][intDiv(number, 9) %% 3 + 1], 5000 - (number %% 9) * 500, 0
		 FROM (SELECT number, ['shop-a', 'shop-b', 'shop-c'][intDiv(number, 54) %% 3 + 1] AS s, toDateTime(%[2]d + intDiv(number, 162) * 86400) AS b FROM numbers(59130))`,
		`INSERT INTO %[1]s.slots SELECT s, 'day', b, 'home', concat('home-row-', toString(number %% 4 + 1)), ['A', 'B'][intDiv(number, 4) %% 2 + 1], 3000 + rand() %% 900, 4000, 100 + rand() %% 200, 0
		 FROM (SELECT number, ['shop-a', 'shop-b', 'shop-c'][intDiv(number, 8) %% 3 + 1] AS s, toDateTime(%[2]d + intDiv(number, 24) * 86400) AS b FROM numbers(8760))`,
		`INSERT INTO %[1]s.positions SELECT s, 'day', b, ['category', 'search', 'home'][intDiv(number, 24) %% 3 + 1], toUInt16(number %% 24 + 1), 2000, 2500, 200 - (number %% 24) * 7, 0
		 FROM (SELECT number, ['shop-a', 'shop-b', 'shop-c'][intDiv(number, 72) %% 3 + 1] AS s, toDateTime(%[2]d + intDiv(number, 216) * 86400) AS b FROM numbers(78840))`,
		`INSERT INTO %[1]s.habits SELECT s, 'day', b, toUInt8(toDayOfWeek(b)), toUInt8(number %% 24), ['desktop', 'mobile', 'tablet'][intDiv(number, 24) %% 3 + 1], 200 + rand() %% 800, 900 + rand() %% 2000, 0
		 FROM (SELECT number, ['shop-a', 'shop-b', 'shop-c'][intDiv(number, 72) %% 3 + 1] AS s, toDateTime(%[2]d + intDiv(number, 216) * 86400) AS b FROM numbers(78840))`,
		`INSERT INTO %[1]s.traffic SELECT s, 'day', b, ['path', 'entry', 'referrer', 'device', 'browser', 'os', 'country', 'path'][number %% 8 + 1], concat('/v', toString(intHash32(number) %% 3000)), 100 + rand() %% 3000, 300 + rand() %% 9000, 150 + rand() %% 4000, rand() %% 1000, 0
		 FROM (SELECT number, ['shop-a', 'shop-b', 'shop-c'][intDiv(number, 400) %% 3 + 1] AS s, toDateTime(%[2]d + intDiv(number, 1200) * 86400) AS b FROM numbers(438000))`,
		`INSERT INTO %[1]s.rollup_runs (table_name, site, grain, bucket, cells_published, epsilon, state) SELECT 'kpis', ['shop-a', 'shop-b', 'shop-c'][number %% 3 + 1], 'day', toDateTime(%[2]d + intDiv(number, 3) * 86400), 1, 0.8, 'published' FROM numbers(1095)`,
	}
	for _, q := range gen {
		if err := c.Exec(ctx, fmt.Sprintf(q, db, start)); err != nil {
			return "", fmt.Errorf("generate rollups: %w", err)
		}
	}
	reader, err := clickhouse.New(local.Reader().WithDatabase(db), nil)
	if err != nil {
		return "", err
	}
	defer reader.Close()
	users, err := dashboard.OpenUsers(filepath.Join(dir, "users.json"))
	if err != nil {
		return "", err
	}
	const pw = "benchmark password"
	if err := users.Add("bench", dashboard.Admin, pw); err != nil {
		return "", err
	}
	tables, err := aggregate.DefaultTables()
	if err != nil {
		return "", err
	}
	app := dashboard.NewApp(dashboard.Config{Reader: reader, Database: db, Users: users,
		Downloads: &dashboard.DownloadLog{Writer: c, Database: db},
		Statement: func(ctx context.Context) (privacy.Statement, error) {
			return aggregate.BuildStatement(ctx, reader, db, aggregate.Config{}, tables)
		}}, probe.NewReadiness(reader), nil)
	ws, err := webserver.Start(app, "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ws.Shutdown(context.Background())
	base := "http://" + ws.Addr()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: time.Minute}
	resp, err := hc.Get(base + "/login")
	if err != nil {
		return "", err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindSubmatch(body)
	if m == nil {
		return "", fmt.Errorf("no login form")
	}
	if resp, err = hc.PostForm(base+"/login", url.Values{"name": {"bench"}, "password": {pw}, "csrf": {string(m[1])}}); err != nil {
		return "", err
	}
	resp.Body.Close()

	q := "?site=shop-b&range=28d"
	targets := []string{
		"/api/v1/kpis", "/api/v1/products", "/api/v1/categories", "/api/v1/search", "/api/v1/search_zero", "/api/v1/search_trend",
		"/api/v1/funnels", "/api/v1/slots", "/api/v1/positions", "/api/v1/habits", "/api/v1/audience", "/api/v1/entries", "/api/v1/referrers",
		"/", "/products", "/search", "/funnels", "/layout", "/habits", "/privacy",
	}
	var s strings.Builder
	fmt.Fprintf(&s, "A year of published daily cells for 3 sites (5,000 of 100,000 products, 2,000 search terms and 400 traffic values per site and day: %s rows in `products`), "+
		"queried for the last 28 days of one site through HTTP as a logged-in user; %d requests each, sequential, after one warm-up.\n\n", "5.5 M", iterations)
	s.WriteString("| request | p50 ms | p95 ms | aim |\n|---|---|---|---|\n")
	for _, t := range targets {
		var lat []float64
		for i := 0; i <= iterations; i++ {
			t0 := time.Now()
			resp, err := hc.Get(base + t + q)
			if err != nil {
				return "", err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return "", fmt.Errorf("%s: %d", t, resp.StatusCode)
			}
			if i > 0 {
				lat = append(lat, float64(time.Since(t0).Microseconds())/1000)
			}
		}
		slices.Sort(lat)
		aim := "≤ 30 (widget)"
		if !strings.HasPrefix(t, "/api/") {
			aim = "≤ 150 (page)"
		}
		fmt.Fprintf(&s, "| `%s` | %.1f | %.1f | %s |\n", t, lat[len(lat)/2], lat[int(0.95*float64(len(lat)-1))], aim)
		fmt.Fprintf(os.Stderr, "%s p50 %.1f ms\n", t, lat[len(lat)/2])
	}
	return s.String(), nil
}
