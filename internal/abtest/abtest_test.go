package abtest

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
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

func pp(x float64) string { return strconv.FormatFloat(100*x, 'f', 2, 64) + " pp" }

func TestVerdicts(t *testing.T) {
	a := Arm{Name: "A", Trials: 50000, Successes: 2500, Cells: 8, SigmaTrials: 20, SigmaSuccesses: 15}
	b := a
	b.Name, b.Successes = "B", 3000
	v, ok := Compare(a, b)
	if !ok || v.Kind != Better || v.Low <= 0 || math.Abs(v.Diff-0.01) > 1e-12 {
		t.Errorf("B at 6%% against A at 5%%: %+v", v)
	}
	if w := v.Words("B", "A", pp); !strings.HasPrefix(w, "B beats A by 1.00 pp (95%: ") {
		t.Errorf("words: %q", w)
	}
	if w, _ := Compare(b, a); w.Kind != Worse || w.High >= 0 || !strings.HasPrefix(w.Words("A", "B", pp), "A trails B by 1.00 pp") {
		t.Errorf("A against B: %+v", w)
	}
	c := a
	c.Name, c.Successes = "C", 2510
	if u, _ := Compare(a, c); u.Kind != Unclear || u.Low >= 0 || u.High <= 0 || !strings.HasPrefix(u.Words("C", "A", pp), "no clear difference") {
		t.Errorf("C at 5.02%% against A at 5%%: %+v", u)
	}
	if _, ok := Compare(a, Arm{Name: "D"}); ok {
		t.Error("compared with an arm without trials")
	}
}

func TestMeans(t *testing.T) {
	// 10,000 visitor-days spending €4 each on average, capped at €400.
	a := Mean{Name: "A", N: 10000, Sum: 40000, Cells: 4, SigmaN: 30, SigmaSum: 2000, Cap: 400}
	e, ok := a.Estimate()
	if !ok || math.Abs(e.Rate-4) > 1e-12 {
		t.Fatalf("estimate %+v", e)
	}
	// The sampling part by hand: (400 − 4)·4 per visitor-day.
	want := math.Sqrt(10000*396*4+4*2000*2000+16*4*900) / 10000
	if math.Abs(e.SD-want) > 1e-12 || e.Low < 0 || e.High > 400 {
		t.Errorf("sd %v, want %v; interval %v–%v", e.SD, want, e.Low, e.High)
	}
	b := a
	b.Name, b.Sum = "B", 60000 // €6 per visitor-day
	if v, ok := CompareMeans(a, b); !ok || v.Kind != Better || math.Abs(v.Diff-2) > 1e-12 {
		t.Errorf("€6 against €4: %+v", v)
	}
	c := a
	c.Name, c.Sum = "C", 40500
	if v, _ := CompareMeans(a, c); v.Kind != Unclear {
		t.Errorf("€4.05 against €4: %+v", v)
	}
	if _, ok := (Mean{N: 10, Sum: 5}).Estimate(); ok {
		t.Error("a mean without a cap has an estimate")
	}
	// The bound holds whatever the amounts are: simulated visitor-days
	// spending 0 or the cap (the widest spread) stay inside the interval's
	// stated standard error on average.
	rng := rand.New(rand.NewPCG(3, 4))
	const n, runs = 2000, 300
	inside := 0
	for range runs {
		var sum float64
		for range n {
			if rng.Float64() < 0.01 {
				sum += 400
			}
		}
		if e, _ := (Mean{N: n, Sum: sum, Cap: 400}).Estimate(); e.Low <= 4 && 4 <= e.High {
			inside++
		}
	}
	if rate := float64(inside) / runs; rate < 0.92 {
		t.Errorf("the interval held the true mean in %.1f%% of runs", 100*rate)
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
