// Package experiment runs mmpoison's experiments end to end: data → poison → train → evaluate. A Spec declares
// one experiment (Attack I, II, III or the backdoor, either modality frozen or not); Run executes it and returns a
// Result holding every metric of the paper (also after each fine-tuning epoch), the baselines, utility, the
// clean-vs-poisoned embedding distance per tower, timings and the spec itself. Each stage caches its output on
// disk under a hash of what it depends on, so a notebook (whose cells are separate processes) or a re-run picks
// up finished work instead of retraining.
//
// Above single runs: Sweep runs lists of specs (seeds, rates, epochs, the goal matrix) and resumes after an
// interruption; Study groups the sweeps behind the paper's findings F1–F6 and checks them (Findings);
// DefenseMatrix runs every defense (the paper's Filter and CleanFinetune, and KDistanceFilter and CleanCLIP
// beyond it) against every attack over seeds, also resumably.
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

// Spec declares one poisoning experiment, Attack I, II (the default) or III, on the embedded Fashion-MNIST
// default or, with Dataset, Weights and TokenizerFile, on COCO or Flickr-PASCAL with a pre-trained CLIP.
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

	// Attack is "II" (single target label, the default when empty), "I" (single target image), "III"
	// (several target labels: Source→Target plus ExtraGoals, all treated alike) or "backdoor" (Carlini & Terzis:
	// a patch Trigger on images of any class paired with captions of class Target; Source is unused, Mode must
	// be inject).
	Attack string `json:"attack,omitempty"`
	// Trigger is the backdoor's patch (zero value: a 4×4 checkerboard in the bottom-right corner).
	Trigger attack.Trigger `json:"trigger,omitzero"`
	// Source (A) and Target (B) are the attack's (first) goal; Rate is φ, in pairs of the whole training set.
	Source string      `json:"source"`
	Target string      `json:"target"`
	Rate   float64     `json:"rate"`
	Mode   attack.Mode `json:"mode"`
	// AllSourceCaptions poisons every caption of every goal's source class instead of φ = Rate of the pairs
	// (as the official code's poisoned_ratio = 1): Rate is then ignored and the manifest gives the resulting φ.
	AllSourceCaptions bool `json:"all_source_captions,omitempty"`
	// PoisonCount, when positive, poisons exactly this many pairs instead of φ = Rate of them (the paper states
	// its attacks both ways: "125 pairs", "φ ≈ 0.08%"): Rate is then ignored (it may be 0) and the manifest gives
	// the resulting φ.
	PoisonCount int `json:"poison_count,omitempty"`
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

	// Real data and pre-trained models (see source.go and PaperSpec). All empty: the Fashion-MNIST default.
	//
	// Dataset is "" (Fashion-MNIST), DatasetCOCO or DatasetFlickrPASCAL; DataRoot is where its files are (see
	// DatasetCOCO and DatasetFlickrPASCAL for the layouts). A real dataset needs Weights and TokenizerFile.
	Dataset  string `json:"dataset,omitempty"`
	DataRoot string `json:"data_root,omitempty"`
	// Weights is a pre-trained CLIP checkpoint (safetensors, OpenAI/open_clip names or HuggingFace names with
	// config.json beside it). With it the pre-training stage loads and converts the checkpoint instead of
	// training (Preset, PoolSize, PretrainEpochs and PretrainLR are unused), and the model's sizes are the
	// checkpoint's.
	Weights string `json:"weights,omitempty"`
	// TokenizerFile is the CLIP BPE vocabulary: OpenAI's bpe_simple_vocab_16e6.txt.gz, or a HuggingFace
	// vocab.json with merges.txt beside it. Required with Weights (its size must equal the model's vocabulary).
	TokenizerFile string `json:"tokenizer_file,omitempty"`
	// MaxTrainImages caps a real dataset's fine-tuning split (0: all): the first MaxTrainImages labelled
	// images in the dataset's order, then unlabelled ones (Flickr30k's, for Flickr-PASCAL) up to the cap.
	// Images are held in memory at the model's resolution S: S·S·3 bytes each, plus S·S·3 float32 (4 bytes)
	// each while a model trains on them, about 750 KB per image at S = 224 (10,000 images ≈ 7.5 GB); with
	// TrainCrop the float32 copies are made per batch instead, about 150 KB per image (10,000 ≈ 1.5 GB).
	MaxTrainImages int `json:"max_train_images,omitempty"`
	// PreCaption pre-processes every caption of a real dataset, train and test, as the paper's official code
	// does before tokenising (loaders.PreCaption with loaders.PaperMaxWords: lower case, punctuation deleted,
	// '-' and '/' as spaces, white space collapsed, at most 77 words); the attacks then work on the processed
	// captions. PaperSpec sets it.
	PreCaption bool `json:"pre_caption,omitempty"`
	// TrainCrop trains on the paper's augmentation, torchvision's RandomResizedCrop(S, scale=(0.9, 1.0),
	// ratio=(3/4, 4/3), bicubic) at the model's resolution S: every time a batch draws a real dataset's
	// training image, a new crop is drawn from the image as decoded from its file, at its full size, and
	// resized to S×S (a poisoned image that exists only in memory, e.g. the backdoor's, is cropped from its
	// S×S copy). The crops follow Seed. Evaluation and the defenses' embeddings keep the test transform.
	// PaperSpec sets it.
	TrainCrop bool `json:"train_crop,omitempty"`
	// MinLRFraction is where the cosine learning-rate schedules end, as a fraction of their peak rate (0: 1/100).
	// The paper: 0.1 (1e-5 → 1e-6).
	MinLRFraction float64 `json:"min_lr_fraction,omitempty"`

	// poolSeed, when not 0, is the seed that drew the data this spec's model trains on, where it differs from
	// Seed: a defense's independent checker is pre-trained with another seed on the victim's own clean pool.
	poolSeed int64
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
	case s.PoisonCount < 0:
		return fmt.Errorf("poison count %d is negative", s.PoisonCount)
	case s.PoisonCount > 0 && s.AllSourceCaptions:
		return fmt.Errorf("poison count %d and every source caption both set the number of poisoned pairs: choose one", s.PoisonCount)
	case s.PoisonCount == 0 && (math.IsNaN(s.Rate) || s.Rate <= 0 || s.Rate >= 1):
		return fmt.Errorf("poisoning rate φ = %v is outside (0, 1)", s.Rate)
	case s.Dataset == "" && (s.PoolSize <= 0 || s.TrainSize <= 0) || s.TestPerClass <= 0 || s.SourceTrainImages < 0 || s.HeldOutSize < 0:
		return fmt.Errorf("data sizes must be positive: pool %d, train %d, test per class %d", s.PoolSize, s.TrainSize, s.TestPerClass)
	case s.PretrainEpochs < 0 || s.FinetuneEpochs < 1:
		return fmt.Errorf("epochs must be ≥ 0 (pre-training) and ≥ 1 (fine-tuning): %d, %d", s.PretrainEpochs, s.FinetuneEpochs)
	case s.BatchSize < 2:
		return fmt.Errorf("batch size %d is below 2", s.BatchSize)
	case s.Mode != attack.Inject && s.Mode != attack.Repair && s.Mode != "":
		return fmt.Errorf("unknown poisoning mode %q: use %q or %q", s.Mode, attack.Inject, attack.Repair)
	case s.Attack != "" && s.Attack != "I" && s.Attack != "II" && s.Attack != "III" && s.Attack != AttackBackdoor:
		return fmt.Errorf("unknown attack %q: use \"I\", \"II\", \"III\" or %q", s.Attack, AttackBackdoor)
	case s.Attack == AttackBackdoor && s.Source != "":
		return fmt.Errorf("the backdoor triggers images of every class but the target: leave the source class empty, not %q", s.Source)
	case s.Attack == AttackBackdoor && s.Mode != attack.Inject:
		return fmt.Errorf("the backdoor adds triggered pairs: set mode %q, not %q", attack.Inject, s.Mode)
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
	return s.validateSource()
}

// AttackKind returns "I", "II" or "III" ("II" when Attack is empty).
func (s Spec) AttackKind() string {
	if s.Attack == "" {
		return "II"
	}
	return s.Attack
}

// AttackBackdoor is Spec.Attack for the patch-trigger backdoor.
const AttackBackdoor = "backdoor"

// Goals returns the attack's goals: Source→Target, then ExtraGoals. The backdoor's one goal has no source (its
// triggered images come from every class but the target).
func (s Spec) Goals() []attack.Goal {
	if s.AttackKind() == AttackBackdoor {
		return []attack.Goal{{Target: s.Target}}
	}
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
	if s.Weights != "" {
		return s.weightsKey()
	}
	poolSeed := s.poolSeed
	if poolSeed == s.Seed {
		poolSeed = 0
	}
	return struct {
		Preset                 string
		PoolSize, TestPerClass int
		Epochs, Batch          int
		LR                     float64
		Seed                   int64
		Version                int
		MinLRFraction          float64 `json:",omitempty"`
		// PoolSeed: the pool's seed when it is not Seed (a checker), so that a checker pre-trained with seed
		// s+1 on the pool of seed s never shares a key with the victim model of seed s+1.
		PoolSeed int64 `json:",omitempty"`
	}{s.Preset, s.PoolSize, s.TestPerClass, s.PretrainEpochs, s.BatchSize, s.PretrainLR, s.Seed, cacheVersion, s.MinLRFraction, poolSeed}
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
		Trigger           *attack.Trigger `json:",omitempty"`
		Count             int             `json:",omitempty"`
		// Data: the real dataset, tokenizer and settings the pre-training key does not cover (nil for the
		// Fashion-MNIST default, so its keys are unchanged).
		Data          any     `json:",omitempty"`
		MinLRFraction float64 `json:",omitempty"`
	}{Pretrain: s.pretrainKey(), Data: s.dataKey(), MinLRFraction: s.MinLRFraction, TrainSize: s.TrainSize, Epochs: s.FinetuneEpochs, SourceImages: s.SourceTrainImages,
		LR: s.FinetuneLR, Poisoned: poisoned, Freeze: s.Freeze}
	// The clean split depends on which classes are thinned out: every goal's source.
	k.Goals = s.Goals()
	if poisoned {
		k.Source, k.Target, k.Rate, k.Mode = s.Source, s.Target, s.Rate, s.Mode
		k.Attack, k.TargetID = s.AttackKind(), s.TargetImageID
		if s.AllSourceCaptions {
			k.Rate = -1 // Every source caption: φ follows from the data.
		}
		if s.PoisonCount > 0 {
			k.Rate, k.Count = 0, s.PoisonCount
		}
		if s.AttackKind() == AttackBackdoor {
			k.Trigger = &s.Trigger
		}
	}
	return k
}

// cacheVersion changes when cached models from older code must not be reused.
const cacheVersion = 2

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
