package dashboard_test

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/herd-analytics/herd/aggregate"
	"github.com/herd-analytics/herd/internal/abtest"
)

// getWith is get with request headers.
func getWith(t *testing.T, c *http.Client, u string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String()
}

// TestFiltersInTheURL: every filter is a query parameter the page and the
// API read the same way; links share the view.
func TestFiltersInTheURL(t *testing.T) {
	s := start(t)
	c := client()
	if got := s.login(t, c, "admin", password, true); got != http.StatusSeeOther {
		t.Fatalf("login: %d", got)
	}
	day := s.today.AddDate(0, 0, -3).Format(time.DateOnly)
	kpiDays := func(q string) int {
		t.Helper()
		code, body := getWith(t, c, s.url+"/api/v1/kpis?"+q)
		if code != 200 {
			t.Fatalf("kpis?%s: %d %s", q, code, body)
		}
		var ans struct{ Data []struct{ Day string } }
		if err := json.Unmarshal([]byte(body), &ans); err != nil {
			t.Fatal(err)
		}
		return len(ans.Data)
	}
	t.Run("one day is a range", func(t *testing.T) {
		if n := kpiDays("range=custom&from=" + day + "&to=" + day); n != 1 {
			t.Errorf("one-day custom range: %d days", n)
		}
	})
	t.Run("dates alone are a custom range", func(t *testing.T) {
		from := s.today.AddDate(0, 0, -10).Format(time.DateOnly)
		if n := kpiDays("from=" + from + "&to=" + day); n != 8 {
			t.Errorf("from %s to %s: %d days, want 8", from, day, n)
		}
	})
	t.Run("device", func(t *testing.T) {
		code, body := getWith(t, c, s.url+"/api/v1/funnels?range=28d&device=mobile")
		if code != 200 || strings.Contains(body, "desktop") || !strings.Contains(body, "mobile") {
			t.Errorf("funnels for mobile: %d %.300s", code, body)
		}
		code, body = getWith(t, c, s.url+"/api/v1/categories?range=28d&device=desktop")
		if code != 200 || strings.Contains(body, `"mobile"`) || !strings.Contains(body, `"desktop"`) {
			t.Errorf("categories for desktop: %d %.300s", code, body)
		}
		if code, _ := getWith(t, c, s.url+"/api/v1/funnels?device=toaster"); code != 400 {
			t.Errorf("unknown device: %d, want 400", code)
		}
		// The page keeps the device in its links and offers the choice.
		code, body = getWith(t, c, s.url+"/funnels?range=28d&device=mobile")
		if code != 200 || !strings.Contains(body, `<option selected>mobile</option>`) || !strings.Contains(body, "device=mobile") {
			t.Errorf("funnels page for mobile: %d", code)
		}
	})
	t.Run("variant", func(t *testing.T) {
		code, body := getWith(t, c, s.url+"/api/v1/slots?range=28d&variant=B")
		if code != 200 || strings.Contains(body, `"variant":"A"`) || !strings.Contains(body, `"variant":"B"`) {
			t.Errorf("slots for variant B: %d %.300s", code, body)
		}
	})
	t.Run("data coverage", func(t *testing.T) {
		_, body := getWith(t, c, s.url+"/?range=90d")
		first := s.today.AddDate(0, 0, -56).Format("2 Jan 2006")
		if !strings.Contains(body, "Data from "+first) {
			t.Errorf("90 days over 56 published: no \"Data from %s\"", first)
		}
		if _, body := getWith(t, c, s.url+"/?range=28d"); strings.Contains(body, "Data from") {
			t.Error("28 days inside the published data: a coverage warning")
		}
	})
	t.Run("errors", func(t *testing.T) {
		code, body := getWith(t, c, s.url+"/funnels?range=yesterday", "Accept", "text/html")
		if code != 400 || !strings.Contains(body, "<h1>400 · Bad Request</h1>") || !strings.Contains(body, "range: one of") {
			t.Errorf("bad range in a browser: %d %.300s", code, body)
		}
		code, body = getWith(t, c, s.url+"/api/v1/kpis?range=yesterday", "Accept", "text/html")
		if code != 400 || !strings.HasPrefix(body, `{"error":"range: one of`) {
			t.Errorf("bad range from the API: %d %.300s", code, body)
		}
		code, body = getWith(t, c, s.url+"/nowhere", "Accept", "text/html")
		if code != 404 || !strings.Contains(body, "404 · Not Found") {
			t.Errorf("unknown page in a browser: %d %.200s", code, body)
		}
	})
	t.Run("number formats", func(t *testing.T) {
		// Revenue over 28 days is tens of thousands: grouped as the
		// reader's language groups it.
		_, en := getWith(t, c, s.url+"/?range=28d", "Accept-Language", "en-US,en;q=0.8")
		_, de := getWith(t, c, s.url+"/?range=28d", "Accept-Language", "de-DE,de;q=0.9")
		if !moneyLike(en, "€", ",", ".") || !moneyLike(de, " €", ".", ",") {
			t.Errorf("revenue tiles not formatted per language")
		}
		if strings.Contains(en, "vs previous period") == false {
			t.Error("28 days with a whole previous period: no comparison")
		}
		// Each tile says its noise; a change smaller than the noise of the
		// two totals says so and takes no colour. Revenue falls 8,624 €
		// against a noise of ±15,200 € (σ ≈ 690 € a day, 1,290 € in the
		// weeks published at ε = 2); visitor-days fall 7,840 against ±210.
		tiles := map[string]string{}
		for _, part := range strings.Split(en, `<div class="tile">`)[1:] {
			label := part[strings.Index(part, `<div class="label">`)+len(`<div class="label">`):]
			tiles[label[:strings.Index(label, "<")]] = part
		}
		for _, label := range []string{"Visitor-days", "Sessions", "Orders", "Revenue", "Conversion (buyers per visitor-day)", "Average order value"} {
			if !strings.Contains(tiles[label], `<div class="noise"`) || !strings.Contains(tiles[label], "noise (95%)") {
				t.Errorf("%s tile without its noise: %.400s", label, tiles[label])
			}
		}
		if r := tiles["Revenue"]; !strings.Contains(r, "(within the noise)") || !strings.Contains(r, `class="delta muted"`) || !strings.Contains(r, "± €") {
			t.Errorf("revenue's change within the noise not said so: %.500s", r)
		}
		if v := tiles["Visitor-days"]; strings.Contains(v, "within the noise") || !strings.Contains(v, `class="delta down"`) {
			t.Errorf("visitor-days' fall beyond the noise not shown: %.500s", v)
		}
		if _, body := getWith(t, c, s.url+"/?range=90d"); !strings.Contains(body, "not compared") {
			t.Error("90 days over 56 published: compared without a word")
		}
	})
	t.Run("privacy statement once", func(t *testing.T) {
		for _, p := range []string{"/?range=28d", "/products?range=28d", "/funnels?range=28d", "/layout?range=28d"} {
			_, body := getWith(t, c, s.url+p)
			if n := strings.Count(body, "≥ 10 visitor-days"); n != 1 {
				t.Errorf("%s: the privacy statement %d times, want once", p, n)
			}
		}
	})
}

// moneyLike reports whether page holds an amount of at least 10,000 written
// with sym (before for "€", after for " €"), the thousands separator
// thousands and the decimal mark dec.
func moneyLike(page, sym, thousands, dec string) bool {
	i := strings.Index(page, `<div class="label">Revenue</div>`)
	if i < 0 {
		return false
	}
	v := page[i:]
	v = v[strings.Index(v, `class="value">`)+len(`class="value">`):]
	v = v[:strings.Index(v, "<")]
	v = strings.ReplaceAll(v, "\u00a0", " ")
	if sym == "€" && !strings.HasPrefix(v, "€") || sym != "€" && !strings.HasSuffix(v, sym) {
		return false
	}
	num := strings.TrimSpace(strings.Trim(v, "€ "))
	return len(num) >= 9 && strings.Count(num, thousands) == 1 && num[len(num)-3:len(num)-2] == dec
}

// TestProductPageFunnelsAndVariants: a product opens from the ranking with
// its rates and rank; funnels say their overall conversion; layout
// variants get a verdict per page and slot.
func TestProductPageFunnelsAndVariants(t *testing.T) {
	s := start(t)
	c := client()
	if got := s.login(t, c, "admin", password, true); got != http.StatusSeeOther {
		t.Fatalf("login: %d", got)
	}
	_, list := getWith(t, c, s.url+"/products?range=28d")
	if !strings.Contains(list, `href="/products/P-1?range=28d&amp;site=demo"`) {
		t.Fatalf("the ranking does not link to the product page")
	}
	code, body := getWith(t, c, s.url+"/products/P-1?range=28d&site=demo")
	if code != 200 {
		t.Fatalf("product page: %d", code)
	}
	// P-1: 28 days of 10 adds and 3 purchases against 400+i views.
	views := 0
	for i := 1; i <= 28; i++ {
		views += 400 + i
	}
	for _, want := range []string{"No. 1 by views of the 1 published products in shirts", "Views → add to cart → purchase",
		"No week of this product reached the publication threshold"} {
		if !strings.Contains(body, want) {
			t.Errorf("product page without %q", want)
		}
	}
	// 280 adds over 28 daily cells carry a 95% noise of ± 1.96·√28·σ: the
	// page prints 280 only when that is within 140, else the interval.
	h := abtest.Z95 * math.Sqrt(28) * releaseSigma(t, releaseAt(t, 4, "products", aggregate.Week), "adds")
	wantAdds := "280 · " + percent1(float64(280)/float64(views))
	if h > 140 {
		wantAdds = fmt.Sprintf("too few to tell (&lt; %s) · ", strconv.FormatFloat(math.Round(280+h), 'f', 0, 64))
		if 280-h > 0 {
			wantAdds = fmt.Sprintf("≈ %.0f–%s · ", math.Round(280-h), strconv.FormatFloat(math.Round(280+h), 'f', 0, 64))
		}
	}
	if !strings.Contains(body, wantAdds) {
		t.Errorf("product page without its adds as %q (± %.0f)", wantAdds, h)
	}
	if code, _ := getWith(t, c, s.url+"/products/NO-SUCH?range=28d", "Accept", "text/html"); code != 404 {
		t.Errorf("unknown product: %d, want 404", code)
	}
	code, api := getWith(t, c, s.url+"/api/v1/products/P-1?range=28d")
	if code != 200 || !strings.Contains(api, `"published":true`) || !strings.Contains(api, `"rank_in_category":1`) {
		t.Errorf("product API: %d %.300s", code, api)
	}

	_, funnels := getWith(t, c, s.url+"/funnels?range=28d")
	if !strings.Contains(funnels, "Overall: ") || !strings.Contains(funnels, "Previous period: ") {
		t.Errorf("funnels page without the overall conversion against the previous period")
	}
	// Against a period partly published (90 days back from today: the
	// fixture's days reach 56 back), nothing is compared, and the pages
	// say why.
	_, funnels90 := getWith(t, c, s.url+"/funnels?range=90d")
	if !strings.Contains(funnels90, "Previous period not compared: this period has 56 of 90 days published") || strings.Contains(funnels90, "Previous period: ") {
		t.Errorf("funnels page over a partly published period compares, or does not say why it does not")
	}
	_, products90 := getWith(t, c, s.url+"/products?range=90d")
	if !strings.Contains(products90, "Trend not compared: this period has 56 of 90 days published") {
		t.Errorf("products page over a partly published period does not say why it shows no trend")
	}
	// Funnels by segment: the comparison table, one segment's funnel, the
	// API narrowed to a source.
	if !strings.Contains(funnels, "Funnels by layout variant and by traffic source") || !strings.Contains(funnels, "B beats A by 7.36 pp") {
		t.Errorf("funnels page without the segment comparison (B: 60/290 against A: 40/300 reach the cart)")
	}
	if !strings.Contains(funnels, "source search") {
		t.Errorf("funnels page without the source segments")
	}
	_, onlyB := getWith(t, c, s.url+"/funnels?range=28d&variant=B")
	if !strings.Contains(onlyB, "variant B only") || !strings.Contains(onlyB, "<td>8,120</td>") {
		t.Errorf("the funnel of variant B: not B's 28 × 290 visitor-days at the first step")
	}
	code, segAPI := getWith(t, c, s.url+"/api/v1/funnel_segments?range=28d&source=search")
	if code != 200 || strings.Contains(segAPI, `"direct"`) || !strings.Contains(segAPI, `"search"`) {
		t.Errorf("segments API for search: %d %.200s", code, segAPI)
	}
	if code, _ := getWith(t, c, s.url+"/api/v1/funnel_segments?source=carrier-pigeon"); code != 400 {
		t.Errorf("unknown source: %d", code)
	}
	_, layout := getWith(t, c, s.url+"/layout?range=28d")
	for _, want := range []string{"all slots", "home-hero-1", "baseline"} {
		if !strings.Contains(layout, want) {
			t.Errorf("variant table without %q", want)
		}
	}
	if !strings.Contains(layout, "beats A") && !strings.Contains(layout, "trails A") && !strings.Contains(layout, "no clear difference") {
		t.Error("no verdict for variant B")
	}
	// Variants judged on conversion and revenue: B's 45 buyers a day of
	// ~700 visitor-days against A's 30 is a clear lift; its revenue per
	// visitor-day (4.8 € against 3.4 €) is judged with the wide,
	// conservative interval.
	for _, want := range []string{"Layout variants: conversion and revenue", "B beats A by 2.19 pp (95%: 1.75 pp to 2.63 pp)", "B beats A by €1.33"} {
		if !strings.Contains(layout, want) {
			t.Errorf("experiments table without %q", want)
		}
	}
	// The product page heatmap has no published slot: a message, not a
	// blank chart.
	if !strings.Contains(layout, "No slot of the product page reached the publication threshold") {
		t.Error("empty heatmap without a message")
	}
}

func percent1(x float64) string { return strconv.FormatFloat(100*x, 'f', 1, 64) + "%" }

// TestReportsForAnyPeriod: a report of the period the pages show matches
// them, is rounded, leaves out what is not there and says when it is
// partial.
func TestReportsForAnyPeriod(t *testing.T) {
	s := start(t)
	c := client()
	if got := s.login(t, c, "manager", password, true); got != http.StatusSeeOther {
		t.Fatalf("login: %d", got)
	}
	from, to := s.today.AddDate(0, 0, -14).Format(time.DateOnly), s.today.AddDate(0, 0, -2).Format(time.DateOnly)
	q := "?site=demo&range=custom&from=" + from + "&to=" + to
	_, page := getWith(t, c, s.url+"/reports"+q)
	if !strings.Contains(page, "/reports/download"+strings.ReplaceAll(q, "&", "&amp;")) && !strings.Contains(page, "from="+from) {
		t.Fatalf("the reports page does not offer the chosen period")
	}
	code, body := getWith(t, c, s.url+"/api/v1/kpis"+q)
	if code != 200 {
		t.Fatal(code)
	}
	var kp struct {
		Data []struct {
			Visitors uint64
			Noise    map[string]float64 `json:"noise_sigma"`
		}
	}
	if err := json.Unmarshal([]byte(body), &kp); err != nil || len(kp.Data) != 13 {
		t.Fatalf("kpis: %v %d days", err, len(kp.Data))
	}
	// Each day carries the noise σ its release recorded: revenue's is the
	// centred sum's with the orders' added back.
	if r := kp.Data[0].Noise["revenue"]; math.Abs(r-kpiSigma(t, 4, "revenue")) > 0.01 || kp.Data[0].Noise["orders"] <= 0 {
		t.Errorf("kpis without their noise σ: %v", kp.Data[0].Noise)
	}
	var want uint64
	for _, d := range kp.Data {
		want += d.Visitors
	}
	// A product's figures carry the noise of the cells they sum: 13 days.
	var pr struct {
		Data []struct {
			Noise map[string]float64 `json:"noise_sigma"`
		}
	}
	if _, body := getWith(t, c, s.url+"/api/v1/products"+q); json.Unmarshal([]byte(body), &pr) != nil || len(pr.Data) == 0 {
		t.Errorf("products: %.200s", body)
	} else if got, want := pr.Data[0].Noise["views"], math.Sqrt(13)*releaseSigma(t, releaseAt(t, 4, "products", aggregate.Week), "views"); math.Abs(got-want) > 1e-6 {
		t.Errorf("a product's views noise σ %v, want %v", got, want)
	}
	// Over 90 days: 28 cells at ε = 4 and 28 published at ε = 2.
	pr.Data = nil
	if _, body := getWith(t, c, s.url+"/api/v1/products?site=demo&range=90d"); json.Unmarshal([]byte(body), &pr) != nil || len(pr.Data) == 0 {
		t.Errorf("products over 90 days: %.200s", body)
	} else if got, want := pr.Data[0].Noise["views"], math.Hypot(math.Sqrt(28)*releaseSigma(t, releaseAt(t, 4, "products", aggregate.Week), "views"),
		math.Sqrt(28)*releaseSigma(t, releaseAt(t, 2, "products", aggregate.Week), "views")); math.Abs(got-want) > 1e-6 {
		t.Errorf("90 days of a product's views: noise σ %v, want %v", got, want)
	}
	code, csvText := getWith(t, c, s.url+"/reports/download"+q+"&kind=custom&format=csv")
	if code != 200 {
		t.Fatalf("custom report: %d %s", code, csvText)
	}
	if !strings.Contains(csvText, "KPIs,site,visitor-days,count,"+strconv.FormatUint(want, 10)+",") {
		t.Errorf("custom report visitor-days differ from the page's %d:\n%.400s", want, csvText)
	}
	if strings.Contains(csvText, "Coverage") {
		t.Error("a fully published period flagged partial")
	}
	// 90 days over 56 published: partial, and the previous period (none
	// published) is blank, not 0.
	code, partial := getWith(t, c, s.url+"/reports/download?site=demo&range=90d&kind=custom&format=csv")
	if code != 200 || !strings.Contains(partial, "Coverage,period,partial: 56 of 90 days published") {
		t.Errorf("a partial period not flagged: %d %.300s", code, partial)
	}
	code, book := getWith(t, c, s.url+"/reports/download?site=demo&range=90d&kind=custom&format=xlsx")
	if x, err := excelize.OpenReader(strings.NewReader(book)); code != 200 || err != nil {
		t.Errorf("partial xlsx: %d %v", code, err)
	} else {
		for _, sheet := range x.GetSheetList()[:2] {
			if v, _ := x.GetCellValue(sheet, "A2"); v != "Coverage: partial: 56 of 90 days published" {
				t.Errorf("xlsx sheet %s does not say the period is partial: %q", sheet, v)
			}
		}
		x.Close()
	}
	// A period with nothing published: a KPIs sheet that says so.
	long := "?site=demo&range=custom&from=2001-01-01&to=2001-01-07&kind=custom&format=xlsx"
	code, book = getWith(t, c, s.url+"/reports/download"+long)
	if x, err := excelize.OpenReader(strings.NewReader(book)); code != 200 || err != nil {
		t.Errorf("empty xlsx: %d %v", code, err)
	} else {
		v, _ := x.GetCellValue("KPIs", "A2")
		if sheets := x.GetSheetList(); strings.Join(sheets, ",") != "KPIs,Privacy" || v != "Coverage: partial: 0 of 7 days published" {
			t.Errorf("a period with nothing published: sheets %v, %q", sheets, v)
		}
		x.Close()
	}
	recs, err := csv.NewReader(strings.NewReader(partial)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	// 40 days, all published, against 40 of which 16 are: products and
	// funnels are not compared either.
	from40, to40 := s.today.AddDate(0, 0, -40).Format(time.DateOnly), s.today.AddDate(0, 0, -1).Format(time.DateOnly)
	code, prevPartial := getWith(t, c, s.url+"/reports/download?site=demo&range=custom&from="+from40+"&to="+to40+"&kind=custom&format=csv")
	prevRecs, err := csv.NewReader(strings.NewReader(prevPartial)).ReadAll()
	if code != 200 || err != nil {
		t.Fatalf("40-day report: %d %v", code, err)
	}
	sections := map[string]int{}
	for _, r := range append(prevRecs, recs...) {
		if (r[0] == "Top products" || r[0] == "Funnels") && (r[5] != "" || r[6] != "") {
			t.Errorf("compared with a partly published period: %q", r)
		}
		sections[r[0]]++
	}
	if sections["Top products"] == 0 || sections["Funnels"] == 0 {
		t.Errorf("the reports hold no products or funnels to check: %v", sections)
	}
	for _, r := range recs {
		if r[0] == "KPIs" && (r[5] != "" || r[6] != "" || r[7] == "") {
			t.Errorf("previous period without data not blank, or no noise: %q", r)
		}
		// 28 days at ε = 4 and 28 at ε = 2: each day's own σ.
		want := abtest.Z95 * math.Sqrt(28*math.Pow(kpiSigma(t, 4, "revenue"), 2)+28*math.Pow(kpiSigma(t, 2, "revenue"), 2))
		if got, _ := strconv.ParseFloat(r[7], 64); r[0] == "KPIs" && r[2] == "revenue" && math.Abs(got-want) > 0.011 {
			t.Errorf("90 days' revenue noise ± %v, want ± %.2f", got, want)
		}
	}
	// A day of the older weeks says its own release's noise.
	old := s.today.AddDate(0, 0, -40).Format(time.DateOnly)
	if _, body := getWith(t, c, s.url+"/api/v1/kpis?site=demo&range=custom&from="+old+"&to="+old); !strings.Contains(body, fmt.Sprintf(`"revenue":%v`, kpiSigma(t, 2, "revenue"))) {
		t.Errorf("a day published at ε = 2 without its own noise: %.300s", body)
	}
	if code, _ := getWith(t, c, s.url+"/reports/download?site=demo&kind=daily&format=csv"); code != 400 {
		t.Errorf("unknown kind: %d", code)
	}
}
