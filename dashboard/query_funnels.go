package dashboard

import (
	"context"

	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/privacy"
)

// FunnelCell is one funnel step's visitor-days on one device ("other":
// the devices below the threshold).
type FunnelCell struct {
	Funnel, Device string
	Step           int
	Visitors       float64
}

func (s *store) funnelCells(ctx context.Context, f filters) ([]FunnelCell, error) {
	return typed(ctx, s, funnelStepsDataset, f, func(r row) FunnelCell {
		return FunnelCell{Funnel: r.str("funnel"), Step: r.int("step"), Device: r.str("device"), Visitors: r.num("visitors")}
	})
}

// SegmentCell is one funnel step's visitor-days in one segment (a layout
// variant or a traffic source), summed over Cells cells.
type SegmentCell struct {
	Funnel, Kind, Segment string
	Step                  int
	Visitors              float64
	Cells                 int
}

func (s *store) segmentCells(ctx context.Context, f filters) ([]SegmentCell, error) {
	return typed(ctx, s, funnelSegmentsDataset, f, func(r row) SegmentCell {
		return SegmentCell{Funnel: r.str("funnel"), Step: r.int("step"), Kind: r.str("segment_kind"), Segment: r.str("segment"), Visitors: r.num("visitors"), Cells: r.int("cells")}
	})
}

// funnelCounts are the period's funnel cells as funnel → step → device →
// visitor-days; with a segment chosen (a layout variant or a traffic
// source), that segment's cells, under the segment's name.
func (s *store) funnelCounts(ctx context.Context, f filters) (map[string]map[int]map[string]float64, error) {
	var cells []FunnelCell
	if _, value, ok := f.segment(); ok {
		segs, err := s.segmentCells(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, c := range segs {
			cells = append(cells, FunnelCell{Funnel: c.Funnel, Step: c.Step, Device: value, Visitors: c.Visitors})
		}
	} else {
		var err error
		if cells, err = s.funnelCells(ctx, f); err != nil {
			return nil, err
		}
	}
	out := map[string]map[int]map[string]float64{}
	for _, c := range cells {
		if out[c.Funnel] == nil {
			out[c.Funnel] = map[int]map[string]float64{}
		}
		if out[c.Funnel][c.Step] == nil {
			out[c.Funnel][c.Step] = map[string]float64{}
		}
		out[c.Funnel][c.Step][c.Device] = c.Visitors
	}
	return out, nil
}

// stepTotals is a funnel's visitor-days per step: its devices and its other
// row, made non-increasing (post-processing). ok[i] is false from the first
// step with nothing published on.
func stepTotals(m map[int]map[string]float64, steps int) ([]float64, []bool) {
	totals, ok := make([]float64, steps), make([]bool, steps)
	n := 0
	for n < steps && len(m[n+1]) > 0 {
		totals[n], ok[n] = sumDevices(m[n+1]), true
		n++
	}
	privacy.NonIncreasing(totals[:n])
	return totals, ok
}

func sumDevices(m map[string]float64) float64 {
	var s float64
	for _, v := range m {
		s += v
	}
	return s
}

// funnelStepsDataset is the funnels dataset (/api/v1/funnels).
var funnelStepsDataset = dataset{name: "funnels", roles: []Role{UX, Manager, Admin}, params: []string{"device"}, header: []string{"funnel", "step", "device", "visitors"},
	query: func(s *store, f filters) string {
		// Other rows hold the devices below the threshold, so that a
		// step's devices add up to the step.
		return "SELECT funnel, step, if(other = 1, 'other', device) AS dev, sum(visitors) FROM " + s.db + ".funnels WHERE " + s.cellsAndOther("funnels", f.site, f.r) + f.deviceCells() +
			" GROUP BY funnel, step, dev ORDER BY funnel, step, dev"
	}}

// funnelSegmentsDataset is the funnel_segments dataset (/api/v1/funnel_segments).
var funnelSegmentsDataset = dataset{name: "funnel_segments", roles: []Role{UX, Manager, Admin}, params: []string{"variant", "source"}, header: []string{"funnel", "step", "segment_kind", "segment", "visitors", "cells"},
	query: func(s *store, f filters) string {
		narrow := ""
		if kind, value, ok := f.segment(); ok {
			narrow = " AND segment_kind = " + clickhouse.Quote(kind) + " AND segment = " + clickhouse.Quote(value)
		}
		return "SELECT funnel, step, segment_kind, segment, sum(visitors), count() FROM " + s.db + ".funnel_segments WHERE " + s.cells("funnel_segments", f.site, f.r) + narrow +
			" GROUP BY funnel, step, segment_kind, segment ORDER BY funnel, segment_kind, segment, step"
	}}
