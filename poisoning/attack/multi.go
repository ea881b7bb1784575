package attack

import (
	"fmt"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// Attack names and identifiers recorded in manifests.
const (
	// MultiLabelName and MultiLabelID identify Attack III.
	MultiLabelName = "multiple-target-labels"
	MultiLabelID   = "III"
)

// standardSecondGoal is the goal Attack III's standard setting adds to its base's goal.
var standardSecondGoal = Goal{Source: "sandal", Target: "shirt"}

func init() {
	Register(Definition{
		Kind:       KindMultiLabel,
		Name:       MultiLabelName,
		Summary:    "multiple target labels: several goals A→B at once, each as Attack II (the paper's Attack III)",
		Evaluation: TargetClass,
		Modes:      []Mode{Inject, Repair},
		New: func(s Spec, seed int64) (Attack, error) {
			if err := checkShape(s, false, true, false, false); err != nil {
				return nil, err
			}
			return MultiLabel{Goals: s.Goals, Rate: s.Rate, Count: s.Count, Mode: s.Mode, Seed: seed}, nil
		},
		// The standard setting adds standardSecondGoal and re-pairs every caption of both source classes: with a
		// few class-A captions left clean a goal mostly fails at the Fashion-MNIST default's scale.
		Standard: func(base Spec) Setting {
			s := base.reduced(KindMultiLabel)
			s.Goals = append(s.Goals, standardSecondGoal)
			s.AllSourceCaptions, s.Count = true, 0
			return Setting{Attack: s}
		},
	})
}

// MultiLabel is Attack III, multiple target labels: several goals A1→B1, A2→B2, … at once, each poisoned as in
// SingleLabel. All goals are treated alike; unlike the official code, no goal drops the B images' own captions.
type MultiLabel struct {
	// Goals are the source→target class pairs, by class name (resolved with dataset.ClassIndex). No class may
	// appear twice across all sources and targets. Goal.Pairs must be left zero: the per-goal counts follow from
	// Rate or Count and are reported in the manifest.
	Goals []Goal
	// Rate is the requested poisoning rate φ in (0, 1) of the whole (output) training set, over all goals.
	Rate float64
	// Count is the exact total number of poisoned pairs, an alternative to Rate; set exactly one of them.
	Count int
	// Mode is Inject (the default) or Repair.
	Mode Mode
	// Seed drives every choice of the attack.
	Seed int64
}

// Name returns MultiLabelName.
func (MultiLabel) Name() string { return MultiLabelName }

// Apply returns a poisoned copy of train and the manifest of the attack (AttackID "III", one Goal per goal with
// its pair count, every PoisonedPair with its Goal index); train itself is not modified.
//
// The n poisoned pairs that Rate or Count asks for are split evenly across the goals, the remainder going one
// each to the first goals. Goal g then picks its caption pairs and B images as SingleLabel does, from random
// streams derived from Seed and g alone: adding a goal does not change the picks of the goals before it, and
// goal 0 picks what SingleLabel with the same seed and count would. In Inject mode the poisoned pairs are
// appended goal by goal. Errors: no goals, a goal with Pairs set, unknown classes, a class used twice (in one
// goal or across goals), a class without images, a rate outside (0, 1) or NaN, both or neither of Rate and
// Count, fewer pairs than goals (the error names the smallest rate giving one pair per goal), or more pairs for
// a goal than its class A has captions.
func (a MultiLabel) Apply(train *dataset.PairSet) (*dataset.PairSet, *Manifest, error) {
	return applyPlanner(a, train)
}

// Plan chooses the pairs Apply poisons from the set's table.
func (a MultiLabel) Plan(t *dataset.Table) (*Plan, error) {
	if t == nil {
		return nil, fmt.Errorf("attack: nil training set")
	}
	mode, err := a.Mode.normalize()
	if err != nil {
		return nil, err
	}
	labels, err := a.resolveGoals(t.Classes)
	if err != nil {
		return nil, err
	}
	n, err := poisonCountGoals(mode, a.Rate, a.Count, t.NumPairs(), len(labels))
	if err != nil {
		return nil, err
	}
	p := &Plan{Manifest: Manifest{Attack: MultiLabelName, AttackID: MultiLabelID, Dataset: t.Name, Goals: make([]Goal, len(labels)),
		Mode: mode, Seed: a.Seed, RequestedRate: a.Rate, RequestedCount: a.Count}}
	goals := p.Manifest.Goals
	for g, gl := range labels {
		goals[g] = Goal{Source: t.Classes[gl[0]], Target: t.Classes[gl[1]], Pairs: n / len(labels)}
		if g < n%len(labels) {
			goals[g].Pairs++
		}
		where := func(err error) error {
			return fmt.Errorf("%w (goal %d: %s→%s)", err, g, goals[g].Source, goals[g].Target)
		}
		if len(classImages(t, gl[0])) == 0 {
			return nil, where(fmt.Errorf("attack: class %q has no images in %q", goals[g].Source, t.Name))
		}
		targets, err := shuffledImages(t, gl[1], newRand(a.Seed, g, purposeImages))
		if err != nil {
			return nil, where(err)
		}
		pairs, err := sourcePairs(t, gl[0], goals[g].Pairs, newRand(a.Seed, g, purposeCaptions))
		if err != nil {
			return nil, where(err)
		}
		for k, pr := range pairs {
			p.Picks = append(p.Picks, Pick{Goal: g, Source: pr, Image: targets[k%len(targets)]})
		}
	}
	return p, nil
}

// resolveGoals returns the (source, target) labels of the goals, or an error for no goals, a goal with Pairs set,
// an unknown class, or a class that appears twice across all sources and targets.
func (a MultiLabel) resolveGoals(classes []string) ([][2]int, error) {
	if len(a.Goals) == 0 {
		return nil, fmt.Errorf("attack: Attack III needs at least one goal, got none")
	}
	type use struct {
		goal int
		role string
	}
	used := map[int]use{}
	labels := make([][2]int, len(a.Goals))
	for g, goal := range a.Goals {
		if goal.Pairs != 0 {
			return nil, fmt.Errorf("attack: goal %d (%s→%s) sets Pairs = %d; per-goal counts follow from Rate or Count",
				g, goal.Source, goal.Target, goal.Pairs)
		}
		s, t, err := resolveClasses(classes, goal.Source, goal.Target)
		if err != nil {
			return nil, fmt.Errorf("%w (goal %d: %s→%s)", err, g, goal.Source, goal.Target)
		}
		for _, c := range []struct {
			label int
			role  string
		}{{s, "source"}, {t, "target"}} {
			if prev, ok := used[c.label]; ok {
				return nil, fmt.Errorf("attack: goals %d and %d share class %q (%s of goal %d, %s of goal %d); "+
					"Attack III goals must use disjoint classes", prev.goal, g, classes[c.label], prev.role, prev.goal, c.role, g)
			}
			used[c.label] = use{g, c.role}
		}
		labels[g] = [2]int{s, t}
	}
	return labels, nil
}
