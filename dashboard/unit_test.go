package dashboard

import (
	"slices"
	"testing"
	"time"

	"golang.org/x/text/language"
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

// TestNoisyFigures: a figure is printed as published only when its 95%
// noise interval is within half of it.
func TestNoisyFigures(t *testing.T) {
	num := newNumbers(language.English, "EUR")
	for _, c := range []struct {
		x, sigma float64
		want     string
	}{
		{1000, 10, "1,000"},                 // ± 19.6
		{100, 25, "100"},                    // ± 49: within half
		{100, 30, "≈ 41–159"},               // ± 58.8
		{40, 30, "too few to tell (< 99)"},  // ± 58.8 reaches 0
		{24702, 0, "24,702"},                // σ unknown: as published
		{83, 60, "too few to tell (< 201)"}, // the €83 bag of the issue, in count form
	} {
		if got := num.Noisy(c.x, c.sigma, num.Count); got != c.want {
			t.Errorf("Noisy(%v, σ %v) = %q, want %q", c.x, c.sigma, got, c.want)
		}
	}
	if got := num.Noisy(700, 200, num.Money); got != "≈ €308.01–€1,091.99" {
		t.Errorf("money: %q", got)
	}
}
