// Package abtest compares layout variants from published, noised counts:
// a rate per variant with an interval that holds both the sampling error
// and the differential-privacy noise of every cell summed, and a verdict
// in words. It is pure arithmetic on published numbers (post-processing).
package abtest

import (
	"fmt"
	"math"
)

// z95 is the two-sided 95% normal quantile.
const z95 = 1.959963984540054

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
	return Estimate{Rate: p, SD: sd, Low: clamp01(p - z95*sd), High: clamp01(p + z95*sd)}, true
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
	// Diff is challenger − baseline in rate units, Low and High its 95%
	// interval.
	Diff, Low, High float64
	Kind            Kind
	// Text says it in a sentence, in percentage points.
	Text string
}

// Compare is challenger against baseline; ok is false when either has no
// trials.
func Compare(baseline, challenger Arm) (Verdict, bool) {
	b, okB := baseline.Estimate()
	c, okC := challenger.Estimate()
	if !okB || !okC {
		return Verdict{}, false
	}
	diff := c.Rate - b.Rate
	sd := math.Hypot(b.SD, c.SD)
	v := Verdict{Diff: diff, Low: diff - z95*sd, High: diff + z95*sd, Kind: Unclear}
	switch {
	case v.Low > 0:
		v.Kind = Better
		v.Text = fmt.Sprintf("%s beats %s by %.2f pp (95%%: %.2f to %.2f pp)", challenger.Name, baseline.Name, 100*diff, 100*v.Low, 100*v.High)
	case v.High < 0:
		v.Kind = Worse
		v.Text = fmt.Sprintf("%s trails %s by %.2f pp (95%%: %.2f to %.2f pp)", challenger.Name, baseline.Name, -100*diff, -100*v.High, -100*v.Low)
	default:
		v.Text = fmt.Sprintf("no clear difference between %s and %s (95%%: %+.2f to %+.2f pp)", challenger.Name, baseline.Name, 100*v.Low, 100*v.High)
	}
	return v, true
}

func clamp01(x float64) float64 { return min(max(x, 0), 1) }
