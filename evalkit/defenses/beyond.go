package defenses

import (
	"fmt"
	"time"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/models/train"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/defense"
)

// KDistanceSpec configures the embedding-space detector: the independent clean checker (the same cached model
// Filter uses) embeds every pair of the poisoned training set, defense.KDistanceScores scores them, and pairs
// scoring above γ are dropped before fine-tuning.
type KDistanceSpec struct {
	// Score picks the score (Kind, default neighbour-contrast) and its number of neighbours K.
	Score defense.KDistanceOptions `json:"score"`
	// Threshold picks γ on the scores (fixed, quantile, or from a labelled sample).
	Threshold defense.Threshold `json:"threshold"`
	// LabelledPairs is the size of the labelled sample for the "labelled" threshold (0: 200), drawn as
	// FilterSpec's.
	LabelledPairs int `json:"labelled_pairs,omitempty"`
}

// Detection is what the detector found on the poisoned training set, before any fine-tuning.
type Detection struct {
	Gamma float64 `json:"gamma"`
	// Report is scored with the attack's poison manifest (defense.ReportFromManifest), with Gamma and Unscored
	// filled in from the filter run.
	Report *defense.FilterReport `json:"report"`
	// Scores and Poisoned describe every pair of the poisoned training set, for histograms.
	Scores   []float64 `json:"-"`
	Poisoned []bool    `json:"-"`
	// Filtered is the training set without the dropped pairs.
	Filtered *dataset.PairSet  `json:"-"`
	Checker  *experiment.Stage `json:"checker"`
	// CheckerModel describes the checker, e.g. "small pre-trained on the clean pool, seed 43".
	CheckerModel string `json:"checker_model,omitempty"`
	// Seconds is the detection's own cost: embedding every pair with the checker and scoring (the checker's
	// training is in Checker.Seconds, shared with Filter).
	Seconds float64 `json:"seconds"`
}

// KDistanceOutcome is the detection and how the model fine-tuned on the filtered set fares.
type KDistanceOutcome struct {
	Detection
	Model *experiment.Stage     `json:"model"`
	Eval  *experiment.ModelEval `json:"eval"`
}

// Detect runs the embedding-space detector with the checker ck on the spec's poisoned training set, without
// fine-tuning.
func Detect(d *experiment.Data, ck CheckerSpec, ks KDistanceSpec, opts experiment.Options) (*Detection, error) {
	c, err := runChecker("k-distance detector", d, ck, opts)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	out := &Detection{Checker: c.stage, CheckerModel: c.model, Poisoned: c.poisoned}
	so := ks.Score
	so.ImageOf = make([]int, len(c.pairs.Pairs))
	for i, p := range c.pairs.Pairs {
		so.ImageOf[i] = p.Image
	}
	if out.Scores, err = defense.KDistanceScores(c.img, c.txt, so); err != nil {
		return nil, fmt.Errorf("k-distance detector: %w", err)
	}
	if out.Gamma, err = defense.ChooseGamma(out.Scores, ks.Threshold, sample(c.pairs, ks.Threshold, ks.LabelledPairs, d.Spec.Seed)); err != nil {
		return nil, fmt.Errorf("k-distance detector: %w", err)
	}
	filtered, flagReport := defense.Filter(c.pairs, out.Scores, out.Gamma)
	filtered.Name = c.pairs.Name + "+kdistance"
	out.Filtered = filtered
	if out.Report, err = defense.ReportFromManifest(c.manifest, flagReport.DroppedIndices, len(c.pairs.Pairs)); err != nil {
		return nil, fmt.Errorf("k-distance detector: %w", err)
	}
	out.Report.Gamma, out.Report.Unscored = &out.Gamma, flagReport.Unscored
	out.Seconds = c.embedSeconds + time.Since(start).Seconds()
	return out, nil
}

// KDistance runs the embedding-space detector with the checker ck against the spec's attack, fine-tunes the
// pre-trained model on the pairs it keeps (as the victim would, cached), and evaluates the result: the
// counterpart of Filter.
//
// It is one of the two defenses beyond the paper's, chosen to complement its two on both sides of training:
//
//   - KDistance (and Detect) is a data-side detector that runs before training, like the paper's filter, but
//     judges each pair against its neighbours in the checker's embedding space instead of by one global
//     threshold on its own image-caption distance (see defense.KDistanceScores for why the neighbour-caption
//     contrast, and not a plain k-distance or LOF, separates coordinated poison);
//   - CleanCLIP is a training-side repair after the attack, like the paper's clean fine-tuning, but with
//     CleanCLIP's in-modality self-supervised terms (models/train's SelfSupervised), which make each tower
//     relearn its own modality and so weaken the cross-modal shortcut the poison planted.
//
// RoCLIP and SafeCLIP change the victim's training itself (matching captions to a pool during training,
// splitting pairs by similarity), so they need the poisoned training run redone with the defense inside; the
// two chosen here keep the paper's protocol (an independent checker before training, clean data after it), so
// all four defenses compare on equal terms in the defense × attack matrix.
func KDistance(d *experiment.Data, ck CheckerSpec, ks KDistanceSpec, opts experiment.Options) (*KDistanceOutcome, error) {
	det, err := Detect(d, ck, ks, opts)
	if err != nil {
		return nil, err
	}
	out := &KDistanceOutcome{Detection: *det}
	title := fmt.Sprintf("fine-tuning (k-distance filtered, γ=%.3f, %d pairs dropped)", det.Gamma, det.Report.Dropped)
	if out.Model, err = finetuneKept(d, "finetune-kdistance", title, det.Filtered, struct {
		Detector KDistanceSpec
		Checker  any
		Dropped  []int
	}{ks, ck.parts(d.Spec), det.Report.DroppedIndices}, opts); err != nil {
		return nil, err
	}
	if out.Eval, err = experiment.Evaluate(d, out.Model.Path, opts); err != nil {
		return nil, err
	}
	return out, nil
}

// CleanCLIPSpec configures CleanCLIP fine-tuning. The zero value is CleanCLIP's recipe: λ₁ = λ₂ = 1, EDA with
// α = 0.1 on the captions, train.DefaultImageAugment on the images.
type CleanCLIPSpec struct {
	// MultimodalWeight (λ₁) and UnimodalWeight (λ₂) weigh the CLIP loss and the in-modality losses; both 0 means
	// CleanCLIP's 1 and 1.
	MultimodalWeight float64 `json:"multimodal_weight,omitempty"`
	UnimodalWeight   float64 `json:"unimodal_weight,omitempty"`
	// Text is the caption augmentation (zero value: defense.DefaultEDA). Its Synonyms must be nil (the default
	// table) so that the cache key describes it.
	Text defense.EDA `json:"text"`
	// Image is the image augmentation (zero value: train.DefaultImageAugment).
	Image train.ImageAugment `json:"image"`
}

// resolved fills in the defaults.
func (cs CleanCLIPSpec) resolved() CleanCLIPSpec {
	if cs.MultimodalWeight == 0 && cs.UnimodalWeight == 0 {
		cs.MultimodalWeight, cs.UnimodalWeight = 1, 1
	}
	if t := cs.Text; t.Synonyms == nil && t.SynonymRate == 0 && t.InsertRate == 0 && t.SwapRate == 0 && t.DeleteProb == 0 {
		cs.Text = defense.DefaultEDA()
	}
	if cs.Image == (train.ImageAugment{}) {
		cs.Image = train.DefaultImageAugment()
	}
	return cs
}

// CleanCLIP is the counterpart of CleanFinetune with CleanCLIP's objective: it keeps fine-tuning the poisoned
// model on the held-out clean pairs (DataSpec.HeldOut images) one epoch at a time, with the CLIP loss plus the
// in-modality self-supervised losses on augmented images and captions (captions augmented on their token ids
// by defense.TokenEDA, a fresh view at every step), and evaluates after each epoch. Learning rate, batch size
// and schedule are CleanFinetune's, so the two differ only in the objective. Each epoch's model is cached. See
// KDistance for why these two defenses were chosen.
func CleanCLIP(d *experiment.Data, poisoned *experiment.Stage, epochs int, cs CleanCLIPSpec, opts experiment.Options) ([]*experiment.ModelEval, []*experiment.Stage, error) {
	if err := checkRepair("CleanCLIP fine-tuning", d, poisoned, epochs); err != nil {
		return nil, nil, err
	}
	cs = cs.resolved()
	if cs.Text.Synonyms != nil {
		return nil, nil, fmt.Errorf("CleanCLIP fine-tuning: custom synonym tables are not supported (they are not part of the cache key)")
	}
	words, ok := d.Tokenizer.(defense.WordTokenizer)
	if !ok {
		return nil, nil, fmt.Errorf("CleanCLIP fine-tuning: its text augmentation (EDA on token ids) needs a word-level tokenizer, "+
			"not the CLIP BPE of %s", d.Spec.Real.Tokenizer)
	}
	textAug, err := defense.NewTokenEDA(cs.Text, words)
	if err != nil {
		return nil, nil, fmt.Errorf("CleanCLIP fine-tuning: %w", err)
	}
	objective := &train.SelfSupervised{MultimodalWeight: cs.MultimodalWeight, UnimodalWeight: cs.UnimodalWeight,
		AugmentImage: cs.Image.Func(d.Model), AugmentText: textAug.Augment}
	return repair(d, poisoned, epochs, "cleanclip", "CleanCLIP fine-tuning", objective, cs, opts)
}
