package experiment

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/train"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/defense"
)

// FilterSpec configures the paper's pre-training filter: an independent clean model (the spec's pre-training
// recipe with another seed) embeds every pair of the poisoned training set, and pairs whose cosine distance
// exceeds γ are dropped before fine-tuning.
type FilterSpec struct {
	// Threshold picks γ (fixed, quantile, or from a labelled sample).
	Threshold defense.Threshold `json:"threshold"`
	// CheckerSeed seeds the independent clean model (0: the spec's seed + 1).
	CheckerSeed int64 `json:"checker_seed"`
	// LabelledPairs is the size of the labelled sample for the "labelled" threshold, drawn by the seed from the
	// poisoned training set (its flags play the defender's hand labels).
	LabelledPairs int `json:"labelled_pairs,omitempty"`
}

// FilterOutcome is what the filter did and how the model fine-tuned on the filtered set fares.
type FilterOutcome struct {
	Gamma  float64               `json:"gamma"`
	Report *defense.FilterReport `json:"report"`
	// Distances and Poisoned describe every pair of the poisoned training set, for the histogram.
	Distances []float64  `json:"-"`
	Poisoned  []bool     `json:"-"`
	Checker   *Stage     `json:"checker"`
	Model     *Stage     `json:"model"`
	Eval      *ModelEval `json:"eval"`
}

// Filter runs the pre-training filter defense against the spec's attack and evaluates the resulting model.
func Filter(d *Data, fs FilterSpec, opts Options) (*FilterOutcome, error) {
	checkerSpec := checkerSpecFor(d, fs.CheckerSeed)
	checkerData := *d
	checkerData.Spec = checkerSpec
	out := &FilterOutcome{}
	var err error
	if out.Checker, err = Pretrain(&checkerData, opts); err != nil {
		return nil, fmt.Errorf("filter: independent clean model: %w", err)
	}
	poisoned, _, err := Poison(d)
	if err != nil {
		return nil, err
	}
	if out.Distances, err = pairDistances(d, out.Checker.Path, poisoned, opts); err != nil {
		return nil, err
	}
	for _, p := range poisoned.Pairs {
		out.Poisoned = append(out.Poisoned, p.Poisoned)
	}
	var sample *defense.LabelledSample
	if fs.Threshold.Kind == defense.KindLabelled {
		sample = labelledSample(poisoned, fs.LabelledPairs, d.Spec.Seed)
	}
	if out.Gamma, err = defense.ChooseGamma(out.Distances, fs.Threshold, sample); err != nil {
		return nil, fmt.Errorf("filter: %w", err)
	}
	filtered, report := defense.Filter(poisoned, out.Distances, out.Gamma)
	out.Report = report
	key := struct {
		Finetune any
		Filter   FilterSpec
		Checker  int64
	}{d.Spec.finetuneKey(true), fs, checkerSpec.Seed}
	pretrained, err := Pretrain(d, opts)
	if err != nil {
		return nil, err
	}
	title := fmt.Sprintf("fine-tuning (filtered, γ=%.3f, %d pairs dropped)", out.Gamma, report.Dropped)
	out.Model, err = cached("finetune-filtered", key, func() (*context.Context, []train.EpochStats, error) {
		init, _, err := clip.Load(pretrained.Path)
		if err != nil {
			return nil, nil, err
		}
		return trainModel(d, &opts, title, init, filtered, d.Spec.FinetuneEpochs, d.Spec.FinetuneLR, d.Spec.Freeze)
	}, d.Model)
	if err != nil {
		return nil, err
	}
	if out.Eval, err = Evaluate(d, out.Model.Path, opts); err != nil {
		return nil, err
	}
	return out, nil
}

// pairDistances embeds every pair of ps with the model at path and returns 1 − cos(image, caption) per pair.
func pairDistances(d *Data, path string, ps *dataset.PairSet, opts Options) ([]float64, error) {
	img, txt, err := pairEmbeddings(d, path, ps, opts)
	if err != nil {
		return nil, err
	}
	return defense.PairDistances(img, txt)
}

// labelledSample draws n pairs by the seed and labels them with their Poisoned flags, topping up with poisoned
// pairs so the sample holds at least one of each (the defender labels a few suspicious pairs by hand).
func labelledSample(ps *dataset.PairSet, n int, seed int64) *defense.LabelledSample {
	if n <= 0 {
		n = 200
	}
	s := &defense.LabelledSample{}
	order := train.Order(uint64(seed), 0x6c61, len(ps.Pairs))
	for _, i := range order[:min(n, len(order))] {
		if ps.Pairs[i].Poisoned {
			s.Poisoned = append(s.Poisoned, i)
		} else {
			s.Clean = append(s.Clean, i)
		}
	}
	for _, i := range order[min(n, len(order)):] {
		if len(s.Poisoned) > 0 {
			break
		}
		if ps.Pairs[i].Poisoned {
			s.Poisoned = append(s.Poisoned, i)
		}
	}
	return s
}

// CleanFinetune runs the paper's post-training defense: it keeps fine-tuning the poisoned model on clean pairs
// the victim never saw (the held-out split, Spec.HeldOutSize images), one epoch at a time, and evaluates after
// each epoch. Each epoch's model is cached.
func CleanFinetune(d *Data, poisoned *Stage, epochs int, opts Options) ([]*ModelEval, []*Stage, error) {
	if d.Splits.HeldOut == nil || len(d.Splits.HeldOut.Examples) == 0 {
		return nil, nil, fmt.Errorf("clean fine-tuning needs held-out clean data: set HeldOutSize in the spec")
	}
	if epochs < 1 {
		return nil, nil, fmt.Errorf("clean fine-tuning epochs must be ≥ 1, got %d", epochs)
	}
	var evals []*ModelEval
	var stages []*Stage
	prev := poisoned
	for e := 1; e <= epochs; e++ {
		key := struct {
			Poisoned any
			HeldOut  int
			Epoch    int
		}{d.Spec.finetuneKey(true), d.Spec.HeldOutSize, e}
		from := prev
		title := fmt.Sprintf("clean fine-tuning, epoch %d", e)
		st, err := cached("clean-finetune", key, func() (*context.Context, []train.EpochStats, error) {
			init, _, err := clip.Load(from.Path)
			if err != nil {
				return nil, nil, err
			}
			return trainModel(d, &opts, title, init, d.Splits.HeldOut.Pairs(), 1, d.Spec.FinetuneLR, nil)
		}, d.Model)
		if err != nil {
			return nil, nil, err
		}
		ev, err := Evaluate(d, st.Path, opts)
		if err != nil {
			return nil, nil, err
		}
		evals, stages, prev = append(evals, ev), append(stages, st), st
	}
	return evals, stages, nil
}
