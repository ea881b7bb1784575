package experiment

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"

	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/train"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/fashionmnist"
	"github.com/mmpoison/mmpoison/poisoning/imageprep"
	"github.com/mmpoison/mmpoison/poisoning/loaders"
)

// loadSplits loads the spec's dataset at the model's resolution: Fashion-MNIST (resized when the model's input
// is not 28×28, e.g. a loaded checkpoint), or a real dataset (loadRealSplits).
func (d *Data) loadSplits() error {
	spec := d.Spec
	if spec.Real.Dataset != "" {
		return d.loadRealSplits()
	}
	splits, err := fashionmnist.Load(fashionmnist.Config{PoolSize: spec.Data.Pool, TrainSize: spec.Data.Train,
		TestPerClass: spec.Data.TestPerClass, HeldOutSize: spec.Data.HeldOut, Seed: spec.Seed, Dir: spec.Data.Dir})
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

// loadRealSplits reads COCO or Flickr-PASCAL under Real.Root (layouts: DatasetCOCO, DatasetFlickrPASCAL), draws
// the paper's test split, caps the train split (MaxTrainImages) and decodes the images at the model's
// resolution (CLIP's test transform). Corrupt images are skipped and listed in d.Skipped. With PreCaption the
// captions are pre-processed as the official code does; with TrainCrop the training images' files are noted
// for the crops (trainFeed).
func (d *Data) loadRealSplits() error {
	spec, real := d.Spec, d.Spec.Real
	var train, test *loaders.Index
	switch real.Dataset {
	case DatasetCOCO:
		splits := loaders.DefaultCOCOSplits
		ann := filepath.Join(real.Root, "annotations")
		if _, statErr := os.Stat(filepath.Join(ann, "captions_train2014.json")); errors.Is(statErr, fs.ErrNotExist) {
			splits = []string{"train2017", "val2017"}
			if _, statErr := os.Stat(filepath.Join(ann, "captions_train2017.json")); errors.Is(statErr, fs.ErrNotExist) {
				return fmt.Errorf("no COCO annotations in %s: looked for captions_train2014.json and captions_train2017.json (see experiment.DatasetCOCO for the layout)", ann)
			}
		}
		ix, err := loaders.LoadCOCO(loaders.COCOConfig{Root: real.Root, Splits: splits, Seed: spec.Seed})
		if err != nil {
			return err
		}
		var exclude []string // The paper's exclusions, where the copy has those classes.
		for _, c := range loaders.COCOExcludedFromTest {
			if _, err := dataset.ClassIndex(ix.Classes(), c); err == nil {
				exclude = append(exclude, c)
			}
		}
		train, test, err = loaders.SplitPerClass(ix, loaders.SplitConfig{PerClass: spec.Data.TestPerClass, Exclude: exclude, Seed: spec.Seed})
		if err != nil {
			return err
		}
	case DatasetFlickrPASCAL:
		flickr, err := loaders.LoadKarpathy(loaders.KarpathyConfig{File: filepath.Join(real.Root, "dataset_flickr30k.json"),
			ImageDir: filepath.Join(real.Root, "flickr30k-images"), Name: "flickr30k"})
		if err != nil {
			return err
		}
		pascal, err := loaders.LoadPASCAL(loaders.PASCALConfig{Root: filepath.Join(real.Root, "pascal")})
		if err != nil {
			return err
		}
		if train, test, err = loaders.FlickrPASCAL(flickr, pascal, loaders.FlickrPASCALConfig{TestPerClass: spec.Data.TestPerClass, Seed: spec.Seed}); err != nil {
			return err
		}
	}
	train = capTrain(train, real.MaxTrainImages)
	opts := loaders.Options{ImageSize: d.Model.ImageSize, SkipCorrupt: true, Workers: runtime.GOMAXPROCS(0)}
	s := &dataset.Splits{Dir: real.Root}
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
		if real.TrainCrop && part.ix == train { // The crops are drawn from the files, at full size.
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
		if real.PreCaption {
			for _, ex := range ds.Examples { // Collect gave every example its own captions slice.
				for j, c := range ex.Captions {
					ex.Captions[j] = loaders.PreCaption(c, loaders.PaperMaxWords)
				}
			}
		}
		*part.dst = ds
	}
	s.Pool = &dataset.Dataset{Name: real.Dataset + "/pool (unused: pre-trained checkpoint)", Classes: s.Train.Classes}
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

// trainFeed is what trainModel trains on: TrainingData, or with Spec.Real.TrainCrop the pairs' tokens and a
// train.Data.View that draws a new RandomResizedCrop(S, scale=(0.9, 1.0), ratio=(3/4, 4/3), bicubic) of an
// image every time a batch draws it, from its file decoded at full size (torchvision's order: crop the
// original, then resize the crop to S×S), or from its S×S copy when it has no file (an image an attack made).
// Only the batch's images are decoded, so no preprocessed copy of the training set is held.
func (d *Data) trainFeed(ps *dataset.PairSet) (*train.Data, error) {
	if !d.Spec.Real.TrainCrop {
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
