package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/metrics"
	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/fuzzcheck"
)

// backdoorResult is the synthetic result of a backdoor attack, with its zero-shot and retrieval metrics.
func backdoorResult() *experiment.Result {
	r := syntheticResult()
	r.Spec.Attack = attack.Spec{Kind: attack.KindBackdoor, Goals: []attack.Goal{{Target: "bag"}}, Rate: 0.05, Mode: attack.Inject}
	eval := func(rate float64) *experiment.BackdoorEval {
		hits := metrics.AttackResultFromRanks([]int{0, 3, 40}, nil)
		return &experiment.BackdoorEval{
			ZeroShot:  &metrics.BackdoorZeroShotResult{Target: 8, NumClasses: 10, Triggered: metrics.ZeroShotRate{N: 3, Rate: rate}, Clean: &metrics.ZeroShotRate{N: 3}},
			Retrieval: &metrics.BackdoorRetrievalResult{NumGallery: 50, NumTargets: 5, Triggered: hits, Clean: hits},
		}
	}
	r.Clean.Backdoor, r.Poisoned.Backdoor = eval(0.1), eval(0.9)
	return r
}

// FuzzResultTables reads arbitrary bytes as a cached result (experiment.ReadResult, as sweeps and reports read
// them) and renders from an accepted one everything a report shows but the figures: the attack (or backdoor),
// utility, paper-comparison and seed tables and the Markdown. Properties: no panic (a result the tables cannot
// show is refused when read); reading takes at most 64 times the input's size.
func FuzzResultTables(f *testing.F) {
	noBaseline := backdoorResult()
	noBaseline.Poisoned.Backdoor.Retrieval.Clean = nil
	noZeroShot := backdoorResult()
	noZeroShot.Clean.Backdoor.ZeroShot = nil
	for _, r := range []*experiment.Result{syntheticResult(), backdoorResult(), noBaseline, noZeroShot} {
		data, err := json.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"clean": {"attack": {}}, "poisoned": {"attack": {}, "goals": [{}]}}`))
	path := filepath.Join(f.TempDir(), "results.json")
	f.Fuzz(func(t *testing.T, in []byte) {
		if err := os.WriteFile(path, in, 0o644); err != nil {
			t.Fatal(err)
		}
		var r *experiment.Result
		var err error
		fuzzcheck.Within(t, "ReadResult", 64*uint64(len(in)), func() { r, err = experiment.ReadResult(path) })
		if err != nil {
			return
		}
		_ = AttackTable(r).Text()
		_ = UtilityTable(r).Text()
		_ = PaperComparison(r).Text()
		_ = SeedTable("seeds", []*experiment.Result{r, r}).Text()
		_ = Markdown(r, nil)
	})
}
