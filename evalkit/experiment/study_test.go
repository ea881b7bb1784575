package experiment

import (
	"slices"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/evalkit/metrics"
	"github.com/mmpoison/mmpoison/poisoning/attack"
)

// studyResult builds a result whose goals have the given clean and poisoned minranks (one query per rank) and
// whose untargeted utility changes by utilDelta.
func studyResult(spec Spec, clean, pois [][]int, utilDelta float64) *Result {
	util := func(v float64) *metrics.RecallResult {
		return &metrics.RecallResult{Ks: metrics.RecallKs, ImageToText: []float64{v, v, v}, TextToImage: []float64{v, v, v}}
	}
	ev := func(ranks [][]int, u float64) *ModelEval {
		e := &ModelEval{UtilityOthers: util(u), Utility: util(u)}
		for _, r := range ranks {
			a := metrics.AttackResultFromRanks(r, nil)
			e.Goals = append(e.Goals, GoalEval{Attack: a, RandomQueries: metrics.AttackResultFromRanks([]int{40, 50}, nil)})
		}
		e.Attack, e.RandomQueries = e.Goals[0].Attack, e.Goals[0].RandomQueries
		return e
	}
	return &Result{Spec: spec, Clean: ev(clean, 0.6), Poisoned: ev(pois, 0.6+utilDelta),
		Poison: PoisonSummary{Rate: spec.Rate}}
}

func TestStudyGroups(t *testing.T) {
	st := DefaultStudy()
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
	if g := groups[GroupAttackIII][0]; g.AttackKind() != "III" || len(g.Goals()) != 2 {
		t.Errorf("attack III spec %+v", g)
	}
	if f := groups[GroupFrozenText][0].Freeze; !slices.Equal(f, []string{"text"}) {
		t.Errorf("frozen-text freezes %v", f)
	}
	// The rate group's φ = 1% runs are the Attack II runs: the same specs, so a sweep computes them once.
	if hash(groups[GroupRates][3]) != hash(groups[GroupAttackII][0]) {
		t.Error("the rate sweep's 1% run differs from the Attack II run")
	}
	st.Only = []string{GroupFrozenVisual}
	if _, names := st.Groups(); !slices.Equal(names, []string{GroupFrozenVisual}) {
		t.Errorf("Only kept %v", names)
	}
}

func TestFindings(t *testing.T) {
	spec := DefaultSpec()
	high, low := []int{0, 1, 2, 3}, []int{60, 70, 80, 90}
	rateSpec := func(rate float64) Spec { s := spec; s.Rate = rate; return s }
	sr := &StudyResult{Groups: map[string][]*Result{
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

func TestAllSourceCaptions(t *testing.T) {
	if testing.Short() {
		t.Skip("loads Fashion-MNIST")
	}
	s := QuickSpec()
	s.Attack, s.AllSourceCaptions = "III", true
	s.ExtraGoals = []attack.Goal{{Source: "sandal", Target: "shirt"}}
	d, err := LoadData(s)
	if err != nil {
		t.Skip(err)
	}
	ps, m, err := Poison(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps.Pairs {
		if l := ps.Images[p.Image].Label; !p.Poisoned && (l == d.Goals[0][0] || l == d.Goals[1][0]) {
			t.Fatalf("a class-%s caption stayed clean: %q", ps.Classes[l], p.Caption)
		}
	}
	want := 2 * s.SourceTrainImages * len(d.Splits.Train.Examples[0].Captions)
	if m.PoisonedPairs != want {
		t.Errorf("%d poisoned pairs, want every source caption (%d)", m.PoisonedPairs, want)
	}
	// The cache key records "every caption", not the ignored Rate.
	other := s
	other.Rate = 0.05
	if hash(s.finetuneKey(true)) != hash(other.finetuneKey(true)) {
		t.Error("the ignored Rate changes the cache key")
	}
}
