package dashboard

import (
	"context"
	"fmt"
	"sort"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/herd-analytics/herd/internal/abtest"
	"github.com/herd-analytics/herd/internal/clickhouse"
)

// SlotRow is a layout slot's published totals for one variant.
type SlotRow struct {
	PageType, Slot, Variant string
	Impressions, Clicks     float64
	Cells                   int
}

// slotRows sums the period's slot cells per page type, slot and variant.
func (s *store) slotRows(ctx context.Context, f filters) ([]SlotRow, error) {
	return typed(ctx, s, slotCellsDataset, f, func(r row) SlotRow {
		return SlotRow{PageType: r.str("page_type"), Slot: r.str("slot"), Variant: r.str("variant"), Impressions: r.num("impressions"), Clicks: r.num("clicks"), Cells: r.int("cells")}
	})
}

// variants lists the layout variants with published slot cells in the
// period.
func (s *store) variants(ctx context.Context, f filters) ([]string, error) {
	var out []string
	err := s.q.Select(ctx, "SELECT DISTINCT variant FROM "+s.db+".slots WHERE "+s.cells("slots", f.site, f.r)+" AND variant != '' ORDER BY variant", func(b *proto.Block) error {
		for i := 0; i < b.Rows(); i++ {
			out = append(out, clickhouse.Get[string](b, 0, i))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("variants: %w", err)
	}
	return out, nil
}

// ExperimentRow is one layout variant's published totals.
type ExperimentRow struct {
	Variant                   string
	Visitors, Buyers, Revenue float64
	Cells                     int
}

// arms are the variant's conversion (buyers per visitor-day) and revenue
// per visitor-day, with the noise of its cells, for internal/abtest.
func (r ExperimentRow) arms(noise map[string]float64) (abtest.Arm, abtest.Mean) {
	return abtest.Arm{Name: r.Variant, Trials: r.Visitors, Successes: r.Buyers, Cells: r.Cells, SigmaTrials: noise["visitors"], SigmaSuccesses: noise["buyers"]},
		abtest.Mean{Name: r.Variant, N: r.Visitors, Sum: r.Revenue, Cells: r.Cells, SigmaN: noise["visitors"], SigmaSum: noise["revenue"], Cap: experimentRevenueCap}
}

// experiments sums the period's experiment cells per variant, with the
// grain read and the noise of one cell of that grain.
func (s *store) experiments(ctx context.Context, f filters) ([]ExperimentRow, string, map[string]float64, error) {
	out, err := typed(ctx, s, experimentArmsDataset, f, func(r row) ExperimentRow {
		return ExperimentRow{Variant: r.str("variant"), Visitors: r.num("visitors"), Buyers: r.num("buyers"), Revenue: r.num("revenue"), Cells: r.int("cells")}
	})
	if err != nil {
		return nil, "", nil, err
	}
	grain, err := s.grainOf(ctx, "experiments", f.site, f.r)
	if err != nil {
		return nil, "", nil, err
	}
	noise, err := s.sigmas(ctx, "experiments", f.site, grain)
	return out, grain, noise, err
}

// experimentRevenueCap is what one visitor-day can add to a variant's
// revenue (aggregate/tables.go, the experiments release).
const experimentRevenueCap = 400

// variantArm is one layout variant's published totals on a page ("all
// slots") or one slot.
type variantArm struct {
	page, slot string
	arm        abtest.Arm
}

// variantArms groups the slot rows with a variant per page (all slots
// together, first) and per slot; within each, variants by name, so the
// first is the baseline.
func variantArms(rows []SlotRow, noise map[string]float64) []variantArm {
	type key struct{ page, slot string }
	arms := map[key]map[string]*abtest.Arm{}
	add := func(k key, r SlotRow) {
		if arms[k] == nil {
			arms[k] = map[string]*abtest.Arm{}
		}
		a := arms[k][r.Variant]
		if a == nil {
			a = &abtest.Arm{Name: r.Variant, SigmaTrials: noise["impressions"], SigmaSuccesses: noise["clicks"]}
			arms[k][r.Variant] = a
		}
		a.Trials += r.Impressions
		a.Successes += r.Clicks
		a.Cells += r.Cells
	}
	for _, r := range rows {
		if r.Variant == "" {
			continue
		}
		add(key{r.PageType, allSlots}, r)
		add(key{r.PageType, r.Slot}, r)
	}
	var out []variantArm
	for k, byName := range arms {
		for _, a := range byName {
			out = append(out, variantArm{k.page, k.slot, *a})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		switch {
		case a.page != b.page:
			return a.page < b.page
		case a.slot != b.slot:
			if (a.slot == allSlots) != (b.slot == allSlots) {
				return a.slot == allSlots
			}
			return a.slot < b.slot
		}
		return a.arm.Name < b.arm.Name
	})
	return out
}

// PositionRow is one list position's published totals.
type PositionRow struct {
	ListKind            string
	Position            int
	Impressions, Clicks float64
}

func (s *store) positions(ctx context.Context, f filters) ([]PositionRow, error) {
	return typed(ctx, s, listPositionsDataset, f, func(r row) PositionRow {
		return PositionRow{ListKind: r.str("list_kind"), Position: r.int("position"), Impressions: r.num("impressions"), Clicks: r.num("clicks")}
	})
}

const allSlots = "all slots"

// slotCellsDataset is the slots dataset (/api/v1/slots).
var slotCellsDataset = dataset{name: "slots", roles: []Role{UX, Manager, Admin}, params: []string{"variant"}, header: []string{"page_type", "slot", "variant", "impressions", "clicks", "cells"},
	query: func(s *store, f filters) string {
		return "SELECT page_type, slot, variant, sum(impressions), sum(clicks), count() FROM " + s.db + ".slots WHERE " + s.cells("slots", f.site, f.r) + f.variantCells() +
			" GROUP BY page_type, slot, variant ORDER BY page_type, slot, variant"
	}}

// experimentArmsDataset is the experiments dataset (/api/v1/experiments).
var experimentArmsDataset = dataset{name: "experiments", roles: []Role{UX, Manager, Admin}, params: []string{"variant"}, header: []string{"variant", "visitors", "buyers", "revenue", "cells"},
	query: func(s *store, f filters) string {
		return "SELECT variant, sum(visitors), sum(buyers), sum(revenue), count() FROM " + s.db + ".experiments WHERE " + s.cells("experiments", f.site, f.r) + f.variantCells() +
			" GROUP BY variant ORDER BY variant"
	}}

// listPositionsDataset is the positions dataset (/api/v1/positions).
var listPositionsDataset = dataset{name: "positions", roles: []Role{UX, Manager, Admin}, header: []string{"list_kind", "position", "impressions", "clicks"},
	query: func(s *store, f filters) string {
		return "SELECT list_kind, position, sum(impressions), sum(clicks) FROM " + s.db + ".positions WHERE " + s.cells("positions", f.site, f.r) +
			" GROUP BY list_kind, position ORDER BY list_kind, position"
	}}
