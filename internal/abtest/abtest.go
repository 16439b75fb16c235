// Package abtest compares layout variants from published, noised counts:
// a rate per variant with an interval that holds both the sampling error
// and the differential-privacy noise of every cell summed, and a verdict
// in words. It is pure arithmetic on published numbers (post-processing).
package abtest

import (
	"fmt"
	"math"
)

// Z95 is the two-sided 95% normal quantile (the dashboard's noise intervals
// use it too).
const Z95 = 1.959963984540054

// Arm is one variant's published totals: trials (impressions) and
// successes (clicks) summed over Cells published cells, each noised with
// Gaussian σ SigmaTrials and SigmaSuccesses.
type Arm struct {
	Name                        string
	Trials, Successes           float64
	Cells                       int
	SigmaTrials, SigmaSuccesses float64
}

// Estimate is a rate with its 95% interval, all within [0, 1].
type Estimate struct {
	Rate, Low, High float64
	// SD is the rate's standard error (sampling and noise).
	SD float64
}

// Estimate is the arm's rate successes ÷ trials. By the delta method its
// variance is (Var S + p² Var T) / T², where Var S is the binomial
// sampling variance T·p(1−p) plus the noise of every cell summed, and
// Var T the trials' noise. ok is false when the arm has no trials.
func (a Arm) Estimate() (Estimate, bool) {
	if a.Trials <= 0 {
		return Estimate{}, false
	}
	p := clamp01(a.Successes / a.Trials)
	cells := float64(max(a.Cells, 1))
	varS := a.Trials*p*(1-p) + cells*a.SigmaSuccesses*a.SigmaSuccesses
	varT := cells * a.SigmaTrials * a.SigmaTrials
	sd := math.Sqrt(varS+p*p*varT) / a.Trials
	return Estimate{Rate: p, SD: sd, Low: clamp01(p - Z95*sd), High: clamp01(p + Z95*sd)}, true
}

// Kind is a comparison's outcome.
type Kind string

// The outcomes: the challenger's rate is higher, lower, or not
// distinguishable from the baseline's at 95%.
const (
	Better  Kind = "better"
	Worse   Kind = "worse"
	Unclear Kind = "unclear"
)

// Verdict compares a challenger with a baseline.
type Verdict struct {
	// Diff is challenger − baseline, Low and High its 95% interval.
	Diff, Low, High float64
	Kind            Kind
}

// Compare is challenger against baseline; ok is false when either has no
// trials.
func Compare(baseline, challenger Arm) (Verdict, bool) {
	b, okB := baseline.Estimate()
	c, okC := challenger.Estimate()
	if !okB || !okC {
		return Verdict{}, false
	}
	return compare(b, c), true
}

func compare(b, c Estimate) Verdict {
	diff := c.Rate - b.Rate
	sd := math.Hypot(b.SD, c.SD)
	v := Verdict{Diff: diff, Low: diff - Z95*sd, High: diff + Z95*sd, Kind: Unclear}
	switch {
	case v.Low > 0:
		v.Kind = Better
	case v.High < 0:
		v.Kind = Worse
	}
	return v
}

// Words says the verdict in a sentence; amount writes a difference
// ("1.20 pp", "€0.42").
func (v Verdict) Words(challenger, baseline string, amount func(float64) string) string {
	switch v.Kind {
	case Better:
		return fmt.Sprintf("%s beats %s by %s (95%%: %s to %s)", challenger, baseline, amount(v.Diff), amount(v.Low), amount(v.High))
	case Worse:
		return fmt.Sprintf("%s trails %s by %s (95%%: %s to %s)", challenger, baseline, amount(-v.Diff), amount(-v.High), amount(-v.Low))
	}
	return fmt.Sprintf("no clear difference between %s and %s (95%%: %s to %s)", challenger, baseline, amount(v.Low), amount(v.High))
}

// Mean is one variant's published total of an amount (revenue) over its
// published visitor-days, each visitor-day contributing between 0 and Cap;
// both summed over Cells cells noised with σ SigmaN and SigmaSum.
type Mean struct {
	Name             string
	N, Sum           float64
	Cells            int
	SigmaN, SigmaSum float64
	Cap              float64
}

// Estimate is the amount per visitor-day (Rate holds it) with its 95%
// interval within [0, Cap]. The sampling variance of one visitor-day's
// amount is at most (Cap − μ)·μ (Bhatia–Davis: bounded in [0, Cap] with
// mean μ), so the interval is conservative; the noise of every cell is
// added as for Arm.
func (m Mean) Estimate() (Estimate, bool) {
	if m.N <= 0 || m.Cap <= 0 {
		return Estimate{}, false
	}
	mu := min(max(m.Sum/m.N, 0), m.Cap)
	cells := float64(max(m.Cells, 1))
	varS := m.N*(m.Cap-mu)*mu + cells*m.SigmaSum*m.SigmaSum
	varN := cells * m.SigmaN * m.SigmaN
	sd := math.Sqrt(varS+mu*mu*varN) / m.N
	return Estimate{Rate: mu, SD: sd, Low: max(mu-Z95*sd, 0), High: min(mu+Z95*sd, m.Cap)}, true
}

// CompareMeans is challenger against baseline per visitor-day.
func CompareMeans(baseline, challenger Mean) (Verdict, bool) {
	b, okB := baseline.Estimate()
	c, okC := challenger.Estimate()
	if !okB || !okC {
		return Verdict{}, false
	}
	return compare(b, c), true
}

func clamp01(x float64) float64 { return min(max(x, 0), 1) }
