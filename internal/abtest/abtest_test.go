package abtest

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestEstimateWithoutNoiseIsTheBinomialInterval(t *testing.T) {
	e, ok := Arm{Trials: 10000, Successes: 500, Cells: 4}.Estimate()
	if !ok {
		t.Fatal("no estimate")
	}
	want := math.Sqrt(0.05 * 0.95 / 10000)
	if math.Abs(e.Rate-0.05) > 1e-12 || math.Abs(e.SD-want) > 1e-12 {
		t.Errorf("rate %v sd %v, want 0.05 and %v", e.Rate, e.SD, want)
	}
	if e.Low >= e.Rate || e.High <= e.Rate {
		t.Errorf("interval %v–%v does not hold %v", e.Low, e.High, e.Rate)
	}
}

func TestNoiseWidensTheInterval(t *testing.T) {
	plain, _ := Arm{Trials: 2000, Successes: 100, Cells: 10}.Estimate()
	noisy, _ := Arm{Trials: 2000, Successes: 100, Cells: 10, SigmaTrials: 30, SigmaSuccesses: 20}.Estimate()
	if noisy.SD <= plain.SD {
		t.Errorf("noise did not widen: %v vs %v", noisy.SD, plain.SD)
	}
	// The noise part by hand: successes 10·20², trials 10·30² at p = 0.05.
	want := math.Sqrt(2000*0.05*0.95+10*400+0.05*0.05*10*900) / 2000
	if math.Abs(noisy.SD-want) > 1e-12 {
		t.Errorf("sd %v, want %v", noisy.SD, want)
	}
}

func TestRatesStayWithinZeroAndOne(t *testing.T) {
	for _, a := range []Arm{{Trials: 10, Successes: 14}, {Trials: 10, Successes: -3}, {Trials: 5, Successes: 5, SigmaSuccesses: 50}} {
		e, ok := a.Estimate()
		if !ok || e.Rate < 0 || e.Rate > 1 || e.Low < 0 || e.High > 1 || e.Low > e.High {
			t.Errorf("%+v: %+v", a, e)
		}
	}
	if _, ok := (Arm{Trials: 0, Successes: 3}).Estimate(); ok {
		t.Error("an arm without trials has an estimate")
	}
}

func TestVerdicts(t *testing.T) {
	a := Arm{Name: "A", Trials: 50000, Successes: 2500, Cells: 8, SigmaTrials: 20, SigmaSuccesses: 15}
	b := a
	b.Name, b.Successes = "B", 3000
	v, ok := Compare(a, b)
	if !ok || v.Kind != Better || v.Low <= 0 || math.Abs(v.Diff-0.01) > 1e-12 {
		t.Errorf("B at 6%% against A at 5%%: %+v", v)
	}
	if w, _ := Compare(b, a); w.Kind != Worse || w.High >= 0 {
		t.Errorf("A against B: %+v", w)
	}
	c := a
	c.Name, c.Successes = "C", 2510
	if u, _ := Compare(a, c); u.Kind != Unclear || u.Low >= 0 || u.High <= 0 || u.Text == "" {
		t.Errorf("C at 5.02%% against A at 5%%: %+v", u)
	}
	if _, ok := Compare(a, Arm{Name: "D"}); ok {
		t.Error("compared with an arm without trials")
	}
}

// Coverage: over many simulated experiments with no true difference and
// noised cells, the 95% interval of the difference holds 0 about 95% of
// the time; with a real difference it mostly says so.
func TestIntervalCoverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const cells, perCell, sigmaT, sigmaS = 7, 800, 12.0, 9.0
	arm := func(name string, p float64) Arm {
		a := Arm{Name: name, Cells: cells, SigmaTrials: sigmaT, SigmaSuccesses: sigmaS}
		for range cells {
			succ := 0
			for range perCell {
				if rng.Float64() < p {
					succ++
				}
			}
			a.Trials += perCell + rng.NormFloat64()*sigmaT
			a.Successes += float64(succ) + rng.NormFloat64()*sigmaS
		}
		return a
	}
	const runs = 400
	held, found := 0, 0
	for range runs {
		if v, _ := Compare(arm("A", 0.1), arm("B", 0.1)); v.Low <= 0 && v.High >= 0 {
			held++
		}
		if v, _ := Compare(arm("A", 0.1), arm("B", 0.14)); v.Kind == Better {
			found++
		}
	}
	if rate := float64(held) / runs; rate < 0.92 || rate > 0.985 {
		t.Errorf("interval held the true difference 0 in %.1f%% of runs, want about 95%%", 100*rate)
	}
	if rate := float64(found) / runs; rate < 0.8 {
		t.Errorf("a 4 pp lift was found in %.1f%% of runs", 100*rate)
	}
}
