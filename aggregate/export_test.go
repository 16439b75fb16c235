package aggregate

// Release noises cells as a publication would, for the statistical tests
// (differencing, utility) that need many independent releases of the same
// true cells. Publication itself never releases a bucket twice.
func (p *Publisher) Release(t *Table, g Grain, cells []Cell) ([]Cell, error) {
	rel, err := p.release(t, cells, p.mechanisms(t, g))
	if err != nil {
		return nil, err
	}
	out := make([]Cell, len(rel))
	for i, r := range rel {
		c := Cell{Dims: r.Dims, Visitors: r.Visitors, Values: make([]float64, len(t.Metrics))}
		for j, v := range r.Values {
			switch v := v.(type) {
			case uint64:
				c.Values[j] = float64(v)
			case float64:
				c.Values[j] = v
			}
		}
		out[i] = c
	}
	return out, nil
}
