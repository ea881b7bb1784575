package study

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/metrics"
	"github.com/mmpoison/mmpoison/evalkit/sweep"
	"github.com/mmpoison/mmpoison/poisoning/attack"
)

// studyResult builds a result whose goals have the given clean and poisoned minranks (one query per rank) and
// whose untargeted utility changes by utilDelta.
func studyResult(spec experiment.Spec, clean, pois [][]int, utilDelta float64) *experiment.Result {
	util := func(v float64) *metrics.RecallResult {
		return &metrics.RecallResult{Ks: metrics.RecallKs, ImageToText: []float64{v, v, v}, TextToImage: []float64{v, v, v}}
	}
	ev := func(ranks [][]int, u float64) *experiment.ModelEval {
		e := &experiment.ModelEval{UtilityOthers: util(u), Utility: util(u)}
		for _, r := range ranks {
			a := metrics.AttackResultFromRanks(r, nil)
			e.Goals = append(e.Goals, experiment.GoalEval{Attack: a, RandomQueries: metrics.AttackResultFromRanks([]int{40, 50}, nil)})
		}
		e.Attack, e.RandomQueries = e.Goals[0].Attack, e.Goals[0].RandomQueries
		return e
	}
	return &experiment.Result{Spec: spec, Clean: ev(clean, 0.6), Poisoned: ev(pois, 0.6+utilDelta),
		Poison: experiment.PoisonSummary{Rate: spec.Attack.Rate}}
}

func TestStudyGroups(t *testing.T) {
	st := Default()
	groups, names := st.Groups()
	want := []string{GroupAttackII, GroupAttackI, GroupAttackIII, GroupFrozenVisual, GroupFrozenText, GroupRates}
	if !slices.Equal(names, want) {
		t.Fatalf("groups %v, want %v", names, want)
	}
	if n := len(groups[GroupRates]); n != len(st.Seeds)*len(st.Rates) {
		t.Errorf("rate group has %d specs, want %d", n, len(st.Seeds)*len(st.Rates))
	}
	for _, name := range names {
		for _, s := range groups[name] {
			if err := s.Validate(); err != nil {
				t.Errorf("group %s: %v", name, err)
			}
		}
	}
	if g := groups[GroupAttackIII][0]; g.Attack.Kind != attack.KindMultiLabel || len(g.Attack.Goals) != 2 || !g.Attack.AllSourceCaptions {
		t.Errorf("attack III spec %+v", g.Attack)
	}
	if g := groups[GroupAttackI][0]; g.Attack.Kind != attack.KindSingleImage {
		t.Errorf("attack I spec %+v", g.Attack)
	}
	if f := groups[GroupFrozenText][0].Finetune.Freeze; !slices.Equal(f, []string{"text"}) {
		t.Errorf("frozen-text freezes %v", f)
	}
	// The rate group's φ = 1% runs are the Attack II runs: the same results, so a sweep computes them once.
	k1, _ := sweep.Key(groups[GroupRates][3])
	k2, _ := sweep.Key(groups[GroupAttackII][0])
	if k1.Hash != k2.Hash {
		t.Error("the rate sweep's 1% run differs from the Attack II run")
	}
	st.Only = []string{GroupFrozenVisual}
	if _, names := st.Groups(); !slices.Equal(names, []string{GroupFrozenVisual}) {
		t.Errorf("Only kept %v", names)
	}
}

func TestFindings(t *testing.T) {
	spec := experiment.DefaultSpec()
	high, low := []int{0, 1, 2, 3}, []int{60, 70, 80, 90}
	rateSpec := func(rate float64) experiment.Spec { s := spec; s.Attack.Rate = rate; return s }
	sr := &Result{Groups: map[string][]*experiment.Result{
		GroupAttackII: {studyResult(spec, [][]int{low}, [][]int{high}, 0.01), studyResult(spec, [][]int{low}, [][]int{high}, -0.02)},
		// Attack I: MinRank 75 → 1.5 (50×) in one seed, 75 → 30 (2.5×) in the other: F2 fails.
		GroupAttackI: {studyResult(spec, [][]int{low}, [][]int{high}, 0), studyResult(spec, [][]int{low}, [][]int{{20, 30, 30, 40}}, 0)},
		// Attack III: the second goal stays at chance: F3 fails.
		GroupAttackIII: {studyResult(spec, [][]int{low, low}, [][]int{high, low}, 0.07)},
		GroupRates: {studyResult(rateSpec(0.001), [][]int{low}, [][]int{low}, 0), studyResult(rateSpec(0.0025), [][]int{low}, [][]int{{5, 15, 20, 30}}, 0),
			studyResult(rateSpec(0.005), [][]int{low}, [][]int{{2, 5, 12, 30}}, 0), studyResult(rateSpec(0.01), [][]int{low}, [][]int{high}, 0)},
	}}
	got := map[string]Finding{}
	for _, f := range sr.Findings() {
		got[f.ID] = f
	}
	for id, holds := range map[string]bool{"F1": true, "F2": false, "F3": false, "F4": false, "F6": true} {
		f, ok := got[id]
		if !ok {
			t.Errorf("%s missing", id)
			continue
		}
		if f.Holds != holds {
			t.Errorf("%s holds = %v, want %v: %+v", id, f.Holds, holds, f)
		}
	}
	if _, ok := got["F5"]; ok {
		t.Error("F5 reported without frozen-tower runs")
	}
	if !strings.Contains(got["F4"].Measured, "0.070") {
		t.Errorf("F4 should name the largest change 0.070: %s", got["F4"].Measured)
	}
	// A rate curve that falls by more than a standard deviation breaks F6.
	sr.Groups[GroupRates][3] = studyResult(rateSpec(0.01), [][]int{low}, [][]int{low}, 0)
	for _, f := range sr.Findings() {
		if f.ID == "F6" && f.Holds {
			t.Errorf("F6 holds for a falling curve: %s", f.Measured)
		}
	}
	// Frozen towers: F5 holds only when both variants gain.
	sr.Groups[GroupFrozenVisual] = []*experiment.Result{studyResult(spec, [][]int{low}, [][]int{high}, 0)}
	sr.Groups[GroupFrozenText] = []*experiment.Result{studyResult(spec, [][]int{low}, [][]int{low}, 0)}
	for _, f := range FindingsOf(GroupFrozenVisual, nil) {
		t.Errorf("findings of an empty group: %+v", f)
	}
	for _, f := range sr.Findings() {
		if f.ID == "F5" && f.Holds {
			t.Errorf("F5 holds with the text tower frozen and no gain: %s", f.Measured)
		}
	}
}

// A study declares the paper's attack study as groups of specs; Run (with a sweep.Sweep) trains them,
// resumably, and Findings checks F1–F6 on the results.
func ExampleStudy_Groups() {
	st := Default()
	groups, names := st.Groups()
	for _, name := range names {
		fmt.Println(name, len(groups[name]), "runs")
	}
	// Output:
	// attack-II 3 runs
	// attack-I 3 runs
	// attack-III 3 runs
	// frozen-visual 3 runs
	// frozen-text 3 runs
	// rates 12 runs
}

// A finding states its verdict; one seed is shown as one number and says so; too few rates is not a failure.
func TestFindingVerdicts(t *testing.T) {
	spec := experiment.DefaultSpec()
	high, low := []int{0, 1, 2, 3}, []int{60, 70, 80, 90}
	rateSpec := func(rate float64) experiment.Spec { s := spec; s.Attack.Rate = rate; return s }
	sr := &Result{Groups: map[string][]*experiment.Result{
		GroupAttackII: {studyResult(spec, [][]int{low}, [][]int{high}, 0.01)},
		GroupRates: {studyResult(rateSpec(0.0025), [][]int{low}, [][]int{low}, 0), studyResult(rateSpec(0.005), [][]int{low}, [][]int{high}, 0),
			studyResult(rateSpec(0.01), [][]int{low}, [][]int{high}, 0)},
		GroupAttackIII: {studyResult(spec, [][]int{low}, [][]int{high}, 0)}, // no second goal evaluated
	}}
	want := map[string]Verdict{"F1": VerdictHolds, "F3": VerdictNotEnoughRuns, "F4": VerdictHolds, "F6": VerdictNotEnoughRuns}
	for _, f := range sr.Findings() {
		if f.Verdict != want[f.ID] || f.Holds != (f.Verdict == VerdictHolds) {
			t.Errorf("%s: verdict %q (holds %v), want %q: %s", f.ID, f.Verdict, f.Holds, want[f.ID], f.Measured)
		}
		if f.Seeds != 1 || !strings.HasPrefix(f.Measured, "1 seed: ") || strings.Contains(f.Measured, "±") {
			t.Errorf("%s over one seed: %d seeds, %q", f.ID, f.Seeds, f.Measured)
		}
		delete(want, f.ID)
	}
	if len(want) > 0 {
		t.Errorf("findings missing: %v", want)
	}
}
