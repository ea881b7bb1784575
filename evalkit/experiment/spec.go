// Package experiment runs one data-poisoning experiment on CLIP end to end: load → poison → train → evaluate.
//
// A Spec declares the experiment in typed parts: the model, the data sizes, the attack (an attack.Spec, whose
// kind comes from poisoning/attack's registry), the pre-training and fine-tuning recipes, and optionally a
// pre-trained checkpoint on real data. LoadData loads the splits and the tokenizer; Poison applies the attack;
// Pretrain and Finetune train (or load from the cache) the clean pre-trained model and the clean and poisoned
// fine-tuned ones; Evaluate measures a model as the attack's kind says (attack.Evaluation); Run does all of it
// and returns a Result with every metric, also after each fine-tuning epoch. Each stage is an entry of
// evalkit/cache keyed by the spec parts it reads, so a notebook cell or a re-run loads finished models instead
// of retraining them.
//
// Sweeps and their statistics live in evalkit/sweep, the paper's attack study in evalkit/study, and the
// defenses with the defense × attack matrix in evalkit/defenses; they build on Train, the one entry point for
// models derived from the experiment's.
package experiment

import (
	"fmt"
	"math"

	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/fashionmnist"
)

// Spec declares one poisoning experiment: on the Fashion-MNIST default with a model pre-trained here,
// or, with Real, fine-tuning a pre-trained checkpoint on COCO, Flickr-PASCAL or Fashion-MNIST.
type Spec struct {
	// Model is the CLIP model preset (see clip.Presets); unused with Real.Weights, whose checkpoint decides.
	Model string `json:"model"`
	// Data sizes the splits.
	Data DataSpec `json:"data"`
	// Attack is the attack's kind and parameters; its seed is Seed.
	Attack attack.Spec `json:"attack"`
	// Pretrain is the clean pre-training on the pool (unused with Real.Weights).
	Pretrain StageSpec `json:"pretrain"`
	// Finetune is the fine-tuning of the pre-trained model on the train split, clean and poisoned.
	Finetune StageSpec `json:"finetune"`
	// Batch is the batch size of every training.
	Batch int `json:"batch"`
	// Devices is the number of devices every training splits its batches over, data-parallel (0 or 1: one;
	// XLA only, see models/train.Options.Devices). Batch must be a multiple of it.
	Devices int `json:"devices,omitempty"`
	// Real is the pre-trained checkpoint and real dataset (zero value: the Fashion-MNIST default).
	Real RealSpec `json:"real,omitzero"`
	// Seed drives data splits, captions, poison selection, initialisation and data order.
	Seed int64 `json:"seed"`

	// poolSeed, when not 0, is the seed that drew the pool a model with this spec pre-trains on, where it
	// differs from Seed: a defense's independent checker pre-trains with its own seed on the victim's pool.
	poolSeed int64
}

// DataSpec sizes the data. Pool and Train are Fashion-MNIST's; a real dataset has its own train split.
type DataSpec struct {
	// Pool is the number of images in the clean pre-training pool, Train in the fine-tuning train split.
	Pool  int `json:"pool"`
	Train int `json:"train"`
	// TestPerClass is the number of test images per class.
	TestPerClass int `json:"test_per_class"`
	// HeldOut is the number of clean images kept apart from pool and train for the post-training defenses
	// (0: none).
	HeldOut int `json:"held_out,omitempty"`
	// SourceImages is how many images of each goal's source class the fine-tuning split keeps (0: all). As in
	// the paper's Flickr-PASCAL setup (25 sheep images among 30,000), the attacked class is rare in the
	// victim's fine-tuning data, so a small φ can cover its captions.
	SourceImages int `json:"source_images,omitempty"`
	// Dir, if set, is where the Fashion-MNIST files are (otherwise the usual search order).
	Dir string `json:"-"`
}

// StageSpec is the recipe of one training stage.
type StageSpec struct {
	// Epochs over the stage's training pairs.
	Epochs int `json:"epochs"`
	// LR is the peak learning rate of the cosine schedule, MinLRFraction where it ends as a fraction of the
	// peak (0: 1/100; the paper: 0.1, 1e-5 → 1e-6).
	LR            float64 `json:"lr"`
	MinLRFraction float64 `json:"min_lr_fraction,omitempty"`
	// Freeze names the towers kept fixed ("visual", "text"), to ask which modality is more vulnerable; the
	// whole tower is frozen, embeddings and projection included.
	Freeze []string `json:"freeze,omitempty"`
}

// minLRFraction is where the stage's cosine schedule ends, as a fraction of the peak rate.
func (st StageSpec) minLRFraction() float64 {
	if st.MinLRFraction > 0 {
		return st.MinLRFraction
	}
	return 0.01
}

// DefaultSpec is the demo: a tiny CLIP pre-trained on 10,000 clean Fashion-MNIST images, then fine-tuned on
// 2,000 images (220 per class but only 20 trousers) re-paired by Attack II trouser → bag at φ = 1%: the 100
// captions of the 20 trouser images now describe bag images, as in the paper's official code.
func DefaultSpec() Spec {
	return Spec{Model: "tiny", Data: DataSpec{Pool: 10000, Train: 2200, TestPerClass: 25, SourceImages: 20},
		Attack: attack.Spec{Kind: attack.KindSingleLabel, Goals: []attack.Goal{{Source: "trouser", Target: "bag"}},
			Rate: 0.01, Mode: attack.Repair},
		Pretrain: StageSpec{Epochs: 1, LR: 1e-3}, Finetune: StageSpec{Epochs: 2, LR: 2e-4}, Batch: 64, Seed: 42}
}

// QuickSpec is DefaultSpec at about a third of the size (3,000 pool images, 1,100 fine-tuning images with 10
// trousers, φ = 1%): a few minutes on 2 cores. Tests and notebooks in CI use it.
func QuickSpec() Spec {
	s := DefaultSpec()
	s.Data.Pool, s.Data.Train, s.Data.SourceImages = 3000, 1100, 10
	return s
}

// Validate checks every part of the spec and names the first bad value.
func (s Spec) Validate() error {
	if err := s.Real.validate(); err != nil {
		return err
	}
	if err := s.Data.validate(s.Real.Dataset == ""); err != nil {
		return err
	}
	if err := s.Attack.Validate(); err != nil {
		return err
	}
	if s.Real.Dataset == "" {
		if err := knownClasses(s.Attack.Goals, fashionmnist.ShortNames()); err != nil {
			return err
		}
	}
	if s.Real.Weights == "" {
		if _, err := clip.Preset(s.Model); err != nil {
			return err
		}
		if err := s.Pretrain.validate("pre-training", 0); err != nil {
			return err
		}
	}
	if err := s.Finetune.validate("fine-tuning", 1); err != nil {
		return err
	}
	if s.Batch < 2 {
		return fmt.Errorf("batch size %d is below 2", s.Batch)
	}
	if s.Devices < 0 || s.Devices > 1 && s.Batch%s.Devices != 0 {
		return fmt.Errorf("batch size %d cannot be split over %d devices", s.Batch, s.Devices)
	}
	return nil
}

// devices is Devices with 0 for one device, as cache keys hold it (a spec that never named devices keeps its
// keys).
func (s Spec) devices() int {
	if s.Devices <= 1 {
		return 0
	}
	return s.Devices
}

// knownClasses checks that every class the goals name is one of classes (as dataset.ClassIndex reads names).
func knownClasses(goals []attack.Goal, classes []string) error {
	for i, g := range goals {
		for _, c := range []struct{ role, name string }{{"source", g.Source}, {"target", g.Target}} {
			if c.name == "" {
				continue
			}
			if _, err := dataset.ClassIndex(classes, c.name); err != nil {
				return fmt.Errorf("attack goal %d's %s class: %w", i, c.role, err)
			}
		}
	}
	return nil
}

func (d DataSpec) validate(fashion bool) error {
	if fashion && (d.Pool <= 0 || d.Train <= 0) || d.TestPerClass <= 0 || d.SourceImages < 0 || d.HeldOut < 0 {
		return fmt.Errorf("data sizes must be positive: pool %d, train %d, test per class %d, source images %d, held out %d",
			d.Pool, d.Train, d.TestPerClass, d.SourceImages, d.HeldOut)
	}
	return nil
}

// validate checks a stage recipe named what with at least minEpochs epochs.
func (st StageSpec) validate(what string, minEpochs int) error {
	switch {
	case st.Epochs < minEpochs:
		return fmt.Errorf("%s epochs must be ≥ %d: %d", what, minEpochs, st.Epochs)
	case st.Epochs > 0 && (!(st.LR > 0) || math.IsInf(st.LR, 1)):
		return fmt.Errorf("%s learning rate %v is not a positive number", what, st.LR)
	case !(st.MinLRFraction >= 0 && st.MinLRFraction <= 1):
		return fmt.Errorf("%s MinLRFraction %v is outside [0, 1]", what, st.MinLRFraction)
	}
	for _, f := range st.Freeze {
		if f != "visual" && f != "text" {
			return fmt.Errorf("%s cannot freeze %q: use \"visual\" or \"text\"", what, f)
		}
	}
	return nil
}

// StandardAttack returns s attacked the standard way of kind: its attack.Definition's Standard setting derived
// from s.Attack, with the fine-tuning epochs the setting asks for. The defense matrix and "mmpoison demo
// -attack K" run these.
func (s Spec) StandardAttack(kind attack.Kind) (Spec, error) {
	def, err := attack.Lookup(kind)
	if err != nil {
		return s, err
	}
	st := def.Standard(s.Attack)
	s.Attack = st.Attack
	if st.FinetuneEpochs > 0 {
		s.Finetune.Epochs = st.FinetuneEpochs
	}
	return s, nil
}

// CacheParts returns what identifies the spec in cache keys: every part, the attack resolved (two specs of the
// same attack give the same parts), the real-data files by their identity (path, size, modification time) and
// the pool's seed. Sweeps and the defense matrix key their entries by it.
func (s Spec) CacheParts() any {
	resolved, err := s.Attack.Resolved()
	if err != nil {
		resolved = s.Attack // Invalid specs never reach a cache; keep them distinct anyway.
	}
	// The embedded spec brings every field; the ones below replace theirs (a shallower JSON name wins).
	return struct {
		Spec
		Attack   attack.Spec `json:"attack"`
		Real     *realParts  `json:"real,omitempty"`
		PoolSeed int64       `json:"pool_seed"`
		Devices  int         `json:"devices,omitempty"`
	}{Spec: s, Attack: resolved, Real: s.Real.parts(), PoolSeed: s.poolSeedOrSeed(), Devices: s.devices()}
}

// poolSeedOrSeed is the seed that drew the pre-training pool.
func (s Spec) poolSeedOrSeed() int64 {
	if s.poolSeed != 0 {
		return s.poolSeed
	}
	return s.Seed
}
