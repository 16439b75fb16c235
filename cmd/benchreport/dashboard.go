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
	"github.com/herd-analytics/herd/internal/clickhouse/local"
	"github.com/herd-analytics/herd/internal/privacy"
	"github.com/herd-analytics/herd/internal/probe"
	"github.com/herd-analytics/herd/internal/webserver"
)

// benchDashboard fills a year of published rollups for three sites and a
// 100,000-product catalogue, then times every widget API and every page
// through HTTP as a logged-in manager.
func benchDashboard(ctx context.Context, c *clickhouse.Client, srv *local.Server, dir string, iterations int) (string, error) {
	db := clickhouse.DefaultDatabases.Pub
	today := time.Now().UTC().Truncate(24 * time.Hour)
	fmt.Fprintln(os.Stderr, "generating a year of rollups for 3 sites")
	// A year of what the publisher writes for 3 sites, each grain where
	// its table publishes it (aggregate/tables.go): daily KPIs, funnels
	// and traffic; weekly and monthly products (10,000 and 30,000 of a
	// 100,000-product catalogue a bucket), categories, search terms, slots
	// and positions; monthly habits and day-parts. {B} is a bucket's start
	// (its number k counted back from today), {S} the site.
	sites := `['shop-a', 'shop-b', 'shop-c'][%s %% 3 + 1]`
	grains := map[string]string{
		"day":   `toDateTime(toDate(toDateTime(%[1]d)) - 1 - %[2]s)`,
		"week":  `toDateTime(toMonday(toDate(toDateTime(%[1]d)) - 7 * (1 + %[2]s)))`,
		"month": `toDateTime(addMonths(toStartOfMonth(toDate(toDateTime(%[1]d))), -1 - toInt32(%[2]s)))`,
	}
	buckets := map[string]int{"day": 365, "week": 52, "month": 12}
	type gen struct {
		table, grain string
		perBucket    int    // rows per site and bucket
		row          string // the columns after site, grain, bucket; i is the row's number within its bucket
	}
	gens := []gen{
		{"kpis", "day", 1, `20000 + rand() % 5000, 26000 + rand() % 6000, 90000 + rand() % 9000, 600 + rand() % 90, 560 + rand() % 80, 50000 + (rand() % 9000), 0`},
		{"products", "week", 10000, `concat('P', toString(i * 10 + k % 10)), concat('cat', toString((i * 10 + k % 10) % 60)), 20 + rand() % 800, 30 + rand() % 1200, rand() % 100, rand() % 60, rand() % 20, (rand() % 2000) / 1.7, 0`},
		{"products", "month", 30000, `concat('P', toString(i * 3 + k % 3)), concat('cat', toString((i * 3 + k % 3) % 60)), 20 + rand() % 3000, 30 + rand() % 5000, rand() % 400, rand() % 200, rand() % 80, (rand() % 8000) / 1.7, 0`},
		{"categories", "week", 180, `concat('cat', toString(i % 60)), ['desktop', 'mobile', 'tablet'][intDiv(i, 60) + 1], 100 + rand() % 900, 300 + rand() % 3000, rand() % 300, rand() % 100, 0`},
		{"categories", "month", 180, `concat('cat', toString(i % 60)), ['desktop', 'mobile', 'tablet'][intDiv(i, 60) + 1], 400 + rand() % 3600, 1200 + rand() % 12000, rand() % 1200, rand() % 400, 0`},
		{"searches", "week", 2000, `concat('term ', toString(intHash32(i) % 20000)), 10 + rand() % 300, 12 + rand() % 400, rand() % 20, 0`},
		{"searches", "month", 5000, `concat('term ', toString(intHash32(i) % 20000)), 10 + rand() % 900, 12 + rand() % 1200, rand() % 60, 0`},
		{"funnels", "day", 27, `['purchase', 'search'][i % 2 + 1], toUInt8(i % 9 + 1), ['desktop', 'mobile', 'tablet'][intDiv(i, 9) % 3 + 1], 5000 - (i % 9) * 500, 0`},
		{"funnels", "week", 27, `['purchase', 'search'][i % 2 + 1], toUInt8(i % 9 + 1), ['desktop', 'mobile', 'tablet'][intDiv(i, 9) % 3 + 1], 35000 - (i % 9) * 3500, 0`},
		{"funnels", "month", 27, `['purchase', 'search'][i % 2 + 1], toUInt8(i % 9 + 1), ['desktop', 'mobile', 'tablet'][intDiv(i, 9) % 3 + 1], 150000 - (i % 9) * 15000, 0`},
		{"slots", "week", 8, `'home', concat('home-row-', toString(i % 4 + 1)), ['A', 'B'][intDiv(i, 4) + 1], 21000 + rand() % 6000, 28000, 700 + rand() % 1400, 0`},
		{"slots", "month", 8, `'home', concat('home-row-', toString(i % 4 + 1)), ['A', 'B'][intDiv(i, 4) + 1], 90000 + rand() % 20000, 120000, 3000 + rand() % 6000, 0`},
		{"positions", "week", 72, `['category', 'search', 'home'][intDiv(i, 24) + 1], toUInt16(i % 24 + 1), 14000, 17500, 1400 - (i % 24) * 49, 0`},
		{"positions", "month", 72, `['category', 'search', 'home'][intDiv(i, 24) + 1], toUInt16(i % 24 + 1), 60000, 75000, 6000 - (i % 24) * 210, 0`},
		{"habits", "month", 504, `toUInt8(i % 7 + 1), toUInt8(intDiv(i, 7) % 24), ['desktop', 'mobile', 'tablet'][intDiv(i, 168) + 1], 6000 + rand() % 24000, 27000 + rand() % 60000, 0`},
		{"category_dayparts", "month", 240, `concat('cat', toString(i % 60)), ['night', 'morning', 'afternoon', 'evening'][intDiv(i, 60) + 1], 3000 + rand() % 27000, 9000 + rand() % 90000, 0`},
		{"traffic", "day", 400, `['path', 'entry', 'referrer', 'device', 'browser', 'os', 'country', 'path'][i % 8 + 1], concat('/v', toString(intHash32(i) % 3000)), 100 + rand() % 3000, 300 + rand() % 9000, 150 + rand() % 4000, rand() % 1000, 0`},
		{"traffic", "month", 400, `['path', 'entry', 'referrer', 'device', 'browser', 'os', 'country', 'path'][i % 8 + 1], concat('/v', toString(intHash32(i) % 3000)), 3000 + rand() % 90000, 9000 + rand() % 270000, 4500 + rand() % 120000, rand() % 30000, 0`},
	}
	var productRows int
	for _, g := range gens {
		n := buckets[g.grain] * 3 * g.perBucket
		if g.table == "products" {
			productRows += n
		}
		// number → site (fastest), then the row within its bucket (i),
		// then the bucket (k).
		sql := fmt.Sprintf("INSERT INTO %s.%s SELECT s, '%s', b, %s FROM (SELECT %s AS s, n %% %d AS i, intDiv(n, %d) AS k, %s AS b FROM (SELECT intDiv(number, 3) AS n, number %% 3 AS site FROM numbers(%d)))",
			db, g.table, g.grain, g.row, fmt.Sprintf(sites, "site"), g.perBucket, g.perBucket, fmt.Sprintf(grains[g.grain], today.Unix(), "k"), n)
		if err := c.Exec(ctx, sql); err != nil {
			return "", fmt.Errorf("generate %s %s: %w", g.table, g.grain, err)
		}
	}
	// The catalogue (names for every product) and the run log: the first
	// published day, and the slots' noise for the layout's intervals.
	params := `{"k":10,"visitors_sigma":30,"metrics":[{"name":"impressions","sigma":60},{"name":"clicks","sigma":15}]}`
	for _, q := range []string{
		fmt.Sprintf(`INSERT INTO %s.catalog SELECT ['shop-a', 'shop-b', 'shop-c'][number %% 3 + 1], concat('P', toString(intDiv(number, 3))), concat('Product ', toString(intDiv(number, 3))), concat('cat', toString(intDiv(number, 3) %% 60)), 5 + (number %% 500), now() FROM numbers(300000)`, db),
		fmt.Sprintf(`INSERT INTO %s.rollup_runs (table_name, site, grain, bucket, cells_published, epsilon, state) SELECT 'kpis', ['shop-a', 'shop-b', 'shop-c'][number %% 3 + 1], 'day', toDateTime(toDate(toDateTime(%d)) - 1 - intDiv(number, 3)), 1, 0.8, 'published' FROM numbers(1095)`, db, today.Unix()),
		fmt.Sprintf(`INSERT INTO %s.rollup_runs (table_name, site, grain, bucket, cells_published, epsilon, state, params) SELECT 'slots', ['shop-a', 'shop-b', 'shop-c'][number %% 3 + 1], 'week', toDateTime(toMonday(toDate(toDateTime(%d)) - 7 * (1 + intDiv(number, 3)))), 8, 0, 'published', %s FROM numbers(156)`, db, today.Unix(), clickhouse.Quote(params)),
	} {
		if err := c.Exec(ctx, q); err != nil {
			return "", fmt.Errorf("generate catalog and runs: %w", err)
		}
	}
	reader, err := clickhouse.New(srv.Reader().WithDatabase(db), nil)
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

	// Each request at the period its page opens with (the last 4 full
	// weeks; products the last full month), plus daily cells over 28 days
	// where a table has them.
	q := "?site=shop-b"
	targets := []string{
		"/api/v1/kpis", "/api/v1/kpis?range=28d", "/api/v1/products", "/api/v1/products/P1234", "/api/v1/category_revenue", "/api/v1/categories", "/api/v1/category_dayparts",
		"/api/v1/search", "/api/v1/search_zero", "/api/v1/search_trend",
		"/api/v1/funnels", "/api/v1/funnels?range=28d", "/api/v1/slots", "/api/v1/positions", "/api/v1/habits", "/api/v1/audience", "/api/v1/entries", "/api/v1/referrers",
		"/", "/products", "/products/P1234", "/search", "/funnels", "/layout", "/habits", "/reports", "/privacy",
	}
	var s strings.Builder
	fmt.Fprintf(&s, "A year of published cells for 3 sites, each table at the grains it publishes (daily KPIs, funnels and traffic; weekly and monthly products — 10,000 and 30,000 of a 100,000-product catalogue a bucket — categories, terms, slots and positions; monthly habits): %.1f M rows in `products`, "+
		"queried for one site through HTTP as a logged-in user at each page's default period (the last 4 full weeks; products the last full month), and over the last 28 days where noted; %d requests each, sequential, after one warm-up.\n\n", float64(productRows)/1e6, iterations)
	s.WriteString("| request | p50 ms | p95 ms | aim |\n|---|---|---|---|\n")
	for _, t := range targets {
		var lat []float64
		for i := 0; i <= iterations; i++ {
			t0 := time.Now()
			u := base + t + q
			if strings.Contains(t, "?") {
				u = base + t + "&site=shop-b"
			}
			resp, err := hc.Get(u)
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
