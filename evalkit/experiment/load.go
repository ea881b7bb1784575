package experiment

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"

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
				if err := imageprep.CheckCLIPSize(ex.Image.Width, ex.Image.Height, n); err != nil {
					return fmt.Errorf("image %s: %w", ex.ID, err)
				}
				ds.Examples[i].Image = imageprep.CLIP(ex.Image, n)
			}
		}
	}
	d.Splits = splits
	return nil
}

// loadRealSplits reads the annotations of COCO or Flickr-PASCAL under Real.Root (RealIndices) and makes the
// train and test splits streamed datasets: every picture is decoded once now to leave out corrupt ones (listed
// in d.Skipped), and its examples then read it from its file when needed, at the model's resolution (CLIP's
// test transform), so no split is held in memory. With PreCaption the captions are pre-processed as the
// official code does.
func (d *Data) loadRealSplits() error {
	real := d.Spec.Real
	train, test, err := RealIndices(d.Spec)
	if err != nil {
		return err
	}
	s := &dataset.Splits{Dir: real.Root}
	for _, part := range []struct {
		ix  *loaders.Index
		dst **dataset.Dataset
	}{{train, &s.Train}, {test, &s.Test}} {
		check := loaders.Options{SkipCorrupt: true, Workers: runtime.GOMAXPROCS(0)}
		good, rep, err := loaders.CheckImages(part.ix.Source(check), check)
		if err != nil {
			return err
		}
		for _, e := range rep.Skipped {
			d.Skipped = append(d.Skipped, e.Error())
		}
		entries := part.ix.Entries()
		keep := make(map[string]bool, len(good))
		for _, i := range good {
			keep[entries[i].ID] = true
		}
		ds := loaders.Lazy(part.ix.Filter(part.ix.Name(), func(e loaders.Entry) bool { return keep[e.ID] }),
			loaders.Options{ImageSize: d.Model.ImageSize})
		if real.PreCaption {
			for _, ex := range ds.Examples { // Lazy gave every example its own captions slice.
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

// RealIndices reads the annotations of the spec's real dataset (Real.Dataset under Real.Root: the layouts of
// DatasetCOCO and DatasetFlickrPASCAL) and draws the paper's test split (DataSpec.TestPerClass images per
// class, by the spec's seed); the train split is capped at Real.MaxTrainImages. No picture is opened.
func RealIndices(spec Spec) (train, test *loaders.Index, err error) {
	real := spec.Real
	switch real.Dataset {
	case DatasetCOCO:
		ix, err := loadCOCO(real.Root, spec.Seed)
		if err != nil {
			return nil, nil, err
		}
		var exclude []string // The paper's exclusions, where the copy has those classes.
		for _, c := range loaders.COCOExcludedFromTest {
			if _, err := dataset.ClassIndex(ix.Classes(), c); err == nil {
				exclude = append(exclude, c)
			}
		}
		if train, test, err = loaders.SplitPerClass(ix, loaders.SplitConfig{PerClass: spec.Data.TestPerClass, Exclude: exclude, Seed: spec.Seed}); err != nil {
			return nil, nil, err
		}
	case DatasetFlickrPASCAL:
		flickr, err := loaders.LoadKarpathy(loaders.KarpathyConfig{File: filepath.Join(real.Root, "dataset_flickr30k.json"),
			ImageDir: filepath.Join(real.Root, "flickr30k-images"), Name: "flickr30k"})
		if err != nil {
			return nil, nil, err
		}
		pascal, err := loaders.LoadPASCAL(loaders.PASCALConfig{Root: filepath.Join(real.Root, "pascal")})
		if err != nil {
			return nil, nil, err
		}
		if train, test, err = loaders.FlickrPASCAL(flickr, pascal, loaders.FlickrPASCALConfig{TestPerClass: spec.Data.TestPerClass, Seed: spec.Seed}); err != nil {
			return nil, nil, err
		}
	default:
		return nil, nil, fmt.Errorf("no real dataset %q: want %q or %q", real.Dataset, DatasetCOCO, DatasetFlickrPASCAL)
	}
	return capTrain(train, real.MaxTrainImages), test, nil
}

// loadCOCO reads the COCO annotations under root: 2014's splits when captions_train2014.json exists, else
// 2017's.
func loadCOCO(root string, seed int64) (*loaders.Index, error) {
	splits := loaders.DefaultCOCOSplits
	ann := filepath.Join(root, "annotations")
	if _, statErr := os.Stat(filepath.Join(ann, "captions_train2014.json")); errors.Is(statErr, fs.ErrNotExist) {
		splits = []string{"train2017", "val2017"}
		if _, statErr := os.Stat(filepath.Join(ann, "captions_train2017.json")); errors.Is(statErr, fs.ErrNotExist) {
			return nil, fmt.Errorf("no COCO annotations in %s: looked for captions_train2014.json and captions_train2017.json (see experiment.DatasetCOCO for the layout)", ann)
		}
	}
	return loaders.LoadCOCO(loaders.COCOConfig{Root: root, Splits: splits, Seed: seed})
}

// trainFeed is what trainModel trains on: a pair set held in memory (the Fashion-MNIST default) is
// preprocessed and tokenised once (TrainingData); a real dataset's is streamed (train.Stream): every batch's
// pictures are read from their files (at the model's resolution, or a triggered copy stamped on read) by a
// bounded, parallel feed. With Spec.Real.TrainCrop each draw is a new RandomResizedCrop(S, scale=(0.9, 1.0),
// ratio=(3/4, 4/3), bicubic) of the picture decoded at its full size (torchvision's order: crop the original,
// then resize the crop to S×S), or of its S×S copy when it has no file (an image an attack made).
func (d *Data) trainFeed(ps *dataset.PairSet) (*train.Data, error) {
	if d.Spec.Real.Dataset == "" {
		return d.TrainingData(ps)
	}
	st := &train.Stream{Pairs: ps, Encode: d.Tokenizer.Encode}
	if d.Spec.Real.TrainCrop {
		n := d.Model.ImageSize
		st.Pairs = fullSize{ps}
		st.Transform = func(img dataset.Image, rng *rand.Rand) (dataset.Image, error) {
			return imageprep.RandomResizedCropWith(img, n, imageprep.CLIPScale, imageprep.CLIPRatio, imageprep.Bicubic, rng), nil
		}
	}
	return &train.Data{Stream: st}, nil
}

// fullSize gives a pair set's pairs with each picture read from a file decoded at its full size (the others,
// held in memory or made on read, as they are), for TrainCrop's crops.
type fullSize struct{ *dataset.PairSet }

// Pair returns pair i's picture at full size and its caption.
func (f fullSize) Pair(i int) (dataset.Image, string, error) {
	p := f.Pairs[i]
	ex := f.Images[p.Image]
	if file, ok := ex.Ref.(loaders.ImageFile); ok && len(ex.Image.Pix) == 0 {
		file.Size = 0
		img, err := file.Load()
		return img, p.Caption, err
	}
	img, err := ex.Pixels()
	return img, p.Caption, err
}

// FullSize returns ps as the TrainCrop feed reads it: each picture read from a file decoded at its full size.
func FullSize(ps *dataset.PairSet) dataset.PairSource { return fullSize{ps} }

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
