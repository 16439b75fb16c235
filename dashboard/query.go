package dashboard

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/herd-analytics/herd/internal/clickhouse"
)

// Querier runs a SELECT on the published database and hands each result
// block to fn. *clickhouse.Client, connected as the read-only user, is one.
type Querier interface {
	Select(ctx context.Context, query string, fn func(*proto.Block) error, opts ...clickhouse.Option) error
}

// cells is the condition selecting table's published cells of site in r:
// those of the coarsest grain that tiles r and has cells there (a month
// reads its month cells, whole weeks their week cells, anything else daily
// cells), one grain only, other rows excluded. Sums over these cells are
// sums over cells published together, never over a mix of grains.
func (s *store) cells(table, site string, r Range) string {
	return s.cellsAndOther(table, site, r) + " AND other = 0"
}

// cellsAndOther is cells with the other rows: where totals must add up.
func (s *store) cellsAndOther(table, site string, r Range) string {
	return "site = " + clickhouse.Quote(site) + " AND " + r.span() + " AND toUInt8(grain) = (SELECT max(toUInt8(grain)) FROM " + s.db + "." + table +
		" WHERE " + tiling(site, r) + ")"
}

// tiling selects site's cells in r of every grain whose buckets tile r.
func tiling(site string, r Range) string {
	return "site = " + clickhouse.Quote(site) + " AND " + r.span() + " AND grain IN (" + strings.Join(r.grains(), ", ") + ")"
}

// grainOf names the grain cells reads for table, site and r ("" when no
// cell of any grain that tiles r is published), for the charts to say.
//
// Answers are kept for cacheTTL (per table, site and range) when the store
// has a cache: pages ask once per chart, and a grain appears only when a
// publication run adds one.
func (s *store) grainOf(ctx context.Context, table, site string, r Range) (string, error) {
	fetch := func() (string, error) {
		var g string
		err := s.q.Select(ctx, "SELECT toString(grain) FROM "+s.db+"."+table+" WHERE "+tiling(site, r)+" ORDER BY toUInt8(grain) DESC LIMIT 1", func(b *proto.Block) error {
			if b.Rows() > 0 {
				g = clickhouse.Get[string](b, 0, 0)
			}
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("%s grain: %w", table, err)
		}
		return g, nil
	}
	if s.grains == nil {
		return fetch()
	}
	return s.grains.get(table+"\x00"+site+"\x00"+r.From.Format(time.DateOnly)+r.To.Format(time.DateOnly), false, fetch)
}

// cellsOf is cells with the grain already known (from grainOf): the
// query then reads that grain's rows only.
func cellsOf(site string, r Range, grain string) string {
	return "site = " + clickhouse.Quote(site) + " AND " + r.span() + " AND grain = " + clickhouse.Quote(grain) + " AND other = 0"
}

// grainNote says which cells a chart sums.
func grainNote(g string) string {
	switch g {
	case "":
		return "Nothing published for this period at any grain that covers it exactly: try a whole week or month."
	case "day":
		return "Sums of published daily cells."
	}
	return "Published " + g + " cells (whole " + g + "s, where rarer keys reach the threshold)."
}

// store reads published rollups. Every number it returns is a sum of
// published (k-anonymous, noised) cells of one grain, the coarsest whose
// buckets tile the period (days, ISO weeks or months), never a mix;
// nothing else exists to read.
type store struct {
	q  Querier
	db string
	// grains, noise and firstDays cache grainOf's, releaseSigmas' and
	// firstDay's answers; nil: no cache (reports).
	grains    *cache[string]
	noise     *cache[map[time.Time]map[string]float64]
	firstDays *cache[time.Time]
}

// downloads are the newest n downloads: when, who, role, what.
func (s *store) downloads(ctx context.Context, n int) ([][]string, error) {
	rows, _, err := s.rows(ctx, "SELECT toString(at), user, role, what FROM "+s.db+".downloads ORDER BY at DESC LIMIT "+clickhouse.QuoteInt(n))
	if err != nil {
		return nil, fmt.Errorf("downloads: %w", err)
	}
	return rows, nil
}

// firstDay is the first day with a published cell of site (zero when
// none), from the publisher's run log.
func (s *store) firstDay(ctx context.Context, site string) (time.Time, error) {
	fetch := func() (time.Time, error) {
		var t time.Time
		err := s.q.Select(ctx, "SELECT min(bucket), count() FROM "+s.db+".rollup_runs WHERE state = 'published' AND site = "+clickhouse.Quote(site), func(b *proto.Block) error {
			if b.Rows() > 0 && clickhouse.Get[uint64](b, 1, 0) > 0 {
				t = clickhouse.Get[time.Time](b, 0, 0).UTC()
			}
			return nil
		})
		if err != nil {
			return t, fmt.Errorf("first published day: %w", err)
		}
		return t, nil
	}
	if s.firstDays == nil {
		return fetch()
	}
	return s.firstDays.get(site, false, fetch) // every page asks
}

// sites lists the sites with published data.
func (s *store) sites(ctx context.Context) ([]string, error) {
	var out []string
	err := s.q.Select(ctx, "SELECT DISTINCT site FROM "+s.db+".rollup_runs ORDER BY site", func(b *proto.Block) error {
		for i := 0; i < b.Rows(); i++ {
			out = append(out, clickhouse.Get[string](b, 0, i))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sites: %w", err)
	}
	return out, nil
}

// rows runs a dataset's query; every value comes back as text (for tables
// and CSV) and as a number where it is one (for charts; NaN where not).
func (s *store) rows(ctx context.Context, q string) ([][]string, [][]float64, error) {
	var text [][]string
	var nums [][]float64
	err := s.q.Select(ctx, q, func(b *proto.Block) error {
		for i := 0; i < b.Rows(); i++ {
			t := make([]string, len(b.Columns))
			n := make([]float64, len(b.Columns))
			for j, c := range b.Columns {
				switch v := c.Row(i, false).(type) {
				case string:
					t[j], n[j] = v, math.NaN()
				case uint64:
					t[j], n[j] = strconv.FormatUint(v, 10), float64(v)
				case uint8:
					t[j], n[j] = strconv.Itoa(int(v)), float64(v)
				case uint16:
					t[j], n[j] = strconv.Itoa(int(v)), float64(v)
				case uint32:
					t[j], n[j] = strconv.FormatUint(uint64(v), 10), float64(v)
				case int64:
					t[j], n[j] = strconv.FormatInt(v, 10), float64(v)
				case int32:
					t[j], n[j] = strconv.FormatInt(int64(v), 10), float64(v)
				case float64:
					t[j], n[j] = strconv.FormatFloat(v, 'f', 2, 64), v
				default:
					t[j], n[j] = fmt.Sprint(v), math.NaN()
				}
			}
			text, nums = append(text, t), append(nums, n)
		}
		return nil
	})
	return text, nums, err
}

// Coverage is how much of a period a table has published at the grain its
// pages read: Published of Want buckets (days, weeks or months). A bucket
// whose publication ran counts, whatever reached the threshold in it.
type Coverage struct {
	Grain           string
	Published, Want int
}

// Complete reports whether every bucket of the period is published.
func (c Coverage) Complete() bool { return c.Want > 0 && c.Published == c.Want }

// String says the coverage in words ("7 of 14 days published").
func (c Coverage) String() string {
	g := cmp.Or(c.Grain, "day")
	unit := g + "s"
	if c.Want == 1 {
		unit = g
	}
	return fmt.Sprintf("%d of %d %s published", c.Published, c.Want, unit)
}

// compareCoverage says whether two periods' figures of a table may be compared
// (both complete), and if not, why.
func compareCoverage(cur, prev Coverage) (bool, string) {
	switch {
	case !cur.Complete():
		return false, "not compared: this period has " + cur.String()
	case !prev.Complete():
		return false, "not compared: the previous period has " + prev.String()
	}
	return true, ""
}

// coverage is table's coverage of r for site, at the grain cells reads.
func (s *store) coverage(ctx context.Context, table, site string, r Range) (Coverage, error) {
	grain, err := s.grainOf(ctx, table, site, r)
	if err != nil {
		return Coverage{}, err
	}
	c := Coverage{Grain: cmp.Or(grain, "day")}
	switch c.Grain {
	case "day":
		c.Want = r.Days()
	case "week":
		c.Want = r.Days() / 7
	case "month":
		c.Want = (r.To.Year()-r.From.Year())*12 + int(r.To.Month()) - int(r.From.Month())
	}
	if grain == "" {
		return c, nil
	}
	err = s.q.Select(ctx, "SELECT uniqExact(bucket) FROM "+s.db+".rollup_runs WHERE table_name = "+clickhouse.Quote(table)+" AND site = "+clickhouse.Quote(site)+
		" AND grain = "+clickhouse.Quote(grain)+" AND state = 'published' AND "+r.span(), func(b *proto.Block) error {
		if b.Rows() > 0 {
			c.Published = int(clickhouse.Get[uint64](b, 0, 0))
		}
		return nil
	})
	if err != nil {
		return c, fmt.Errorf("%s coverage: %w", table, err)
	}
	return c, nil
}

// comparable says whether table's figures for r may be compared with the
// previous period's, and if not, why.
func (s *store) comparable(ctx context.Context, table, site string, r Range) (bool, string, error) {
	cur, err := s.coverage(ctx, table, site, r)
	if err != nil {
		return false, "", err
	}
	prev, err := s.coverage(ctx, table, site, r.Previous())
	if err != nil {
		return false, "", err
	}
	ok, why := compareCoverage(cur, prev)
	return ok, why, nil
}
