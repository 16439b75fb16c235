package privacy

import (
	"slices"
	"testing"
)

func TestNonIncreasing(t *testing.T) {
	for _, tc := range []struct{ in, want []float64 }{
		{[]float64{10, 8, 3}, []float64{10, 8, 3}},
		{[]float64{10, 12, 3}, []float64{11, 11, 3}},
		{[]float64{1, 2, 3}, []float64{2, 2, 2}},
		{[]float64{5, 1, 4, 0}, []float64{5, 2.5, 2.5, 0}},
		{nil, nil},
	} {
		got := slices.Clone(tc.in)
		NonIncreasing(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%v: got %v, want %v", tc.in, got, tc.want)
		}
	}
}
