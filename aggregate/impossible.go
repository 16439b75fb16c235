package aggregate

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/herd-analytics/herd/internal/clickhouse"
)

// Impossible counts published rows no shop can have: fewer than k
// visitor-days, metrics the event model orders out of order (more adds than
// views, more clicks than impressions, more bounces than sessions, fewer
// sessions or searches than the visitor-days counted for them…), revenue
// without an order or purchase, and funnel steps that grow. Publication
// makes every cell consistent (docs/privacy.md), so any is a bug; herd
// audit and the utility benchmark count them. Findings name the check, never
// a value.
func (p *Publisher) Impossible(ctx context.Context) (int, []string, error) {
	pub := p.dbs.Pub
	checks := [][2]string{
		{"products: adds over views, purchases over adds, or revenue without purchases", "SELECT count() FROM " + pub + ".products WHERE adds > views OR purchases > adds OR (revenue > 0 AND purchases = 0)"},
		{"slots: clicks over impressions", "SELECT count() FROM " + pub + ".slots WHERE clicks > impressions"},
		{"positions: clicks over impressions", "SELECT count() FROM " + pub + ".positions WHERE clicks > impressions"},
		{"categories: clicks or adds over views", "SELECT count() FROM " + pub + ".categories WHERE clicks > views OR adds > views"},
		{"traffic: sessions over pageviews, bounces over sessions, or fewer sessions than visitor-days", "SELECT count() FROM " + pub + ".traffic WHERE sessions > pageviews OR bounces > sessions OR sessions < visitors"},
		{"searches: zero-result searches over searches, or fewer searches than visitor-days", "SELECT count() FROM " + pub + ".searches WHERE zero_results > searches OR searches < visitors"},
		{"experiments: buyers over visitor-days, or revenue without buyers", "SELECT count() FROM " + pub + ".experiments WHERE buyers > visitors OR (revenue > 0 AND buyers = 0)"},
		{"kpis: buyers over visitor-days or orders, fewer sessions than visitor-days, or revenue without orders", "SELECT count() FROM " + pub + ".kpis WHERE buyers > visitors OR buyers > orders OR sessions < visitors OR (revenue > 0 AND orders = 0)"},
		{"funnel segments: a step above the step before it", "SELECT count() FROM (SELECT groupArray((step, visitors)) AS s FROM (SELECT * FROM " + pub + ".funnel_segments WHERE other = 0 ORDER BY step)" +
			" GROUP BY site, grain, bucket, funnel, segment_kind, segment) WHERE arrayExists((x, i) -> i > 1 AND x.2 > s[i - 1].2, s, arrayEnumerate(s))"},
		{"funnels: a step above the step before it", "SELECT count() FROM (SELECT groupArray((step, visitors)) AS s FROM (SELECT * FROM " + pub + ".funnels WHERE other = 0 ORDER BY step)" +
			" GROUP BY site, grain, bucket, funnel, device) WHERE arrayExists((x, i) -> i > 1 AND x.2 > s[i - 1].2, s, arrayEnumerate(s))"},
	}
	for _, t := range p.tables {
		checks = append(checks, [2]string{t.Name + ": fewer than k visitor-days", "SELECT count() FROM " + pub + "." + t.Name + " WHERE visitors < " + clickhouse.QuoteInt(p.cfg.K)})
	}
	n := 0
	var findings []string
	for _, c := range checks {
		err := p.c.Select(ctx, c[1], func(b *proto.Block) error {
			if m := int(clickhouse.Get[uint64](b, 0, 0)); m > 0 {
				n += m
				findings = append(findings, fmt.Sprintf("%d rows: %s", m, c[0]))
			}
			return nil
		})
		if err != nil {
			return 0, nil, fmt.Errorf("impossible values: %w", err)
		}
	}
	return n, findings, nil
}
