package experiment

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/mmpoison/mmpoison/evalkit/cache"
	"github.com/mmpoison/mmpoison/kernelext"
	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/train"
	"github.com/mmpoison/mmpoison/poisoning/atomicfile"
	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// pretrainParts is what the clean pre-trained model reads: the model preset, the pool (its size and the seed
// that drew it), the recipe, the batch size and devices, and the seed of initialisation and data order.
type pretrainParts struct {
	Model    string    `json:"model"`
	Pool     int       `json:"pool"`
	PoolSeed int64     `json:"pool_seed"`
	Pretrain StageSpec `json:"pretrain"`
	Batch    int       `json:"batch"`
	Devices  int       `json:"devices,omitempty"`
	Seed     int64     `json:"seed"`
}

// Pretrain trains (or loads from the cache) the clean model on the pool; with Spec.Real.Weights it converts
// the pre-trained checkpoint instead (cached by the file's path, size and modification time).
func Pretrain(d *Data, opts Options) (*Stage, error) {
	s := d.Spec
	if s.Real.Weights != "" {
		return convertedStage(opts, s.Real.Weights, func() (*context.Context, clip.Config, error) {
			ctx, err := d.pretrained()
			return ctx, d.Model, err
		})
	}
	key, err := pretrainKey(s)
	if err != nil {
		return nil, err
	}
	return cachedStage(opts, key, func(st *Stage) (*context.Context, clip.Config, error) {
		opts.resume = st
		ctx, hist, err := trainModel(d, &opts, "pre-training (clean pool)", nil, d.Splits.Pool.Pairs(), s.Pretrain)
		st.History = hist
		return ctx, d.Model, err
	})
}

// pretrainKey is the cache key of the clean pre-trained model of s (without Real.Weights).
func pretrainKey(s Spec) (cache.Key, error) {
	return cache.NewKey("pretrain", pretrainParts{Model: s.Model, Pool: s.Data.Pool, PoolSeed: s.poolSeedOrSeed(),
		Pretrain: s.Pretrain, Batch: s.Batch, Devices: s.devices(), Seed: s.Seed})
}

// finetuneKey is the cache key of the model fine-tuned from the pre-trained model with key from, clean or
// poisoned: the spec without the held-out size, which only the post-training defenses read.
func finetuneKey(s Spec, from string, poisoned bool) (cache.Key, error) {
	name := "finetune-clean"
	if poisoned {
		name = "finetune-poisoned"
	}
	s.Data.HeldOut = 0
	return cache.NewKey(name, struct {
		Spec any
		From string
	}{s.CacheParts(), from})
}

// Poison applies the spec's attack, seeded by Spec.Seed, to the train split.
func Poison(d *Data) (*dataset.PairSet, *attack.Manifest, error) {
	a, err := d.Spec.Attack.New(d.Spec.Seed)
	if err != nil {
		return nil, nil, err
	}
	return a.Apply(d.Splits.Train.Pairs())
}

// Finetune fine-tunes the pre-trained model on the train split, clean or poisoned (or loads it from the
// cache), and evaluates it after every epoch (Stage.Epochs).
func Finetune(d *Data, pretrained *Stage, poisoned bool, opts Options) (*Stage, error) {
	pairs := d.Splits.Train.Pairs()
	var manifest *attack.Manifest
	title := "fine-tuning (clean)"
	if poisoned {
		var err error
		if pairs, manifest, err = Poison(d); err != nil {
			return nil, err
		}
		title = fmt.Sprintf("fine-tuning (poisoned, φ=%.2f%%)", 100*manifest.Rate)
	}
	key, err := finetuneKey(d.Spec, pretrained.Key, poisoned)
	if err != nil {
		return nil, err
	}
	st, err := cachedStage(opts, key, func(st *Stage) (*context.Context, clip.Config, error) {
		init, _, err := clip.Load(pretrained.Path)
		if err != nil {
			return nil, d.Model, err
		}
		var emb *clip.Embedder // one for every epoch: on XLA each new one compiles both towers again
		opts.afterEpoch = func(ctx *context.Context, _ train.EpochStats) ([]kernelext.Field, error) {
			if emb == nil {
				b, err := opts.backend(d.Spec.Devices)
				if err != nil {
					return nil, err
				}
				if emb, err = clip.NewEmbedder(b, ctx, d.Model, 0); err != nil {
					return nil, err
				}
			}
			ev, _, err := evaluateEmbed(d, emb, d.Model)
			if err != nil {
				return nil, err
			}
			st.Epochs = append(st.Epochs, ev)
			return epochFields(ev), nil
		}
		opts.resume = st
		ctx, hist, err := trainModel(d, &opts, title, init, pairs, d.Spec.Finetune)
		st.History = hist
		return ctx, d.Model, err
	})
	if err != nil {
		return nil, err
	}
	st.Manifest = manifest
	return st, nil
}

// epochFields are the metrics a fine-tuning's progress display shows after each epoch.
func epochFields(ev *ModelEval) []kernelext.Field {
	if ev.Backdoor != nil {
		return []kernelext.Field{kernelext.F("trigger→target", ev.Backdoor.ZeroShot.Triggered.Rate)}
	}
	hit10, _ := ev.Attack.HitAt(10)
	return []kernelext.Field{kernelext.F("Hit@10", hit10), kernelext.F("MinRank", ev.Attack.MinRank.Mean)}
}

// evaluatePretrained evaluates the pre-trained model as the fine-tuned ones are (the baseline before any
// fine-tuning), or loads the evaluation from the cache: it is keyed by the spec, as the fine-tuning is, and the
// pre-trained model.
func evaluatePretrained(d *Data, pretrained *Stage, opts Options) (*ModelEval, error) {
	s := d.Spec
	s.Data.HeldOut = 0
	key, err := cache.NewKey("evaluate-pretrained", struct {
		Spec any
		From string
	}{s.CacheParts(), pretrained.Key})
	if err != nil {
		return nil, err
	}
	c, err := opts.cache()
	if err != nil {
		return nil, err
	}
	dir, _, err := c.Get(key, func(dir string) error {
		ev, err := Evaluate(d, pretrained.Path, opts)
		if err != nil {
			return err
		}
		data, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		return atomicfile.WriteFile(filepath.Join(dir, evalFile), data)
	})
	if err != nil {
		return nil, err
	}
	data, err := atomicfile.ReadFile(filepath.Join(dir, evalFile), MaxResultFile)
	if err != nil {
		return nil, err
	}
	ev := &ModelEval{}
	if err := json.Unmarshal(data, ev); err != nil {
		return nil, fmt.Errorf("cache entry %s: %w", dir, err)
	}
	if err := ev.Check(); err != nil {
		return nil, fmt.Errorf("cache entry %s: %w", dir, err)
	}
	return ev, nil
}

// evalFile is the file of an evaluation's cache entry.
const evalFile = "eval.json"
