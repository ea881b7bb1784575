// Package experiment runs mmpoison's experiments end to end: data → poison → train → evaluate. A Spec declares
// one experiment; Run executes it and returns a Result holding every metric of the paper, the baselines, utility,
// timings and the spec itself. Each stage caches its output on disk under a hash of what it depends on, so a
// notebook (whose cells are separate processes) or a re-run picks up finished work instead of retraining.
package experiment

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/mmpoison/mmpoison/poisoning/attack"
)

// Spec declares one poisoning experiment on the embedded Fashion-MNIST default: Attack I, II (the default) or III.
type Spec struct {
	// Preset is the CLIP model size (see clip.Presets).
	Preset string `json:"preset"`
	// Data sizes: images in the clean pre-training pool, the fine-tuning train split, and test images per class.
	PoolSize     int `json:"pool_size"`
	TrainSize    int `json:"train_size"`
	TestPerClass int `json:"test_per_class"`
	// HeldOutSize is the number of clean images kept apart from pool and train for the clean fine-tuning
	// defense (0: none).
	HeldOutSize int `json:"held_out_size,omitempty"`
	// SourceTrainImages is how many class-A images the fine-tuning split keeps (0: all). As in the paper's
	// Flickr-PASCAL setup (25 sheep images among 30,000), the attacked class is rare in the victim's fine-tuning
	// data, so a small φ can cover its captions.
	SourceTrainImages int `json:"source_train_images"`
	// DataDir, if set, is where the Fashion-MNIST files are (otherwise the usual search order).
	DataDir string `json:"-"`

	// Attack is "II" (single target label, the default when empty), "I" (single target image) or "III"
	// (several target labels: Source→Target plus ExtraGoals, all treated alike).
	Attack string `json:"attack,omitempty"`
	// Source (A) and Target (B) are the attack's (first) goal; Rate is φ, in pairs of the whole training set.
	Source string      `json:"source"`
	Target string      `json:"target"`
	Rate   float64     `json:"rate"`
	Mode   attack.Mode `json:"mode"`
	// TargetImageID is Attack I's x* (a class-B training image); empty: chosen from class B by the seed.
	TargetImageID string `json:"target_image_id,omitempty"`
	// ExtraGoals are Attack III's goals besides Source→Target.
	ExtraGoals []attack.Goal `json:"extra_goals,omitempty"`
	// Freeze names the towers kept fixed while fine-tuning ("visual", "text"), to ask which modality is more
	// vulnerable; the whole tower is frozen, embeddings and projection included.
	Freeze []string `json:"freeze,omitempty"`

	// Training: clean pre-training on the pool, then fine-tuning (clean and poisoned) on the train split.
	PretrainEpochs int     `json:"pretrain_epochs"`
	PretrainLR     float64 `json:"pretrain_lr"`
	FinetuneEpochs int     `json:"finetune_epochs"`
	FinetuneLR     float64 `json:"finetune_lr"`
	BatchSize      int     `json:"batch_size"`

	// Seed drives data splits, captions, poison selection, initialisation and data order.
	Seed int64 `json:"seed"`
}

// DefaultSpec is the demo: a tiny CLIP pre-trained on 10,000 clean Fashion-MNIST images, then fine-tuned on
// 2,000 images (220 per class but only 20 trousers) re-paired by Attack II trouser → bag at φ = 1%: the 100
// captions of the 20 trouser images now describe bag images, as in the paper's official code.
func DefaultSpec() Spec {
	return Spec{Preset: "tiny", PoolSize: 10000, TrainSize: 2200, TestPerClass: 25, SourceTrainImages: 20,
		Source: "trouser", Target: "bag", Rate: 0.01, Mode: attack.Repair,
		PretrainEpochs: 1, PretrainLR: 1e-3, FinetuneEpochs: 2, FinetuneLR: 2e-4, BatchSize: 64, Seed: 42}
}

// QuickSpec is DefaultSpec at about a third of the size (3,000 pool images, 1,100 fine-tuning images with 10
// trousers, φ = 1%): a few minutes on 2 cores. Tests and notebooks in CI use it.
func QuickSpec() Spec {
	s := DefaultSpec()
	s.PoolSize, s.TrainSize, s.SourceTrainImages = 3000, 1100, 10
	return s
}

// Validate checks the spec's values and names the first bad one.
func (s Spec) Validate() error {
	switch {
	case math.IsNaN(s.Rate) || s.Rate <= 0 || s.Rate >= 1:
		return fmt.Errorf("poisoning rate φ = %v is outside (0, 1)", s.Rate)
	case s.PoolSize <= 0 || s.TrainSize <= 0 || s.TestPerClass <= 0 || s.SourceTrainImages < 0 || s.HeldOutSize < 0:
		return fmt.Errorf("data sizes must be positive: pool %d, train %d, test per class %d", s.PoolSize, s.TrainSize, s.TestPerClass)
	case s.PretrainEpochs < 0 || s.FinetuneEpochs < 1:
		return fmt.Errorf("epochs must be ≥ 0 (pre-training) and ≥ 1 (fine-tuning): %d, %d", s.PretrainEpochs, s.FinetuneEpochs)
	case s.BatchSize < 2:
		return fmt.Errorf("batch size %d is below 2", s.BatchSize)
	case s.Mode != attack.Inject && s.Mode != attack.Repair && s.Mode != "":
		return fmt.Errorf("unknown poisoning mode %q: use %q or %q", s.Mode, attack.Inject, attack.Repair)
	case s.Attack != "" && s.Attack != "I" && s.Attack != "II" && s.Attack != "III":
		return fmt.Errorf("unknown attack %q: use \"I\", \"II\" or \"III\"", s.Attack)
	case len(s.ExtraGoals) > 0 && s.AttackKind() != "III":
		return fmt.Errorf("extra goals need attack \"III\", not %q", s.AttackKind())
	case s.TargetImageID != "" && s.AttackKind() != "I":
		return fmt.Errorf("a target image needs attack \"I\", not %q", s.AttackKind())
	}
	for _, f := range s.Freeze {
		if f != "visual" && f != "text" {
			return fmt.Errorf("cannot freeze %q: use \"visual\" or \"text\"", f)
		}
	}
	return nil
}

// AttackKind returns "I", "II" or "III" ("II" when Attack is empty).
func (s Spec) AttackKind() string {
	if s.Attack == "" {
		return "II"
	}
	return s.Attack
}

// Goals returns the attack's goals: Source→Target, then ExtraGoals.
func (s Spec) Goals() []attack.Goal {
	return append([]attack.Goal{{Source: s.Source, Target: s.Target}}, s.ExtraGoals...)
}

// hash returns a short hex digest of the JSON of v.
func hash(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}

// pretrainKey is what the clean pre-trained model depends on.
func (s Spec) pretrainKey() any {
	return struct {
		Preset                 string
		PoolSize, TestPerClass int
		Epochs, Batch          int
		LR                     float64
		Seed                   int64
		Version                int
	}{s.Preset, s.PoolSize, s.TestPerClass, s.PretrainEpochs, s.BatchSize, s.PretrainLR, s.Seed, cacheVersion}
}

// finetuneKey is what a fine-tuned model depends on; poisoned says whether the attack is applied.
func (s Spec) finetuneKey(poisoned bool) any {
	k := struct {
		Pretrain          any
		TrainSize, Epochs int
		SourceImages      int
		LR                float64
		Poisoned          bool
		Source, Target    string
		Rate              float64
		Mode              attack.Mode
		Attack, TargetID  string
		Goals             []attack.Goal
		Freeze            []string
	}{Pretrain: s.pretrainKey(), TrainSize: s.TrainSize, Epochs: s.FinetuneEpochs, SourceImages: s.SourceTrainImages,
		LR: s.FinetuneLR, Poisoned: poisoned, Freeze: s.Freeze}
	// The clean split depends on which classes are thinned out: every goal's source.
	k.Goals = s.Goals()
	if poisoned {
		k.Source, k.Target, k.Rate, k.Mode = s.Source, s.Target, s.Rate, s.Mode
		k.Attack, k.TargetID = s.AttackKind(), s.TargetImageID
	}
	return k
}

// cacheVersion changes when cached models from older code must not be reused.
const cacheVersion = 1

// CacheDir returns where trained models are cached: $MMPOISON_CACHE, or the user cache directory.
func CacheDir() (string, error) {
	if d := os.Getenv("MMPOISON_CACHE"); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory (set MMPOISON_CACHE): %w", err)
	}
	return filepath.Join(base, "mmpoison"), nil
}
