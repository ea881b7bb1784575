package attack

import (
	"fmt"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// Attack names and identifiers recorded in manifests.
const (
	// SingleImageName and SingleImageID identify Attack I.
	SingleImageName = "single-target-image"
	SingleImageID   = "I"
)

func init() {
	Register(Definition{
		Kind:       KindSingleImage,
		Name:       SingleImageName,
		Summary:    "single target image: class-A captions re-paired with one class-B image x* (the paper's Attack I)",
		Evaluation: TargetImage,
		Modes:      []Mode{Inject, Repair},
		New: func(s Spec, seed int64) (Attack, error) {
			if err := checkShape(s, true, true, true, false); err != nil {
				return nil, err
			}
			g := s.Goals[0]
			return SingleImage{Source: g.Source, Target: g.Target, TargetImageID: s.TargetImageID, Rate: s.Rate,
				Count: s.Count, Mode: s.Mode, Seed: seed}, nil
		},
		Standard: func(base Spec) Setting { return Setting{Attack: base.reduced(KindSingleImage)} },
	})
}

// SingleImage is Attack I, single target image: it pairs captions of class-A training images with ONE training
// image x* of class B, so that class-A text queries retrieve x*.
//
// The paper measures success on x* itself: for every unseen class-A test caption, the rank of x* among the
// gallery images (Hit@K, MinRank). Since x* is a training image and the paper's gallery is the test images, the
// evaluator must add x* (Manifest.TargetImageID) to the gallery; this package leaves evaluation to others.
type SingleImage struct {
	// Source (A) and Target (B) are class names of the training set, resolved with dataset.ClassIndex.
	Source, Target string
	// TargetImageID is the ID of x*, a class-B image of the training set. When empty, x* is drawn uniformly
	// from the class-B training images by the seed (the paper's "randomly selected from the target class").
	TargetImageID string
	// Rate is the requested poisoning rate φ in (0, 1), counted in pairs of the whole (output) training set.
	Rate float64
	// Count is the exact number of poisoned pairs, an alternative to Rate; set exactly one of them.
	Count int
	// Mode is Inject (the default) or Repair.
	Mode Mode
	// Seed drives every choice of the attack.
	Seed int64
}

// Name returns SingleImageName.
func (SingleImage) Name() string { return SingleImageName }

// Apply returns a poisoned copy of train and the manifest of the attack (AttackID "I", TargetImageID set);
// train itself is not modified.
//
// It picks n distinct clean class-A caption pairs exactly as SingleLabel does (so the same seed picks the same
// captions) and pairs every one of them with x*. Errors: those of SingleLabel, plus a TargetImageID that is not
// in the training set, occurs more than once, or is not of the target class.
func (a SingleImage) Apply(train *dataset.PairSet) (*dataset.PairSet, *Manifest, error) {
	return applyPlanner(a, train)
}

// Plan chooses the pairs Apply poisons from the set's table.
func (a SingleImage) Plan(t *dataset.Table) (*Plan, error) {
	var target int
	p, err := singleGoal(t, a.Mode, a.Source, a.Target, a.Rate, a.Count, a.Seed, SingleImageName, SingleImageID,
		func(dst int) ([]int, error) {
			var err error
			target, err = a.targetImage(t, dst)
			return []int{target}, err
		})
	if err != nil {
		return nil, err
	}
	ex, _, err := t.Images.Read(target, false)
	if err != nil {
		return nil, fmt.Errorf("attack: target image: %w", err)
	}
	p.Manifest.TargetImageID = ex.ID
	return p, nil
}

// targetImage returns the pool index of x*: the image named by TargetImageID, checked to be of class dst, or a
// seeded uniform choice among the class-dst images.
func (a SingleImage) targetImage(t *dataset.Table, dst int) (int, error) {
	if a.TargetImageID == "" {
		idx, err := shuffledImages(t, dst, newRand(a.Seed, 0, purposeImages))
		if err != nil {
			return 0, err
		}
		return idx[0], nil
	}
	found, times := -1, 0
	for i := range t.NumImages() {
		ex, _, err := t.Images.Read(i, false)
		if err != nil {
			return 0, fmt.Errorf("attack: looking for the target image: %w", err)
		}
		if ex.ID == a.TargetImageID {
			if found < 0 {
				found = i
			}
			times++
		}
	}
	switch {
	case times == 0:
		return 0, fmt.Errorf("attack: target image %q is not in %q", a.TargetImageID, t.Name)
	case times > 1:
		return 0, fmt.Errorf("attack: target image id %q occurs %d times in %q", a.TargetImageID, times, t.Name)
	}
	if l := t.Label(found); l != dst {
		class := "no class label"
		if l >= 0 && l < len(t.Classes) {
			class = fmt.Sprintf("class %q", t.Classes[l])
		}
		return 0, fmt.Errorf("attack: target image %q has %s, not the target class %q", a.TargetImageID, class, t.Classes[dst])
	}
	return found, nil
}
