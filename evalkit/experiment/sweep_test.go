package experiment

import (
	"errors"
	"math"
	"testing"

	"github.com/mmpoison/mmpoison/evalkit/metrics"
)

// fakeResult is a minimal result whose poisoned Hit@10 encodes the spec's rate.
func fakeResult(spec Spec) *Result {
	ev := &ModelEval{Attack: metrics.AttackResultFromRanks([]int{int(spec.Rate * 1000)}, nil),
		RandomQueries: metrics.AttackResultFromRanks([]int{5}, nil)}
	return &Result{Spec: spec, Clean: ev, Poisoned: ev}
}

// TestSweepResumes: a sweep interrupted by a failure keeps its finished results, and the next run computes only
// the missing ones.
func TestSweepResumes(t *testing.T) {
	dir := t.TempDir()
	specs := WithRates(QuickSpec(), 0.001, 0.005, 0.01, 0.02)
	var ran []float64
	fail := true
	sw := &Sweep{Dir: dir, run: func(s Spec, _ Options) (*Result, error) {
		if s.Rate == 0.01 && fail {
			return nil, errors.New("killed")
		}
		ran = append(ran, s.Rate)
		return fakeResult(s), nil
	}}
	if _, err := sw.Run(specs); err == nil {
		t.Fatal("the interrupted sweep reported no error")
	}
	fail = false
	var cachedFlags []bool
	sw.Progress = func(i, n int, s Spec, cached bool) { cachedFlags = append(cachedFlags, cached) }
	res, err := sw.Run(specs)
	if err != nil {
		t.Fatal(err)
	}
	if want := []float64{0.001, 0.005, 0.01, 0.02}; len(ran) != len(want) || ran[2] != 0.01 || ran[3] != 0.02 {
		t.Fatalf("runs = %v, want each rate computed once: %v", ran, want)
	}
	if len(cachedFlags) != 4 || !cachedFlags[0] || !cachedFlags[1] || cachedFlags[2] || cachedFlags[3] {
		t.Fatalf("cached flags = %v", cachedFlags)
	}
	for i, r := range res {
		if r.Spec.Rate != specs[i].Rate || r.Poisoned.Attack.MinRanks[0] != int(specs[i].Rate*1000) {
			t.Fatalf("result %d does not belong to its spec", i)
		}
	}
}

func TestSweepBuilders(t *testing.T) {
	base := QuickSpec()
	if got := GoalMatrix(base, []string{"a", "b", "c"}); len(got) != 6 || got[0].Source != "a" || got[0].Target != "b" {
		t.Fatalf("GoalMatrix = %d specs", len(got))
	}
	if got := WithSeeds(base, 1, 2, 3); len(got) != 3 || got[2].Seed != 3 || hash(got[0]) == hash(got[1]) {
		t.Fatal("WithSeeds specs are not distinct")
	}
	if got := WithEpochs(base, 1, 2); got[1].FinetuneEpochs != 2 {
		t.Fatal("WithEpochs")
	}
}

func TestSummarize(t *testing.T) {
	s := Summarize([]float64{1, 2, 3, 4}, 1)
	if s.N != 4 || s.Mean != 2.5 || math.Abs(s.Std-math.Sqrt(5.0/3)) > 1e-12 {
		t.Fatalf("Summarize = %+v", s)
	}
	if !(s.Lo >= 1 && s.Lo < s.Mean && s.Hi > s.Mean && s.Hi <= 4) {
		t.Fatalf("bootstrap interval [%v, %v] does not bracket the mean", s.Lo, s.Hi)
	}
	if one := Summarize([]float64{7}, 1); one.Mean != 7 || one.Std != 0 || one.Lo != 7 || one.Hi != 7 {
		t.Fatalf("single value: %+v", one)
	}
	if empty := Summarize(nil, 1); !math.IsNaN(empty.Mean) {
		t.Fatalf("empty: %+v", empty)
	}
}
