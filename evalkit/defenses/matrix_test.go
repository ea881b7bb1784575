package defenses

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/metrics"
	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/defense"
)

// fakeOutcome is a cell outcome whose evaluations' MinRank encodes the cell's position (with every other metric
// the cell reader requires).
func fakeOutcome(c Cell, i int) *Outcome {
	ev := fuzzEval()
	ev.Attack = metrics.AttackResultFromRanks([]int{i}, nil)
	return &Outcome{Cell: c, Defended: ev, Poisoned: ev, Clean: ev, Seconds: float64(i)}
}

func TestMatrixResumes(t *testing.T) {
	two := experiment.QuickSpec()
	two.Attack.Kind = attack.KindSingleImage
	m := Matrix{Attacks: []experiment.Spec{experiment.QuickSpec(), two}, Seeds: []int64{1, 2}, Dir: t.TempDir()}
	cells := m.Cells()
	if len(cells) != 2*2*len(All) || cells[0].Defense != DefenseNone || cells[0].Spec.Seed != 1 {
		t.Fatalf("cells %d, first %+v", len(cells), cells[0])
	}
	calls := 0
	stopAt := 7
	m.run = func(c Cell, _ experiment.Options) (*Outcome, error) {
		if calls == stopAt {
			return nil, errors.New("interrupted")
		}
		calls++
		return fakeOutcome(c, calls), nil
	}
	done, err := m.Run(experiment.Options{})
	if err == nil || !strings.Contains(err.Error(), "interrupted") || len(done) != stopAt {
		t.Fatalf("first run: %d cells, error %v", len(done), err)
	}
	files, _ := filepath.Glob(filepath.Join(m.Dir, "v*", "cell-*", "cell.json"))
	if len(files) != stopAt {
		t.Fatalf("%d cell entries after the interruption, want %d", len(files), stopAt)
	}
	stopAt = -1
	calls = 0
	var loaded int
	m.Progress = func(i, n int, c Cell, cached bool) {
		if cached {
			loaded++
		}
	}
	all, err := m.Run(experiment.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if calls != len(cells)-7 || loaded != 7 {
		t.Errorf("the resumed run computed %d cells and loaded %d, want %d and 7", calls, loaded, len(cells)-7)
	}
	for i, o := range all {
		if o.Defense != cells[i].Defense || o.Spec.Seed != cells[i].Spec.Seed || o.Spec.Attack.Kind != cells[i].Spec.Attack.Kind {
			t.Errorf("outcome %d is %s seed %d, want %s seed %d", i, o.Defense, o.Spec.Seed, cells[i].Defense, cells[i].Spec.Seed)
		}
	}
	// Another defense setting is another cell; the undefended cell does not depend on it.
	m2 := m
	m2.RepairEpochs = 3
	key := func(m Matrix, c Cell) string {
		k, err := m.cellKey(c)
		if err != nil {
			t.Fatal(err)
		}
		return k.Name()
	}
	if key(m2, cells[2]) == key(m, cells[2]) || key(m2, cells[0]) != key(m, cells[0]) {
		t.Error("cell keys do not follow the defense's settings")
	}
	// A damaged cell is moved aside and recomputed, never read.
	if err := os.WriteFile(files[0], []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	calls = 0
	if _, err := m.Run(experiment.Options{}); err != nil || calls != 1 {
		t.Errorf("damaged cell: %d recomputed, %v", calls, err)
	}
}

func TestMatrixRejectsBadInput(t *testing.T) {
	bad := experiment.QuickSpec()
	bad.Attack.Rate = 3
	for _, tc := range []struct {
		name string
		m    Matrix
		want string
	}{
		{"unknown defense", Matrix{Attacks: []experiment.Spec{experiment.QuickSpec()}, Defenses: []string{"prayer"}}, `"prayer"`},
		{"bad spec", Matrix{Attacks: []experiment.Spec{experiment.QuickSpec(), bad}}, "φ = 3 is outside"},
		{"NaN quantile", Matrix{Attacks: []experiment.Spec{experiment.QuickSpec()}, Defenses: []string{DefenseFilter},
			Filter: FilterSpec{Threshold: defense.Threshold{Kind: defense.KindQuantile, Value: math.NaN()}}}, "NaN"},
	} {
		tc.m.Dir = t.TempDir()
		tc.m.run = func(Cell, experiment.Options) (*Outcome, error) {
			t.Fatalf("%s: a cell ran", tc.name)
			return nil, nil
		}
		if _, err := tc.m.Run(experiment.Options{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

// Each kind's standard setting is a valid spec of that kind.
func TestStandardAttacks(t *testing.T) {
	kinds := []attack.Kind{attack.KindSingleLabel, attack.KindSingleImage, attack.KindMultiLabel, attack.KindBackdoor}
	specs, err := StandardAttacks(experiment.QuickSpec(), kinds...)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range kinds {
		if got := specs[i].Attack.Kind; got != want {
			t.Errorf("spec %d is attack %s, want %s", i, got, want)
		}
		if err := specs[i].Validate(); err != nil {
			t.Errorf("attack %s: %v", want, err)
		}
	}
	if !specs[2].Attack.AllSourceCaptions || len(specs[2].Attack.Goals) != 2 {
		t.Errorf("Attack III spec %+v", specs[2].Attack)
	}
	if bd := specs[3]; bd.Finetune.Epochs != 5 || bd.Attack.Trigger.Size != 7 || bd.Attack.Target() != "bag" {
		t.Errorf("backdoor spec %+v, %d epochs", bd.Attack, bd.Finetune.Epochs)
	}
	if _, err := StandardAttacks(experiment.QuickSpec(), "IV"); err == nil || !strings.Contains(err.Error(), `"IV"`) {
		t.Errorf("unknown attack: %v", err)
	}
}

// The defense × attack matrix runs every defense against every attack over seeds, one cell each.
func ExampleMatrix_Cells() {
	spec := experiment.QuickSpec()
	spec.Data.HeldOut = 1000
	m := Matrix{Attacks: []experiment.Spec{spec}, Seeds: []int64{1, 2}}
	for _, c := range m.Cells()[:5] {
		fmt.Println("seed", c.Spec.Seed, c.Defense)
	}
	fmt.Println(len(m.Cells()), "cells")
	// Output:
	// seed 1 none
	// seed 1 filter
	// seed 1 clean-finetune
	// seed 1 kdistance
	// seed 1 cleanclip
	// 10 cells
}
