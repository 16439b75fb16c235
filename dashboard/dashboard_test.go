package dashboard_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/herd-analytics/herd/aggregate"
	"github.com/herd-analytics/herd/dashboard"
	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
	"github.com/herd-analytics/herd/internal/privacy"
	"github.com/herd-analytics/herd/internal/probe"
	"github.com/herd-analytics/herd/internal/webserver"
)

func TestMain(m *testing.M) { os.Exit(chtest.Run(m)) }

const password = "correct horse battery"

// hostile names a published product: markup, quotes and SQL that must be
// shown as text, never run.
const hostile = `</script><script>window.__pwned=1</script>"'; DROP TABLE herd.kpis; --`

type site struct {
	url       string
	db        *chtest.DB
	today     time.Time
	usersFile string
	cfg       dashboard.Config
}

// start serves the dashboard over published rows written straight into the
// rollup tables (the dashboard reads nothing else), with one user per role.
func start(t *testing.T) *site {
	t.Helper()
	return startWith(t, chtest.Migrated(t), 0)
}

// budgetAt is the publisher's tables and its budget at a total of eps.
func budgetAt(t *testing.T, eps float64) ([]*aggregate.Table, aggregate.Budget) {
	t.Helper()
	tables, err := aggregate.DefaultTables()
	if err != nil {
		t.Fatal(err)
	}
	budget, err := aggregate.NewBudget(aggregate.Config{Epsilon: eps}, tables)
	if err != nil {
		t.Fatal(err)
	}
	return tables, budget
}

// releaseAt is the budget's release of table at grain at a total of eps.
func releaseAt(t *testing.T, eps float64, table string, g aggregate.Grain) aggregate.Release {
	t.Helper()
	_, b := budgetAt(t, eps)
	r, ok := b.Release(table, g)
	if !ok {
		t.Fatalf("no %s release at grain %v", table, g)
	}
	return r
}

// startWith is start over db, with the dashboard's request timeout (0: its
// default) and any other configuration changes.
func startWith(t *testing.T, db *chtest.DB, timeout time.Duration, mods ...func(*dashboard.Config)) *site {
	t.Helper()
	ctx := context.Background()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	// The kpis runs record the publisher's own parameters: the overview
	// reads their noise. The older four weeks were published at ε = 2
	// (the shop raised it since): each day's noise is its own release's.
	// The product cells record the weekly products release's (these
	// daily cells stand for any grain's).
	tables, _ := budgetAt(t, 4)
	kpiParams, err := json.Marshal(releaseAt(t, 4, "kpis", aggregate.Day).Params)
	if err != nil {
		t.Fatal(err)
	}
	oldKPIParams, err := json.Marshal(releaseAt(t, 2, "kpis", aggregate.Day).Params)
	if err != nil {
		t.Fatal(err)
	}
	productParams, err := json.Marshal(releaseAt(t, 4, "products", aggregate.Week).Params)
	if err != nil {
		t.Fatal(err)
	}
	oldProductParams, err := json.Marshal(releaseAt(t, 2, "products", aggregate.Week).Params)
	if err != nil {
		t.Fatal(err)
	}
	exec := func(q string) {
		t.Helper()
		if err := db.Writer.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for i := 1; i <= 56; i++ {
		day := today.Add(-time.Duration(i) * 24 * time.Hour)
		b := fmt.Sprintf("toDateTime(%d)", day.Unix())
		exec(fmt.Sprintf("INSERT INTO %s.kpis VALUES ('demo', 'day', %s, %d, %d, %d, %d, %d, %f, 0)", db.Names.Pub, b, 1000+i*10, 1300+i*12, 5200+i*30, 30+i%7, 28+i%7, 2500.5+float64(i)*11))
		exec(fmt.Sprintf("INSERT INTO %s.products VALUES ('demo', 'day', %s, 'P-1', 'shirts', %d, %d, 20, 10, 3, 150.0, 0), ('demo', 'day', %s, 'P-2', 'shoes', %d, %d, 15, 8, 2, 90.5, 0), ('demo', 'day', %s, %s, 'shoes', 40, 60, 2, 1, 0, 0, 0)",
			db.Names.Pub, b, 300+i, 400+i, b, 200+i, 260+i, b, clickhouse.Quote(hostile)))
		exec(fmt.Sprintf("INSERT INTO %s.categories VALUES ('demo', 'day', %s, 'shirts', 'desktop', 500, 900, 40, 12, 0), ('demo', 'day', %s, 'shirts', 'mobile', 600, 1000, 30, 9, 0), ('demo', 'day', %s, 'shoes', 'mobile', 300, 500, 20, 5, 0)",
			db.Names.Pub, b, b, b))
		params, pparams := kpiParams, productParams
		if i > 28 {
			params, pparams = oldKPIParams, oldProductParams
		}
		exec(fmt.Sprintf("INSERT INTO %s.rollup_runs (table_name, site, grain, bucket, cells_published, epsilon, state, params) VALUES ('kpis', 'demo', 'day', %s, 1, 0.8, 'published', %s), ('products', 'demo', 'day', %s, 3, 0.8, 'published', %s), ('funnels', 'demo', 'day', %s, 6, 0.8, 'published', '{}')",
			db.Names.Pub, b, clickhouse.Quote(string(params)), b, clickhouse.Quote(string(pparams)), b))
		exec(fmt.Sprintf("INSERT INTO %s.category_dayparts VALUES ('demo', 'day', %s, 'shirts', 'evening', 300, 700, 0), ('demo', 'day', %s, 'shirts', 'morning', 120, 200, 0), ('demo', 'day', %s, 'shoes', 'evening', 150, 260, 0)",
			db.Names.Pub, b, b, b))
		exec(fmt.Sprintf("INSERT INTO %s.searches VALUES ('demo', 'day', %s, 'linen shirt', 120, 150, 0, 0), ('demo', 'day', %s, 'rain poncho', 60, 70, 70, 0), ('demo', 'day', %s, %s, 20, 25, 25, 0)",
			db.Names.Pub, b, b, b, clickhouse.Quote(hostile)))
		exec(fmt.Sprintf("INSERT INTO %s.funnels VALUES ('demo', 'day', %s, 'purchase', 1, 'desktop', 400, 0), ('demo', 'day', %s, 'purchase', 2, 'desktop', 60, 0), ('demo', 'day', %s, 'purchase', 1, 'mobile', 500, 0), ('demo', 'day', %s, 'purchase', 2, 'mobile', 50, 0), ('demo', 'day', %s, 'search', 1, 'mobile', 200, 0), ('demo', 'day', %s, 'search', 2, 'mobile', 90, 0)",
			db.Names.Pub, b, b, b, b, b, b))
		exec(fmt.Sprintf("INSERT INTO %s.slots VALUES ('demo', 'day', %s, 'home', 'home-hero-1', 'A', 300, 310, 20, 0), ('demo', 'day', %s, 'home', 'home-hero-1', 'B', 300, 305, 29, 0), ('demo', 'day', %s, 'home', 'home-row-1', 'A', 280, 290, 12, 0), ('demo', 'day', %s, 'home', 'home-row-4', 'B', 270, 280, 8, 0)",
			db.Names.Pub, b, b, b, b))
		exec(fmt.Sprintf("INSERT INTO %s.positions VALUES ('demo', 'day', %s, 'category', 1, 400, 420, 50, 0), ('demo', 'day', %s, 'category', 2, 390, 410, 33, 0), ('demo', 'day', %s, 'search', 1, 200, 210, 30, 0)",
			db.Names.Pub, b, b, b))
		exec(fmt.Sprintf("INSERT INTO %s.habits VALUES ('demo', 'day', %s, %d, 20, 'mobile', 120, 400, 0), ('demo', 'day', %s, %d, 12, 'desktop', 90, 300, 0)",
			db.Names.Pub, b, int(day.Weekday()+6)%7+1, b, int(day.Weekday()+6)%7+1))
		exec(fmt.Sprintf("INSERT INTO %s.traffic VALUES ('demo', 'day', %s, 'device', 'mobile', 600, 2000, 800, 200, 0), ('demo', 'day', %s, 'device', 'desktop', 400, 1500, 500, 100, 0), ('demo', 'day', %s, 'browser', 'Chrome', 700, 2500, 900, 200, 0), ('demo', 'day', %s, 'entry', '/', 500, 1200, 600, 150, 0), ('demo', 'day', %s, 'referrer', 'google.com', 300, 900, 350, 80, 0), ('demo', 'day', %s, 'referrer', '', 200, 700, 250, 60, 0)",
			db.Names.Pub, b, b, b, b, b, b))
		exec(fmt.Sprintf("INSERT INTO %s.funnel_segments VALUES ('demo', 'day', %s, 'purchase', 1, 'variant', 'A', 300, 0), ('demo', 'day', %s, 'purchase', 2, 'variant', 'A', 40, 0), "+
			"('demo', 'day', %s, 'purchase', 1, 'variant', 'B', 290, 0), ('demo', 'day', %s, 'purchase', 2, 'variant', 'B', 60, 0), "+
			"('demo', 'day', %s, 'purchase', 1, 'source', 'direct', 350, 0), ('demo', 'day', %s, 'purchase', 2, 'source', 'direct', 50, 0), "+
			"('demo', 'day', %s, 'purchase', 1, 'source', 'search', 240, 0), ('demo', 'day', %s, 'purchase', 2, 'source', 'search', 45, 0)",
			db.Names.Pub, b, b, b, b, b, b, b, b))
		exec(fmt.Sprintf("INSERT INTO %s.experiments VALUES ('demo', 'day', %s, 'A', %d, 30, 2400.0, 0), ('demo', 'day', %s, 'B', %d, 45, 3300.0, 0)", db.Names.Pub, b, 700+i, b, 690+i))
		params, err := json.Marshal(privacy.Params{Metrics: []privacy.Mechanism{{Name: "impressions", Sensitivity: 10, Sigma: 60}, {Name: "clicks", Sensitivity: 2.5, Sigma: 15}}})
		if err != nil {
			t.Fatal(err)
		}
		exec(fmt.Sprintf(`INSERT INTO %s.rollup_runs (table_name, site, grain, bucket, cells_published, epsilon, state, params) VALUES ('slots', 'demo', 'day', %s, 4, 0.8, 'published', %s)`, db.Names.Pub, b, clickhouse.Quote(string(params))))
	}
	usersFile := filepath.Join(t.TempDir(), "users.json")
	users, err := dashboard.OpenUsers(usersFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range dashboard.Roles {
		if err := users.Add(string(r), r, password); err != nil {
			t.Fatal(err)
		}
	}
	reportDir := t.TempDir()
	cfg := dashboard.Config{
		Reader: db.Reader, Database: db.Names.Pub, Users: users,
		Downloads: &dashboard.DownloadLog{Writer: db.Writer, Database: db.Names.Pub}, ReportDir: reportDir, RequestTimeout: timeout,
		Statement: func(ctx context.Context) (privacy.Statement, error) {
			return aggregate.BuildStatement(ctx, db.Reader, db.Names.Pub, aggregate.Config{}, tables)
		},
	}
	for _, mod := range mods {
		mod(&cfg)
	}
	return &site{url: serve(t, db, cfg), db: db, today: today, usersFile: usersFile, cfg: cfg}
}

// serve starts a dashboard with cfg and returns its base URL.
func serve(t *testing.T, db *chtest.DB, cfg dashboard.Config) string {
	t.Helper()
	app := dashboard.NewApp(cfg, probe.NewReadiness(db.Reader), nil)
	ws, err := webserver.Start(app, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Shutdown(context.Background()) })
	return "http://" + ws.Addr()
}

// at is another dashboard over s's rows and users whose clock reads now:
// what a test asks of the periods must not depend on the day it runs.
func (s *site) at(t *testing.T, now time.Time) *site {
	t.Helper()
	cfg := s.cfg
	cfg.Now = func() time.Time { return now }
	at := *s
	at.url, at.today, at.cfg = serve(t, s.db, cfg), now.UTC().Truncate(24*time.Hour), cfg
	return &at
}

// client is a cookie-keeping HTTP client that does not follow redirects.
func client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 30 * time.Second}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// login fetches the form, then posts it; it returns the POST's status.
func (s *site) login(t *testing.T, c *http.Client, name, pw string, withCSRF bool) int {
	t.Helper()
	return s.loginResponse(t, c, name, pw, withCSRF).StatusCode
}

// loginResponse is login's answer (its body closed).
func (s *site) loginResponse(t *testing.T, c *http.Client, name, pw string, withCSRF bool) *http.Response {
	t.Helper()
	resp, err := c.Get(s.url + "/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfField.FindSubmatch(body)
	if m == nil {
		t.Fatalf("login form without a CSRF token: %s", body)
	}
	form := url.Values{"name": {name}, "password": {pw}}
	if withCSRF {
		form.Set("csrf", string(m[1]))
	}
	resp, err = c.PostForm(s.url+"/login", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func status(t *testing.T, c *http.Client, u string) int {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestAuth(t *testing.T) {
	s := start(t)

	t.Run("no session", func(t *testing.T) {
		c := client()
		if got := status(t, c, s.url+"/"); got != http.StatusSeeOther {
			t.Errorf("page without a session: %d, want a redirect to /login", got)
		}
		if got := status(t, c, s.url+"/api/v1/kpis"); got != http.StatusUnauthorized {
			t.Errorf("API without a session: %d", got)
		}
	})

	t.Run("CSRF token missing", func(t *testing.T) {
		if got := s.login(t, client(), "manager", password, false); got != http.StatusForbidden {
			t.Errorf("login without the CSRF token: %d", got)
		}
		c := client()
		if got := s.login(t, c, "manager", password, true); got != http.StatusSeeOther {
			t.Fatalf("login: %d", got)
		}
		resp, err := c.PostForm(s.url+"/logout", url.Values{})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("logout without the CSRF token: %d", resp.StatusCode)
		}
	})

	t.Run("roles", func(t *testing.T) {
		sees := map[dashboard.Role]map[string]int{
			dashboard.Merchandiser: {"/": 200, "/products": 200, "/privacy": 200, "/api/v1/products": 200, "/search": 200, "/funnels": 403, "/layout": 403, "/api/v1/funnels": 403, "/habits": 200},
			dashboard.UX:           {"/": 200, "/products": 403, "/privacy": 200, "/api/v1/products": 403, "/search": 403, "/api/v1/search": 403, "/funnels": 200, "/layout": 200, "/habits": 200},
			dashboard.Manager:      {"/": 200, "/products": 200, "/privacy": 200, "/api/v1/products": 200},
			dashboard.Admin:        {"/": 200, "/products": 200, "/privacy": 200, "/api/v1/products": 200},
		}
		for role, pages := range sees {
			c := client()
			if got := s.login(t, c, string(role), password, true); got != http.StatusSeeOther {
				t.Fatalf("%s login: %d", role, got)
			}
			for p, want := range pages {
				if got := status(t, c, s.url+p); got != want {
					t.Errorf("%s %s: %d, want %d", role, p, got, want)
				}
			}
		}
	})

	t.Run("wrong password ten times is slowed down", func(t *testing.T) {
		c := client()
		for i := range 10 {
			got := s.login(t, c, "admin", "wrong password!", true)
			if got != http.StatusUnauthorized && got != http.StatusTooManyRequests {
				t.Fatalf("attempt %d: %d", i+1, got)
			}
		}
		resp := s.loginResponse(t, c, "admin", password, true)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("the right password after 10 wrong ones: %d (Retry-After %q), want 429 until the wait is over", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	})
}

// TestNumbersArePublishedRows: what the API (and so the charts and CSV)
// shows is the sum of the published rows, queried here independently.
func TestNumbersArePublishedRows(t *testing.T) {
	s := start(t)
	c := client()
	if got := s.login(t, c, "manager", password, true); got != http.StatusSeeOther {
		t.Fatalf("login: %d", got)
	}
	resp, err := c.Get(s.url + "/api/v1/kpis?range=28d")
	if err != nil {
		t.Fatal(err)
	}
	var ans struct {
		Data []struct {
			Day      string  `json:"day"`
			Visitors uint64  `json:"visitors"`
			Revenue  float64 `json:"revenue"`
		} `json:"data"`
		Privacy string `json:"privacy"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var want uint64
	var n int
	err = s.db.Writer.Select(context.Background(), fmt.Sprintf("SELECT sum(visitors), count() FROM %s.kpis WHERE bucket >= toDateTime(%d) AND bucket < toDateTime(%d)",
		s.db.Names.Pub, s.today.Add(-28*24*time.Hour).Unix(), s.today.Unix()), func(b *proto.Block) error {
		if b.Rows() > 0 {
			want = b.Columns[0].Row(0, false).(uint64)
			n = int(b.Columns[1].Row(0, false).(uint64))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var got uint64
	for _, d := range ans.Data {
		got += d.Visitors
	}
	if len(ans.Data) != n || got != want || n != 28 {
		t.Fatalf("API: %d days, %d visitors; published rows: %d days, %d visitors", len(ans.Data), got, n, want)
	}
	if !strings.Contains(ans.Privacy, "≥ 10 visitor-days") {
		t.Errorf("no privacy statement with the numbers: %q", ans.Privacy)
	}

	resp, err = c.Get(s.url + "/api/v1/products?range=28d&by=views&format=csv")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	if err != nil || len(recs) != 4 || recs[0][0] != "product_id" || recs[1][0] != "P-1" {
		t.Fatalf("products CSV: %v, %v", recs, err)
	}
	// The hostile name is data in the CSV, and cannot run as a formula.
	if recs[3][0] != hostile {
		t.Errorf("hostile product id in CSV: %q", recs[3][0])
	}
}

// TestDatasetsArePublishedRows: each widget's API answer, summed, equals the
// published rows of its table summed independently here.
func TestDatasetsArePublishedRows(t *testing.T) {
	s := start(t)
	c := client()
	if got := s.login(t, c, "admin", password, true); got != http.StatusSeeOther {
		t.Fatalf("login: %d", got)
	}
	where := fmt.Sprintf("site = 'demo' AND grain = 'day' AND bucket >= toDateTime(%d) AND bucket < toDateTime(%d)", s.today.Add(-28*24*time.Hour).Unix(), s.today.Unix())
	for _, tc := range []struct{ dataset, field, table, expr string }{
		{"search", "searches", "searches", "sum(searches)"},
		{"search_zero", "zero_result_searches", "searches", "sum(zero_results)"},
		{"search_trend", "searches", "searches", "sum(searches)"},
		{"funnels", "visitors", "funnels", "sum(visitors)"},
		{"slots", "clicks", "slots", "sum(clicks)"},
		{"positions", "impressions", "positions", "sum(impressions)"},
		{"habits", "visitors", "habits", "sum(visitors)"},
		{"audience", "visitors", "traffic", "sumIf(visitors, dimension IN ('device', 'browser', 'os', 'country'))"},
		{"entries", "sessions", "traffic", "sumIf(sessions, dimension = 'entry')"},
		{"referrers", "sessions", "traffic", "sumIf(sessions, dimension = 'referrer')"},
		{"categories", "", "categories", "sum(views)"},
		{"category_dayparts", "views", "category_dayparts", "sum(views)"},
	} {
		code, body := get(t, c, s.url+"/api/v1/"+tc.dataset+"?range=28d")
		if code != 200 {
			t.Fatalf("%s: %d %s", tc.dataset, code, body)
		}
		var got float64
		if tc.dataset == "categories" {
			var ans struct {
				Data []dashboard.CategoryShare `json:"data"`
			}
			if err := json.Unmarshal(body, &ans); err != nil {
				t.Fatal(err)
			}
			for _, cs := range ans.Data {
				for _, v := range cs.Views {
					got += float64(v)
				}
			}
		} else {
			var ans struct {
				Data []map[string]any `json:"data"`
			}
			if err := json.Unmarshal(body, &ans); err != nil {
				t.Fatal(err)
			}
			for _, r := range ans.Data {
				// Numbers are JSON numbers in every field; no text
				// field of these fixtures reads as one.
				for k, v := range r {
					if text, ok := v.(string); ok {
						if _, err := strconv.ParseFloat(text, 64); err == nil {
							t.Errorf("%s %s: the number %q as a JSON string", tc.dataset, k, text)
						}
					}
				}
				v, ok := r[tc.field].(float64)
				if !ok {
					t.Fatalf("%s %s: %T, want a JSON number", tc.dataset, tc.field, r[tc.field])
				}
				got += v
			}
		}
		want := rowsOf(t, s, "SELECT toFloat64("+tc.expr+") FROM "+s.db.Names.Pub+"."+tc.table+" WHERE "+where)[0][0].(float64)
		if got != want || want == 0 {
			t.Errorf("%s: API shows %v, published rows hold %v", tc.dataset, got, want)
		}
	}
}

// TestAPIRefusesWhatItDoesNotApply: a parameter an endpoint does not take,
// a format it cannot write or a variant nothing published is a 400 that
// names the parameter, never an answer that silently ignored it.
func TestAPIRefusesWhatItDoesNotApply(t *testing.T) {
	s := start(t)
	c := client()
	if got := s.login(t, c, "admin", password, true); got != http.StatusSeeOther {
		t.Fatalf("login: %d", got)
	}
	for _, tc := range []struct{ query, name string }{
		{"/api/v1/kpis?range=28d&device=mobile", "device"},
		{"/api/v1/kpis?range=28d&format=xml", "format"},
		{"/api/v1/search?range=28d&by=views", "by"},
		{"/api/v1/search?range=28d&limit=5", "limit"},
		{"/api/v1/positions?range=28d&category=shirts", "category"},
		{"/api/v1/slots?range=28d&variant=-1", "variant"},
		{"/api/v1/slots?range=28d&variant=99999999999999999999", "variant"},
		{"/api/v1/experiments?range=28d&variant=C", "variant"},
		{"/api/v1/habits?range=28d&source=search", "source"},
		{"/api/v1/products?range=28d&device=mobile", "device"},
		{"/api/v1/products?range=28d&limit=0", "limit"},
	} {
		code, body := get(t, c, s.url+tc.query)
		if code != http.StatusBadRequest || !strings.Contains(string(body), `"`+tc.name+`:`) {
			t.Errorf("%s: %d %s, want 400 naming %s", tc.query, code, body, tc.name)
		}
	}
	for _, ok := range []string{"/api/v1/slots?range=28d&variant=B", "/api/v1/habits?range=28d&device=mobile", "/api/v1/funnel_segments?range=28d&source=search",
		"/api/v1/products?range=28d&by=revenue&limit=5&category=shirts&format=csv", "/api/v1/categories?range=28d&device=tablet"} {
		if code, body := get(t, c, s.url+ok); code != http.StatusOK {
			t.Errorf("%s: %d %s", ok, code, body)
		}
	}
}
