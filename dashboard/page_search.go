package dashboard

import (
	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"
	"github.com/gofiber/fiber/v2"
)

// search: demand the shelves meet and the demand they miss.
func (d *Dashboard) search(c *fiber.Ctx) error {
	f, sites, err := d.request(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	top, err := d.store.terms(ctx, searchTermsDataset, f)
	if err != nil {
		return err
	}
	zero, err := d.store.terms(ctx, zeroResultTermsDataset, f)
	if err != nil {
		return err
	}
	trend, err := d.store.searchTrend(ctx, f)
	if err != nil {
		return err
	}
	pg := d.page(c, "Search demand", f, sites)
	num := pg.Num

	bar := charts.NewBar()
	bar.SetGlobalOptions(chartOpts("search_terms"), tooltipAxis(), legend(), axes("term", "searches"))
	var terms []string
	var all, none []opts.BarData
	for _, r := range top[:min(len(top), 20)] {
		terms = append(terms, r.Term)
		all = append(all, opts.BarData{Value: r.Searches})
		none = append(none, opts.BarData{Value: r.ZeroResults})
	}
	bar.SetXAxis(terms).AddSeries("searches", all).AddSeries("with zero results", none)

	line := charts.NewLine()
	line.SetGlobalOptions(chartOpts("search_trend"), tooltipAxis(), legend(), axes("period", "searches"))
	var periods []string
	var s1, s2 []opts.LineData
	for _, r := range trend {
		periods = append(periods, r.Period)
		s1 = append(s1, opts.LineData{Value: r.Searches})
		s2 = append(s2, opts.LineData{Value: r.ZeroResults})
	}
	line.SetXAxis(periods).AddSeries("searches", s1).AddSeries("with zero results", s2)

	missed := tableView{Title: "Terms with zero results: demand the shelves miss", CSV: d.csv("search_zero", f),
		Header: []string{"term", "zero-result searches", "searches", "visitor-days"}}
	for _, r := range zero {
		missed.Rows = append(missed.Rows, []string{r.Term, num.Count(r.ZeroResults), num.Count(r.Searches), num.Count(r.Visitors)})
	}
	return render(c, "generic", genericPage{
		page: pg, Heading: "Search demand",
		Intro: "What shoppers look for, and what they look for and do not find. Terms are lower-cased; a term is published for a period only when enough shoppers searched it.",
		Charts: []chart{
			newChart("Top search terms", d.note(ctx, "searches", f, "Searches of terms that reached the threshold."), d.csv("search", f), bar),
			newChart("Searches per period", d.note(ctx, "searches", f, "Totals of published terms per published cell period."), d.csv("search_trend", f), line),
		},
		Tables: []tableView{missed},
	})
}
