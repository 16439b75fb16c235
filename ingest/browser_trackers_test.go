package ingest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/herd-analytics/herd/ingest/ingesttest"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
)

// Segment's analytics.js (@segment/analytics-next) and Plausible's tracker
// (@plausible-analytics/tracker), unchanged from npm, on a shop page served
// from another origin than herd, pointed at herd by configuration alone:
// cdnURL for analytics.js, endpoint for Plausible. Their pageviews, product
// views, add-to-carts, orders and searches arrive with every derived field.
func TestBrowserTrackersFromNPM(t *testing.T) {
	bundle, err := os.ReadFile(filepath.Join("testdata", "browser-trackers", "bundle.js"))
	if err != nil {
		t.Fatalf("the tracker bundle is missing: make test builds it (scripts/install-deps.sh): %v", err)
	}
	var pageHTML string
	shop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bundle.js" {
			w.Header().Set("Content-Type", "text/javascript")
			_, _ = w.Write(bundle)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, pageHTML)
	}))
	defer shop.Close()

	sites := configuredSites(t, "sites:\n  - name: shop\n    domains: [shop.example]\n    origins: ['"+shop.URL+"']\n    write_keys: ["+trackerKey+"]\n")
	e := startEdgeWith(t, chtest.Migrated(t), ingesttest.Options{Sites: sites})
	pageHTML = `<!doctype html><html><head><title>shop</title><script src="/bundle.js"></script></head><body><p id="shop">shop</p>
<script>
(async () => {
  const t = window.herdTrackers
  const [analytics] = await t.AnalyticsBrowser.load({ writeKey: '` + trackerKey + `', cdnURL: '` + e.url + `' })
  await analytics.page()
  await analytics.track('Product Viewed', { product_id: 'SEG-1', category: 'shoes', price: 59.9 })
  await analytics.track('Product Added', { product_id: 'SEG-1', price: 59.9 })
  await analytics.track('Order Completed', { order_id: 'o-1', revenue: 119.8, currency: 'EUR', products: [{ product_id: 'SEG-1' }] })
  await analytics.track('Products Searched', { query: 'red shoes' })
  t.plausible.init({ domain: 'shop.example', endpoint: '` + e.url + `/api/event', captureOnLocalhost: true, autoCapturePageviews: false, bindToWindow: false, logging: false })
  const send = (name, opts) => new Promise(done => t.plausible.track(name, Object.assign({ callback: done }, opts)))
  window.plausibleResults = [
    await send('pageview', {}),
    await send('Product View', { props: { product_id: 'PL-1', category: 'hats', price: '19.90' } }),
    await send('Add to Cart', { props: { product_id: 'PL-1', price: '19.90' } }),
    await send('Purchase', { revenue: { amount: 39.8, currency: 'EUR' } }),
    await send('Search', { props: { query: 'felt hat' } }),
  ].map(r => r && r.status)
  window.done = true
})().catch(err => { window.failed = String(err && err.stack || err) })
</script></body></html>`

	ctx := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(shop.URL+"/shop?utm_source=news"), chromedp.WaitVisible("#shop")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool]("window.done === true || window.failed !== undefined")); err != nil {
		t.Fatalf("the page's trackers did not finish: %v", err)
	}
	if failed, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`window.failed || ""`)); failed != "" {
		t.Fatalf("the page's trackers failed: %s", failed)
	}
	if statuses, _ := chromedp.Run(ctx, chromedp.Evaluate[[]int](`window.plausibleResults`)); fmt.Sprint(statuses) != "[202 202 202 202 202]" {
		t.Fatalf("Plausible's tracker got %v", statuses)
	}
	want := strings.Join([]string{
		"pageview\t\t\t0.00\t0.00\t\\0\\0\\0\t\t/shop\tnews\tChrome\tdesktop",
		"pageview\t\t\t0.00\t0.00\t\\0\\0\\0\t\t/shop\tnews\tChrome\tdesktop",
		"product_view\tPL-1\thats\t19.90\t0.00\t\\0\\0\\0\t\t/shop\tnews\tChrome\tdesktop",
		"product_view\tSEG-1\tshoes\t59.90\t0.00\t\\0\\0\\0\t\t/shop\tnews\tChrome\tdesktop",
		"add_to_cart\tPL-1\t\t19.90\t0.00\t\\0\\0\\0\t\t/shop\tnews\tChrome\tdesktop",
		"add_to_cart\tSEG-1\t\t59.90\t0.00\t\\0\\0\\0\t\t/shop\tnews\tChrome\tdesktop",
		"purchase\t\t\t0.00\t39.80\tEUR\t\t/shop\tnews\tChrome\tdesktop",
		"purchase\t\t\t0.00\t119.80\tEUR\t\t/shop\tnews\tChrome\tdesktop",
		"search\t\t\t0.00\t0.00\t\\0\\0\\0\tfelt hat\t/shop\tnews\tChrome\tdesktop",
		"search\t\t\t0.00\t0.00\t\\0\\0\\0\tred shoes\t/shop\tnews\tChrome\tdesktop",
	}, "\n") + "\n"
	var got string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		got = e.query(t, "SELECT type, product_id, product_category, product_price, order_value, currency, search_term, path, utm_source, browser, device FROM "+
			e.db.Names.Raw+".events WHERE site = 'shop' ORDER BY type, product_id, order_value, search_term")
		if got == want {
			return
		}
	}
	t.Fatalf("events from the trackers:\n%s\nwant:\n%s", got, want)
}
