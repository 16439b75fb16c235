package dashboard_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/herd-analytics/herd/dashboard"
	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
	"github.com/herd-analytics/herd/internal/clickhouse/local"
	"github.com/herd-analytics/herd/schemas"
)

// medianLatency is the median of n GETs of u.
func medianLatency(t *testing.T, c *http.Client, u string, n int) time.Duration {
	t.Helper()
	var ds []time.Duration
	for range n {
		start := time.Now()
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", u, resp.StatusCode)
		}
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	return ds[n/2]
}

// A login flood — many names from one address, hundreds in parallel —
// is throttled across names, and a logged-in user's pages stay quick.
func TestLoginFlood(t *testing.T) {
	s := start(t)
	user := client()
	if got := s.login(t, user, "manager", password, true); got != http.StatusSeeOther {
		t.Fatalf("login: %d", got)
	}
	kpis := s.url + "/api/v1/kpis"
	medianLatency(t, user, kpis, 5) // warm
	quiet := medianLatency(t, user, kpis, 40)

	// 60 names from one address: throttled across names after 20.
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for g := range 10 {
		wg.Go(func() {
			for i := range 6 {
				code := s.login(t, client(), fmt.Sprintf("guess%d-%d", g, i), "wrong password!", true)
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if codes[http.StatusTooManyRequests] < 30 || codes[http.StatusUnauthorized] > 25 {
		t.Fatalf("60 names from one address: %v, want most refused with 429", codes)
	}

	// 200 attackers in parallel, each fetching a login form and posting a
	// guess, while the user works.
	var stop atomic.Bool
	var attempts atomic.Int64
	for i := range 200 {
		wg.Go(func() {
			c := client()
			for n := 0; !stop.Load(); n++ {
				resp, err := c.Get(s.url + "/login")
				if err != nil {
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				m := csrfField.FindSubmatch(body)
				if m == nil {
					continue
				}
				resp, err = c.PostForm(s.url+"/login", url.Values{"name": {fmt.Sprintf("flood%d-%d", i, n)}, "password": {"wrong password!"}, "csrf": {string(m[1])}})
				if err == nil {
					resp.Body.Close()
				}
				attempts.Add(1)
			}
		})
	}
	// Measured once the flood is under way.
	for deadline := time.Now().Add(10 * time.Second); attempts.Load() < 100; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the flood made %d attempts in 10 s", attempts.Load())
		}
	}
	flooded := medianLatency(t, user, kpis, 40)
	stop.Store(true)
	wg.Wait()
	t.Logf("median /api/v1/kpis: %v quiet, %v under a flood of %d login attempts", quiet, flooded, attempts.Load())
	if flooded > 2*quiet+20*time.Millisecond {
		t.Fatalf("median latency %v under the flood, %v without: over 2×", flooded, quiet)
	}
}

// A ClickHouse that is alive but answers nothing (SIGSTOP): the dashboard's
// readiness answers at once and its pages answer 503 with a reason within
// the request timeout, never a hang or a 500.
func TestFrozenClickHouseAnswers503(t *testing.T) {
	chtest.Servers(t)
	ctx := context.Background()
	srv, err := local.Start(ctx, local.Config{Dir: filepath.Join(t.TempDir(), "clickhouse")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(srv.PID(), syscall.SIGCONT)
		_ = srv.Stop(context.Background())
	})
	// The managed server's reader may read the default published database.
	db := &chtest.DB{Server: srv, Names: clickhouse.DefaultDatabases}
	if db.Writer, err = clickhouse.New(srv.Writer(), nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{db.Names.Raw, db.Names.Pub} {
		if err := db.Writer.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+name); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := clickhouse.LoadMigrations(schemas.Migrations, schemas.MigrationsDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := clickhouse.Migrate(ctx, db.Writer, db.Names, ms, nil); err != nil {
		t.Fatal(err)
	}
	if db.Reader, err = clickhouse.New(srv.Reader().WithDatabase(db.Names.Pub), nil); err != nil {
		t.Fatal(err)
	}
	s := startWith(t, db, 4*time.Second)
	c := client()
	if got := s.login(t, c, "manager", password, true); got != http.StatusSeeOther {
		t.Fatalf("login: %d", got)
	}
	if got := status(t, c, s.url+"/api/v1/kpis"); got != 200 {
		t.Fatalf("before the freeze: %d", got)
	}
	if err := syscall.Kill(srv.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Readiness keeps its last answer a second: wait until it knows.
	for deadline := time.Now().Add(5 * time.Second); status(t, c, s.url+"/readyz") != http.StatusServiceUnavailable; {
		if time.Now().After(deadline) {
			t.Fatal("/readyz does not say the store is frozen 5 s after the freeze")
		}
	}
	for _, tc := range []struct {
		path, accept string
		most         time.Duration
	}{{"/readyz", "", 2 * time.Second}, {"/api/v1/kpis", "", 2 * time.Second}, {"/products", "", 2 * time.Second},
		{"/products", "text/html,application/xhtml+xml", 2 * time.Second}, {"/api/v1/kpis", "text/html", 2 * time.Second}} {
		start := time.Now()
		req, _ := http.NewRequest("GET", s.url+tc.path, nil)
		if tc.accept != "" {
			req.Header.Set("Accept", tc.accept)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		t.Logf("%s (Accept %q) with ClickHouse frozen: %d in %v", tc.path, tc.accept, resp.StatusCode, took)
		if resp.StatusCode != 503 || !strings.Contains(strings.ToLower(string(body)), "clickhouse") || took > tc.most {
			t.Fatalf("%s: %d %q after %v, want 503 naming ClickHouse within %v", tc.path, resp.StatusCode, body, took, tc.most)
		}
		// A public answer says what is wrong, never where.
		if strings.Contains(string(body), "127.0.0.1") || strings.Contains(string(body), strconv.Itoa(srv.HTTPPort())) {
			t.Errorf("%s: the answer names the server: %q", tc.path, body)
		}
		if tc.path != "/readyz" && resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", tc.path)
		}
		// A browser asking for a page gets a page; the API answers JSON.
		wantType := "application/json"
		if tc.accept != "" && !strings.HasPrefix(tc.path, "/api/") {
			wantType = "text/html"
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, wantType) {
			t.Errorf("%s (Accept %q): Content-Type %q, want %s", tc.path, tc.accept, ct, wantType)
		}
	}
}

// What a logged-in user sees is never cached, scripts run only from herd or
// under the page's nonce, a CSV says its charset once, a site that has no
// published data is refused before it reaches a file name, and a user
// added to the account file meanwhile can log in without a restart.
func TestHeadersSitesAndNewUsers(t *testing.T) {
	s := start(t)
	c := client()
	if got := s.login(t, c, "manager", password, true); got != http.StatusSeeOther {
		t.Fatalf("login: %d", got)
	}
	resp, err := c.Get(s.url + "/products")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.Header.Get("Cache-Control") != "no-store" || strings.Contains(csp, "script-src 'self' 'unsafe-inline'") || !strings.Contains(csp, "script-src 'self' 'nonce-") {
		t.Fatalf("page headers: Cache-Control %q, CSP %q", resp.Header.Get("Cache-Control"), csp)
	}
	nonce := csp[strings.Index(csp, "'nonce-")+7:]
	nonce = nonce[:strings.Index(nonce, "'")]
	if !strings.Contains(string(body), `<script nonce="`+nonce+`">`) || strings.Contains(string(body), "data-herd-chart") {
		t.Fatal("chart scripts do not carry the page's nonce")
	}
	resp, err = c.Get(s.url + "/api/v1/products?format=csv")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("CSV: Content-Type %q, Cache-Control %q", ct, resp.Header.Get("Cache-Control"))
	}
	for _, u := range []string{"/reports/download?site=a%22b&kind=weekly&format=csv", "/api/v1/kpis?site=nope"} {
		if got := status(t, c, s.url+u); got != http.StatusBadRequest {
			t.Fatalf("%s: %d, want 400", u, got)
		}
	}
	// A login posted from another site's page is refused, token or not.
	for _, h := range [][2]string{{"Origin", "http://evil.example"}, {"Sec-Fetch-Site", "cross-site"}, {"Origin", "null"}} {
		resp, err := c.Get(s.url + "/login")
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		form := url.Values{"name": {"manager"}, "password": {password}, "csrf": {string(csrfField.FindSubmatch(page)[1])}}
		req, _ := http.NewRequest("POST", s.url+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set(h[0], h[1])
		resp, err = client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("login with %s: %s: %d, want 403", h[0], h[1], resp.StatusCode)
		}
	}
	// Another process (herd user add) adds a user to the same file.
	users, err := dashboard.OpenUsers(s.usersFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := users.Add("newcomer", dashboard.Manager, password); err != nil {
		t.Fatal(err)
	}
	if got := s.login(t, client(), "newcomer", password, true); got != http.StatusSeeOther {
		t.Fatalf("a user added after start: login %d", got)
	}
}

// Strict-Transport-Security only when asked for (the dashboard behind TLS).
func TestHSTS(t *testing.T) {
	for _, on := range []bool{false, true} {
		s := startWith(t, chtest.Migrated(t), 0, func(c *dashboard.Config) { c.HSTS = on })
		resp, err := http.Get(s.url + "/login")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Strict-Transport-Security"); (got != "") != on {
			t.Fatalf("HSTS %v: header %q", on, got)
		}
	}
}

// clientFrom is a cookie-keeping client whose connections come from the
// loopback address ip (127.0.0.0/8 is all this machine's).
func clientFrom(ip string) *http.Client {
	c := client()
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c.Transport = &http.Transport{DialContext: dialer.DialContext}
	return c
}

// A flood of wrong passwords for made-up names from 50 addresses does not
// lock out a user who logs in correctly from another address: the names
// that are no account share their own checks, not the accounts'.
func TestLoginFloodFromManyAddresses(t *testing.T) {
	s := start(t)
	var stop atomic.Bool
	var attempts, refused atomic.Int64
	var wg sync.WaitGroup
	for a := range 50 {
		wg.Go(func() {
			c := clientFrom(fmt.Sprintf("127.0.0.%d", 10+a))
			for n := 0; !stop.Load() && n < 40; n++ {
				code := s.login(t, c, fmt.Sprintf("flood%d-%d", a, n), "wrong password!", true)
				attempts.Add(1)
				if code == http.StatusTooManyRequests {
					refused.Add(1)
				}
			}
		})
	}
	chtest.WaitFor(t, 30*time.Second, func() bool { return refused.Load() > 20 }) // the flood is throttled
	for _, who := range []struct{ ip, name string }{{"127.0.0.200", "admin"}, {"127.0.0.201", "manager"}} {
		start := time.Now()
		code := s.login(t, clientFrom(who.ip), who.name, password, true)
		t.Logf("%s from %s during the flood: %d in %v", who.name, who.ip, code, time.Since(start).Round(time.Millisecond))
		if code != http.StatusSeeOther {
			t.Errorf("%s, right password, new address, during the flood: %d, want 303", who.name, code)
		}
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d attempts, %d refused with 429", attempts.Load(), refused.Load())
}
