package aggregate_test

import (
	"testing"

	"github.com/herd-analytics/herd/aggregate"
	"github.com/herd-analytics/herd/internal/clickhouse"
)

// TestReleasedCellsAreConsistent: whatever the noise draws, a released
// products cell never has more adds than views, more purchases than adds,
// or revenue without purchases.
func TestReleasedCellsAreConsistent(t *testing.T) {
	p, err := aggregate.NewPublisher(nil, clickhouse.DefaultDatabases, aggregate.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	products := table(t, p, "products")
	var cells []aggregate.Cell
	for i := range 200 {
		cells = append(cells, aggregate.Cell{Dims: []any{string(rune('a'+i%26)) + string(rune('a'+i/26)), "c"}, Visitors: uint64(150 + i),
			Values: []float64{float64(200 + i), float64(i % 7), float64(i % 5), float64(i % 3), float64(i%3) * 40}})
	}
	bad := 0
	for range 50 {
		rel, err := p.Release(products, aggregate.Month, cells)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range rel {
			views, adds, purchases, revenue := c.Values[0], c.Values[2], c.Values[3], c.Values[4]
			if adds > views || purchases > adds || (revenue > 0 && purchases == 0) {
				bad++
				if bad < 5 {
					t.Errorf("inconsistent cell %v: %v", c.Dims, c.Values)
				}
			}
		}
	}
}
