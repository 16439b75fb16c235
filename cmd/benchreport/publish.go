package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/herd-analytics/herd/aggregate"
	"github.com/herd-analytics/herd/internal/clickhouse"
)

// benchPublish times publishing one day of events raw events into every rollup
// table (k floor, bounded contributions, DP, insert, run records) against a
// bare INSERT ... SELECT ... GROUP BY of the same day into one plain table,
// alternating the two.
func benchPublish(ctx context.Context, c *clickhouse.Client, events, runs int) (string, error) {
	dbs := clickhouse.DefaultDatabases
	day := time.Now().UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour)
	fmt.Fprintf(os.Stderr, "generating %d raw events for %s\n", events, day.Format(time.DateOnly))
	if err := generateDay(ctx, c, dbs.Raw, day, events); err != nil {
		return "", err
	}
	// A closed day's hours are merged by the time it is published (hours
	// after the last insert): so are the generated ones.
	fmt.Fprintln(os.Stderr, "merging the day's parts")
	if err := c.Exec(ctx, "OPTIMIZE TABLE "+dbs.Raw+".events FINAL"); err != nil {
		return "", err
	}
	p, err := aggregate.NewPublisher(c, dbs, aggregate.Config{}, nil)
	if err != nil {
		return "", err
	}
	if err := c.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+dbs.Pub+".bench_bare (site String, type String, product_id String, visitors UInt64, events UInt64) ENGINE = MergeTree() ORDER BY tuple()"); err != nil {
		return "", err
	}
	defer c.Exec(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+dbs.Pub+".bench_bare")
	where := fmt.Sprintf("site = 'demo' AND received >= toDateTime(%d) AND received < toDateTime(%d)", day.Unix(), day.Add(24*time.Hour).Unix())

	bare := func() (time.Duration, error) {
		if err := c.Exec(ctx, "TRUNCATE TABLE "+dbs.Pub+".bench_bare"); err != nil {
			return 0, err
		}
		start := time.Now()
		err := c.Exec(ctx, "INSERT INTO "+dbs.Pub+".bench_bare SELECT site, toString(type), product_id, uniqExact(visitor), count() FROM "+
			dbs.Raw+".events WHERE "+where+" GROUP BY site, type, product_id")
		return time.Since(start), err
	}
	perTable := map[string][]float64{}
	publish := func() (time.Duration, error) {
		d, cur, err := publishDay(ctx, c, p, dbs, day)
		for name, sec := range cur {
			perTable[name] = append(perTable[name], sec)
		}
		return d, err
	}
	var ratios, a, b []float64
	for i := range runs {
		tb, err := bare()
		if err != nil {
			return "", err
		}
		tp, err := publish()
		if err != nil {
			return "", err
		}
		a, b, ratios = append(a, tp.Seconds()), append(b, tb.Seconds()), append(ratios, tp.Seconds()/tb.Seconds())
		fmt.Fprintf(os.Stderr, "pair %d: publish %.2fs, bare %.2fs, ratio %.2f\n", i, tp.Seconds(), tb.Seconds(), tp.Seconds()/tb.Seconds())
	}
	var s strings.Builder
	fmt.Fprintf(&s, "One UTC day of %d synthetic raw events (%d visitors; its hour partitions merged, as they are once the day has closed), published into all %d rollup tables at every grain they publish (the day; the week and month holding it, from the day's partial sums), %d runs alternating with the bare query.\n\n",
		events, events/25, len(p.Tables()), runs)
	s.WriteString("| what | seconds median | min | max |\n|---|---|---|---|\n")
	fmt.Fprintf(&s, "| A: publish every table (bounded contributions, k floor, DP, insert, run records) | %.2f | %.2f | %.2f |\n", median(a), slices.Min(a), slices.Max(a))
	fmt.Fprintf(&s, "| B: bare `INSERT ... SELECT site, type, product_id, uniqExact(visitor), count() ... GROUP BY` into one plain table | %.2f | %.2f | %.2f |\n", median(b), slices.Min(b), slices.Max(b))
	fmt.Fprintf(&s, "\n**Ratio A/B (pair by pair): median %.1f** (min %.1f, max %.1f). Aim: ≤ 5.\n\nWhere the time goes (median seconds): reading the day's events once for every table %.2f; then per table (its releases at every grain, their inserts and run records):",
		median(ratios), slices.Min(ratios), slices.Max(ratios), median(perTable[readDay]))
	for _, t := range p.Tables() {
		fmt.Fprintf(&s, " %s %.2f;", t.Name, median(perTable[t.Name]))
	}
	s.WriteString("\n")
	return s.String(), nil
}

// readDay is publishDay's figure for reading the day's raw events.
const readDay = "(reading the day)"

// publishDay publishes day into every table of p at every grain (the day;
// the week and month holding it, from the day's partial sums, as the
// publisher does once they close), after dropping what an earlier run
// published, and returns the time taken and the seconds per table.
func publishDay(ctx context.Context, c *clickhouse.Client, p *aggregate.Publisher, dbs clickhouse.Databases, day time.Time) (time.Duration, map[string]float64, error) {
	buckets := []aggregate.Bucket{{Site: "demo", Grain: aggregate.Day, Start: day}}
	for _, g := range []aggregate.Grain{aggregate.Week, aggregate.Month} {
		buckets = append(buckets, aggregate.Bucket{Site: "demo", Grain: g, Start: g.Start(day)})
	}
	months := map[int]bool{}
	for _, b := range buckets {
		months[b.Start.Year()*100+int(b.Start.Month())] = true
	}
	for _, t := range append(p.Tables(), &aggregate.Table{Name: "rollup_runs"}) {
		for m := range months {
			if err := c.Exec(ctx, fmt.Sprintf("%s DROP PARTITION %d", dbs.Alter(dbs.Pub, t.Name), m)); err != nil {
				return 0, nil, err
			}
		}
	}
	if err := c.Exec(ctx, dbs.Alter(dbs.Raw, "cell_partials")+" DROP PARTITION "+clickhouse.Quote(day.Format(time.DateOnly))); err != nil {
		return 0, nil, err
	}
	start := time.Now()
	cur := map[string]float64{}
	for _, b := range buckets {
		var raw *aggregate.DayEvents
		if b.Grain == aggregate.Day {
			ts := time.Now()
			if raw = p.Day(b); raw.Read(ctx) != nil {
				return 0, nil, raw.Read(ctx)
			}
			cur[readDay] += time.Since(ts).Seconds()
		}
		for _, t := range p.Tables() {
			if _, ok := p.Budget().Release(t.Name, b.Grain); !ok && b.Grain != aggregate.Day {
				continue
			}
			ts := time.Now()
			run := p.PublishBucket(ctx, t, b, raw)
			if run.Err != nil {
				return 0, nil, run.Err
			}
			cur[t.Name] += time.Since(ts).Seconds() // every grain of the table
		}
	}
	return time.Since(start), cur, nil
}

// generateDay fills one day of raw events in ClickHouse itself, shaped like
// herd gen's traffic: about 25 events per visitor, Zipf-like products, lists
// of 12, checkout steps, purchases, searches, slot impressions.
func generateDay(ctx context.Context, c *clickhouse.Client, rawDB string, day time.Time, events int) error {
	visitors := max(events/25, 1)
	const chunk = 1_000_000
	for off := 0; off < events; off += chunk {
		n := min(chunk, events-off)
		q := fmt.Sprintf(`INSERT INTO %[1]s.events (event_id, site, received, seq, type, visitor, session, path, page_type, referrer_host,
	browser, browser_major, os, device, country, product_id, product_category, product_price, position, list, slot, variant, step,
	order_value, currency, items, products, search_term, search_results)
SELECT generateUUIDv4(), 'demo', toDateTime(%[2]d + (cityHash64(v) %% 80000) + k * 20), toUInt16(k %% 20),
	CAST(multiIf(t < 30, 'pageview', t < 42, 'product_view', t < 52, 'product_list_view', t < 60, 'product_click', t < 66, 'add_to_cart',
		t < 70, 'checkout_step', t < 72, 'purchase', t < 80, 'search', 'slot_impression') AS Enum8('pageview' = 1, 'product_list_view' = 2,
		'product_view' = 3, 'product_click' = 4, 'add_to_cart' = 5, 'remove_from_cart' = 6, 'checkout_step' = 7, 'purchase' = 8, 'search' = 9, 'slot_impression' = 10)),
	cityHash64(v, %[2]d), cityHash64(v, intDiv(k, 10)),
	concat('/', ['', 'category/c', 'product/p', 'search', 'checkout/1'][t %% 5 + 1], toString(p %% 40)),
	['home', 'category', 'product', 'search', 'checkout'][t %% 5 + 1],
	['', 'google.com', 'instagram.com', ''][v %% 4 + 1],
	['Chrome', 'Safari', 'Firefox', 'Samsung Internet'][v %% 4 + 1], toUInt16(118 + v %% 10), ['Windows', 'iOS', 'Android', 'macOS'][v %% 4 + 1],
	CAST(['desktop', 'mobile', 'tablet'][v %% 3 + 1] AS Enum8('desktop' = 1, 'mobile' = 2, 'tablet' = 3, 'other' = 4)),
	toFixedString(['DE', 'NL', 'FR', 'AT', 'US'][v %% 5 + 1], 2),
	concat('P', toString(p)), concat('c', toString(p %% 12)), toDecimal64(p %% 200 + 9.99, 2),
	toUInt16(k %% 12 + 1), concat('category:c', toString(p %% 12)), if(t >= 80, concat('home-row-', toString(k %% 4 + 1)), if(t >= 52 AND t < 60, 'list', '')),
	if(v %% 2 = 0, 'A', 'B'), toUInt8(k %% 4 + 1),
	toDecimal64(if(t >= 70 AND t < 72, 80 + p %% 120, 0), 2), toFixedString('EUR', 3), toUInt16(2),
	if(t >= 42 AND t < 52, arrayMap(i -> concat('P', toString((p + i) %% 2000)), range(12)), if(t >= 70 AND t < 72, [concat('P', toString(p)), concat('P', toString((p + 7) %% 2000))], emptyArrayString())),
	if(t >= 72 AND t < 80, concat('term ', toString(p %% 300)), ''), toInt32(if(p %% 9 = 0, 0, p %% 50))
FROM (SELECT number + %[3]d AS n, n %% %[4]d AS v, intDiv(n, %[4]d) AS k, cityHash64(n) %% 100 AS t,
	toUInt32((intHash32(n) %% 45) * (intHash32(n + 1) %% 45)) AS p FROM numbers(%[5]d))`, rawDB, day.Unix(), off, visitors, n)
		if err := c.Exec(ctx, q); err != nil {
			return fmt.Errorf("generate raw events: %w", err)
		}
	}
	return nil
}
