package aggregate

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
