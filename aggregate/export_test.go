package aggregate

import (
	"context"
	"fmt"
	"strings"
)

// Release noises cells as a publication of grain g would, for the statistical
// tests (differencing, utility) that need many independent releases of the
// same true cells. Publication itself never releases a bucket twice. Other
// rows are returned with Other set in Dims' place: callers match by key.
func (p *Publisher) Release(t *Table, g Grain, cells []Cell) ([]Cell, error) {
	r, _ := p.budget.Release(t.Name, g)
	rel, err := p.release(t, cells, r.Params)
	if err != nil {
		return nil, err
	}
	var out []Cell
	for _, r := range rel {
		if r.Other {
			continue
		}
		c := Cell{Dims: r.Dims, Visitors: r.Visitors, Values: make([]float64, len(t.Metrics))}
		for j, v := range r.Values {
			switch v := v.(type) {
			case uint64:
				c.Values[j] = float64(v)
			case float64:
				c.Values[j] = v
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// SessionsTSV lists bucket b's sessions with pageviews, before any
// bounding: visitor, session, pageviews, entry page, referrer per line.
func (p *Publisher) SessionsTSV(ctx context.Context, b Bucket) (string, error) {
	var sb strings.Builder
	_, err := p.scanVisits(ctx, b, []func(*Visit){func(v *Visit) {
		v.pageviewSessions(func(s, entry, pv int) {
			fmt.Fprintf(&sb, "%d\t%d\t%d\t%s\t%s\n", v.Visitor, s, pv, v.Events[entry].Path(), v.Events[entry].Referrer())
		})
	}})
	return sb.String(), err
}
