package dashboard_test

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

func chromium(t *testing.T) string {
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found: make test installs it (apt-get install chromium)")
	return ""
}

// TestBrowser logs in with a real headless Chromium, opens every page and
// checks that every chart draws, nothing errors, no request leaves
// 127.0.0.1 and hostile product names stay text. HERD_SCREENSHOT=file saves
// the overview (make screenshot puts it in docs/).
func TestBrowser(t *testing.T) {
	s := start(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-first-run", true),
		chromedp.WindowSize(1400, 1000),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	var mu sync.Mutex
	var requests, problems []string
	listen := func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			requests = append(requests, ev.Request.URL)
		case *runtime.EventConsoleAPICalled:
			if ev.Type == "error" || ev.Type == "warning" || ev.Type == "assert" {
				problems = append(problems, "console "+string(ev.Type))
			}
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+ev.ExceptionDetails.Text)
		}
	}
	// The tab must exist before it can be listened to.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Listen(ctx, listen); err != nil {
		t.Fatal(err)
	}

	lctx, lcancel := context.WithTimeout(ctx, 20*time.Second)
	err := chromedp.Do(lctx,
		chromedp.Navigate(s.url+"/"),
		chromedp.WaitVisible(`input[name="name"]`),
		chromedp.SendKeys(`input[name="name"]`, "admin"),
		chromedp.SendKeys(`input[name="password"]`, password),
		chromedp.Submit(`input[name="password"]`),
		chromedp.WaitVisible(`.tiles`),
	)
	lcancel()
	if err != nil {
		page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + ": " + document.body.innerText`))
		t.Fatalf("log in: %v (%.300s)", err, page)
	}

	// canvasInk counts painted pixels of every canvas once ECharts is done.
	const canvasInk = `Array.from(document.querySelectorAll('canvas')).map(c => {
		const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
		let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; })`
	for _, pg := range []struct {
		path   string
		charts int
	}{{"/?range=28d", 8}, {"/products?range=28d", 3}, {"/products?range=28d&category=shirts", 3},
		{"/search?range=28d", 2}, {"/funnels?range=28d", 2}, {"/layout?range=28d", 2}, {"/habits?range=28d", 3}, {"/reports", 0}, {"/admin", 0}, {"/privacy", 0}} {
		var ink []int
		if err := chromedp.Do(ctx, chromedp.Navigate(s.url+pg.path), chromedp.WaitVisible(`footer`)); err != nil {
			t.Fatalf("%s: %v", pg.path, err)
		}
		chartsDrawn(ctx, pg.charts)
		ink, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](canvasInk))
		if err != nil {
			t.Fatalf("%s: %v", pg.path, err)
		}
		if len(ink) != pg.charts {
			t.Errorf("%s: %d charts drawn, want %d", pg.path, len(ink), pg.charts)
		}
		for i, n := range ink {
			if n == 0 {
				t.Errorf("%s: chart %d is blank", pg.path, i)
			}
		}
		pwned, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__pwned === 1`))
		if err != nil || pwned {
			t.Fatalf("%s: the hostile product name ran as script (%v)", pg.path, err)
		}
		// The privacy statement is said once, at the foot of the page.
		said, err := chromedp.Run(ctx, chromedp.Evaluate[int](`Array.from(document.querySelectorAll('body *')).filter(e => e.children.length === 0 && e.innerText && e.innerText.includes('≥ 10 visitor-days')).length`))
		if err != nil || (said != 1 && pg.path != "/privacy") {
			t.Errorf("%s: the privacy statement is said %d times, want once (%v)", pg.path, said, err)
		}
		footer, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('footer').innerText`))
		if err != nil || !strings.Contains(footer, "≥ 10 visitor-days") {
			t.Errorf("%s: privacy statement %q, %v", pg.path, footer, err)
		}
		if pg.path == "/?range=28d" {
			if file := os.Getenv("HERD_SCREENSHOT"); file != "" {
				shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, shot, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	// The hostile name is on the products page as text.
	if err := chromedp.Do(ctx, chromedp.Navigate(s.url+"/products?range=28d"), chromedp.WaitVisible(`table.data`)); err != nil {
		t.Fatal(err)
	}
	body, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('table.data').innerText`))
	if err != nil || !strings.Contains(body, hostile) {
		t.Errorf("hostile product name not shown as text: %v", err)
	}

	// The privacy page lists the policy's purposes and every stored column.
	if err := chromedp.Do(ctx, chromedp.Navigate(s.url+"/privacy"), chromedp.WaitVisible(`footer`)); err != nil {
		t.Fatal(err)
	}
	inv, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('main').innerText`))
	if err != nil || !strings.Contains(inv, "Fifth: anonymous aggregation") || !strings.Contains(inv, "{raw}.events") {
		t.Errorf("privacy page without the purpose inventory: %v", err)
	}
	// It says what the unit means for a shopper who comes often.
	if !strings.Contains(inv, "two devices on one day") || !strings.Contains(inv, "ε ≈ 120 for a visitor on all 30 days of a month's") {
		t.Errorf("privacy page does not say what a visitor-day means for a frequent shopper")
	}

	// Downloads from the pages arrive and parse: every CSV link of the
	// overview, and a report in each format.
	if err := chromedp.Do(ctx, chromedp.Navigate(s.url+"/?range=28d"), chromedp.WaitVisible(`footer`)); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`(async () => {
		const out = [];
		for (const a of document.querySelectorAll('a.csv')) {
			const r = await fetch(a.href);
			const text = await r.text();
			const rows = text.trim().split('\n');
			out.push(r.status + ' ' + rows.length + ' ' + rows[0]);
		}
		for (const f of ['csv', 'xlsx', 'parquet']) {
			const r = await fetch('/reports/download?site=demo&kind=weekly&format=' + f);
			const b = new Uint8Array(await r.arrayBuffer());
			const magic = String.fromCharCode(...b.slice(0, 4));
			out.push(r.status + ' ' + f + ' ' + b.length + ' ' + magic);
		}
		return out;
	})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("downloads: %v", got)
	}
	for _, g := range got[:2] {
		if !strings.HasPrefix(g, "200 29 day,visitors") {
			t.Errorf("overview CSV download: %q", g)
		}
	}
	for _, g := range got[2:] {
		f := strings.Fields(g)
		ok := f[0] == "200" && ((f[1] == "csv" && strings.HasPrefix(f[3], "sect")) || (f[1] == "xlsx" && strings.HasPrefix(f[3], "PK")) || (f[1] == "parquet" && f[3] == "PAR1"))
		if !ok {
			t.Errorf("report download in the browser: %q", g)
		}
	}

	// The reports page offers the period chosen in the filters; its CSV
	// holds the visitor-days the page's own data holds for that period.
	from10, to4 := s.today.AddDate(0, 0, -10).Format(time.DateOnly), s.today.AddDate(0, 0, -4).Format(time.DateOnly)
	if err := chromedp.Do(ctx, chromedp.Navigate(s.url+"/reports?range=custom&from="+from10+"&to="+to4), chromedp.WaitVisible(`footer`)); err != nil {
		t.Fatal(err)
	}
	match, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(async () => {
		const link = Array.from(document.querySelectorAll('a')).find(a => a.href.includes('kind=custom') && a.href.includes('format=csv'));
		if (!link) return 'no link';
		const report = await (await fetch(link.href)).text();
		const row = report.split(String.fromCharCode(10)).find(l => l.startsWith('KPIs,site,visitor-days,'));
		const api = await (await fetch('/api/v1/kpis' + new URL(link.href).search.replace(/&?format=csv|&?kind=custom/g, ''))).json();
		const sum = api.data.reduce((s, d) => s + d.visitors, 0);
		return row ? row.split(',')[4] + ' ' + sum + ' ' + api.data.length : 'no row';
	})()`, chromedp.EvalAwaitPromise))
	if f := strings.Fields(match); err != nil || len(f) != 3 || f[0] != f[1] || f[2] != "7" {
		t.Errorf("custom-period report from the page: %q (report, page, days) %v", match, err)
	}

	// Interactions: a product page opens from the ranking; the device
	// filter narrows the funnels and lands in the URL; picking dates makes
	// the period custom.
	var href string
	err = chromedp.Do(ctx, chromedp.Navigate(s.url+"/products?range=28d"), chromedp.WaitVisible(`table.products`),
		chromedp.Click(`table.products tbody tr:first-child td:first-child a`), chromedp.WaitVisible(`.tiles`))
	if err == nil {
		href, err = chromedp.Run(ctx, chromedp.Evaluate[string](`location.pathname + ' ' + document.querySelector('h1').innerText`))
	}
	if err != nil || !strings.HasPrefix(href, "/products/P-1 ") {
		t.Errorf("product page from the ranking: %q %v", href, err)
	}
	err = chromedp.Do(ctx, chromedp.Navigate(s.url+"/funnels?range=28d"), chromedp.WaitVisible(`select[name=device]`),
		chromedp.SetValue(`select[name=device]`, "mobile"))
	if err == nil {
		_, err = chromedp.RunResponse(ctx, chromedp.Click(`form.filters button`)) // until the page it submits to loads
	}
	if err == nil {
		href, err = chromedp.Run(ctx, chromedp.Evaluate[string](`location.search`))
	}
	if err != nil || !strings.Contains(href, "device=mobile") || strings.Contains(href, "from=") {
		t.Errorf("device filter: URL %q %v", href, err)
	}
	from := s.today.AddDate(0, 0, -9).Format(time.DateOnly)
	to := s.today.AddDate(0, 0, -3).Format(time.DateOnly)
	err = chromedp.Do(ctx, chromedp.Navigate(s.url+"/?range=28d"), chromedp.WaitVisible(`input[name=from]`),
		chromedp.SetValue(`input[name=from]`, from), chromedp.SetValue(`input[name=to]`, to))
	if err == nil {
		_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('input[name=to]').dispatchEvent(new Event('change'))`))
	}
	if err == nil {
		_, err = chromedp.RunResponse(ctx, chromedp.Click(`form.filters button`))
	}
	if err == nil {
		href, err = chromedp.Run(ctx, chromedp.Evaluate[string](`location.search`))
	}
	if err != nil || !strings.Contains(href, "range=custom") || !strings.Contains(href, "from="+from) {
		t.Errorf("dates picked: URL %q %v", href, err)
	}

	// At 390 px (a phone): nothing runs off the page (tables scroll in
	// their box), every chart fits and draws. Screenshots of both widths
	// go to HERD_SCREENSHOT_DIR when set.
	for _, w := range []struct {
		width, height int64
		name          string
	}{{390, 844, "mobile"}, {1440, 900, "desktop"}} {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(w.width, w.height)); err != nil {
			t.Fatal(err)
		}
		for _, pg := range []struct{ path, name string }{{"/?range=28d", "overview"}, {"/products?range=28d", "products"}, {"/products/P-1?range=28d", "product"},
			{"/funnels?range=28d", "funnels"}, {"/layout?range=28d", "layout"}} {
			p := pg.path
			if err := chromedp.Do(ctx, chromedp.Navigate(s.url+p), chromedp.WaitVisible(`footer`)); err != nil {
				t.Fatalf("%s at %d px: %v", p, w.width, err)
			}
			chartsDrawn(ctx, 1)
			fit, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth,
				Math.max(0, ...Array.from(document.querySelectorAll('canvas')).map(c => c.getBoundingClientRect().right)),
				Array.from(document.querySelectorAll('canvas')).filter(c => c.width > 0).length]`))
			if err != nil {
				t.Fatal(err)
			}
			if fit[0] > fit[1] || fit[2] > fit[1] {
				t.Errorf("%s at %d px: page %d px wide, charts reach %d px, window %d px", p, w.width, fit[0], fit[2], fit[1])
			}
			if fit[3] == 0 {
				t.Errorf("%s at %d px: no chart drawn", p, w.width)
			}
			shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // PNG
			if err != nil || len(shot) < 1000 {
				t.Fatalf("%s at %d px: screenshot %d bytes, %v", p, w.width, len(shot), err)
			}
			if dir := os.Getenv("HERD_SCREENSHOT_DIR"); dir != "" {
				if err := os.WriteFile(filepath.Join(dir, pg.name+"-"+w.name+".png"), shot, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}

	mu.Lock()
	defer mu.Unlock()
	for _, r := range requests {
		u, err := url.Parse(r)
		if err != nil || (u.Scheme != "data" && u.Scheme != "about" && u.Hostname() != "127.0.0.1") {
			t.Errorf("request left 127.0.0.1: %s", r)
		}
	}
	if len(requests) < 5 {
		t.Errorf("only %d requests seen: the listener is not working", len(requests))
	}
	for _, p := range problems {
		t.Errorf("browser: %s", p)
	}
}

// chartsDrawn waits until at least n canvases have paint on them (ECharts
// draws after load, in animation frames), or 10 s pass: the assertions
// that follow then say what is missing.
func chartsDrawn(ctx context.Context, n int) {
	if n == 0 {
		return
	}
	_ = chromedp.Do(ctx, chromedp.Poll[chromedp.Void](`(() => {
		const cs = Array.from(document.querySelectorAll('canvas'));
		return cs.length >= `+strconv.Itoa(n)+` && cs.every(c => {
			if (c.width === 0) return false;
			const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
			for (let i = 3; i < d.length; i += 4) if (d[i] > 0) return true;
			return false;
		});
	})()`, chromedp.WithPollingTimeout(10*time.Second)))
}
