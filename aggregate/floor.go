package aggregate

import (
	"context"
	"fmt"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/herd-analytics/herd/internal/clickhouse"
)

// CheckFloor recomputes bucket b's true cells of t (from raw events or
// partial sums) and checks every published row of the bucket against the k
// floor: a cell by its own visitor-days, an "other" row by the sum over the
// parent's cells that were not published. It returns how many rows it
// checked and one finding per row under k (counts only, never values).
// day, when b is a day, is its raw events (shared by the checks of its
// tables, so that the day is read once); nil reads them for this check.
func (p *Publisher) CheckFloor(ctx context.Context, t *Table, b Bucket, day *DayEvents) (int, []string, error) {
	var truth []Cell
	var err error
	if day != nil && b.Grain == Day {
		truth, err = day.cells(ctx, t)
	} else {
		truth, err = p.TrueCells(ctx, t, b)
	}
	if err != nil {
		return 0, nil, err
	}
	dims := make([]string, 0, len(t.Dims)+1)
	for _, d := range t.Dims {
		dims = append(dims, d.Name)
	}
	q := "SELECT " + strings.Join(append(dims, "other"), ", ") + " FROM " + p.dbs.Pub + "." + t.Name + " WHERE site = " + clickhouse.Quote(b.Site) +
		" AND grain = " + clickhouse.Quote(b.Grain.String()) + " AND bucket = toDateTime(" + clickhouse.QuoteInt(b.Start.Unix()) + ")"
	var published, others []Cell
	err = p.c.Select(ctx, q, func(blk *proto.Block) error {
		for i := 0; i < blk.Rows(); i++ {
			c := Cell{Dims: make([]any, len(t.Dims))}
			for j := range t.Dims {
				c.Dims[j] = blk.Columns[j].Row(i, false)
			}
			if clickhouse.Get[uint8](blk, len(t.Dims), i) == 1 {
				others = append(others, c)
			} else {
				published = append(published, c)
			}
		}
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("read published %s cells of %s: %w", t.Name, b, err)
	}
	exact := make(map[string]uint64, len(truth))
	for _, c := range truth {
		exact[c.Key()] = c.Visitors
	}
	k := uint64(p.cfg.K)
	var findings []string
	shown := map[string]bool{}
	for _, c := range published {
		shown[c.Key()] = true
		if v := exact[c.Key()]; v < k {
			findings = append(findings, fmt.Sprintf("%s %s: a published cell covers %d visitor-days, under k = %d", t.Name, b, v, k))
		}
	}
	if len(others) > 0 {
		below := map[string]uint64{}
		for _, c := range truth {
			if !shown[c.Key()] {
				below[t.parentOf(c).Key()] += c.Visitors
			}
		}
		for _, o := range others {
			if v := below[o.Key()]; v < k {
				findings = append(findings, fmt.Sprintf("%s %s: an other row covers %d visitor-days, under k = %d", t.Name, b, v, k))
			}
		}
	}
	return len(published) + len(others), findings, nil
}
