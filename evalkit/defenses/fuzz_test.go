package defenses

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/metrics"
	"github.com/mmpoison/mmpoison/poisoning/defense"
	"github.com/mmpoison/mmpoison/poisoning/fuzzcheck"
)

// fuzzEval is a complete evaluation for fuzzing seeds.
func fuzzEval() *experiment.ModelEval {
	recall := &metrics.RecallResult{Ks: metrics.RecallKs, ImageToText: []float64{0.1, 0.4, 0.6}, TextToImage: []float64{0.1, 0.4, 0.6}}
	return &experiment.ModelEval{Attack: metrics.AttackResultFromRanks([]int{0, 4, 30}, nil),
		RandomQueries: metrics.AttackResultFromRanks([]int{20, 31}, nil), Utility: recall, UtilityOthers: recall,
		Goals: []experiment.GoalEval{{Source: "trouser", Target: "bag", Attack: metrics.AttackResultFromRanks([]int{0}, nil),
			RandomQueries: metrics.AttackResultFromRanks([]int{9}, nil)}}}
}

// FuzzReadOutcome reads arbitrary bytes as a cached cell of the defense matrix. Properties: no panic; at most
// 64 times the input's size allocated; an accepted cell holds every evaluation the matrix's tables and figures
// read, each complete (experiment.ModelEval.Check), and re-encodes to a cell that reads back the same.
func FuzzReadOutcome(f *testing.F) {
	rec, prec := 0.8, 0.5
	seeds := []*Outcome{
		{Cell: Cell{Spec: experiment.QuickSpec(), Defense: DefenseFilter}, Defended: fuzzEval(), Poisoned: fuzzEval(),
			Clean: fuzzEval(), Report: &defense.FilterReport{Total: 100, Dropped: 4, FractionRemoved: 0.04, Recall: &rec, Precision: &prec}},
		{Cell: Cell{Spec: experiment.QuickSpec(), Defense: DefenseCleanCLIP}, Defended: fuzzEval(), Poisoned: fuzzEval(),
			Clean: fuzzEval(), PerEpoch: []*experiment.ModelEval{fuzzEval(), fuzzEval()}},
	}
	for _, o := range seeds {
		data, err := json.Marshal(o)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"defended": {"attack": {}}, "poisoned": {"attack": {}}, "clean": {"attack": {}}, "per_epoch": [null]}`))
	dir := f.TempDir()
	path, again := filepath.Join(dir, "cell.json"), filepath.Join(dir, "again.json")
	f.Fuzz(func(t *testing.T, in []byte) {
		if err := os.WriteFile(path, in, 0o644); err != nil {
			t.Fatal(err)
		}
		var o *Outcome
		var err error
		fuzzcheck.Within(t, "readOutcome", 64*uint64(len(in)), func() { o, err = readOutcome(path) })
		if err != nil {
			return
		}
		for _, e := range append([]*experiment.ModelEval{o.Defended, o.Poisoned, o.Clean}, o.PerEpoch...) {
			if e == nil || e.Check() != nil {
				t.Fatal("accepted a cell with an incomplete evaluation")
			}
		}
		data, err := json.Marshal(o)
		if err != nil {
			t.Fatalf("an accepted cell does not encode: %v", err)
		}
		if err := os.WriteFile(again, data, 0o644); err != nil {
			t.Fatal(err)
		}
		back, err := readOutcome(again)
		if err != nil {
			t.Fatalf("an accepted cell, re-encoded, is refused: %v", err)
		}
		if redo, _ := json.Marshal(back); string(redo) != string(data) {
			t.Fatal("an accepted cell changes when re-encoded and read back")
		}
	})
}
