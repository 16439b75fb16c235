package aggregate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
	"github.com/herd-analytics/herd/schemas"
)

// The publisher's funnel levels are ClickHouse's windowFunnel, visit for
// visit: random visits of the funnels' own event types, at random times
// around the windows, give the same deepest step both ways.
func TestFunnelLevelIsWindowFunnel(t *testing.T) {
	db := chtest.Migrated(t)
	ctx := context.Background()
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(7, 13))
	types := []string{"pageview", "product_view", "add_to_cart", "checkout_step", "purchase", "search", "product_click"}
	var values []string
	for v := range 400 {
		at := day.Add(time.Duration(r.IntN(20*3600)) * time.Second)
		for k := range 4 + r.IntN(14) {
			at = at.Add(time.Duration(1+r.IntN(900)) * time.Second) // distinct seconds, gaps around the windows
			values = append(values, fmt.Sprintf("('00000000-0000-4000-8000-%06d%06d', 'demo', %d, %d, '%s', %d, %d, 'home', 'desktop')",
				v, k, at.Unix(), r.IntN(3), types[r.IntN(len(types))], 5000+v, r.IntN(4)))
		}
	}
	if err := db.Writer.Exec(ctx, "INSERT INTO "+db.Names.Raw+".events (event_id, site, received, seq, type, visitor, step, page_type, device) VALUES "+strings.Join(values, ", ")); err != nil {
		t.Fatal(err)
	}
	p, err := NewPublisher(db.Writer, db.Names, Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sfs, err := schemas.Funnels()
	if err != nil {
		t.Fatal(err)
	}
	b := Bucket{Site: "demo", Grain: Day, Start: day}
	for id, sf := range sfs {
		f, err := newFunnel(id, sf)
		if err != nil {
			t.Fatal(err)
		}
		got := map[uint64]int{}
		if _, err := p.scanVisits(ctx, b, []func(*Visit){func(v *Visit) { got[v.Visitor] = f.level(v) }}); err != nil {
			t.Fatal(err)
		}
		conds := make([]string, len(f.steps))
		for i, s := range f.steps {
			conds[i] = "type = " + clickhouse.Quote(eventTypeNames[s.typ])
			if s.step > 0 {
				conds[i] += " AND step = " + clickhouse.QuoteInt(s.step)
			}
			if s.pageType != "" {
				conds[i] += " AND page_type = " + clickhouse.Quote(s.pageType)
			}
			if s.slot != "" {
				conds[i] += " AND slot = " + clickhouse.Quote(s.slot)
			}
		}
		ts := fmt.Sprintf("toUInt32((toUInt32(received) - %d) * %d + least(seq, %d))", day.Unix(), tsPerSecond, tsPerSecond-1)
		q := fmt.Sprintf("SELECT visitor, windowFunnel(%d)(%s, %s) FROM %s.events WHERE %s GROUP BY visitor",
			f.window, ts, strings.Join(conds, ", "), db.Names.Raw, rangeWhere(b))
		want := map[uint64]int{}
		err = db.Writer.Select(ctx, q, func(blk *proto.Block) error {
			for i := range blk.Rows() {
				want[clickhouse.Get[uint64](blk, 0, i)] = int(clickhouse.Get[uint8](blk, 1, i))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("funnel %s: %d visits here, %d in ClickHouse", f.name, len(got), len(want))
		}
		deep := 0
		for v, n := range want {
			if got[v] != n {
				t.Errorf("funnel %s, visitor %d: level %d, windowFunnel says %d", f.name, v, got[v], n)
			}
			if n >= 2 {
				deep++
			}
		}
		if deep < 10 {
			t.Errorf("funnel %s: only %d visits past the first step: the test exercises too little", f.name, deep)
		}
	}
}
