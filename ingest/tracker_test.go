package ingest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// herd.js in a real headless Chromium: a shop page on one origin loads the
// tracker from the ingest on another; the pageview, slot impressions and a
// slot click arrive in ClickHouse with their slot and position.
func TestTrackerInChromium(t *testing.T) {
	e := startEdge(t)
	page := `<!doctype html><html><head><title>shop</title>
<script defer src="` + e.url + `/herd.js" data-site="demo" data-variant="B"></script></head>
<body>
<a id="hero" href="#p" data-herd-slot="home-hero-1" data-herd-position="1" data-herd-product="P00042" style="display:block;height:200px">hero</a>
<div data-herd-slot="home-row-1" style="height:100px">row</div>
</body></html>`
	shop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, page)
	}))
	defer shop.Close()

	ctx := browser(t)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(shop.URL+"/?utm_source=test"),
		chromedp.WaitVisible("#hero"),
	); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool]("window.herd !== undefined")); err != nil {
		t.Fatalf("herd.js did not load: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Sleep(300*time.Millisecond), chromedp.Click("#hero")); err != nil {
		t.Fatal(err)
	}
	want := "pageview\t/\t\ttest\tB\t0\n" +
		"product_click\t/\tP00042\ttest\tB\t1\n" +
		"slot_impression\t/\t\ttest\tB\t0\n"
	deadline := time.Now().Add(20 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		got = e.query(t, "SELECT DISTINCT type, path, product_id, utm_source, variant, position FROM "+e.db.Names.Raw+".events WHERE browser = 'Chrome' ORDER BY type")
		if got == want {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got != want {
		t.Fatalf("events from the browser:\n%s\nwant:\n%s", got, want)
	}
	slots := e.query(t, "SELECT groupUniqArray(slot) FROM "+e.db.Names.Raw+".events WHERE type = 'slot_impression'")
	if !strings.Contains(slots, "home-hero-1") || !strings.Contains(slots, "home-row-1") {
		t.Fatalf("slot impressions: %s", slots)
	}
}

func chromiumPath(t *testing.T) string {
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found: make test installs it (apt-get install chromium)")
	return ""
}
