// Package aggregate is the only reader of raw events: it publishes closed
// hourly and daily buckets into the rollup tables under the k floor, bounded
// contributions and differential privacy (docs/privacy.md), drops raw data past
// its retention, and audits that all of it holds.
package aggregate

import (
	"fmt"
	"time"
)

// MaxRawRetention is the policy's hard limit: no raw hour outlives it, even
// unpublished.
const MaxRawRetention = 7 * 24 * time.Hour

// Config holds the publication rules. The zero value of a field means its
// default.
type Config struct {
	// K is the floor on true distinct visitor-days per published cell
	// (default 10, at least 2). It is also the partition selection's
	// pre-threshold.
	K int
	// Epsilon is the ε budget per table per day (default 1); a table's
	// daily bucket and its hourly buckets share it.
	Epsilon float64
	// Delta is δ for partition selection (default 1e-6).
	Delta float64
	// HourlyShare is the part of Epsilon the hourly buckets spend (default
	// 0.2). A visitor-day counts in at most HoursPerVisitor hourly buckets
	// (its first active hours), so each hourly bucket gets
	// Epsilon × HourlyShare / HoursPerVisitor.
	HourlyShare float64
	// HoursPerVisitor bounds the hourly buckets one visitor-day counts in
	// (default 2).
	HoursPerVisitor int
	// HourlyHorizon: hourly buckets are published only while younger than
	// this (default 48h); imported history gets daily buckets only.
	HourlyHorizon time.Duration
	// Grace is how long after a bucket closes publication waits for
	// stragglers (default 5m).
	Grace time.Duration
	// RawRetention is how long raw hours are kept once published (default
	// 48h, at most MaxRawRetention).
	RawRetention time.Duration
	// SelectionShare and VisitorsShare are the parts of a bucket's ε spent
	// on partition selection and on the visitors count (defaults 0.25 and 0.3);
	// the rest is split among the table's metrics by weight.
	SelectionShare, VisitorsShare float64
}

// WithDefaults fills zero fields and validates the rest, naming the bad field.
func (c Config) WithDefaults() (Config, error) {
	if c.K == 0 {
		c.K = 10
	}
	if c.Epsilon == 0 {
		c.Epsilon = 1
	}
	if c.Delta == 0 {
		c.Delta = 1e-6
	}
	if c.HourlyShare == 0 {
		c.HourlyShare = 0.2
	}
	if c.HoursPerVisitor == 0 {
		c.HoursPerVisitor = 2
	}
	if c.HourlyHorizon == 0 {
		c.HourlyHorizon = 48 * time.Hour
	}
	if c.Grace == 0 {
		c.Grace = 5 * time.Minute
	}
	if c.RawRetention == 0 {
		c.RawRetention = 48 * time.Hour
	}
	if c.SelectionShare == 0 {
		c.SelectionShare = 0.25
	}
	if c.VisitorsShare == 0 {
		c.VisitorsShare = 0.3
	}
	switch {
	case c.K < 2:
		return c, fmt.Errorf("k = %d: must be at least 2", c.K)
	case c.Epsilon <= 0 || c.Epsilon > 20:
		return c, fmt.Errorf("epsilon = %g: must be in (0, 20]", c.Epsilon)
	case c.Delta <= 0 || c.Delta >= 1e-3:
		return c, fmt.Errorf("delta = %g: must be in (0, 1e-3)", c.Delta)
	case c.HourlyShare < 0 || c.HourlyShare >= 1:
		return c, fmt.Errorf("hourly share = %g: must be in [0, 1)", c.HourlyShare)
	case c.HoursPerVisitor < 1 || c.HoursPerVisitor > 24:
		return c, fmt.Errorf("hours per visitor = %d: must be 1 to 24", c.HoursPerVisitor)
	case c.RawRetention < time.Hour || c.RawRetention > MaxRawRetention:
		return c, fmt.Errorf("raw retention = %v: must be 1h to %v", c.RawRetention, MaxRawRetention)
	case c.Grace < 0 || c.Grace > 6*time.Hour:
		return c, fmt.Errorf("grace = %v: must be 0 to 6h", c.Grace)
	case c.SelectionShare <= 0 || c.VisitorsShare <= 0 || c.SelectionShare+c.VisitorsShare >= 1:
		return c, fmt.Errorf("selection share %g + visitors share %g: each positive, together under 1", c.SelectionShare, c.VisitorsShare)
	}
	return c, nil
}

// BucketEpsilon is the ε one bucket of grain g spends.
func (c Config) BucketEpsilon(g Grain) float64 {
	if g == Hour {
		return c.Epsilon * c.HourlyShare / float64(c.HoursPerVisitor)
	}
	return c.Epsilon * (1 - c.HourlyShare)
}

// Grain is a bucket's length.
type Grain uint8

// Grains, numbered as the Enum8 in the rollup tables.
const (
	Hour Grain = 1
	Day  Grain = 2
)

func (g Grain) String() string {
	if g == Hour {
		return "hour"
	}
	return "day"
}

// Duration of one bucket.
func (g Grain) Duration() time.Duration {
	if g == Hour {
		return time.Hour
	}
	return 24 * time.Hour
}

// Bucket is one site's closed interval [Start, Start+grain).
type Bucket struct {
	Site  string
	Grain Grain
	Start time.Time
}

// End of the bucket (exclusive).
func (b Bucket) End() time.Time { return b.Start.Add(b.Grain.Duration()) }

func (b Bucket) String() string {
	return fmt.Sprintf("%s/%s/%s", b.Site, b.Grain, b.Start.UTC().Format("2006-01-02T15"))
}
