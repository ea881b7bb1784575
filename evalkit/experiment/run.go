package experiment

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/mmpoison/mmpoison/evalkit/metrics"
	"github.com/mmpoison/mmpoison/kernelext"
	"github.com/mmpoison/mmpoison/models/backend"
	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/tokenizer"
	"github.com/mmpoison/mmpoison/models/train"
	"github.com/mmpoison/mmpoison/poisoning/atomicfile"
	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// Data is an experiment's loaded data: the three splits, the tokenizer, the model config, and the test set
// preprocessed for evaluation.
type Data struct {
	Spec   Spec
	Splits *dataset.Splits
	// Tokenizer is the word-level tokenizer of the Fashion-MNIST captions, or the CLIP BPE of Spec.TokenizerFile.
	Tokenizer tokenizer.Tokenizer
	Model     clip.Config
	// Source and Target are the first goal's class labels; Goals holds every goal's [source, target] labels.
	Source, Target int
	Goals          [][2]int
	// Skipped lists the images of a real dataset left out because they could not be decoded (each naming its
	// file).
	Skipped []string

	init       *context.Context     // The checkpoint of Spec.Weights, until the pre-training stage takes it.
	trainFiles map[string]trainFile // With Spec.TrainCrop: the training images' files, by example ID.
}

// LoadData loads the model's config (a preset, or Spec.Weights' checkpoint), the data at the model's
// resolution (Fashion-MNIST's seeded splits, or a real dataset: see Spec.Dataset), the tokenizer, and resolves
// the attack's class names.
func LoadData(spec Spec) (*Data, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	d := &Data{Spec: spec}
	if err := d.loadModel(); err != nil {
		return nil, err
	}
	if err := d.loadSplits(); err != nil {
		return nil, err
	}
	splits := d.Splits
	for _, g := range spec.Goals() {
		dst, err := splits.Train.ClassIndex(g.Target)
		if err != nil {
			return nil, fmt.Errorf("attack target class: %w", err)
		}
		if g.Source == "" { // The backdoor: triggered images of every other class.
			d.Goals = append(d.Goals, [2]int{dataset.NoLabel, dst})
			continue
		}
		src, err := splits.Train.ClassIndex(g.Source)
		if err != nil {
			return nil, fmt.Errorf("attack source class: %w", err)
		}
		if src == dst {
			return nil, fmt.Errorf("attack source and target are the same class %q", g.Source)
		}
		d.Goals = append(d.Goals, [2]int{src, dst})
		if spec.SourceTrainImages > 0 {
			splits.Train = keepFirstOfClass(splits.Train, src, spec.SourceTrainImages)
		}
	}
	d.Source, d.Target = d.Goals[0][0], d.Goals[0][1]
	if err := d.loadTokenizer(); err != nil {
		return nil, err
	}
	return d, d.Model.Validate()
}

// keepFirstOfClass returns ds with only the first n examples of class label (the split's order is already
// seeded), all other examples kept in order.
func keepFirstOfClass(ds *dataset.Dataset, label, n int) *dataset.Dataset {
	var keep []int
	seen := 0
	for i, ex := range ds.Examples {
		if ex.Label == label {
			if seen >= n {
				continue
			}
			seen++
		}
		keep = append(keep, i)
	}
	return ds.Subset(ds.Name, keep)
}

// TrainingData preprocesses the images and tokenises the captions of a pair set.
func (d *Data) TrainingData(ps *dataset.PairSet) (*train.Data, error) {
	td := &train.Data{Images: make([][]float32, len(ps.Images))}
	for i, ex := range ps.Images {
		img, err := clip.Preprocess(d.Model, ex.Image)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", ex.ID, err)
		}
		td.Images[i] = img
	}
	for _, p := range ps.Pairs {
		td.ImageOf = append(td.ImageOf, p.Image)
		td.Tokens = append(td.Tokens, d.Tokenizer.Encode(p.Caption))
	}
	return td, nil
}

// Options control how a run reports progress and where it writes.
type Options struct {
	// Backend computes everything (nil: backend.Default()).
	Backend backends.Backend
	// Log receives progress lines outside a notebook (nil: kernelext's output).
	Log io.Writer
	// Quiet turns off training progress.
	Quiet bool

	// afterEpoch, when set, is called by trainModel after every epoch with the model trained so far; the fields
	// it returns join the live progress display (e.g. Hit@10).
	afterEpoch func(ctx *context.Context, st train.EpochStats) ([]kernelext.Field, error)
}

func (o *Options) backend() (backends.Backend, error) {
	if o.Backend != nil {
		return o.Backend, nil
	}
	b, err := backend.Default()
	o.Backend = b
	return b, err
}

// trainModel trains from init (nil: a fresh model seeded by the spec) on pairs, reporting progress; freeze names
// the towers kept fixed and configure functions adjust the training options last (e.g. another objective).
func trainModel(d *Data, opts *Options, title string, init *context.Context, pairs *dataset.PairSet,
	epochs int, lr float64, freeze []string, configure ...func(*train.Options)) (*context.Context, []train.EpochStats, error) {
	b, err := opts.backend()
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
	to.Epochs, to.BatchSize, to.LearningRate, to.Seed = epochs, d.Spec.BatchSize, lr, uint64(d.Spec.Seed)
	to.MinLearningRate = lr * d.Spec.minLRFraction()
	to.Freeze = freeze
	steps := epochs * (td.NumPairs() / to.BatchSize)
	to.WarmupSteps = min(50, steps/10)
	for _, c := range configure {
		c(&to)
	}
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
	tr, err := train.New(b, d.Model, ctx, to)
	if err != nil {
		return nil, nil, err
	}
	hist, err := tr.Fit(td)
	if progress != nil {
		progress.Done()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", title, err)
	}
	return ctx, hist, nil
}

// Stage is a trained model cached on disk with its training history.
type Stage struct {
	// Path of the model (safetensors); History of its training epochs; Manifest of the poison (nil when clean).
	Path     string             `json:"path"`
	History  []train.EpochStats `json:"history"`
	Manifest *attack.Manifest   `json:"-"`
	// Epochs holds the model's evaluation after each training epoch (fine-tuning stages; the last one equals
	// the final evaluation), for metrics-versus-epoch figures.
	Epochs []*ModelEval `json:"epochs,omitempty"`
	// Cached is true when the model was loaded from the cache instead of trained.
	Cached  bool    `json:"cached"`
	Seconds float64 `json:"seconds"`
}

// cached runs produce when the model for key is not in the cache yet, and records its history beside it; fill
// functions add what else produce computed (e.g. per-epoch evaluations) to the stage before it is written.
func cached(name string, key any, produce func() (*context.Context, []train.EpochStats, error), cfg clip.Config,
	fill ...func(*Stage)) (*Stage, error) {
	dir, err := CacheDir()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cache directory: %w", err)
	}
	base := filepath.Join(dir, fmt.Sprintf("%s-%s", name, hash(key)))
	st := &Stage{Path: base + ".safetensors"}
	if data, err := os.ReadFile(base + ".json"); err == nil {
		if _, statErr := os.Stat(st.Path); statErr == nil && json.Unmarshal(data, st) == nil {
			st.Path, st.Cached = base+".safetensors", true
			return st, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	start := time.Now()
	ctx, hist, err := produce()
	if err != nil {
		return nil, err
	}
	st.History, st.Seconds = hist, time.Since(start).Seconds()
	for _, f := range fill {
		f(st)
	}
	if err := clip.Save(st.Path, ctx, cfg); err != nil {
		return nil, err
	}
	data, _ := json.MarshalIndent(st, "", "  ")
	if err := atomicfile.WriteFile(base+".json", data); err != nil {
		return nil, err
	}
	return st, nil
}

// Pretrain trains (or loads from the cache) the clean model on the pool; with Spec.Weights it converts the
// pre-trained checkpoint instead (cached by the file's path, size and modification time).
func Pretrain(d *Data, opts Options) (*Stage, error) {
	if d.Spec.Weights != "" {
		return cached("pretrained", d.Spec.pretrainKey(), func() (*context.Context, []train.EpochStats, error) {
			ctx, err := d.pretrained()
			return ctx, nil, err
		}, d.Model)
	}
	return cached("pretrain", d.Spec.pretrainKey(), func() (*context.Context, []train.EpochStats, error) {
		return trainModel(d, &opts, "pre-training (clean pool)", nil, d.Splits.Pool.Pairs(), d.Spec.PretrainEpochs, d.Spec.PretrainLR, nil)
	}, d.Model)
}

// NewAttack returns the spec's attack, poisoning φ = Rate of the pairs, or PoisonCount pairs when it is set.
func (s Spec) NewAttack() attack.Attack {
	if s.PoisonCount > 0 {
		return s.newAttack(0, s.PoisonCount)
	}
	return s.newAttack(s.Rate, 0)
}

// newAttack returns the spec's attack poisoning φ = rate of the pairs, or count pairs when rate is 0.
func (s Spec) newAttack(rate float64, count int) attack.Attack {
	switch s.AttackKind() {
	case "I":
		return attack.SingleImage{Source: s.Source, Target: s.Target, TargetImageID: s.TargetImageID, Rate: rate,
			Count: count, Mode: s.Mode, Seed: s.Seed}
	case "III":
		return attack.MultiLabel{Goals: s.Goals(), Rate: rate, Count: count, Mode: s.Mode, Seed: s.Seed}
	case AttackBackdoor:
		return attack.Backdoor{Target: s.Target, Trigger: s.Trigger, Rate: rate, Count: count, Mode: s.Mode, Seed: s.Seed}
	}
	return attack.SingleLabel{Source: s.Source, Target: s.Target, Rate: rate, Count: count, Mode: s.Mode, Seed: s.Seed}
}

// Poison applies the spec's attack to the train split.
func Poison(d *Data) (*dataset.PairSet, *attack.Manifest, error) {
	pairs := d.Splits.Train.Pairs()
	if !d.Spec.AllSourceCaptions {
		return d.Spec.NewAttack().Apply(pairs)
	}
	sources := map[int]bool{}
	for _, g := range d.Goals {
		sources[g[0]] = true
	}
	n := 0
	for _, p := range pairs.Pairs {
		if sources[pairs.Images[p.Image].Label] {
			n++
		}
	}
	if n == 0 {
		return nil, nil, fmt.Errorf("poison every source caption: the train split has no captions of the source classes")
	}
	return d.Spec.newAttack(0, n).Apply(pairs)
}

// Finetune fine-tunes the pre-trained model on the train split, clean or poisoned (or loads it from the cache).
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
	name := "finetune-clean"
	if poisoned {
		name = "finetune-poisoned"
	}
	var epochs []*ModelEval
	st, err := cached(name, d.Spec.finetuneKey(poisoned), func() (*context.Context, []train.EpochStats, error) {
		init, _, err := clip.Load(pretrained.Path)
		if err != nil {
			return nil, nil, err
		}
		opts.afterEpoch = func(ctx *context.Context, _ train.EpochStats) ([]kernelext.Field, error) {
			ev, err := EvaluateContext(d, ctx, d.Model, opts)
			if err != nil {
				return nil, err
			}
			epochs = append(epochs, ev)
			if ev.Backdoor != nil {
				return []kernelext.Field{kernelext.F("trigger→target", ev.Backdoor.ZeroShot.Triggered.Rate)}, nil
			}
			hit10, _ := ev.Attack.HitAt(10)
			return []kernelext.Field{kernelext.F("Hit@10", hit10),
				kernelext.F("MinRank", ev.Attack.MinRank.Mean)}, nil
		}
		return trainModel(d, &opts, title, init, pairs, d.Spec.FinetuneEpochs, d.Spec.FinetuneLR, d.Spec.Freeze)
	}, d.Model, func(st *Stage) { st.Epochs = epochs })
	if err != nil {
		return nil, err
	}
	st.Manifest = manifest
	return st, nil
}

// loadEmbedder loads the model at path and prepares its encoders on the run's backend.
func loadEmbedder(path string, opts *Options) (*clip.Embedder, clip.Config, error) {
	b, err := opts.backend()
	if err != nil {
		return nil, clip.Config{}, err
	}
	ctx, cfg, err := clip.Load(path)
	if err != nil {
		return nil, clip.Config{}, err
	}
	emb, err := clip.NewEmbedder(b, ctx, cfg, 0)
	return emb, cfg, err
}

// ModelEval holds a model's attack metrics and utility on the test split.
type ModelEval struct {
	// Attack and RandomQueries are the first goal's (Goals[0]); see GoalEval.
	Attack        *metrics.AttackResult `json:"attack"`
	RandomQueries *metrics.AttackResult `json:"random_queries"`
	// Goals holds every goal's metrics (one for Attacks I and II).
	Goals []GoalEval `json:"goals"`
	// Utility: image-to-text and text-to-image Recall@1/5/10 on the test split.
	Utility *metrics.RecallResult `json:"utility"`
	// Backdoor is the trigger's effect (backdoor attack only); Attack and RandomQueries then hold its
	// image-to-text retrieval with and without the trigger.
	Backdoor *BackdoorEval `json:"backdoor,omitempty"`
	// UtilityOthers: the same on the test images (and their captions) of every class but the goals' sources,
	// i.e. the retrieval the attack is not aimed at. In the paper's test sets the source classes are rare, so
	// their utility is close to this.
	UtilityOthers *metrics.RecallResult `json:"utility_others"`
}

// GoalEval is the attack metrics of one goal A→B.
type GoalEval struct {
	Source string `json:"source"`
	Target string `json:"target"`
	// TargetImageID is Attack I's x*, added to the gallery of test images.
	TargetImageID string `json:"target_image_id,omitempty"`
	// Attack: class-A test captions against all test images; targets the class-B test images (Attack I: x*).
	Attack *metrics.AttackResult `json:"attack"`
	// RandomQueries: as many random test captions, of classes no goal involves, against the same targets.
	RandomQueries *metrics.AttackResult `json:"random_queries"`
}

// Evaluate embeds the test split with the model at path and computes its attack metrics and utility.
func Evaluate(d *Data, path string, opts Options) (*ModelEval, error) {
	ev, _, err := evaluatePath(d, path, opts)
	return ev, err
}

// evaluatePath is Evaluate that also returns the test embeddings.
func evaluatePath(d *Data, path string, opts Options) (*ModelEval, *testEmbeddings, error) {
	emb, cfg, err := loadEmbedder(path, &opts)
	if err != nil {
		return nil, nil, err
	}
	return evaluateEmbed(d, emb, cfg)
}

// testEmbeddings are a model's embeddings of the gallery images and of the test captions (in test order).
type testEmbeddings struct {
	images, texts [][]float32
}

// EvaluateContext is Evaluate for a model in memory (its parameters in ctx), e.g. during training.
func EvaluateContext(d *Data, ctx *context.Context, cfg clip.Config, opts Options) (*ModelEval, error) {
	b, err := opts.backend()
	if err != nil {
		return nil, err
	}
	emb, err := clip.NewEmbedder(b, ctx, cfg, 0)
	if err != nil {
		return nil, err
	}
	ev, _, err := evaluateEmbed(d, emb, cfg)
	return ev, err
}

// Gallery returns the images text queries search: the test images, and for Attack I also the target image x*
// (a training image), last; targetID is x*'s ID ("" for other attacks).
func (d *Data) Gallery() (gallery []dataset.Example, targetID string, err error) {
	gallery = slices.Clone(d.Splits.Test.Examples)
	if d.Spec.AttackKind() == "I" { // x* is a training image: it joins the gallery.
		_, m, err := Poison(d)
		if err != nil {
			return nil, "", err
		}
		targetID = m.TargetImageID
		for _, ex := range d.Splits.Train.Examples {
			if ex.ID == targetID {
				gallery = append(gallery, ex)
			}
		}
	}
	return gallery, targetID, nil
}

// evaluateEmbed computes the attack metrics and utility of the model behind emb, and returns the test
// embeddings it computed them from.
func evaluateEmbed(d *Data, emb *clip.Embedder, cfg clip.Config) (*ModelEval, *testEmbeddings, error) {
	ev, te, err := evaluateWith(d, emb, cfg)
	if err != nil {
		return nil, nil, err
	}
	if d.Spec.AttackKind() == AttackBackdoor {
		if ev.Backdoor, err = evaluateBackdoor(d, emb, cfg, te); err != nil {
			return nil, nil, err
		}
		ev.Attack, ev.RandomQueries = ev.Backdoor.Retrieval.Triggered, ev.Backdoor.Retrieval.Clean
		ev.Goals = []GoalEval{{Target: d.Splits.Test.Classes[d.Target], Attack: ev.Attack, RandomQueries: ev.RandomQueries}}
	}
	return ev, te, nil
}

// evaluateWith computes the text-to-image attack metrics (not for the backdoor) and the utility.
func evaluateWith(d *Data, emb *clip.Embedder, cfg clip.Config) (*ModelEval, *testEmbeddings, error) {
	test := d.Splits.Test
	gallery, targetID, err := d.Gallery()
	if err != nil {
		return nil, nil, err
	}
	images := make([][]float32, len(gallery))
	for i, ex := range gallery {
		if images[i], err = clip.Preprocess(cfg, ex.Image); err != nil {
			return nil, nil, fmt.Errorf("image %s: %w", ex.ID, err)
		}
	}
	var captions []string
	var owner []int
	for i, ex := range test.Examples {
		for _, c := range ex.Captions {
			captions = append(captions, c)
			owner = append(owner, i)
		}
	}
	imgEmb, err := emb.Images(images)
	if err != nil {
		return nil, nil, err
	}
	txtEmb, err := emb.Texts(tokenizer.EncodeAll(d.Tokenizer, captions))
	if err != nil {
		return nil, nil, err
	}
	involved := map[int]bool{}
	for _, g := range d.Goals {
		involved[g[0]], involved[g[1]] = true, true
	}
	var others [][]float32
	for j, o := range owner {
		if !involved[test.Examples[o].Label] {
			others = append(others, txtEmb[j])
		}
	}
	ev := &ModelEval{}
	rng := rand.New(rand.NewPCG(uint64(d.Spec.Seed), 0x72616e64))
	for gi, g := range d.Goals {
		if g[0] == dataset.NoLabel {
			continue // The backdoor's goal is measured by evaluateBackdoor.
		}
		targets := test.IndicesOfClass(g[1])
		if targetID != "" {
			targets = []int{len(gallery) - 1}
		}
		var queries [][]float32
		for j, o := range owner {
			if test.Examples[o].Label == g[0] {
				queries = append(queries, txtEmb[j])
			}
		}
		ge := GoalEval{Source: test.Classes[g[0]], Target: test.Classes[g[1]], TargetImageID: targetID}
		if ge.Attack, err = metrics.EvaluateAttack(queries, imgEmb, targets, nil); err != nil {
			return nil, nil, fmt.Errorf("goal %d: %w", gi, err)
		}
		n := min(len(queries), len(others))
		random := make([][]float32, n)
		for i, j := range rng.Perm(len(others))[:n] {
			random[i] = others[j]
		}
		if ge.RandomQueries, err = metrics.EvaluateAttack(random, imgEmb, targets, nil); err != nil {
			return nil, nil, fmt.Errorf("goal %d, random queries: %w", gi, err)
		}
		ev.Goals = append(ev.Goals, ge)
	}
	if len(ev.Goals) > 0 {
		ev.Attack, ev.RandomQueries = ev.Goals[0].Attack, ev.Goals[0].RandomQueries
	}
	testImg := imgEmb[:len(test.Examples)]
	if ev.Utility, err = metrics.Recall(testImg, txtEmb, owner, metrics.RecallKs); err != nil {
		return nil, nil, err
	}
	sources := map[int]bool{}
	for _, g := range d.Goals {
		sources[g[0]] = true
	}
	var othImg, othTxt [][]float32
	var othOwner []int
	newIndex := map[int]int{}
	for i, ex := range test.Examples {
		if !sources[ex.Label] {
			newIndex[i] = len(othImg)
			othImg = append(othImg, testImg[i])
		}
	}
	for j, o := range owner {
		if ni, ok := newIndex[o]; ok {
			othTxt = append(othTxt, txtEmb[j])
			othOwner = append(othOwner, ni)
		}
	}
	if ev.UtilityOthers, err = metrics.Recall(othImg, othTxt, othOwner, metrics.RecallKs); err != nil {
		return nil, nil, err
	}
	return ev, &testEmbeddings{images: imgEmb, texts: txtEmb}, nil
}
