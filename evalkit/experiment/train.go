package experiment

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/mmpoison/mmpoison/evalkit/cache"
	"github.com/mmpoison/mmpoison/kernelext"
	"github.com/mmpoison/mmpoison/models/backend"
	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/safetensors"
	"github.com/mmpoison/mmpoison/models/train"
	"github.com/mmpoison/mmpoison/models/weights"
	"github.com/mmpoison/mmpoison/poisoning/atomicfile"
	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// Options control how a run reports progress and what it computes on.
type Options struct {
	// Backend computes everything (nil: backend.Default()).
	Backend backends.Backend
	// Log receives progress lines outside a notebook (nil: kernelext's output).
	Log io.Writer
	// Quiet turns off training progress.
	Quiet bool
	// CacheDir is the cache the models and evaluations are kept in ("": evalkit/cache's Root). A fresh folder
	// makes every stage train anew, with its progress shown, e.g. in a notebook whose usual cache already
	// holds the models.
	CacheDir string
	// StateEvery is how often a training stage also saves its resumable state within an epoch, so that a kill
	// costs at most this much training (0: DefaultStateEvery; negative: at the end of each epoch only).
	StateEvery time.Duration

	// afterEpoch, when set, is called by trainModel after every epoch with the model trained so far; the fields
	// it returns join the live progress display (e.g. Hit@10).
	afterEpoch func(ctx *context.Context, st train.EpochStats) ([]kernelext.Field, error)
	// resume, when set, is the stage trainModel trains: its training resumes from the state saved in the
	// stage's partial folder, and saves its state there after every epoch and every StateEvery (see resume.go).
	resume *Stage
}

// DefaultStateEvery is how often a training stage saves its state within an epoch when Options.StateEvery is 0.
const DefaultStateEvery = 2 * time.Minute

// stateEvery resolves StateEvery (0: never within an epoch).
func (o *Options) stateEvery() time.Duration {
	switch {
	case o.StateEvery == 0:
		return DefaultStateEvery
	case o.StateEvery < 0:
		return 0
	}
	return o.StateEvery
}

// cache is the cache of CacheDir.
func (o *Options) cache() (*cache.Cache, error) { return cache.Open(o.CacheDir) }

// backend returns the options' backend, or else the process's shared one, created with at least devices devices
// if nothing has made it yet.
func (o *Options) backend(devices int) (backends.Backend, error) {
	if o.Backend != nil {
		return o.Backend, nil
	}
	b, err := backend.DefaultDevices(max(devices, 1))
	o.Backend = b
	return b, err
}

// trainModel trains from init (nil: a fresh model seeded by the spec) on pairs with the recipe st, reporting
// progress; configure functions adjust the training options last (e.g. another objective).
func trainModel(d *Data, opts *Options, title string, init *context.Context, pairs *dataset.PairSet, st StageSpec,
	configure ...func(*train.Options)) (*context.Context, []train.EpochStats, error) {
	b, err := opts.backend(d.Spec.Devices)
	if err != nil {
		return nil, nil, err
	}
	ctx := init
	if ctx == nil {
		if ctx, err = clip.NewContext(d.Model, uint64(d.Spec.Seed)); err != nil {
			return nil, nil, err
		}
	}
	td, err := d.trainFeed(pairs)
	if err != nil {
		return nil, nil, err
	}
	to := train.DefaultOptions()
	to.Epochs, to.BatchSize, to.LearningRate, to.Seed = st.Epochs, d.Spec.Batch, st.LR, uint64(d.Spec.Seed)
	to.MinLearningRate = st.LR * st.minLRFraction()
	to.Freeze, to.Devices = st.Freeze, d.Spec.Devices
	steps := st.Epochs * (td.NumPairs() / to.BatchSize)
	to.WarmupSteps = min(50, steps/10)
	for _, c := range configure {
		c(&to)
	}
	progress := newProgress(opts, title, steps, &to, ctx)
	var tr *train.Trainer
	if opts.resume != nil {
		keepState(&to, &tr, opts.resume, opts.stateEvery())
	}
	if tr, err = train.New(b, d.Model, ctx, to); err != nil {
		return nil, nil, err
	}
	if opts.resume != nil {
		if err := resumeState(tr, opts.resume, opts); err != nil {
			return nil, nil, err
		}
	}
	hist, err := tr.Fit(td)
	if progress != nil {
		progress.Done()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", title, err)
	}
	if opts.resume != nil {
		hist = opts.resume.History // The epochs before a resumption too.
	}
	return ctx, hist, nil
}

// newProgress sets up the live progress display of a training (nil when quiet) and hooks it, with
// opts.afterEpoch, into the training options.
func newProgress(opts *Options, title string, steps int, to *train.Options, ctx *context.Context) *kernelext.Progress {
	var progress *kernelext.Progress
	if !opts.Quiet {
		var popts []kernelext.ProgressOption
		if opts.Log != nil {
			popts = append(popts, kernelext.WithWriter(opts.Log))
		}
		progress = kernelext.NewProgress(title, steps, popts...)
	}
	var epochFields []kernelext.Field // from afterEpoch, shown until the next epoch ends
	lastStep := 0
	if progress != nil {
		to.Progress = func(p train.Progress) {
			lastStep = p.Step
			progress.Update(p.Step, append([]kernelext.Field{kernelext.F("epoch", float64(p.Epoch)),
				kernelext.F("loss", p.Loss), kernelext.F("1/temperature", p.LogitScale)}, epochFields...)...)
		}
	}
	if opts.afterEpoch != nil {
		to.EpochEnd = func(st train.EpochStats) error {
			fields, err := opts.afterEpoch(ctx, st)
			if err != nil {
				return err
			}
			epochFields = fields
			if progress != nil {
				progress.Update(lastStep, append([]kernelext.Field{kernelext.F("epoch", float64(st.Epoch)),
					kernelext.F("loss", st.MeanLoss), kernelext.F("1/temperature", st.LogitScale)}, fields...)...)
			}
			return nil
		}
	}
	return progress
}

// Stage is a trained model kept in the cache, with its training history.
type Stage struct {
	// Path of the model (safetensors) and Key, the name of its cache entry (models derived from it include
	// it in their keys).
	Path string `json:"path"`
	Key  string `json:"key"`
	// History of its training epochs; Manifest of the poison (nil when clean).
	History  []train.EpochStats `json:"history"`
	Manifest *attack.Manifest   `json:"-"`
	// Epochs holds the model's evaluation after each training epoch (fine-tuning stages; the last one equals
	// the final evaluation), for metrics-versus-epoch figures.
	Epochs []*ModelEval `json:"epochs,omitempty"`
	// Cached is true when the model was loaded from the cache instead of trained.
	Cached  bool    `json:"cached"`
	Seconds float64 `json:"seconds"`

	// partial is the partial folder of the cache entry being produced (see resume.go).
	partial string
}

// Files of a stage's cache entry.
const (
	modelFile = "model.safetensors"
	stageFile = "stage.json"
)

// cachedStage returns the stage of key's cache entry, calling produce to make the model when the entry does
// not exist yet; produce returns the model's parameters and config, and fills in the stage's history and
// per-epoch evaluations. A produce that trains with opts.resume = st resumes a killed training; when its saved
// state is unusable (removed by then), produce runs again from the start.
func cachedStage(opts Options, key cache.Key, produce func(st *Stage) (*context.Context, clip.Config, error)) (*Stage, error) {
	c, err := opts.cache()
	if err != nil {
		return nil, err
	}
	var made *Stage
	dir, cached, err := c.Get(key, func(dir string) error {
		partial, err := c.Partial(key)
		if err != nil {
			return err
		}
		st := &Stage{partial: partial}
		start := time.Now()
		ctx, cfg, err := produce(st)
		if errors.Is(err, errStateUnusable) {
			st = &Stage{partial: partial}
			ctx, cfg, err = produce(st)
		}
		if err != nil {
			return err
		}
		st.Seconds = time.Since(start).Seconds()
		if err := clip.Save(filepath.Join(dir, modelFile), ctx, cfg); err != nil {
			return err
		}
		data, err := json.MarshalIndent(st, "", "  ")
		if err != nil {
			return err
		}
		made = st
		return atomicfile.WriteFile(filepath.Join(dir, stageFile), data)
	})
	if err != nil {
		return nil, err
	}
	st := made
	if st == nil || cached {
		st = &Stage{}
		if err := readStageFile(filepath.Join(dir, stageFile), st); err != nil {
			return nil, fmt.Errorf("cache entry %s: %w", dir, err)
		}
	}
	st.Path, st.Key, st.Cached = filepath.Join(dir, modelFile), key.Name(), cached
	return st, nil
}

// TrainRequest asks Train for a model derived from an experiment's.
type TrainRequest struct {
	// Stage names the model's cache entries (e.g. "finetune-filtered"); Title its progress display.
	Stage, Title string
	// From is the model training starts from; Pairs what it trains on, with the Recipe (epochs, learning
	// rate, frozen towers; the batch size and seed are the spec's).
	From   *Stage
	Pairs  *dataset.PairSet
	Recipe StageSpec
	// SelfSupervised, when set, is the training objective instead of the CLIP loss alone.
	SelfSupervised *train.SelfSupervised
	// Parts is what the model depends on besides the spec, From and Recipe: the settings that chose Pairs and
	// the objective. It is part of the cache key, so it must identify them.
	Parts any
}

// Train trains the model req asks for, or loads it from the cache: its key is derived from the spec (every
// part, see Spec.CacheParts), From's key, the recipe and req.Parts. The defenses derive their models with it.
func Train(d *Data, req TrainRequest, opts Options) (*Stage, error) {
	if req.From == nil {
		return nil, fmt.Errorf("%s: no model to start from", req.Title)
	}
	key, err := cache.NewKey(req.Stage, struct {
		Spec, Recipe any
		From         string
		Parts        any
	}{d.Spec.CacheParts(), req.Recipe, req.From.Key, req.Parts})
	if err != nil {
		return nil, err
	}
	return cachedStage(opts, key, func(st *Stage) (*context.Context, clip.Config, error) {
		init, _, err := clip.Load(req.From.Path)
		if err != nil {
			return nil, d.Model, err
		}
		var configure []func(*train.Options)
		if req.SelfSupervised != nil {
			configure = append(configure, func(o *train.Options) { o.SelfSupervised = req.SelfSupervised })
		}
		opts.resume = st
		ctx, hist, err := trainModel(d, &opts, req.Title, init, req.Pairs, req.Recipe, configure...)
		st.History = hist
		return ctx, d.Model, err
	})
}

// CheckpointStage returns the stage of a pre-trained checkpoint file: the file itself when it is an mmpoison
// checkpoint (its config in the metadata, as clip.Save and weights.SaveOpenAI write it), else its conversion
// by models/weights (OpenAI, open_clip or HuggingFace names, the latter with config.json beside it), cached as
// the pre-training stage of a spec with these Real.Weights is.
func CheckpointStage(path string) (*Stage, error) {
	if meta, err := safetensors.ReadMetadata(path); err == nil && meta[clip.MetadataConfig] != "" {
		key, err := cache.NewKey("checkpoint", cache.IdentifyFile(path))
		if err != nil {
			return nil, err
		}
		return &Stage{Path: absolute(path), Key: key.Name(), Cached: true}, nil
	}
	return convertedStage(Options{}, path, func() (*context.Context, clip.Config, error) {
		return weights.Load(path, "", weights.Hints{})
	})
}

// convertedStage is the cached conversion of the checkpoint at path; load loads it when it is not cached.
// The key is the file's identity alone (path, size, modification time).
func convertedStage(opts Options, path string, load func() (*context.Context, clip.Config, error)) (*Stage, error) {
	key, err := cache.NewKey("pretrained", cache.IdentifyFile(path))
	if err != nil {
		return nil, err
	}
	return cachedStage(opts, key, func(*Stage) (*context.Context, clip.Config, error) {
		ctx, cfg, err := load()
		if err != nil {
			return nil, cfg, fmt.Errorf("checkpoint %s: %w", path, err)
		}
		return ctx, cfg, nil
	})
}
