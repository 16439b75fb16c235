package dashboard

import "context"

// TermRow is a search term's published totals.
type TermRow struct {
	Term                            string
	Searches, ZeroResults, Visitors float64
}

// terms are the terms of searchTermsDataset or zeroResultTermsDataset.
func (s *store) terms(ctx context.Context, ds dataset, f filters) ([]TermRow, error) {
	return typed(ctx, s, ds, f, func(r row) TermRow {
		return TermRow{Term: r.str("term"), Searches: r.num("searches"), ZeroResults: r.num("zero_result_searches"), Visitors: r.num("visitors")}
	})
}

// PeriodSearches are the searches of one published bucket.
type PeriodSearches struct {
	Period                string
	Searches, ZeroResults float64
}

func (s *store) searchTrend(ctx context.Context, f filters) ([]PeriodSearches, error) {
	return typed(ctx, s, searchTrendDataset, f, func(r row) PeriodSearches {
		return PeriodSearches{Period: r.str("day"), Searches: r.num("searches"), ZeroResults: r.num("zero_result_searches")}
	})
}

// searchTermsDataset is the search dataset (/api/v1/search).
var searchTermsDataset = dataset{name: "search", roles: []Role{Merchandiser, Manager, Admin}, header: []string{"term", "searches", "zero_result_searches", "visitors"},
	query: func(s *store, f filters) string {
		return "SELECT term, sum(searches) AS n, sum(zero_results), sum(visitors) FROM " + s.db + ".searches WHERE " + s.cells("searches", f.site, f.r) +
			" GROUP BY term ORDER BY n DESC, term LIMIT 50"
	}}

// zeroResultTermsDataset is the search_zero dataset (/api/v1/search_zero).
var zeroResultTermsDataset = dataset{name: "search_zero", roles: []Role{Merchandiser, Manager, Admin}, header: []string{"term", "zero_result_searches", "searches", "visitors"},
	query: func(s *store, f filters) string {
		return "SELECT term, sum(zero_results) AS z, sum(searches), sum(visitors) FROM " + s.db + ".searches WHERE " + s.cells("searches", f.site, f.r) +
			" GROUP BY term HAVING z > 0 ORDER BY z DESC, term LIMIT 50"
	}}

// searchTrendDataset is the search_trend dataset (/api/v1/search_trend).
var searchTrendDataset = dataset{name: "search_trend", roles: []Role{Merchandiser, Manager, Admin}, header: []string{"day", "searches", "zero_result_searches"},
	query: func(s *store, f filters) string {
		return "SELECT toString(toDate(bucket)), sum(searches), sum(zero_results) FROM " + s.db + ".searches WHERE " + s.cells("searches", f.site, f.r) +
			" GROUP BY bucket ORDER BY bucket"
	}}
