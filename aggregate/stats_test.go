package aggregate_test

import (
	"context"
	"fmt"
	"math"
	"sort"
	"testing"
	"time"

	"github.com/herd-analytics/herd/aggregate"
)

func table(t *testing.T, p *aggregate.Publisher, name string) *aggregate.Table {
	t.Helper()
	for _, tb := range p.Tables() {
		if tb.Name == name {
			return tb
		}
	}
	t.Fatalf("no table %s", name)
	return nil
}

func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[int(q*float64(len(s)-1))]
}

// differencing plays the attacker who subtracts the published children of a
// parent from the parent to learn the one child left: the site's visitors
// (kpis) minus the visitors of every device but one (traffic). Without noise
// the difference is that device's exact count; with it, it is not.
func differencing(t *testing.T, p *aggregate.Publisher, day time.Time) {
	ctx := context.Background()
	b := aggregate.Bucket{Site: "demo", Grain: aggregate.Day, Start: day}
	kpis, traffic := table(t, p, "kpis"), table(t, p, "traffic")
	parent, err := p.TrueCells(ctx, kpis, b)
	if err != nil || len(parent) != 1 {
		t.Fatalf("kpis cells: %v, %v", parent, err)
	}
	all, err := p.TrueCells(ctx, traffic, b)
	if err != nil {
		t.Fatal(err)
	}
	var devices []aggregate.Cell
	for _, c := range all {
		if c.Dims[0] == "device" {
			devices = append(devices, c)
		}
	}
	if len(devices) < 3 {
		t.Fatalf("device cells: %v", devices)
	}
	// The target is the smallest device, as if it were suppressed.
	sort.Slice(devices, func(i, j int) bool { return devices[i].Visitors < devices[j].Visitors })
	target := devices[0]
	exact := int64(parent[0].Visitors)
	for _, c := range devices[1:] {
		exact -= int64(c.Visitors)
	}
	if exact != int64(target.Visitors) {
		t.Logf("exact differencing gives %d for %v's %d (visitors without pageviews)", exact, target.Dims, target.Visitors)
	}

	const releases = 2000
	var errs []float64
	hits := 0
	for range releases {
		pr, err := p.Release(kpis, aggregate.Day, parent)
		if err != nil {
			t.Fatal(err)
		}
		ch, err := p.Release(traffic, aggregate.Day, devices[1:])
		if err != nil {
			t.Fatal(err)
		}
		if len(pr) != 1 || len(ch) != len(devices)-1 {
			continue // a part was suppressed: the attack has nothing to subtract
		}
		est := int64(pr[0].Visitors)
		for _, c := range ch {
			est -= int64(c.Visitors)
		}
		if est == exact {
			hits++
		}
		errs = append(errs, float64(est-exact))
	}
	abs := make([]float64, len(errs))
	for i, e := range errs {
		abs[i] = math.Abs(e)
	}
	t.Logf("differencing over %d releases: exact hits %d (%.2f%%), error median %.1f, |error| median %.1f, p90 %.1f, p99 %.1f (target %d visitors)",
		len(errs), hits, 100*float64(hits)/float64(len(errs)), quantile(errs, 0.5), quantile(abs, 0.5), quantile(abs, 0.9), quantile(abs, 0.99), target.Visitors)
	if len(errs) < releases/2 {
		t.Fatalf("only %d of %d releases published every part", len(errs), releases)
	}
	if float64(hits)/float64(len(errs)) > 0.05 {
		t.Fatalf("differencing recovered the exact count in %d of %d releases", hits, len(errs))
	}
	if quantile(abs, 0.5) < 5 {
		t.Fatalf("median differencing error %.1f: the noise barely hides the child", quantile(abs, 0.5))
	}
}

// utility measures the published counts' relative error against the true
// (bounded) counts for daily cells of at least 200 visitor-days, over many
// releases, at the default budget. The day's visitor-days (kpis) must be
// within 1% (median); the rest is logged for docs/benchmarks.md.
func utility(t *testing.T, p *aggregate.Publisher, day time.Time) {
	ctx := context.Background()
	b := aggregate.Bucket{Site: "demo", Grain: aggregate.Day, Start: day}
	const releases = 50
	var visitorsErr, countErr, kpiErr []float64
	for _, tb := range p.Tables() {
		if _, ok := p.Budget().Release(tb.Name, aggregate.Day); !ok {
			continue
		}
		truth, err := p.TrueCells(ctx, tb, b)
		if err != nil {
			t.Fatal(err)
		}
		exact := map[string]aggregate.Cell{}
		var big []aggregate.Cell
		for _, c := range truth {
			if c.Visitors >= 200 {
				big = append(big, c)
				exact[c.Key()] = c
			}
		}
		if len(big) == 0 {
			t.Logf("%-10s no cell of ≥ 200 visitor-days", tb.Name)
			continue
		}
		var tv []float64
		tm := make([][]float64, len(tb.Metrics))
		for range releases {
			rel, err := p.Release(tb, aggregate.Day, big)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rel {
				c := exact[r.Key()]
				tv = append(tv, math.Abs(float64(r.Visitors)-float64(c.Visitors))/float64(c.Visitors))
				for j := range tb.Metrics {
					truth, got := c.Values[j], r.Values[j]
					if truth >= 200 {
						tm[j] = append(tm[j], math.Abs(got-truth)/truth)
					}
				}
			}
		}
		visitorsErr = append(visitorsErr, tv...)
		if tb.Name == "kpis" {
			kpiErr = tv
		}
		line := ""
		for j, m := range tb.Metrics {
			if len(tm[j]) > 0 {
				line += " " + m.Name + " " + pct(quantile(tm[j], 0.5))
				if !m.Sum {
					countErr = append(countErr, tm[j]...)
				}
			}
		}
		t.Logf("%-10s %3d cells ≥ 200 (L = %d): visitors median error %s, p90 %s;%s", tb.Name, len(big), tb.L(), pct(quantile(tv, 0.5)), pct(quantile(tv, 0.9)), line)
	}
	mv, mc := quantile(visitorsErr, 0.5), quantile(countErr, 0.5)
	t.Logf("all tables: visitors median relative error %s (%d cell releases); counts ≥ 200 median %s (%d)", pct(mv), len(visitorsErr), pct(mc), len(countErr))
	if m := quantile(kpiErr, 0.5); !(m <= 0.01) {
		t.Errorf("the day's visitor-days: median relative error %s, target ≤ 1%%", pct(m))
	}
}

func pct(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) }
