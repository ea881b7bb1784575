package experiment

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/tokenizer"
	"github.com/mmpoison/mmpoison/models/train"
	"github.com/mmpoison/mmpoison/models/weights"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/fashionmnist"
	"github.com/mmpoison/mmpoison/poisoning/imageprep"
	"github.com/mmpoison/mmpoison/poisoning/loaders"
)

// Spec.Dataset values for the paper's real datasets.
const (
	// DatasetCOCO is COCO 2014 (or 2017) as poisoning/loaders reads it: DataRoot/annotations/captions_<split>.json
	// and instances_<split>.json, images in DataRoot/<split>/<file_name>, for the splits train2014 and val2014
	// (used when captions_train2014.json exists) or else train2017 and val2017. Labels and the test set follow
	// the paper (loaders.LoadCOCO, loaders.COCOPaperSplit): Spec.TestPerClass images of every class but
	// "toaster" and "hair drier" (the paper: 50), every other image trains.
	DatasetCOCO = "coco"
	// DatasetFlickrPASCAL is the paper's Flickr-PASCAL combination (loaders.FlickrPASCAL): Flickr30k's Karpathy
	// train split (unlabelled) plus half of PASCAL-sentences train, the other half (Spec.TestPerClass images per
	// class; the paper: 25) tests. Layout:
	//
	//	DataRoot/dataset_flickr30k.json          Karpathy's split file
	//	DataRoot/flickr30k-images/<filename>     Flickr30k's images
	//	DataRoot/pascal/dataset/<class>/<name>.jpg    PASCAL-sentences as the UIUC download script saves it
	//	DataRoot/pascal/sentence/<class>/<name>.txt   (see loaders.LoadPASCAL)
	DatasetFlickrPASCAL = "flickr-pascal"
)

// validateSource checks the real-data and checkpoint fields.
func (s Spec) validateSource() error {
	switch {
	case s.Dataset != "" && s.Dataset != DatasetCOCO && s.Dataset != DatasetFlickrPASCAL:
		return fmt.Errorf("unknown dataset %q: use \"\" (Fashion-MNIST), %q or %q", s.Dataset, DatasetCOCO, DatasetFlickrPASCAL)
	case s.Dataset != "" && s.DataRoot == "":
		return fmt.Errorf("dataset %q needs DataRoot, the folder holding its files", s.Dataset)
	case s.Dataset != "" && s.Weights == "":
		return fmt.Errorf("dataset %q needs a pre-trained checkpoint (Weights): the paper fine-tunes a pre-trained CLIP", s.Dataset)
	case s.TokenizerFile != "" && s.Weights == "":
		return fmt.Errorf("TokenizerFile %s needs a pre-trained checkpoint (Weights); preset models use the word-level tokenizer", s.TokenizerFile)
	case s.Weights != "" && s.TokenizerFile == "":
		return fmt.Errorf("checkpoint %s needs TokenizerFile (bpe_simple_vocab_16e6.txt.gz, or vocab.json with merges.txt beside it)", s.Weights)
	case s.MaxTrainImages < 0:
		return fmt.Errorf("MaxTrainImages is %d; want 0 (all) or more", s.MaxTrainImages)
	case s.Dataset == "" && (s.PreCaption || s.TrainCrop):
		return fmt.Errorf("PreCaption and TrainCrop are the paper's processing of real datasets: set Dataset, or leave them off for Fashion-MNIST")
	case s.MinLRFraction < 0 || s.MinLRFraction > 1:
		return fmt.Errorf("MinLRFraction %v is outside [0, 1]", s.MinLRFraction)
	}
	return nil
}

// minLRFraction is where the cosine schedules end, as a fraction of the peak rate.
func (s Spec) minLRFraction() float64 {
	if s.MinLRFraction > 0 {
		return s.MinLRFraction
	}
	return 0.01
}

// fileID identifies a file's version for cache keys: its absolute path, size and modification time (a file
// that cannot be read keeps only its path; loading it reports the error).
type fileID struct {
	Path    string
	Size    int64
	ModTime time.Time
}

func identify(path string) fileID {
	if path == "" {
		return fileID{}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	id := fileID{Path: abs}
	if st, err := os.Stat(path); err == nil {
		id.Size, id.ModTime = st.Size(), st.ModTime().UTC()
	}
	return id
}

// weightsKey is the pre-training key with Weights: the converted checkpoint depends only on its file.
func (s Spec) weightsKey() any {
	return struct {
		Weights fileID
		Version int
	}{identify(s.Weights), cacheVersion}
}

// dataKey is what fine-tuning depends on besides the fields finetuneKey lists, with a loaded checkpoint (whose
// pre-training key covers only the file); nil for the Fashion-MNIST default, whose keys stay as they were.
func (s Spec) dataKey() any {
	if s.Weights == "" {
		return nil
	}
	k := struct {
		Dataset, Root          string
		PoolSize               int `json:",omitempty"` // Fashion-MNIST draws Train after Pool.
		MaxTrain, TestPerClass int
		Tokenizer              fileID
		Batch                  int
		Seed                   int64
		// Left out when off, so that keys from before these settings existed are unchanged.
		PreCaption bool `json:",omitempty"`
		TrainCrop  bool `json:",omitempty"`
	}{Dataset: s.Dataset, MaxTrain: s.MaxTrainImages, TestPerClass: s.TestPerClass, Tokenizer: identify(s.TokenizerFile),
		Batch: s.BatchSize, Seed: s.Seed, PreCaption: s.PreCaption, TrainCrop: s.TrainCrop}
	if s.Dataset == "" {
		k.PoolSize = s.PoolSize
	} else if k.Root = s.DataRoot; k.Root != "" {
		if abs, err := filepath.Abs(k.Root); err == nil {
			k.Root = abs
		}
	}
	return k
}

// loadModel sets d.Model from the preset or, with Weights, from the checkpoint, which it keeps in d.init for
// the pre-training stage.
func (d *Data) loadModel() error {
	if d.Spec.Weights == "" {
		var err error
		d.Model, err = clip.Preset(d.Spec.Preset)
		return err
	}
	ctx, cfg, err := weights.Load(d.Spec.Weights, "", weights.Hints{})
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
	ctx, _, err := weights.Load(d.Spec.Weights, "", weights.Hints{})
	return ctx, err
}

// LoadTokenizerFile loads the CLIP BPE tokenizer from OpenAI's bpe_simple_vocab_16e6.txt.gz (gzip or plain)
// or from a HuggingFace vocab.json, whose merges.txt must lie beside it, for contextLength tokens.
func LoadTokenizerFile(path string, contextLength int) (*tokenizer.BPE, error) {
	return tokenizer.LoadFile(path, contextLength)
}

// loadTokenizer sets d.Tokenizer: the BPE of TokenizerFile, or the word-level tokenizer of the Fashion-MNIST
// captions. Without a checkpoint the model's vocabulary follows the tokenizer; with one they must agree.
func (d *Data) loadTokenizer() error {
	var err error
	if d.Spec.TokenizerFile == "" {
		d.Tokenizer, err = tokenizer.NewWordLevel([]string{strings.Join(fashionmnist.Vocabulary(), " ")}, d.Model.ContextLength)
	} else {
		d.Tokenizer, err = LoadTokenizerFile(d.Spec.TokenizerFile, d.Model.ContextLength)
	}
	if err != nil {
		return err
	}
	if d.Spec.Weights == "" {
		d.Model.VocabSize = d.Tokenizer.VocabSize()
	} else if d.Tokenizer.VocabSize() != d.Model.VocabSize {
		return fmt.Errorf("tokenizer %s has %d tokens, but the checkpoint %s has a vocabulary of %d",
			d.Spec.TokenizerFile, d.Tokenizer.VocabSize(), d.Spec.Weights, d.Model.VocabSize)
	}
	return nil
}

// loadSplits loads the spec's dataset at the model's resolution: Fashion-MNIST (resized when the model's input
// is not 28×28, e.g. a loaded checkpoint), or a real dataset (loadRealSplits).
func (d *Data) loadSplits() error {
	spec := d.Spec
	if spec.Dataset != "" {
		return d.loadRealSplits()
	}
	splits, err := fashionmnist.Load(fashionmnist.Config{PoolSize: spec.PoolSize, TrainSize: spec.TrainSize,
		TestPerClass: spec.TestPerClass, HeldOutSize: spec.HeldOutSize, Seed: spec.Seed, Dir: spec.DataDir})
	if err != nil {
		return err
	}
	n := d.Model.ImageSize // 28 for the presets; a checkpoint's may differ.
	for _, ds := range []*dataset.Dataset{splits.Pool, splits.Train, splits.Test, splits.HeldOut} {
		if ds == nil {
			continue
		}
		for i, ex := range ds.Examples {
			if ex.Image.Height != n || ex.Image.Width != n {
				ds.Examples[i].Image = imageprep.CLIP(ex.Image, n)
			}
		}
	}
	d.Splits = splits
	return nil
}

// loadRealSplits reads COCO or Flickr-PASCAL under DataRoot (layouts: DatasetCOCO, DatasetFlickrPASCAL), draws
// the paper's test split, caps the train split (MaxTrainImages) and decodes the images at the model's
// resolution (CLIP's test transform). Corrupt images are skipped and listed in d.Skipped. With PreCaption the
// captions are pre-processed as the official code does; with TrainCrop the training images' files are noted
// for the crops (trainFeed).
func (d *Data) loadRealSplits() error {
	spec := d.Spec
	var train, test *loaders.Index
	switch spec.Dataset {
	case DatasetCOCO:
		splits := loaders.DefaultCOCOSplits
		ann := filepath.Join(spec.DataRoot, "annotations")
		if _, statErr := os.Stat(filepath.Join(ann, "captions_train2014.json")); errors.Is(statErr, fs.ErrNotExist) {
			splits = []string{"train2017", "val2017"}
			if _, statErr := os.Stat(filepath.Join(ann, "captions_train2017.json")); errors.Is(statErr, fs.ErrNotExist) {
				return fmt.Errorf("no COCO annotations in %s: looked for captions_train2014.json and captions_train2017.json (see experiment.DatasetCOCO for the layout)", ann)
			}
		}
		ix, err := loaders.LoadCOCO(loaders.COCOConfig{Root: spec.DataRoot, Splits: splits, Seed: spec.Seed})
		if err != nil {
			return err
		}
		var exclude []string // The paper's exclusions, where the copy has those classes.
		for _, c := range loaders.COCOExcludedFromTest {
			if _, err := dataset.ClassIndex(ix.Classes(), c); err == nil {
				exclude = append(exclude, c)
			}
		}
		train, test, err = loaders.SplitPerClass(ix, loaders.SplitConfig{PerClass: spec.TestPerClass, Exclude: exclude, Seed: spec.Seed})
		if err != nil {
			return err
		}
	case DatasetFlickrPASCAL:
		flickr, err := loaders.LoadKarpathy(loaders.KarpathyConfig{File: filepath.Join(spec.DataRoot, "dataset_flickr30k.json"),
			ImageDir: filepath.Join(spec.DataRoot, "flickr30k-images"), Name: "flickr30k"})
		if err != nil {
			return err
		}
		pascal, err := loaders.LoadPASCAL(loaders.PASCALConfig{Root: filepath.Join(spec.DataRoot, "pascal")})
		if err != nil {
			return err
		}
		if train, test, err = loaders.FlickrPASCAL(flickr, pascal, loaders.FlickrPASCALConfig{TestPerClass: spec.TestPerClass, Seed: spec.Seed}); err != nil {
			return err
		}
	}
	train = capTrain(train, spec.MaxTrainImages)
	opts := loaders.Options{ImageSize: d.Model.ImageSize, SkipCorrupt: true, Workers: runtime.GOMAXPROCS(0)}
	s := &dataset.Splits{Dir: spec.DataRoot}
	for _, part := range []struct {
		ix  *loaders.Index
		dst **dataset.Dataset
	}{{train, &s.Train}, {test, &s.Test}} {
		ds, rep, err := loaders.Collect(part.ix, opts)
		if err != nil {
			return err
		}
		for _, e := range rep.Skipped {
			d.Skipped = append(d.Skipped, e.Error())
		}
		if spec.TrainCrop && part.ix == train { // The crops are drawn from the files, at full size.
			paths := make(map[string]string, train.Len())
			for _, e := range train.Entries() {
				paths[e.ID] = e.Path
			}
			d.trainFiles = make(map[string]trainFile, len(ds.Examples))
			for _, ex := range ds.Examples {
				if len(ex.Image.Pix) > 0 {
					d.trainFiles[ex.ID] = trainFile{paths[ex.ID], &ex.Image.Pix[0]}
				}
			}
		}
		if spec.PreCaption {
			for _, ex := range ds.Examples { // Collect gave every example its own captions slice.
				for j, c := range ex.Captions {
					ex.Captions[j] = loaders.PreCaption(c, loaders.PaperMaxWords)
				}
			}
		}
		*part.dst = ds
	}
	s.Pool = &dataset.Dataset{Name: spec.Dataset + "/pool (unused: pre-trained checkpoint)", Classes: s.Train.Classes}
	d.Splits = s
	return nil
}

// trainFile is the file a training image was decoded from, and the first byte of its pixels as loaded: an
// example whose pixels are elsewhere (e.g. an attack's modified copy under the same ID) is not that file's.
type trainFile struct {
	path  string
	first *uint8
}

// file returns the file ex was decoded from, or "" when it has none or its pixels are not the loaded ones.
func (d *Data) file(ex dataset.Example) string {
	f, ok := d.trainFiles[ex.ID]
	if !ok || len(ex.Image.Pix) == 0 || &ex.Image.Pix[0] != f.first {
		return ""
	}
	return f.path
}

// trainFeed is what trainModel trains on: TrainingData, or with Spec.TrainCrop the pairs' tokens and a
// train.Data.View that draws a new RandomResizedCrop(S, scale=(0.9, 1.0), ratio=(3/4, 4/3), bicubic) of an
// image every time a batch draws it, from its file decoded at full size (torchvision's order: crop the
// original, then resize the crop to S×S), or from its S×S copy when it has no file (an image an attack made).
// Only the batch's images are decoded, so no preprocessed copy of the training set is held.
func (d *Data) trainFeed(ps *dataset.PairSet) (*train.Data, error) {
	if !d.Spec.TrainCrop {
		return d.TrainingData(ps)
	}
	td := &train.Data{ImageOf: make([]int, len(ps.Pairs)), Tokens: make([][]int32, len(ps.Pairs))}
	for i, p := range ps.Pairs {
		td.ImageOf[i], td.Tokens[i] = p.Image, d.Tokenizer.Encode(p.Caption)
	}
	n := d.Model.ImageSize
	td.View = func(i int, rng *rand.Rand) ([]float32, error) {
		ex := ps.Images[i]
		src := ex.Image
		if path := d.file(ex); path != "" {
			var err error
			if src, err = imageprep.LoadFile(path); err != nil {
				return nil, fmt.Errorf("image %s: %w", ex.ID, err)
			}
		}
		crop := imageprep.RandomResizedCropWith(src, n, imageprep.CLIPScale, imageprep.CLIPRatio, imageprep.Bicubic, rng)
		img, err := clip.Preprocess(d.Model, crop)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", ex.ID, err)
		}
		return img, nil
	}
	return td, nil
}

// capTrain keeps the first max labelled entries of ix, then unlabelled ones up to max in all (max 0: all).
func capTrain(ix *loaders.Index, max int) *loaders.Index {
	if max <= 0 || ix.Len() <= max {
		return ix
	}
	labelled := 0
	for _, e := range ix.Entries() {
		if e.Label != dataset.NoLabel {
			labelled++
		}
	}
	keepLabelled := min(labelled, max)
	room := max - keepLabelled
	return ix.Filter(fmt.Sprintf("%s (first %d)", ix.Name(), max), func(e loaders.Entry) bool {
		if e.Label != dataset.NoLabel {
			keepLabelled--
			return keepLabelled >= 0
		}
		room--
		return room >= 0
	})
}

// ClassPrompts returns one zero-shot prompt per test class, in label order: Fashion-MNIST's (written with its
// caption vocabulary), or "a photo of a <class>" for real datasets.
func (d *Data) ClassPrompts() []string {
	if d.Spec.Dataset == "" {
		return fashionmnist.ClassPrompts()
	}
	out := make([]string, len(d.Splits.Test.Classes))
	for i, c := range d.Splits.Test.Classes {
		out[i] = "a photo of a " + c
	}
	return out
}

// DataSummary describes a run's real data or loaded checkpoint (Result.Data).
type DataSummary struct {
	// Dataset is the spec's dataset ("" for Fashion-MNIST); Model the checkpoint's architecture.
	Dataset string `json:"dataset,omitempty"`
	Model   string `json:"model"`
	// TrainImages, TrainCaptions, TestImages and TestCaptions count the splits as loaded.
	TrainImages   int `json:"train_images"`
	TrainCaptions int `json:"train_captions"`
	TestImages    int `json:"test_images"`
	TestCaptions  int `json:"test_captions"`
	// Skipped lists the images left out because they could not be decoded, each naming its file.
	Skipped []string `json:"skipped,omitempty"`
}

// summary returns the data summary of d, or nil for the Fashion-MNIST default with a preset model.
func (d *Data) summary() *DataSummary {
	if d.Spec.Dataset == "" && d.Spec.Weights == "" {
		return nil
	}
	m := d.Model
	model := fmt.Sprintf("%s: image %d×%d, embedding %d, vision width %d × %d layers, text width %d × %d layers, vocabulary %d",
		m.Name, m.ImageSize, m.ImageSize, m.EmbedDim, m.VisionWidth, m.VisionLayers, m.TextWidth, m.TextLayers, m.VocabSize)
	return &DataSummary{Dataset: d.Spec.Dataset, Model: model,
		TrainImages: len(d.Splits.Train.Examples), TrainCaptions: d.Splits.Train.NumCaptions(),
		TestImages: len(d.Splits.Test.Examples), TestCaptions: d.Splits.Test.NumCaptions(), Skipped: d.Skipped}
}
