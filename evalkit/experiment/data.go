package experiment

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/tokenizer"
	"github.com/mmpoison/mmpoison/models/train"
	"github.com/mmpoison/mmpoison/models/weights"
	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/fashionmnist"
	"github.com/mmpoison/mmpoison/poisoning/imageprep"
)

// Data is an experiment's loaded data: the splits, the tokenizer, the model config and the attack's goals as
// class labels.
type Data struct {
	Spec   Spec
	Splits *dataset.Splits
	// Tokenizer is the word-level tokenizer of the Fashion-MNIST captions, or the CLIP BPE of Spec.Real.Tokenizer.
	Tokenizer tokenizer.Tokenizer
	Model     clip.Config
	// Source and Target are the first goal's class labels; Goals holds every goal's [source, target] labels
	// (source dataset.NoLabel for a goal without a source class, e.g. the backdoor's).
	Source, Target int
	Goals          [][2]int
	// Skipped lists the images of a real dataset left out because they could not be decoded (each naming its
	// file).
	Skipped []string

	attack    attack.Definition // The registry's entry of Spec.Attack.Kind.
	init      *context.Context  // The checkpoint of Spec.Real.Weights, until the pre-training stage takes it.
	kept      []KeptImages      // The source classes thinned to Spec.Data.SourceImages.
	fullTrain *dataset.Dataset  // The train split before the source classes were thinned.
}

// LoadData validates the spec, loads the model's config (a preset, or Spec.Real.Weights' checkpoint), the data
// at the model's resolution (Fashion-MNIST's seeded splits, or a real dataset: see RealSpec.Dataset) and the
// tokenizer, and resolves the attack's class names (spelled as the dataset does in Data.Spec). The fine-tuning
// split keeps Data.SourceImages images of each goal's source class. Check then says whether the attack and the
// batch size fit the data (Run calls it before any training).
func LoadData(spec Spec) (*Data, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	def, err := attack.Lookup(spec.Attack.Kind)
	if err != nil {
		return nil, err
	}
	d := &Data{Spec: spec, attack: def}
	if err := d.loadModel(); err != nil {
		return nil, err
	}
	if err := d.loadSplits(); err != nil {
		return nil, err
	}
	if err := d.resolveGoals(); err != nil {
		return nil, err
	}
	if err := d.loadTokenizer(); err != nil {
		return nil, err
	}
	return d, d.Model.Validate()
}

// resolveGoals sets Goals, Source and Target from the attack's goals, writes the goals' class names as the
// dataset spells them into d.Spec, and thins each source class of the train split to Spec.Data.SourceImages
// images (the split as it was before is kept for Check).
func (d *Data) resolveGoals() error {
	full := d.Splits.Train
	goals := slices.Clone(d.Spec.Attack.Goals)
	for i, g := range goals {
		dst, err := full.ClassIndex(g.Target)
		if err != nil {
			return fmt.Errorf("attack target class: %w", err)
		}
		goals[i].Target = full.Classes[dst]
		if g.Source == "" { // Triggered images of every other class.
			d.Goals = append(d.Goals, [2]int{dataset.NoLabel, dst})
			continue
		}
		src, err := full.ClassIndex(g.Source)
		if err != nil {
			return fmt.Errorf("attack source class: %w", err)
		}
		if src == dst {
			return fmt.Errorf("attack source and target are the same class %q", g.Source)
		}
		goals[i].Source = full.Classes[src]
		if n, have := d.Spec.Data.SourceImages, len(full.IndicesOfClass(src)); n > have {
			return fmt.Errorf("%d images of class %q asked to be kept in the fine-tuning split (Data.SourceImages), but it has only %d",
				n, full.Classes[src], have)
		}
		d.Goals = append(d.Goals, [2]int{src, dst})
		if n := d.Spec.Data.SourceImages; n > 0 {
			d.kept = append(d.kept, KeptImages{Class: full.Classes[src], Kept: n, Of: len(full.IndicesOfClass(src))})
		}
	}
	d.Spec.Attack.Goals = goals
	d.Splits.Train, d.fullTrain = d.thinned(full, d.Spec.Data.SourceImages), full
	d.Source, d.Target = d.Goals[0][0], d.Goals[0][1]
	return nil
}

// thinned returns ds with only the first n images of each goal's source class (n 0: ds itself).
func (d *Data) thinned(ds *dataset.Dataset, n int) *dataset.Dataset {
	if n <= 0 {
		return ds
	}
	for _, g := range d.Goals {
		if g[0] != dataset.NoLabel {
			ds = keepFirstOfClass(ds, g[0], n)
		}
	}
	return ds
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

// TrainingData preprocesses the images (CLIP's test transform where their size is not the model's) and
// tokenises the captions of a pair set, holding all of them in memory.
func (d *Data) TrainingData(ps *dataset.PairSet) (*train.Data, error) {
	td := &train.Data{Images: make([][]float32, len(ps.Images))}
	for i := range ps.Images {
		img, err := preprocess(d.Model, &ps.Images[i])
		if err != nil {
			return nil, err
		}
		td.Images[i] = img
	}
	for _, p := range ps.Pairs {
		td.ImageOf = append(td.ImageOf, p.Image)
		td.Tokens = append(td.Tokens, d.Tokenizer.Encode(p.Caption))
	}
	return td, nil
}

// Reseeded returns d for a model trained with another seed on the same data: the pool keeps the seed that
// drew it (so its pre-training has a cache key of its own), initialisation and data order follow seed. A
// defense's independent clean checker is pre-trained this way.
func (d *Data) Reseeded(seed int64) *Data {
	cd := *d
	cd.Spec.poolSeed = d.Spec.poolSeedOrSeed()
	cd.Spec.Seed = seed
	return &cd
}

// WithPreset returns d for a model of another preset pre-trained on the same pool: the preset's config, the
// spec's tokenizer at the preset's context length, and the pool at the preset's resolution. Not for a spec
// with Real.Weights, which has no pool.
func (d *Data) WithPreset(preset string) (*Data, error) {
	if d.Spec.Real.Weights != "" {
		return nil, fmt.Errorf("preset %q would be pre-trained on the spec's clean pool, but the spec loads the pre-trained "+
			"checkpoint %s and has no pre-training pool", preset, d.Spec.Real.Weights)
	}
	cfg, err := clip.Preset(preset)
	if err != nil {
		return nil, err
	}
	tok, err := d.TokenizerAt(cfg.ContextLength)
	if err != nil {
		return nil, err
	}
	cfg.VocabSize = tok.VocabSize()
	cd := *d
	cd.Spec.Model, cd.Model, cd.Tokenizer, cd.init = preset, cfg, tok, nil
	if n := cfg.ImageSize; n != d.Model.ImageSize && d.Splits.Pool != nil {
		pool := *d.Splits.Pool
		pool.Examples = slices.Clone(pool.Examples)
		for i, ex := range pool.Examples {
			if err := imageprep.CheckCLIPSize(ex.Image.Width, ex.Image.Height, n); err != nil {
				return nil, fmt.Errorf("image %s: %w", ex.ID, err)
			}
			pool.Examples[i].Image = imageprep.CLIP(ex.Image, n)
		}
		splits := *d.Splits
		splits.Pool = &pool
		cd.Splits = &splits
	}
	return &cd, cfg.Validate()
}

// TokenizerAt returns the spec's tokenizer encoding n tokens: d.Tokenizer when that is its context length,
// else the same vocabulary (Spec.Real.Tokenizer's, or the Fashion-MNIST words) for n tokens.
func (d *Data) TokenizerAt(n int) (tokenizer.Tokenizer, error) {
	if d.Tokenizer != nil && d.Tokenizer.ContextLength() == n {
		return d.Tokenizer, nil
	}
	if d.Spec.Real.Tokenizer != "" {
		return tokenizer.LoadFile(d.Spec.Real.Tokenizer, n)
	}
	return wordTokenizer(n)
}

// wordTokenizer is the word-level tokenizer of the Fashion-MNIST captions, for n tokens.
func wordTokenizer(n int) (*tokenizer.WordLevel, error) {
	return tokenizer.NewWordLevel([]string{strings.Join(fashionmnist.Vocabulary(), " ")}, n)
}

// loadModel sets d.Model from the preset or, with Weights, from the checkpoint, which it keeps in d.init for
// the pre-training stage.
func (d *Data) loadModel() error {
	if d.Spec.Real.Weights == "" {
		var err error
		d.Model, err = clip.Preset(d.Spec.Model)
		return err
	}
	ctx, cfg, err := weights.Load(d.Spec.Real.Weights, "", weights.Hints{})
	if err != nil {
		return err
	}
	d.init, d.Model = ctx, cfg
	return nil
}

// pretrained returns the checkpoint loaded by LoadData (once; later calls load it again).
func (d *Data) pretrained() (*context.Context, error) {
	if ctx := d.init; ctx != nil {
		d.init = nil // The cached copy replaces it; do not hold two.
		return ctx, nil
	}
	ctx, _, err := weights.Load(d.Spec.Real.Weights, "", weights.Hints{})
	return ctx, err
}

// loadTokenizer sets d.Tokenizer: the BPE of Real.Tokenizer, or the word-level tokenizer of the Fashion-MNIST
// captions. Without a checkpoint the model's vocabulary follows the tokenizer; with one they must agree.
func (d *Data) loadTokenizer() error {
	var err error
	if d.Spec.Real.Tokenizer == "" {
		d.Tokenizer, err = wordTokenizer(d.Model.ContextLength)
	} else {
		d.Tokenizer, err = tokenizer.LoadFile(d.Spec.Real.Tokenizer, d.Model.ContextLength)
	}
	if err != nil {
		return err
	}
	if d.Spec.Real.Weights == "" {
		d.Model.VocabSize = d.Tokenizer.VocabSize()
	} else if d.Tokenizer.VocabSize() != d.Model.VocabSize {
		return fmt.Errorf("tokenizer %s has %d tokens, but the checkpoint %s has a vocabulary of %d",
			d.Spec.Real.Tokenizer, d.Tokenizer.VocabSize(), d.Spec.Real.Weights, d.Model.VocabSize)
	}
	return nil
}

// ClassPrompts returns one zero-shot prompt per test class, in label order: Fashion-MNIST's (written with its
// caption vocabulary), or "a photo of a <class>" for real datasets.
func (d *Data) ClassPrompts() []string {
	if d.Spec.Real.Dataset == "" {
		return fashionmnist.ClassPrompts()
	}
	out := make([]string, len(d.Splits.Test.Classes))
	for i, c := range d.Splits.Test.Classes {
		out[i] = "a photo of a " + c
	}
	return out
}

// DataSummary describes a run's data as loaded, and its loaded checkpoint (Result.Data).
type DataSummary struct {
	// Dataset is the spec's dataset ("" for Fashion-MNIST); Model the checkpoint's architecture ("" for a
	// model pre-trained here).
	Dataset string `json:"dataset,omitempty"`
	Model   string `json:"model,omitempty"`
	// PoolImages and PoolCaptions count the pre-training pool (0 with a checkpoint).
	PoolImages   int `json:"pool_images,omitempty"`
	PoolCaptions int `json:"pool_captions,omitempty"`
	// TrainImages, TrainCaptions, TestImages and TestCaptions count the splits as loaded.
	TrainImages   int `json:"train_images"`
	TrainCaptions int `json:"train_captions"`
	TestImages    int `json:"test_images"`
	TestCaptions  int `json:"test_captions"`
	// Kept says, for each goal's source class thinned to Data.SourceImages, how many of its images the
	// fine-tuning split kept.
	Kept []KeptImages `json:"kept,omitempty"`
	// Skipped lists the images left out because they could not be decoded, each naming its file.
	Skipped []string `json:"skipped,omitempty"`
}

// KeptImages says that the fine-tuning split kept Kept of the Of images of Class.
type KeptImages struct {
	Class string `json:"class"`
	Kept  int    `json:"kept"`
	Of    int    `json:"of"`
}

// summary returns the data summary of d.
func (d *Data) summary() *DataSummary {
	s := &DataSummary{Dataset: d.Spec.Real.Dataset, Kept: d.kept,
		TrainImages: len(d.Splits.Train.Examples), TrainCaptions: d.Splits.Train.NumCaptions(),
		TestImages: len(d.Splits.Test.Examples), TestCaptions: d.Splits.Test.NumCaptions(), Skipped: d.Skipped}
	if d.Spec.Real.Weights == "" {
		s.PoolImages, s.PoolCaptions = len(d.Splits.Pool.Examples), d.Splits.Pool.NumCaptions()
		return s
	}
	m := d.Model
	s.Model = fmt.Sprintf("%s: image %d×%d, embedding %d, vision width %d × %d layers, text width %d × %d layers, vocabulary %d",
		m.Name, m.ImageSize, m.ImageSize, m.EmbedDim, m.VisionWidth, m.VisionLayers, m.TextWidth, m.TextLayers, m.VocabSize)
	return s
}
