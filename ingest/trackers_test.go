package ingest_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/herd-analytics/herd/ingest"
	"github.com/herd-analytics/herd/ingest/ingesttest"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
)

const trackerKey = "0123456789abcdef-tracker"

// configuredSites loads a sites file with the given YAML, as --sites does.
func configuredSites(t *testing.T, yaml string) *ingest.Sites {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sites.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	sites, err := ingest.LoadSites(path)
	if err != nil {
		t.Fatal(err)
	}
	return sites
}

// trackerEdge serves one configured site, shop.example, that browsers on
// https://shop.example may send from with its write key.
func trackerEdge(t *testing.T) *edge {
	t.Helper()
	sites := configuredSites(t, "sites:\n  - name: shop\n    domains: [shop.example]\n    origins: ['https://shop.example']\n    write_keys: ["+trackerKey+"]\n    plausible_events: {Basket: add_to_cart}\n")
	return startEdgeWith(t, chtest.Migrated(t), ingesttest.Options{Sites: sites})
}

// browser is a headless Chromium that presents as the ordinary browser it
// is (headless Chromium says "HeadlessChrome", which herd rightly drops as
// a bot), for a minute.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-first-run", true),
		chromedp.UserAgent("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func do(t *testing.T, method, url, contentType, body string, headers ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("User-Agent", chromeUA)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// Browsers ask before they send: every ingest route answers the preflight
// for an allowed origin with the methods and headers trackers use, and
// refuses other origins.
func TestCORSPreflightOnEveryRoute(t *testing.T) {
	e := trackerEdge(t)
	for _, path := range []string{"/api/event", "/api/events", "/v1/t", "/v1/p", "/v1/batch", "/v1/b", "/v1/i", "/beacon/v1/batch"} {
		resp := do(t, "OPTIONS", e.url+path, "", "", "Origin", "https://shop.example", "Access-Control-Request-Method", "POST",
			"Access-Control-Request-Headers", "authorization,content-type,x-retry-count,anonymousid,sentat")
		h := resp.Header
		if resp.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != "https://shop.example" || !strings.Contains(h.Get("Vary"), "Origin") ||
			h.Get("Access-Control-Allow-Credentials") != "" {
			t.Fatalf("preflight %s: %d %v", path, resp.StatusCode, h)
		}
		for _, want := range []string{"Authorization", "X-Retry-Count", "AnonymousId", "SentAt", "Content-Type"} {
			if !strings.Contains(h.Get("Access-Control-Allow-Headers"), want) {
				t.Fatalf("preflight %s: allowed headers %q lack %s", path, h.Get("Access-Control-Allow-Headers"), want)
			}
		}
		bad := do(t, "OPTIONS", e.url+path, "", "", "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
		if bad.StatusCode != 403 || bad.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("preflight %s from another origin: %d %v", path, bad.StatusCode, bad.Header)
		}
	}
}

// analytics.js's short paths, its beacon path and its settings request.
func TestSegmentBrowserPaths(t *testing.T) {
	e := trackerEdge(t)
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(trackerKey+":"))
	post := func(path, body string, headers ...string) ingest.Answer {
		t.Helper()
		resp := do(t, "POST", e.url+path, "text/plain", body, append([]string{"Origin", "https://shop.example"}, headers...)...)
		var ans ingest.Answer
		data, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(data, &ans); err != nil || resp.StatusCode != 202 || resp.Header.Get("Access-Control-Allow-Origin") != "https://shop.example" {
			t.Fatalf("%s: %d %s %v", path, resp.StatusCode, data, resp.Header)
		}
		return ans
	}
	page := `{"type":"page","anonymousId":"a1","properties":{"url":"https://shop.example/p/1","referrer":"https://www.google.com/"},"context":{"page":{"url":"https://shop.example/p/1"}}}`
	if a := post("/v1/p", page, "Authorization", auth); a.Accepted != 1 {
		t.Fatalf("/v1/p: %+v", a)
	}
	track := `{"type":"track","event":"Product Viewed","anonymousId":"a1","properties":{"product_id":"P7","price":10}}`
	if a := post("/v1/t", track, "Authorization", auth); a.Accepted != 1 {
		t.Fatalf("/v1/t: %+v", a)
	}
	for _, p := range []string{"/v1/i", "/v1/g", "/v1/a", "/v1/s", "/v1/identify"} {
		a := post(p, `{"anonymousId":"a1","userId":"u1","traits":{"email":"jane@example.com"}}`, "Authorization", auth)
		if a.Accepted != 0 || a.Dropped[ingest.DropUnsupportedType] != 1 {
			t.Fatalf("%s: %+v", p, a)
		}
	}
	beacon := `{"batch":[` + track + `]}`
	if a := post("/beacon/v1/batch?writeKey="+trackerKey, beacon); a.Accepted != 1 {
		t.Fatalf("beacon: %+v", a)
	}
	if got := e.query(t, "SELECT type, path, product_id FROM "+e.db.Names.Raw+".events ORDER BY type, product_id"); got != "pageview\t/p/1\t\nproduct_view\t\tP7\nproduct_view\t\tP7\n" {
		t.Fatalf("stored:\n%s", got)
	}
	if strings.Contains(e.query(t, "SELECT groupArray(path) FROM "+e.db.Names.Raw+".events"), "jane") {
		t.Fatal("identify traits stored")
	}

	resp := do(t, "GET", e.url+"/v1/projects/"+trackerKey+"/settings", "", "")
	var settings struct {
		Integrations map[string]struct{ APIKey, APIHost string } `json:"integrations"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&settings); err != nil || resp.StatusCode != 200 ||
		settings.Integrations["Segment.io"].APIKey != trackerKey || settings.Integrations["Segment.io"].APIHost != strings.TrimPrefix(e.url, "http://")+"/v1" {
		t.Fatalf("settings: %d %+v %v", resp.StatusCode, settings, err)
	}
	if resp := do(t, "GET", e.url+"/v1/projects/not-a-key/settings", "", ""); resp.StatusCode != 404 {
		t.Fatalf("settings of an unknown key: %d", resp.StatusCode)
	}
}

// Plausible's tracker, pointed at /api/event: its body shape, the site by
// domain, goals mapped onto herd's types, revenue as the order value.
func TestPlausibleEventAPI(t *testing.T) {
	e := trackerEdge(t)
	f := func(body string, status int, check func(ingest.Answer)) {
		t.Helper()
		resp := do(t, "POST", e.url+"/api/event", "text/plain", body, "Origin", "https://shop.example")
		var ans ingest.Answer
		data, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(data, &ans); err != nil || resp.StatusCode != status {
			t.Fatalf("%s: %d %s", body, resp.StatusCode, data)
		}
		check(ans)
	}
	accepted := func(n int) func(ingest.Answer) {
		return func(a ingest.Answer) {
			if a.Accepted != n {
				t.Fatalf("accepted %d, want %d: %+v", a.Accepted, n, a)
			}
		}
	}
	f(`{"n":"pageview","v":36,"u":"https://shop.example/c/shoes?utm_source=news","d":"shop.example","r":null}`, 202, accepted(1))
	f(`{"n":"pageview","u":"https://www.shop.example/","d":"www.shop.example","r":"https://www.google.com/search?q=x"}`, 202, accepted(1))
	f(`{"n":"Basket","u":"https://shop.example/p/1","d":"shop.example","p":{"product_id":"P1","price":"19.90"}}`, 202, accepted(1))
	f(`{"n":"Purchase","u":"https://shop.example/done","d":"shop.example","$":{"amount":99.8,"currency":"EUR"}}`, 202, accepted(1))
	f(`{"n":"Newsletter Signup","u":"https://shop.example/","d":"shop.example"}`, 202, func(a ingest.Answer) {
		if a.Accepted != 0 || a.Dropped[ingest.DropUnsupportedEvent] != 1 {
			t.Fatalf("unknown goal: %+v", a)
		}
	})
	f(`{"n":"pageview","u":"https://other.example/","d":"other.example"}`, 202, func(a ingest.Answer) {
		if a.Accepted != 0 || a.Dropped[ingest.DropUnknownSite] != 1 {
			t.Fatalf("unknown domain: %+v", a)
		}
	})
	f(`{"n":"pageview","u":"https://shop.example/"}`, 400, func(a ingest.Answer) {
		if len(a.Problems) != 1 || a.Problems[0].Field != "d" {
			t.Fatalf("missing d: %+v", a)
		}
	})
	f(`{"n":"Basket","u":"https://shop.example/p/1","d":"shop.example","p":{"product_id":"P1","price":"x"}}`, 400, func(a ingest.Answer) {
		if len(a.Problems) != 1 || a.Problems[0].Field != "p.price" {
			t.Fatalf("bad price: %+v", a)
		}
	})
	got := e.query(t, "SELECT type, path, utm_source, referrer_host, product_id, product_price, order_value, currency FROM "+e.db.Names.Raw+".events ORDER BY type, path")
	want := "pageview\t/\t\tgoogle.com\t\t0.00\t0.00\t\\0\\0\\0\n" +
		"pageview\t/c/shoes\tnews\t\t\t0.00\t0.00\t\\0\\0\\0\n" +
		"add_to_cart\t/p/1\t\t\tP1\t19.90\t0.00\t\\0\\0\\0\n" +
		"purchase\t/done\t\t\t\t0.00\t99.80\tEUR\n"
	if got != want {
		t.Fatalf("stored:\n%s\nwant:\n%s", got, want)
	}
}
