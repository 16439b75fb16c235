package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/privacy"
)

// sigmas are the Gaussian σ of one published cell's metrics ("visitors"
// included) in table's newest published run of grain for site; empty when
// there is none.
func (s *store) sigmas(ctx context.Context, table, site, grain string) (map[string]float64, error) {
	if grain == "" {
		return map[string]float64{}, nil
	}
	var raw string
	err := s.q.Select(ctx, "SELECT params FROM "+s.db+".rollup_runs WHERE table_name = "+clickhouse.Quote(table)+" AND grain = "+clickhouse.Quote(grain)+
		" AND state = 'published' AND site = "+clickhouse.Quote(site)+" ORDER BY bucket DESC LIMIT 1", func(b *proto.Block) error {
		if b.Rows() > 0 {
			raw = clickhouse.Get[string](b, 0, 0)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s noise: %w", table, err)
	}
	return paramSigmas(raw), nil
}

// releaseSigmas are the σ of one published cell's values in each bucket of
// r table published at grain for site, from the bucket's own release.
// Answers are kept for cacheTTL like grainOf's (a release's parameters never
// change, new buckets come with a publication run) unless stale.
func (s *store) releaseSigmas(ctx context.Context, table, site, grain string, r Range, stale bool) (map[time.Time]map[string]float64, error) {
	fetch := func() (map[time.Time]map[string]float64, error) {
		out := map[time.Time]map[string]float64{}
		err := s.q.Select(ctx, "SELECT bucket, params FROM "+s.db+".rollup_runs WHERE table_name = "+clickhouse.Quote(table)+" AND grain = "+clickhouse.Quote(grain)+
			" AND state = 'published' AND site = "+clickhouse.Quote(site)+" AND "+r.span(),
			func(b *proto.Block) error {
				for i := 0; i < b.Rows(); i++ {
					out[clickhouse.Get[time.Time](b, 0, i).UTC()] = paramSigmas(clickhouse.Get[string](b, 1, i))
				}
				return nil
			})
		if err != nil {
			return nil, fmt.Errorf("%s noise: %w", table, err)
		}
		return out, nil
	}
	if s.noise == nil {
		return fetch()
	}
	return s.noise.get(table+"\x00"+site+"\x00"+grain+"\x00"+r.From.Format(time.DateOnly)+r.To.Format(time.DateOnly), stale, fetch)
}

// cellNoise is n cells whose values each carry sigma.
type cellNoise struct {
	n     float64
	sigma map[string]float64
}

// sumNoise is the σ of each value of a sum of cells (independent noises:
// the variances add); nil when no cell recorded any.
func sumNoise(cells []cellNoise) map[string]float64 {
	var out map[string]float64
	for _, c := range cells {
		if c.n == 0 {
			continue
		}
		for name, sigma := range c.sigma {
			if out == nil {
				out = map[string]float64{}
			}
			out[name] += c.n * sigma * sigma
		}
	}
	for name, v := range out {
		out[name] = math.Sqrt(v)
	}
	return out
}

// noiseClass is the buckets (as SQL literals) whose releases recorded the
// same σ.
type noiseClass struct {
	buckets []string
	sigma   map[string]float64
}

// noiseClasses groups the buckets of releaseSigmas by their σ, in time
// order.
func noiseClasses(noise map[time.Time]map[string]float64) []noiseClass {
	var out []noiseClass
	index := map[string]int{}
	for _, b := range slices.SortedFunc(maps.Keys(noise), time.Time.Compare) {
		key := fmt.Sprint(noise[b]) // fmt prints a map's keys sorted
		i, ok := index[key]
		if !ok {
			i = len(out)
			index[key] = i
			out = append(out, noiseClass{sigma: noise[b]})
		}
		out[i].buckets = append(out[i].buckets, "toDateTime("+clickhouse.QuoteInt(b.Unix())+")")
	}
	return out
}

// paramSigmas are the σ a release's recorded parameters give its published
// values ("visitors" included); empty when it recorded none.
func paramSigmas(raw string) map[string]float64 {
	out := map[string]float64{}
	var p privacy.Params
	if raw == "" || json.Unmarshal([]byte(raw), &p) != nil {
		return out
	}
	out["visitors"] = p.Visitors.Sigma
	for _, m := range p.Metrics {
		out[m.Name] = m.NoiseSigma()
	}
	return out
}
