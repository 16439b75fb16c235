// Package aggregate is the only reader of raw events: it publishes closed
// daily, ISO-week and calendar-month buckets into the rollup tables under the
// k floor, bounded contributions and one differential-privacy budget per
// visitor-day (docs/privacy.md), drops raw data past its retention, and keeps
// the per-day partial sums week and month cells are built from.
package aggregate

import (
	"fmt"
	"time"
)

// MaxRawRetention is the policy's hard limit: no raw hour outlives it, even
// unpublished.
const MaxRawRetention = 7 * 24 * time.Hour

// MaxPartialRetention is how long a day's partial sums may wait for its week
// and month to be published: a month's last day plus the grace, with room for
// an outage. Nothing outlives it.
const MaxPartialRetention = 40 * 24 * time.Hour

// Config holds the publication rules. The zero value of a field means its
// default.
type Config struct {
	// K is the floor on true distinct visitor-days per published cell
	// (default 10, at least 2).
	K int
	// Epsilon and Delta are the total (ε, δ) one visitor-day may spend
	// across every table and grain (defaults 4 and 1e-6). The accountant
	// (Budget) turns them into zCDP ρ for the Gaussian noise and a
	// threshold δ for the k floor.
	Epsilon, Delta float64
	// Grace is how long after a bucket closes publication waits for
	// stragglers (default 5m).
	Grace time.Duration
	// RawRetention is how long raw hours are kept once published (default
	// 48h, at most MaxRawRetention).
	RawRetention time.Duration
	// Catalog is the shop's product catalog file (CSV: product_id, name,
	// category, price, optionally site), re-read when it changes; rows
	// without a site are CatalogSite's. Empty: product ids are a private
	// key space.
	Catalog, CatalogSite string
}

// WithDefaults fills zero fields and validates the rest, naming the bad field.
func (c Config) WithDefaults() (Config, error) {
	if c.K == 0 {
		c.K = 10
	}
	if c.Epsilon == 0 {
		c.Epsilon = 4
	}
	if c.Delta == 0 {
		c.Delta = 1e-6
	}
	if c.Grace == 0 {
		c.Grace = 5 * time.Minute
	}
	if c.RawRetention == 0 {
		c.RawRetention = 48 * time.Hour
	}
	switch {
	case c.K < 2:
		return c, fmt.Errorf("k = %d: must be at least 2", c.K)
	case c.Epsilon <= 0 || c.Epsilon > 20:
		return c, fmt.Errorf("epsilon = %g: must be in (0, 20]", c.Epsilon)
	case c.Delta <= 0 || c.Delta >= 1e-3:
		return c, fmt.Errorf("delta = %g: must be in (0, 1e-3)", c.Delta)
	case c.RawRetention < time.Hour || c.RawRetention > MaxRawRetention:
		return c, fmt.Errorf("raw retention = %v: must be 1h to %v", c.RawRetention, MaxRawRetention)
	case c.Grace < 0 || c.Grace > 6*time.Hour:
		return c, fmt.Errorf("grace = %v: must be 0 to 6h", c.Grace)
	}
	return c, nil
}

// Grain is a bucket's length.
type Grain uint8

// Grains, numbered as the Enum8 in the rollup tables. Hour is retired: it
// names rows published before week and month cells existed.
const (
	Hour  Grain = 1
	Day   Grain = 2
	Week  Grain = 3 // ISO week, Monday to Sunday (UTC)
	Month Grain = 4 // calendar month (UTC)
)

func (g Grain) String() string {
	switch g {
	case Hour:
		return "hour"
	case Week:
		return "week"
	case Month:
		return "month"
	}
	return "day"
}

// Start is the start of the grain's bucket holding t (UTC).
func (g Grain) Start(t time.Time) time.Time {
	t = t.UTC()
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	switch g {
	case Hour:
		return t.Truncate(time.Hour)
	case Week:
		return day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
	case Month:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return day
}

// Bucket is one site's closed interval [Start, End()).
type Bucket struct {
	Site  string
	Grain Grain
	Start time.Time
}

// End of the bucket (exclusive).
func (b Bucket) End() time.Time {
	switch b.Grain {
	case Hour:
		return b.Start.Add(time.Hour)
	case Week:
		return b.Start.AddDate(0, 0, 7)
	case Month:
		return b.Start.AddDate(0, 1, 0)
	}
	return b.Start.AddDate(0, 0, 1)
}

// Days are the UTC days the bucket covers.
func (b Bucket) Days() []time.Time {
	var out []time.Time
	for d := b.Start; d.Before(b.End()); d = d.AddDate(0, 0, 1) {
		out = append(out, d)
	}
	return out
}

func (b Bucket) String() string {
	return fmt.Sprintf("%s/%s/%s", b.Site, b.Grain, b.Start.UTC().Format(time.DateOnly))
}
