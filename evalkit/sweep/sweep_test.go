package sweep

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/metrics"
)

// fakeResult is a minimal result (the metrics ReadResult requires) whose poisoned MinRank encodes the spec's rate.
func fakeResult(spec experiment.Spec) *experiment.Result {
	recall := &metrics.RecallResult{Ks: metrics.RecallKs, ImageToText: []float64{0.1, 0.4, 0.6}, TextToImage: []float64{0.1, 0.4, 0.6}}
	ev := &experiment.ModelEval{Attack: metrics.AttackResultFromRanks([]int{int(spec.Attack.Rate * 1000)}, nil),
		RandomQueries: metrics.AttackResultFromRanks([]int{5}, nil), Utility: recall, UtilityOthers: recall}
	return &experiment.Result{Spec: spec, Clean: ev, Poisoned: ev}
}

// TestSweepResumes: a sweep interrupted by a failure keeps its finished results, and the next run computes only
// the missing ones.
func TestSweepResumes(t *testing.T) {
	dir := t.TempDir()
	specs := WithRates(experiment.QuickSpec(), 0.001, 0.005, 0.01, 0.02)
	var ran []float64
	fail := true
	sw := &Sweep{Dir: dir, run: func(s experiment.Spec, _ experiment.Options) (*experiment.Result, error) {
		if s.Attack.Rate == 0.01 && fail {
			return nil, errors.New("killed")
		}
		ran = append(ran, s.Attack.Rate)
		return fakeResult(s), nil
	}}
	if _, err := sw.Run(specs); err == nil {
		t.Fatal("the interrupted sweep reported no error")
	}
	fail = false
	var cachedFlags []bool
	sw.Progress = func(i, n int, s experiment.Spec, cached bool) { cachedFlags = append(cachedFlags, cached) }
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
		if r.Spec.Attack.Rate != specs[i].Attack.Rate || r.Poisoned.Attack.MinRanks[0] != int(specs[i].Attack.Rate*1000) {
			t.Fatalf("result %d does not belong to its spec", i)
		}
	}
	// The results are cache entries under the versioned root.
	if entries, _ := filepath.Glob(filepath.Join(dir, "v*", "result-*", "result.json")); len(entries) != 4 {
		t.Errorf("%d result entries, want 4", len(entries))
	}
}

// A damaged result entry is recomputed, not read.
func TestSweepRecomputesDamagedResult(t *testing.T) {
	dir := t.TempDir()
	runs := 0
	sw := &Sweep{Dir: dir, run: func(s experiment.Spec, _ experiment.Options) (*experiment.Result, error) {
		runs++
		return fakeResult(s), nil
	}}
	specs := WithRates(experiment.QuickSpec(), 0.005)
	if _, err := sw.Run(specs); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "v*", "result-*", "result.json"))
	if len(files) != 1 {
		t.Fatalf("%d result files", len(files))
	}
	if err := os.WriteFile(files[0], []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := sw.Run(specs)
	if err != nil || runs != 2 || res[0].Poisoned.Attack.MinRanks[0] != 5 {
		t.Fatalf("after damage: %d runs, %v", runs, err)
	}
}

func TestSweepRejectsBadSpecsFirst(t *testing.T) {
	bad := experiment.QuickSpec()
	bad.Attack.Rate = 2
	sw := &Sweep{Dir: t.TempDir(), run: func(experiment.Spec, experiment.Options) (*experiment.Result, error) {
		t.Fatal("a spec ran before every spec was validated")
		return nil, nil
	}}
	if _, err := sw.Run([]experiment.Spec{experiment.QuickSpec(), bad}); err == nil || !strings.Contains(err.Error(), "sweep spec 1") {
		t.Errorf("error %v", err)
	}
}

func TestSweepBuilders(t *testing.T) {
	base := experiment.QuickSpec()
	if got := GoalMatrix(base, []string{"a", "b", "c"}); len(got) != 6 || got[0].Attack.Source() != "a" || got[0].Attack.Target() != "b" || len(got[5].Attack.Goals) != 1 {
		t.Fatalf("GoalMatrix = %d specs", len(got))
	}
	got := WithSeeds(base, 1, 2, 3)
	k0, _ := Key(got[0])
	k1, _ := Key(got[1])
	if len(got) != 3 || got[2].Seed != 3 || k0.Hash == k1.Hash {
		t.Fatal("WithSeeds specs are not distinct")
	}
	if got := WithEpochs(base, 1, 2); got[1].Finetune.Epochs != 2 || got[0].Finetune.Epochs != 1 {
		t.Fatal("WithEpochs")
	}
	if got := WithRates(base, 0.1, 0.2); got[1].Attack.Rate != 0.2 || base.Attack.Rate != 0.01 {
		t.Fatal("WithRates")
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

func TestCurveOf(t *testing.T) {
	pts := CurveOf([]float64{2, 1, 2, 1}, []float64{0.5, 0.1, 0.7, 0.3})
	if len(pts) != 2 || pts[0].X != 1 || pts[1].X != 2 || pts[0].N != 2 {
		t.Fatalf("points %+v", pts)
	}
	if d := pts[1].Mean - 0.6; d > 1e-12 || d < -1e-12 {
		t.Errorf("mean at x=2 is %v, want 0.6", pts[1].Mean)
	}
}

// One run is one number and says so; statistics appear with two runs or more.
func TestSummaryText(t *testing.T) {
	for _, tc := range []struct {
		values         []float64
		text, ci, note string
		spreadIsNaN    bool
	}{
		{nil, "–", "–", "no runs.", true},
		{[]float64{0.768}, "0.768", "0.768", "1 seed: single values, no spread (statistics need 2 or more seeds).", true},
		{[]float64{1, 2, 3, 4}, "2.500 ± 1.291", "2.500 ± 1.291 [", "4 seeds: mean ± standard deviation [95% bootstrap interval of the mean].", false},
	} {
		s := Summarize(tc.values, 1)
		if got := s.Text("%.3f"); got != tc.text {
			t.Errorf("%v: Text %q, want %q", tc.values, got, tc.text)
		}
		if got := s.TextCI("%.3f"); !strings.HasPrefix(got, tc.ci) || (len(tc.values) == 1 && strings.Contains(got, "±")) {
			t.Errorf("%v: TextCI %q, want %q…", tc.values, got, tc.ci)
		}
		if got := SeedsNote(len(tc.values), true); got != tc.note {
			t.Errorf("%v: note %q, want %q", tc.values, got, tc.note)
		}
		if math.IsNaN(s.Spread()) != tc.spreadIsNaN {
			t.Errorf("%v: spread %v", tc.values, s.Spread())
		}
	}
}
