package dashboard

import (
	"slices"
	"testing"
	"time"
)

// TestPresetsEveryWeekday: on each day of two weeks that cross a month's
// end, each preset covers the days it names, ends before today, and tiles
// with the grains its days allow: the whole-week presets always with
// weeks, the whole-month ones always with months, the rolling ones with
// weeks only on a Monday (when their days happen to be whole weeks).
func TestPresetsEveryWeekday(t *testing.T) {
	start := time.Date(2026, 11, 23, 15, 4, 5, 0, time.UTC) // a Monday
	for i := range 14 {
		now := start.AddDate(0, 0, i)
		today := now.Truncate(24 * time.Hour)
		monday := now.Weekday() == time.Monday
		for _, c := range []struct {
			preset      string
			days        int // 0: whole months
			week, month bool
		}{
			{"week", 7, true, false},
			{"4w", 28, true, false},
			{"7d", 7, monday, false},
			{"28d", 28, monday, false},
			{"90d", 90, false, false},
			{"month", 0, false, true},
			{"3m", 0, false, true},
		} {
			r, err := presetRange(c.preset, now, "", "")
			if err != nil {
				t.Fatalf("%s on %s: %v", c.preset, now.Format("Mon 2 Jan"), err)
			}
			if r.To.After(today) || (c.days > 0 && r.Days() != c.days) {
				t.Errorf("%s on %s: %s to %s", c.preset, now.Format("Mon 2 Jan"), r.From.Format(time.DateOnly), r.To.Format(time.DateOnly))
			}
			g := r.grains()
			if slices.Contains(g, "'week'") != c.week || slices.Contains(g, "'month'") != c.month {
				t.Errorf("%s on %s tiles with %v, want week %v, month %v", c.preset, now.Format("Mon 2 Jan"), g, c.week, c.month)
			}
		}
	}
}
