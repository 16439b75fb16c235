package aggregate

import (
	"context"
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

// SessionsTSV runs the traffic table's sessions over bucket b, before any
// bounding: visitor, session, pageviews, entry page, referrer per line.
func (p *Publisher) SessionsTSV(ctx context.Context, b Bucket) (string, error) {
	q := p.placeholders(p.table("traffic"), b, false, false).Replace("SELECT visitor, session, pv, entry, ref FROM (" + sessionsSQL + ") ORDER BY visitor, session FORMAT TSV")
	var sb strings.Builder
	err := p.c.Raw(ctx, q, &sb)
	return sb.String(), err
}
