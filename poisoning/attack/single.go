package attack

import (
	"fmt"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// Attack names and identifiers recorded in manifests.
const (
	// SingleLabelName and SingleLabelID identify Attack II.
	SingleLabelName = "single-target-label"
	SingleLabelID   = "II"
)

func init() {
	Register(Definition{
		Kind:       KindSingleLabel,
		Name:       SingleLabelName,
		Summary:    "single target label: class-A captions re-paired with class-B images (the paper's Attack II)",
		Evaluation: TargetClass,
		Modes:      []Mode{Inject, Repair},
		New: func(s Spec, seed int64) (Attack, error) {
			if err := checkShape(s, true, true, false, false); err != nil {
				return nil, err
			}
			g := s.Goals[0]
			return SingleLabel{Source: g.Source, Target: g.Target, Rate: s.Rate, Count: s.Count, Mode: s.Mode, Seed: seed}, nil
		},
		Standard: func(base Spec) Setting { return Setting{Attack: base.reduced(KindSingleLabel)} },
	})
}

// SingleLabel is Attack II, single target label (A→B): it pairs captions of class-A training images with images
// of class B, so that class-A text queries retrieve class-B images.
type SingleLabel struct {
	// Source (A) and Target (B) are class names of the training set, resolved with dataset.ClassIndex.
	Source, Target string
	// Rate is the requested poisoning rate φ in (0, 1), counted in pairs of the whole (output) training set.
	Rate float64
	// Count is the exact number of poisoned pairs, an alternative to Rate; set exactly one of them.
	Count int
	// Mode is Inject (the default) or Repair.
	Mode Mode
	// Seed drives every choice of the attack.
	Seed int64
}

// Name returns SingleLabelName.
func (SingleLabel) Name() string { return SingleLabelName }

// Apply returns a poisoned copy of train and the manifest of the attack; train itself is not modified.
//
// It picks n distinct clean pairs whose caption was written for a class-A image, spread over the A images in a
// seeded order, and gives each the image of a class-B training image, going round-robin over a seeded shuffle of
// the B images. In Inject mode the n pairs are appended after the clean ones, in Repair mode the picked pairs
// themselves are re-pointed. Poisoned pairs have Poisoned set and keep CaptionOf, the A image. Errors: unknown
// classes, Source equal to Target, a class without images, a rate outside (0, 1) or NaN, both or neither of Rate
// and Count, a rate too small for one pair, or more pairs than class A has captions.
func (a SingleLabel) Apply(train *dataset.PairSet) (*dataset.PairSet, *Manifest, error) {
	return applyPlanner(a, train)
}

// Plan chooses the pairs Apply poisons from the set's table.
func (a SingleLabel) Plan(t *dataset.Table) (*Plan, error) {
	return singleGoal(t, a.Mode, a.Source, a.Target, a.Rate, a.Count, a.Seed, SingleLabelName, SingleLabelID,
		func(dst int) ([]int, error) { return shuffledImages(t, dst, newRand(a.Seed, 0, purposeImages)) })
}

// singleGoal plans a one-goal attack A→B: it validates the input, picks n distinct clean class-A caption pairs
// (the same picks for the same seed, whatever the attack) and gives pick k the image targets[k mod len], where
// targets is computed once, after validation, from the target class label.
func singleGoal(t *dataset.Table, mode Mode, source, target string, rate float64, count int, seed int64,
	name, id string, targetImages func(dst int) ([]int, error)) (*Plan, error) {
	if t == nil {
		return nil, fmt.Errorf("attack: nil training set")
	}
	mode, err := mode.normalize()
	if err != nil {
		return nil, err
	}
	src, dst, err := resolveClasses(t.Classes, source, target)
	if err != nil {
		return nil, err
	}
	n, err := poisonCount(mode, rate, count, t.NumPairs())
	if err != nil {
		return nil, err
	}
	if len(classImages(t, src)) == 0 {
		return nil, fmt.Errorf("attack: class %q has no images in %q", t.Classes[src], t.Name)
	}
	targets, err := targetImages(dst)
	if err != nil {
		return nil, err
	}
	pairs, err := sourcePairs(t, src, n, newRand(seed, 0, purposeCaptions))
	if err != nil {
		return nil, err
	}
	p := &Plan{Manifest: Manifest{
		Attack:         name,
		AttackID:       id,
		Dataset:        t.Name,
		Goals:          []Goal{{Source: t.Classes[src], Target: t.Classes[dst], Pairs: n}},
		Mode:           mode,
		Seed:           seed,
		RequestedRate:  rate,
		RequestedCount: count,
	}, Picks: make([]Pick, n)}
	for k, pr := range pairs {
		p.Picks[k] = Pick{Goal: 0, Source: pr, Image: targets[k%len(targets)]}
	}
	return p, nil
}
