package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herd-analytics/herd/aggregate"
	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
)

// TestPeriodGrains: a whole month reads the month cells, whole weeks the
// week cells, other periods the daily cells, never a mix; other rows stay
// out of per-key lists; products carry the catalog's names; the products
// page says what the period's rows cover.
func TestPeriodGrains(t *testing.T) {
	db := chtest.Migrated(t)
	// The clock is pinned to this week's Wednesday (the rows run back 56
	// days from the real today), so 28 days ending "today" are never whole
	// weeks; the Monday below checks that whole weeks read week cells.
	live := startWith(t, db, 0)
	wednesday := live.today.AddDate(0, 0, -((int(live.today.Weekday()) + 4) % 7))
	s := live.at(t, wednesday.Add(12*time.Hour))
	first := time.Date(s.today.Year(), s.today.Month(), 1, 0, 0, 0, 0, time.UTC)
	lastMonth := first.AddDate(0, -1, 0)
	monday := s.today.AddDate(0, 0, -2)
	monthParams, err := json.Marshal(releaseAt(t, 4, "products", aggregate.Month).Params)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		fmt.Sprintf("INSERT INTO %s.rollup_runs (table_name, site, grain, bucket, cells_published, epsilon, state, params) VALUES ('products', 'demo', 'month', toDateTime(%d), 2, 0.8, 'published', %s)",
			db.Names.Pub, lastMonth.Unix(), clickhouse.Quote(string(monthParams))),
		fmt.Sprintf("INSERT INTO %s.products VALUES ('demo', 'month', toDateTime(%d), 'P-MONTH', 'shirts', 900, 2400, 60, 50, 20, 24702.0, 0), ('demo', 'month', toDateTime(%d), '', 'shirts', 800, 5000, 0, 0, 0, 0, 1)",
			db.Names.Pub, lastMonth.Unix(), lastMonth.Unix()),
		fmt.Sprintf("INSERT INTO %s.products VALUES ('demo', 'week', toDateTime(%d), 'P-WEEK', 'shoes', 300, 700, 20, 10, 4, 90.0, 0)", db.Names.Pub, monday.AddDate(0, 0, -7).Unix()),
		fmt.Sprintf("INSERT INTO %s.catalog VALUES ('demo', 'P-MONTH', 'Linen shirt, sand', 'shirts', 35, now()), ('demo', 'P-1', 'Oxford shirt', 'shirts', 40, now()), ('demo', 'P-9', 'Belt', 'shirts', 20, now())", db.Names.Pub),
	} {
		if err := db.Writer.Exec(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	c := client()
	if got := s.login(t, c, "manager", password, true); got != http.StatusSeeOther {
		t.Fatalf("login: %d", got)
	}
	products := func(rng string) []string {
		t.Helper()
		return productsAt(t, c, s.url, rng)
	}
	if got := products("month"); strings.Join(got, ",") != "P-MONTH=Linen shirt, sand" {
		t.Errorf("last full month: %v, want the month cell alone, named from the catalog", got)
	}
	// A listed product's revenue is its purchases at list price (20 × €35),
	// not the release's noisy revenue, with the purchases' noise × price;
	// the category's revenue sums the same figure with its other row's.
	code, body := get(t, c, s.url+"/api/v1/products?range=month")
	var ranked struct {
		Data []struct {
			Purchases float64            `json:"purchases"`
			Revenue   float64            `json:"revenue"`
			Basis     string             `json:"revenue_basis"`
			Noise     map[string]float64 `json:"noise_sigma"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &ranked); err != nil || code != http.StatusOK || len(ranked.Data) != 1 {
		t.Fatalf("products for the month: %d %s %v", code, body, err)
	}
	if p := ranked.Data[0]; p.Revenue != 700 || p.Basis != "list_price" || p.Noise["purchases"] <= 0 || math.Abs(p.Noise["revenue"]-35*p.Noise["purchases"]) > 1e-6 {
		t.Errorf("the month's product: revenue %v (%s), noise %v; want 20 × 35 at list price, σ 35 × the purchases'", p.Revenue, p.Basis, p.Noise)
	}
	code, body = get(t, c, s.url+"/api/v1/category_revenue?range=month")
	if code != http.StatusOK || !strings.Contains(string(body), `"shirts"`) || !strings.Contains(string(body), "700") || strings.Contains(string(body), "24702") {
		t.Errorf("category revenue for the month: %d %s, want shirts at 700 (list price)", code, body)
	}
	// Without a range, products are the last full month's.
	code, body = get(t, c, s.url+"/api/v1/products")
	if code != http.StatusOK || !strings.Contains(string(body), "P-MONTH") || strings.Contains(string(body), "P-WEEK") {
		t.Errorf("products without a range: %d %s, want the last full month", code, body)
	}
	if got := products("week"); strings.Join(got, ",") != "P-WEEK=" {
		t.Errorf("last full week: %v, want the week cell alone", got)
	}
	// 28 days ending on a Wednesday are not whole weeks: daily cells.
	if got := products("28d"); len(got) == 0 || strings.Contains(strings.Join(got, ","), "P-MONTH") || strings.Contains(strings.Join(got, ","), "P-WEEK") {
		t.Errorf("last 28 days on a Wednesday: %v, want the daily cells", got)
	}
	// On a Monday they are four whole weeks: the week cells.
	mc := client()
	onMonday := live.at(t, monday.Add(9*time.Hour))
	if got := onMonday.login(t, mc, "manager", password, true); got != http.StatusSeeOther {
		t.Fatalf("login: %d", got)
	}
	if got := productsAt(t, mc, onMonday.url, "28d"); strings.Join(got, ",") != "P-WEEK=" {
		t.Errorf("last 28 days on a Monday: %v, want the week cell alone", got)
	}
	// The overview opened without a range links to the products page
	// without one (its own default); a chosen range follows the user.
	_, home := get(t, c, s.url+"/")
	if !strings.Contains(string(home), `href="/products?site=demo"`) {
		t.Errorf("the overview's link to the products page carries a range it did not choose")
	}
	_, home = get(t, c, s.url+"/?range=week")
	if !strings.Contains(string(home), `href="/products?range=week&amp;site=demo"`) {
		t.Errorf("the overview's link to the products page drops the chosen range")
	}
	code, body = get(t, c, s.url+"/products?range=month")
	if code != http.StatusOK {
		t.Fatalf("products page: %d", code)
	}
	for _, want := range []string{"Published month cells", "1 of the catalog&#39;s 3 products reached the threshold: 2,400 views; the other 2 products together: 5,000 views."} {
		if !strings.Contains(string(body), want) {
			t.Errorf("products page for the last month does not say %q", want)
		}
	}
}

// productsAt is the products API's answer for range rng at base, as
// id=name pairs.
func productsAt(t *testing.T, c *http.Client, base, rng string) []string {
	t.Helper()
	code, body := get(t, c, base+"/api/v1/products?range="+rng)
	if code != http.StatusOK {
		t.Fatalf("%s: %d %s", rng, code, body)
	}
	var ans struct {
		Data []struct {
			ID   string `json:"product_id"`
			Name string `json:"name"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range ans.Data {
		ids = append(ids, p.ID+"="+p.Name)
	}
	return ids
}
