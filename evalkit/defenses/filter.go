package defenses

import (
	"fmt"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/models/train"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/defense"
)

// FilterSpec configures the paper's pre-training filter: the independent clean checker embeds every pair of
// the poisoned training set, and pairs whose cosine distance exceeds γ are dropped before fine-tuning.
type FilterSpec struct {
	// Threshold picks γ (fixed, quantile, or from a labelled sample).
	Threshold defense.Threshold `json:"threshold"`
	// LabelledPairs is the size of the labelled sample for the "labelled" threshold (0: 200), drawn by the
	// seed from the poisoned training set (its flags play the defender's hand labels).
	LabelledPairs int `json:"labelled_pairs,omitempty"`
}

// FilterOutcome is what the filter did and how the model fine-tuned on the filtered set fares.
type FilterOutcome struct {
	Gamma  float64               `json:"gamma"`
	Report *defense.FilterReport `json:"report"`
	// Distances and Poisoned describe every pair of the poisoned training set, for the histogram.
	Distances []float64         `json:"-"`
	Poisoned  []bool            `json:"-"`
	Checker   *experiment.Stage `json:"checker"`
	// CheckerModel describes the checker, e.g. "small pre-trained on the clean pool, seed 43".
	CheckerModel string                `json:"checker_model,omitempty"`
	Model        *experiment.Stage     `json:"model"`
	Eval         *experiment.ModelEval `json:"eval"`
}

// Filter runs the pre-training filter with the checker ck against the spec's attack, fine-tunes the
// pre-trained model on the pairs it keeps (as the victim would, cached) and evaluates the result.
func Filter(d *experiment.Data, ck CheckerSpec, fs FilterSpec, opts experiment.Options) (*FilterOutcome, error) {
	c, err := runChecker("filter", d, ck, opts)
	if err != nil {
		return nil, err
	}
	out := &FilterOutcome{Checker: c.stage, CheckerModel: c.model, Poisoned: c.poisoned}
	if out.Distances, err = defense.PairDistances(c.img, c.txt); err != nil {
		return nil, err
	}
	if out.Gamma, err = defense.ChooseGamma(out.Distances, fs.Threshold, sample(c.pairs, fs.Threshold, fs.LabelledPairs, d.Spec.Seed)); err != nil {
		return nil, fmt.Errorf("filter: %w", err)
	}
	filtered, report := defense.Filter(c.pairs, out.Distances, out.Gamma)
	out.Report = report
	title := fmt.Sprintf("fine-tuning (filtered, γ=%.3f, %d pairs dropped)", out.Gamma, report.Dropped)
	if out.Model, err = finetuneKept(d, "finetune-filtered", title, filtered, struct {
		Filter  FilterSpec
		Checker any
	}{fs, ck.parts(d.Spec)}, opts); err != nil {
		return nil, err
	}
	if out.Eval, err = experiment.Evaluate(d, out.Model.Path, opts); err != nil {
		return nil, err
	}
	return out, nil
}

// finetuneKept fine-tunes the pre-trained model on the pairs a data-side defense kept, with the victim's
// fine-tuning recipe; parts are the defense's settings that chose the pairs.
func finetuneKept(d *experiment.Data, stage, title string, kept *dataset.PairSet, parts any, opts experiment.Options) (*experiment.Stage, error) {
	pretrained, err := experiment.Pretrain(d, opts)
	if err != nil {
		return nil, err
	}
	return experiment.Train(d, experiment.TrainRequest{Stage: stage, Title: title, From: pretrained, Pairs: kept,
		Recipe: d.Spec.Finetune, Parts: parts}, opts)
}

// sample is the labelled sample a "labelled" threshold needs (nil for the others).
func sample(ps *dataset.PairSet, th defense.Threshold, n int, seed int64) *defense.LabelledSample {
	if th.Kind != defense.KindLabelled {
		return nil
	}
	return labelledSample(ps, n, seed)
}

// labelledSample is LabelledSample for the pairs of ps, labelled by their Poisoned flags.
func labelledSample(ps *dataset.PairSet, n int, seed int64) *defense.LabelledSample {
	return LabelledSample(len(ps.Pairs), n, seed, func(i int) bool { return ps.Pairs[i].Poisoned })
}

// LabelledSample draws n of total pairs by the seed (0: 200) and labels them with poisoned, topping up with
// poisoned pairs so the sample holds at least one of each (the defender labels a few suspicious pairs by hand):
// the sample a "labelled" filter threshold is chosen from.
func LabelledSample(total, n int, seed int64, poisoned func(int) bool) *defense.LabelledSample {
	if n <= 0 {
		n = 200
	}
	s := &defense.LabelledSample{}
	order := train.Order(uint64(seed), 0x6c61, total)
	for _, i := range order[:min(n, len(order))] {
		if poisoned(i) {
			s.Poisoned = append(s.Poisoned, i)
		} else {
			s.Clean = append(s.Clean, i)
		}
	}
	for _, i := range order[min(n, len(order)):] {
		if len(s.Poisoned) > 0 {
			break
		}
		if poisoned(i) {
			s.Poisoned = append(s.Poisoned, i)
		}
	}
	return s
}

// CleanFinetune runs the paper's post-training defense: it keeps fine-tuning the poisoned model on clean pairs
// the victim never saw (the held-out split, DataSpec.HeldOut images), one epoch at a time with the
// fine-tuning learning rate, and evaluates after each epoch. Each epoch's model is cached.
func CleanFinetune(d *experiment.Data, poisoned *experiment.Stage, epochs int, opts experiment.Options) ([]*experiment.ModelEval, []*experiment.Stage, error) {
	if err := checkRepair("clean fine-tuning", d, poisoned, epochs); err != nil {
		return nil, nil, err
	}
	return repair(d, poisoned, epochs, "clean-finetune", "clean fine-tuning", nil, nil, opts)
}

// checkRepair checks the inputs of a post-training defense named what.
func checkRepair(what string, d *experiment.Data, poisoned *experiment.Stage, epochs int) error {
	switch {
	case d.Splits.HeldOut == nil || len(d.Splits.HeldOut.Examples) == 0:
		return fmt.Errorf("%s needs held-out clean data: set Data.HeldOut in the spec", what)
	case epochs < 1:
		return fmt.Errorf("%s epochs must be ≥ 1, got %d", what, epochs)
	case poisoned == nil:
		return fmt.Errorf("%s needs the poisoned model's stage, got nil", what)
	}
	return nil
}

// repair fine-tunes from the poisoned model on the held-out pairs one epoch at a time (cache stage name
// stage, progress title what), with objective (nil: the CLIP loss) identified by parts, and evaluates each
// epoch's model.
func repair(d *experiment.Data, poisoned *experiment.Stage, epochs int, stage, what string, objective *train.SelfSupervised,
	parts any, opts experiment.Options) ([]*experiment.ModelEval, []*experiment.Stage, error) {
	recipe := experiment.StageSpec{Epochs: 1, LR: d.Spec.Finetune.LR, MinLRFraction: d.Spec.Finetune.MinLRFraction}
	var evals []*experiment.ModelEval
	var stages []*experiment.Stage
	prev := poisoned
	for e := 1; e <= epochs; e++ {
		st, err := experiment.Train(d, experiment.TrainRequest{Stage: stage, Title: fmt.Sprintf("%s, epoch %d", what, e),
			From: prev, Pairs: d.Splits.HeldOut.Pairs(), Recipe: recipe, SelfSupervised: objective, Parts: parts}, opts)
		if err != nil {
			return nil, nil, err
		}
		ev, err := experiment.Evaluate(d, st.Path, opts)
		if err != nil {
			return nil, nil, err
		}
		evals, stages, prev = append(evals, ev), append(stages, st), st
	}
	return evals, stages, nil
}
