package experiment

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/train"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/defense"
)

// FilterSpec configures the paper's pre-training filter: an independent clean model (by default the spec's
// pre-training recipe with another seed; or another preset, or a loaded checkpoint, as the paper's ViT-B/16
// checker of a ViT-B/32 victim) embeds every pair of the poisoned training set, and pairs whose cosine distance
// exceeds γ are dropped before fine-tuning.
type FilterSpec struct {
	// Threshold picks γ (fixed, quantile, or from a labelled sample).
	Threshold defense.Threshold `json:"threshold"`
	// CheckerSeed seeds the independent clean model when it is pre-trained here (0: the spec's seed + 1);
	// unused with CheckerWeights.
	CheckerSeed int64 `json:"checker_seed"`
	// CheckerPreset, when set, pre-trains the checker with this model preset (see clip.Presets, e.g. "small"
	// for a "tiny" victim) instead of the spec's, with the rest of the spec's recipe, on the same clean pool
	// (cached like any pre-training). Not with a spec that loads Weights (it has no pool to pre-train on).
	CheckerPreset string `json:"checker_preset,omitempty"`
	// CheckerWeights, when set, is the checker instead of a model pre-trained here: an mmpoison checkpoint
	// (written by clip.Save, e.g. a cached pre-training stage, used as is) or OpenAI / open_clip / HuggingFace
	// CLIP safetensors (converted once and cached, as Spec.Weights). Its own config decides the images' size,
	// channels and normalisation (Fashion-MNIST's 28×28 grayscale images are resized and repeated over RGB for
	// a 224 px RGB checker) and its context length.
	CheckerWeights string `json:"checker_weights,omitempty"`
	// CheckerTokenizer is the CLIP BPE vocabulary of CheckerWeights (bpe_simple_vocab_16e6.txt.gz, or a
	// HuggingFace vocab.json with merges.txt beside it); empty: the spec's tokenizer (the Fashion-MNIST
	// word-level one, for a checkpoint trained here on its captions). Its vocabulary size must be the checker's.
	CheckerTokenizer string `json:"checker_tokenizer,omitempty"`
	// LabelledPairs is the size of the labelled sample for the "labelled" threshold, drawn by the seed from the
	// poisoned training set (its flags play the defender's hand labels).
	LabelledPairs int `json:"labelled_pairs,omitempty"`
}

// FilterOutcome is what the filter did and how the model fine-tuned on the filtered set fares.
type FilterOutcome struct {
	Gamma  float64               `json:"gamma"`
	Report *defense.FilterReport `json:"report"`
	// Distances and Poisoned describe every pair of the poisoned training set, for the histogram.
	Distances []float64 `json:"-"`
	Poisoned  []bool    `json:"-"`
	Checker   *Stage    `json:"checker"`
	// CheckerModel describes the checker, e.g. "small pre-trained on the clean pool, seed 43".
	CheckerModel string     `json:"checker_model,omitempty"`
	Model        *Stage     `json:"model"`
	Eval         *ModelEval `json:"eval"`
}

// Filter runs the pre-training filter defense against the spec's attack and evaluates the resulting model.
func Filter(d *Data, fs FilterSpec, opts Options) (*FilterOutcome, error) {
	ck := fs.checker()
	if err := ck.validate(d.Spec); err != nil {
		return nil, fmt.Errorf("filter: %w", err)
	}
	out := &FilterOutcome{}
	var err error
	if out.Checker, err = ck.stage(d, opts); err != nil {
		return nil, fmt.Errorf("filter: independent clean model: %w", err)
	}
	poisoned, _, err := Poison(d)
	if err != nil {
		return nil, err
	}
	img, txt, cfg, err := ck.embedPairs(d, out.Checker.Path, poisoned, opts)
	if err != nil {
		return nil, fmt.Errorf("filter: %w", err)
	}
	if out.Distances, err = defense.PairDistances(img, txt); err != nil {
		return nil, err
	}
	out.CheckerModel = ck.describe(d, cfg)
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
	key := filterKey(d, fs)
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

// filterKey is what the filtered model depends on: the attacked fine-tuning, the filter's settings, the
// checker's seed and, with CheckerWeights, its files (left out otherwise, so that the keys of checkers
// pre-trained here are as before the checker could be chosen).
func filterKey(d *Data, fs FilterSpec) any {
	return struct {
		Finetune     any
		Filter       FilterSpec
		Checker      int64
		CheckerFiles any `json:",omitempty"`
	}{d.Spec.finetuneKey(true), fs, checkerSpecFor(d, fs.CheckerSeed).Seed, fs.checker().filesKey()}
}

// pairDistances embeds every pair of ps with the model at path (its own config, the spec's tokenizer) and
// returns 1 − cos(image, caption) per pair.
func pairDistances(d *Data, path string, ps *dataset.PairSet, opts Options) ([]float64, error) {
	img, txt, _, err := checkerChoice{}.embedPairs(d, path, ps, opts)
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
