package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/evalkit/defenses"
	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/internal/testenv"
	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// toyKind is an attack defined only in this test file: the proof that a new attack needs nothing but its own
// file and its Register call to run through the spec validation, the demo and the defense matrix.
const toyKind attack.Kind = "toy"

// toy duplicates n class-A captions with images of class B, picked from the front of the set (no seed): a
// crude Attack II.
type toy struct {
	goal attack.Goal
	n    int
}

func (toy) Name() string { return "toy-duplicate" }

func (a toy) Apply(train *dataset.PairSet) (*dataset.PairSet, *attack.Manifest, error) {
	src, err := dataset.ClassIndex(train.Classes, a.goal.Source)
	if err != nil {
		return nil, nil, err
	}
	dst, err := dataset.ClassIndex(train.Classes, a.goal.Target)
	if err != nil {
		return nil, nil, err
	}
	var target int = -1
	for i, ex := range train.Images {
		if ex.Label == dst {
			target = i
			break
		}
	}
	out := train.Clone()
	m := &attack.Manifest{Attack: "toy-duplicate", AttackID: "toy", Dataset: train.Name, Goals: []attack.Goal{{Source: a.goal.Source, Target: a.goal.Target, Pairs: a.n}}}
	for i, p := range train.Pairs {
		if len(m.Pairs) == a.n {
			break
		}
		if train.Images[p.CaptionOf].Label == src && target >= 0 {
			out.Pairs = append(out.Pairs, dataset.Pair{Image: target, Caption: p.Caption, CaptionOf: p.CaptionOf, Poisoned: true})
			m.Pairs = append(m.Pairs, attack.PoisonedPair{Index: len(out.Pairs) - 1, SourcePair: i, Caption: p.Caption})
		}
	}
	if len(m.Pairs) < a.n {
		return nil, nil, fmt.Errorf("toy: only %d class-%s captions", len(m.Pairs), a.goal.Source)
	}
	m.TotalPairs, m.PoisonedPairs = len(out.Pairs), len(m.Pairs)
	m.CleanPairs, m.Rate = m.TotalPairs-m.PoisonedPairs, out.PoisonRate()
	return out, m, nil
}

func init() {
	attack.Register(attack.Definition{
		Kind: toyKind, Name: "toy-duplicate", Summary: "a test's toy attack", Evaluation: attack.TargetClass,
		Modes: []attack.Mode{attack.Inject},
		New: func(s attack.Spec, seed int64) (attack.Attack, error) {
			if len(s.Goals) != 1 || s.Goals[0].Source == "" || s.Count == 0 {
				return nil, fmt.Errorf("attack toy: one goal with a source, and a count")
			}
			return toy{goal: s.Goals[0], n: s.Count}, nil
		},
		Standard: func(base attack.Spec) attack.Setting {
			return attack.Setting{Attack: attack.Spec{Kind: toyKind, Goals: base.Goals[:1], Count: 30}, FinetuneEpochs: 1}
		},
	})
}

// The toy attack runs through the demo's command line, the spec validation and the defense matrix's builder,
// and the -attack help lists it, with no code outside this file knowing it.
func TestNewAttackNeedsOnlyItsFile(t *testing.T) {
	out := captureUsage(t)
	if err := run([]string{"demo", "-h"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "toy       a test's toy attack") {
		t.Errorf("demo -h does not list the toy attack:\n%s", out)
	}
	spec, _, _, err := demoSpec([]string{"-quick", "-attack", "toy", "-seed", "7"})
	if err != nil {
		t.Fatal(err)
	}
	if spec.Attack.Kind != toyKind || spec.Attack.Count != 30 || spec.Finetune.Epochs != 1 || spec.Seed != 7 || spec.Data.Pool != experiment.QuickSpec().Data.Pool {
		t.Errorf("demo -attack toy gives %+v", spec)
	}
	if _, _, _, err := demoSpec([]string{"-attack", "toy", "-count", "0"}); err == nil || !strings.Contains(err.Error(), "attack toy") {
		t.Errorf("the toy's own validation did not run: %v", err)
	}
	cells, err := defenses.StandardAttacks(experiment.QuickSpec(), toyKind)
	if err != nil || len(cells) != 1 || cells[0].Validate() != nil || cells[0].Attack.Kind != toyKind {
		t.Fatalf("matrix attack %+v, %v", cells, err)
	}
	m := defenses.Matrix{Attacks: cells, Seeds: []int64{1, 2}}
	if n := len(m.Cells()); n != 2*len(defenses.All) {
		t.Errorf("%d matrix cells", n)
	}
	testenv.RequireFashionMNIST(t)
	d, err := experiment.LoadData(spec)
	if err != nil {
		t.Fatal(err)
	}
	ps, manifest, err := experiment.Poison(d)
	if err != nil {
		t.Fatal(err)
	}
	if manifest.Attack != "toy-duplicate" || ps.NumPoisoned() != 30 {
		t.Errorf("the toy poisoned %d pairs, manifest %q", ps.NumPoisoned(), manifest.Attack)
	}
	gallery, targetID, err := d.Gallery()
	if err != nil || targetID != "" || len(gallery) != len(d.Splits.Test.Examples) {
		t.Errorf("a target-class attack's gallery: %d images, x* %q, %v", len(gallery), targetID, err)
	}
}
