package dashboard

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// A dataset is one widget's rows: what a chart or table shows, served as
// /api/v1/<name> in JSON or CSV. Each is a GROUP BY over the published
// cells of the filtered range, of the one grain that tiles it (store.cells).
// Each is declared beside the row type its page reads (query_*.go); the API
// lists them all (api.go).
type dataset struct {
	name   string
	roles  []Role
	header []string // the answer's column names, in the query's order
	// params are the filters it applies beyond the period and site
	// (device, variant, source); the API refuses any other.
	params []string
	query  func(s *store, f filters) string
}

// row is one answer row of a dataset, its columns read by name.
type row struct {
	header []string
	text   []string
	nums   []float64
}

func (r row) col(name string) int {
	i := slices.Index(r.header, name)
	if i < 0 {
		panic("dashboard: no column " + name + " in " + strings.Join(r.header, ", "))
	}
	return i
}

// str is column name's text.
func (r row) str(name string) string { return r.text[r.col(name)] }

// num is column name's number.
func (r row) num(name string) float64 { return r.nums[r.col(name)] }

// int is column name's whole number.
func (r row) int(name string) int { return int(r.nums[r.col(name)]) }

// typed runs ds for f and decodes each row into a T: the pages read typed
// rows, the API and CSV the same rows as text.
func typed[T any](ctx context.Context, s *store, ds dataset, f filters, decode func(row) T) ([]T, error) {
	text, nums, err := s.load(ctx, ds, f)
	if err != nil {
		return nil, err
	}
	out := make([]T, len(text))
	for i := range text {
		out[i] = decode(row{header: ds.header, text: text[i], nums: nums[i]})
	}
	return out, nil
}

// load runs ds for f.
func (s *store) load(ctx context.Context, ds dataset, f filters) ([][]string, [][]float64, error) {
	text, nums, err := s.rows(ctx, ds.query(s, f))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", ds.name, err)
	}
	return text, nums, nil
}
