package aggregate_test

import (
	"context"
	"fmt"
	"math"
	"sort"
	"testing"
	"time"

	"github.com/herd-analytics/herd/aggregate"
	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
	"github.com/herd-analytics/herd/internal/shopsim"
)

// TestPeriods publishes a whole ISO week of a shop whose products are mostly
// too rare for a daily cell: the week and the month are built from the days'
// partial sums once raw events are gone from the picture, reach more products,
// keep the k floor, and their other rows make the totals add up.
func TestPeriods(t *testing.T) {
	ctx := context.Background()
	db := chtest.Migrated(t)
	e := edge(t, db)
	monday := aggregate.Week.Start(time.Now().UTC().AddDate(0, 0, -21))
	end := monday.AddDate(0, 0, 7)
	importShop(t, e, 5, 4000, 7, end)
	p := publisher(t, db, aggregate.Config{})
	// The shop's catalog, less every 25th product: those count as unlisted.
	shop := shopsim.New(shopsim.Config{Site: "demo", Seed: 5, Products: 300, Categories: 8})
	listed := map[string]string{}
	var items []aggregate.CatalogItem
	for i, pr := range shop.Products {
		if i%25 == 0 {
			continue
		}
		listed[pr.ID] = pr.Category
		items = append(items, aggregate.CatalogItem{Site: "demo", ProductID: pr.ID, Name: pr.Name, Category: pr.Category, Price: pr.Price})
	}
	if err := p.LoadCatalog(ctx, items); err != nil {
		t.Fatal(err)
	}
	week := aggregate.Bucket{Site: "demo", Grain: aggregate.Week, Start: monday}
	month := aggregate.Bucket{Site: "demo", Grain: aggregate.Month, Start: aggregate.Month.Start(monday)}
	now := month.End()
	if now.Before(end) {
		now = end
	}
	now = now.Add(10 * time.Minute)

	sum, err := p.RunOnce(ctx, now)
	if err != nil || sum.Failed > 0 {
		t.Fatalf("run: %+v, %v", sum, err)
	}
	runs := func(g aggregate.Grain) uint64 {
		return rows(t, db, "SELECT count() FROM "+db.Names.Pub+".rollup_runs WHERE state = 'published' AND grain = "+clickhouse.Quote(g.String()))[0][0].(uint64)
	}
	weekly, monthly := 0, 0
	for _, tb := range p.Tables() {
		if _, ok := p.Budget().Release(tb.Name, aggregate.Week); ok {
			weekly++
		}
		if _, ok := p.Budget().Release(tb.Name, aggregate.Month); ok {
			monthly++
		}
	}
	if got := runs(aggregate.Day); got != uint64(7*len(p.Tables())) {
		t.Fatalf("daily runs %d, want 7 days × %d tables", got, len(p.Tables()))
	}
	if got := runs(aggregate.Week); got != uint64(weekly) {
		t.Fatalf("weekly runs %d, want %d", got, weekly)
	}
	if got := runs(aggregate.Month); got < uint64(monthly) {
		t.Fatalf("monthly runs %d, want at least %d", got, monthly)
	}

	t.Run("the catalog is the products' key space", func(t *testing.T) {
		unlisted := 0
		for _, r := range rows(t, db, "SELECT product_id, category FROM "+db.Names.Pub+".products WHERE other = 0") {
			id, cat := r[0].(string), r[1].(string)
			if id == aggregate.Unlisted {
				unlisted++
				continue
			}
			if want, ok := listed[id]; !ok || want != cat {
				t.Errorf("published product %q in %q: the catalog lists %v (%q)", id, cat, ok, want)
			}
		}
		if unlisted == 0 {
			t.Error("no unlisted row, though 12 products sold are not in the catalog")
		}
	})

	t.Run("week and month cells cover k", func(t *testing.T) {
		checkFloor(t, p, week)
		checkFloor(t, p, month)
	})

	t.Run("a week's partial sums are its days' cells", func(t *testing.T) {
		products := table(t, p, "products")
		want := map[string]aggregate.Cell{}
		for _, d := range week.Days() {
			cells, err := p.TrueCells(ctx, products, aggregate.Bucket{Site: "demo", Grain: aggregate.Day, Start: d})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cells {
				w, ok := want[c.Key()]
				if !ok {
					w = aggregate.Cell{Dims: c.Dims, Values: make([]float64, len(c.Values))}
				}
				w.Visitors += c.Visitors
				for j, v := range c.Values {
					w.Values[j] += v
				}
				want[c.Key()] = w
			}
		}
		got, err := p.TrueCells(ctx, products, week)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("week cells %d, days' cells %d", len(got), len(want))
		}
		for _, c := range got {
			w := want[c.Key()]
			if c.Visitors != w.Visitors {
				t.Fatalf("%v: week %d visitor-days, days %d", c.Dims, c.Visitors, w.Visitors)
			}
			for j := range c.Values {
				if math.Abs(c.Values[j]-w.Values[j]) > 1e-6*math.Max(1, w.Values[j]) {
					t.Fatalf("%v metric %d: week %g, days %g", c.Dims, j, c.Values[j], w.Values[j])
				}
			}
		}
	})

	t.Run("the long tail reaches k over a week", func(t *testing.T) {
		count := func(grain string, start time.Time) uint64 {
			return rows(t, db, "SELECT count() FROM "+db.Names.Pub+".products WHERE other = 0 AND grain = "+clickhouse.Quote(grain)+
				" AND bucket = toDateTime("+clickhouse.QuoteInt(start.Unix())+")")[0][0].(uint64)
		}
		var best uint64
		for _, d := range week.Days() {
			best = max(best, count("day", d))
		}
		inWeek := count("week", monday)
		t.Logf("products published: best day %d, week %d, month %d", best, inWeek, count("month", month.Start))
		if inWeek <= best {
			t.Fatalf("the week publishes %d products, no more than the best day's %d", inWeek, best)
		}
	})

	t.Run("other rows make totals add up", func(t *testing.T) {
		products := table(t, p, "products")
		truth, err := p.TrueCells(ctx, products, week)
		if err != nil {
			t.Fatal(err)
		}
		var trueViews float64
		for _, c := range truth {
			trueViews += c.Values[0]
		}
		r := rows(t, db, "SELECT sumIf(views, other = 0), sumIf(views, other = 1), countIf(other = 1) FROM "+db.Names.Pub+".products WHERE grain = 'week' AND bucket = toDateTime("+clickhouse.QuoteInt(monday.Unix())+")")[0]
		listed, other := float64(r[0].(uint64)), float64(r[1].(uint64))
		t.Logf("week product views: true %.0f; published %.0f in product rows (%.1f%%) + %.0f in %d other rows; total off by %.1f%%",
			trueViews, listed, 100*listed/trueViews, other, r[2], 100*(listed+other-trueViews)/trueViews)
		if r[2].(uint64) == 0 {
			t.Fatal("no other row")
		}
		if math.Abs(listed+other-trueViews) > 0.1*trueViews {
			t.Fatalf("published views %.0f + other %.0f against a true %.0f", listed, other, trueViews)
		}
	})

	t.Run("the published funnel, click-through and ranking match the truth", func(t *testing.T) {
		at := "grain = 'week' AND bucket = toDateTime(" + clickhouse.QuoteInt(monday.Unix()) + ")"
		// Funnel steps: every device and the other row, against the week's
		// true visitor-days per step.
		truth, err := p.TrueCells(ctx, table(t, p, "funnels"), week)
		if err != nil {
			t.Fatal(err)
		}
		trueSteps := map[string]float64{}
		for _, c := range truth {
			trueSteps[fmt.Sprint(c.Dims[0], c.Dims[1])] += float64(c.Visitors)
		}
		// Each step's devices and other row sum noise of at most the other
		// row's σ each: a step is within four of those of the truth.
		frel, _ := p.Budget().Release("funnels", aggregate.Week)
		var stepErr []float64
		for _, r := range rows(t, db, "SELECT funnel, step, sum(visitors), count() FROM "+db.Names.Pub+".funnels WHERE "+at+" GROUP BY funnel, step") {
			want, got := trueSteps[fmt.Sprint(r[0], r[1])], float64(r[2].(uint64))
			stepErr = append(stepErr, math.Abs(got-want)/want)
			if tol := 4 * math.Sqrt(float64(r[3].(uint64))) * frel.Params.Other.Visitors.Sigma; math.Abs(got-want) > tol {
				t.Errorf("funnel %v step %v: published %.0f visitor-days, true %.0f (noise allows ±%.0f)", r[0], r[1], got, want, tol)
			}
		}
		t.Logf("funnel steps of the week: %d published, median relative error %s", len(stepErr), pct(quantile(stepErr, 0.5)))
		if len(stepErr) < 5 {
			t.Errorf("only %d funnel steps published for a week of 28,000 visitor-days", len(stepErr))
		}
		// Click-through per slot: published clicks ÷ impressions of the same
		// cells against the true ratio, for slots with 1,000 impressions,
		// within four standard deviations of the ratio's noise.
		rel, _ := p.Budget().Release("slots", aggregate.Week)
		clicksNoise, _ := rel.Params.Metric("clicks")
		impressionsNoise, _ := rel.Params.Metric("impressions")
		slots, err := p.TrueCells(ctx, table(t, p, "slots"), week)
		if err != nil {
			t.Fatal(err)
		}
		trueCTR := map[string]float64{}
		for _, c := range slots {
			if c.Values[0] >= 1000 {
				trueCTR[aggregate.Cell{Dims: c.Dims}.Key()] = c.Values[1] / c.Values[0]
			}
		}
		checked := 0
		for _, r := range rows(t, db, "SELECT page_type, slot, variant, impressions, clicks FROM "+db.Names.Pub+".slots WHERE other = 0 AND "+at) {
			want, ok := trueCTR[aggregate.Cell{Dims: r[:3]}.Key()]
			if !ok {
				continue
			}
			checked++
			got := float64(r[4].(uint64)) / float64(r[3].(uint64))
			// Both counts are noised: (c + nc) / (i + ni) ≈ want + (nc − want·ni) / i.
			sigma := math.Hypot(clicksNoise.Sigma, want*impressionsNoise.Sigma)
			if tol := 4 * sigma / float64(r[3].(uint64)); got > 1 || math.Abs(got-want) > tol {
				t.Errorf("slot %v: published click-through %.3f, true %.3f (noise allows ±%.3f)", r[:3], got, want, tol)
			}
		}
		if checked == 0 {
			t.Error("no slot of 1,000 impressions to compare")
		}
		// Ranking: the month's top 10 products by true views against their
		// published views.
		products, err := p.TrueCells(ctx, table(t, p, "products"), month)
		if err != nil {
			t.Fatal(err)
		}
		sort.Slice(products, func(i, j int) bool { return products[i].Values[0] > products[j].Values[0] })
		published := map[string]float64{}
		for _, r := range rows(t, db, "SELECT product_id, category, views FROM "+db.Names.Pub+".products WHERE other = 0 AND grain = 'month' AND bucket = toDateTime("+clickhouse.QuoteInt(month.Start.Unix())+")") {
			published[aggregate.Cell{Dims: r[:2]}.Key()] = float64(r[2].(uint64))
		}
		var tv, pv []float64
		for _, c := range products[:10] {
			tv, pv = append(tv, c.Values[0]), append(pv, published[c.Key()])
		}
		if rho := spearman(tv, pv); rho < 0.8 {
			t.Errorf("top 10 products of the month: Spearman %.2f against the truth (views %v, published %v)", rho, tv, pv)
		}
		if n, findings, err := p.Impossible(ctx); err != nil || n != 0 {
			t.Errorf("impossible values: %d %v %v", n, findings, err)
		}
	})

	t.Run("no release spends past the budget", func(t *testing.T) {
		b := p.Budget()
		if b.Spent() > b.Rho*(1+1e-9) || b.Spent() < 0.99*b.Rho {
			t.Fatalf("releases spend ρ %g of %g", b.Spent(), b.Rho)
		}
		// What the stored runs charge one day of the week.
		got := rows(t, db, "SELECT sum(rho) FROM (SELECT max(rho) AS rho FROM "+db.Names.Pub+".rollup_runs WHERE state = 'published'"+
			" AND bucket <= toDateTime("+clickhouse.QuoteInt(monday.Unix())+") AND grain != 'hour' AND (grain = 'day' AND bucket = toDateTime("+clickhouse.QuoteInt(monday.Unix())+
			") OR grain = 'week' OR grain = 'month' AND bucket = toDateTime("+clickhouse.QuoteInt(month.Start.Unix())+")) GROUP BY table_name, grain, bucket)")[0][0].(float64)
		if got > b.Rho*(1+1e-9) || got < 0.99*b.Rho {
			t.Fatalf("the runs covering %s charge ρ %g, budget %g", monday.Format(time.DateOnly), got, b.Rho)
		}
	})

	t.Run("retention drops partial sums once their weeks and months are published", func(t *testing.T) {
		if _, err := p.Retain(ctx, now, nil); err != nil {
			t.Fatal(err)
		}
		last := end
		if month.End().Before(last) {
			last = month.End()
		}
		left := rows(t, db, "SELECT count() FROM "+db.Names.Raw+".cell_partials WHERE day >= toDate("+clickhouse.Quote(monday.Format(time.DateOnly))+
			") AND day < toDate("+clickhouse.Quote(last.Format(time.DateOnly))+")")[0][0].(uint64)
		if left != 0 {
			t.Fatalf("%d partial rows of published weeks and months left", left)
		}
		if n := rows(t, db, "SELECT count() FROM "+db.Names.Raw+".retention_runs WHERE kind = 'partial_day'")[0][0].(uint64); n == 0 {
			t.Fatal("no partial day recorded as dropped")
		}
	})
}

// spearman is the rank correlation of xs and ys (no ties expected).
func spearman(xs, ys []float64) float64 {
	rank := func(v []float64) []float64 {
		idx := make([]int, len(v))
		for i := range idx {
			idx[i] = i
		}
		sort.Slice(idx, func(a, b int) bool { return v[idx[a]] < v[idx[b]] })
		r := make([]float64, len(v))
		for pos, i := range idx {
			r[i] = float64(pos)
		}
		return r
	}
	rx, ry := rank(xs), rank(ys)
	n := float64(len(xs))
	var d2 float64
	for i := range rx {
		d2 += (rx[i] - ry[i]) * (rx[i] - ry[i])
	}
	return 1 - 6*d2/(n*(n*n-1))
}
