// Package dataset defines the image-caption data that every source (Fashion-MNIST, COCO, Flickr, CSV,
// WebDataset) produces and that attacks, defenses, training and evaluation consume.
//
// The flow is: a source builds a Dataset (images, each with several captions and an optional class label);
// Dataset.Pairs expands it into a PairSet of (image, caption) training pairs; attacks return a new PairSet with
// poisoned pairs marked; training iterates over a PairSet; evaluation uses a Dataset as gallery and query set.
package dataset

import (
	"fmt"
	"slices"
	"strings"
)

// NoLabel marks an example without a class label.
const NoLabel = -1

// Image is a decoded image in height × width × channels (HWC) layout, 8 bits per channel.
type Image struct {
	Height, Width, Channels int
	Pix                     []uint8
}

// Example is one image with its captions.
type Example struct {
	// ID is stable across runs and seeds, e.g. "fashion-mnist/train/00042".
	ID string
	// Image is the picture itself. It is empty in a streamed dataset, whose pictures Ref reads on demand
	// (see Pixels).
	Image Image
	// Ref, when Image is empty, reads the picture each time it is needed (nil when Image holds it).
	Ref ImageRef
	// Captions are the human (or generated) descriptions of the image.
	Captions []string
	// Label is the index into Dataset.Classes, or NoLabel.
	Label int
}

// Dataset is a set of examples with the class names their labels refer to.
type Dataset struct {
	// Name identifies the source and split, e.g. "fashion-mnist/test".
	Name string
	// Classes holds the class names; Example.Label indexes it.
	Classes []string
	// Examples holds the images with their captions.
	Examples []Example
}

// ClassIndex returns the label of the class with the given name (case-insensitive), or an error that lists the
// valid class names.
func (d *Dataset) ClassIndex(name string) (int, error) {
	return ClassIndex(d.Classes, name)
}

// ClassIndex returns the index of name (case-insensitive, surrounding spaces ignored) in classes, or an error that
// names the unknown value and lists the valid ones.
func ClassIndex(classes []string, name string) (int, error) {
	want := strings.ToLower(strings.TrimSpace(name))
	for i, c := range classes {
		if strings.ToLower(c) == want {
			return i, nil
		}
	}
	return -1, fmt.Errorf("unknown class name %q: valid classes are %s", name, strings.Join(quoteAll(classes), ", "))
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = fmt.Sprintf("%q", v)
	}
	return out
}

// IndicesOfClass returns the indices of the examples with the given label, in order.
func (d *Dataset) IndicesOfClass(label int) []int {
	var idx []int
	for i, ex := range d.Examples {
		if ex.Label == label {
			idx = append(idx, i)
		}
	}
	return idx
}

// NumCaptions returns the total number of captions over all examples.
func (d *Dataset) NumCaptions() int {
	n := 0
	for _, ex := range d.Examples {
		n += len(ex.Captions)
	}
	return n
}

// Pair is one (image, caption) training pair of a PairSet.
type Pair struct {
	// Image indexes PairSet.Images: the picture the caption is paired with.
	Image int
	// Caption is the text of the pair.
	Caption string
	// CaptionOf indexes PairSet.Images: the example the caption was written for. It equals Image for clean pairs.
	CaptionOf int
	// CaptionIndex is the position of the caption in Images[CaptionOf].Captions.
	CaptionIndex int
	// Poisoned is true for pairs an attack created or re-paired.
	Poisoned bool
}

// PairSet is a training set of (image, caption) pairs over a pool of images.
type PairSet struct {
	// Name identifies the set, e.g. "fashion-mnist/finetune+attack-II".
	Name string
	// Classes holds the class names the images' labels refer to.
	Classes []string
	// Images is the pool of images (with their own captions and labels) the pairs point into.
	Images []Example
	// Pairs are the training pairs, in a fixed order.
	Pairs []Pair
}

// Pairs expands the dataset into one clean pair per (image, caption), in example order. The image pool shares
// memory with d.
func (d *Dataset) Pairs() *PairSet {
	ps := &PairSet{Name: d.Name, Classes: d.Classes, Images: d.Examples}
	ps.Pairs = make([]Pair, 0, d.NumCaptions())
	for i, ex := range d.Examples {
		for j, c := range ex.Captions {
			ps.Pairs = append(ps.Pairs, Pair{Image: i, Caption: c, CaptionOf: i, CaptionIndex: j})
		}
	}
	return ps
}

// Clone returns a copy of the pair set whose Pairs slice can be changed without touching ps. Images are shared.
func (ps *PairSet) Clone() *PairSet {
	c := *ps
	c.Pairs = slices.Clone(ps.Pairs)
	return &c
}

// NumPoisoned counts the poisoned pairs.
func (ps *PairSet) NumPoisoned() int {
	n := 0
	for _, p := range ps.Pairs {
		if p.Poisoned {
			n++
		}
	}
	return n
}

// PoisonRate is φ = |poisoned pairs| / |all pairs|, the poisoning rate counted in pairs of the whole training set.
func (ps *PairSet) PoisonRate() float64 {
	if len(ps.Pairs) == 0 {
		return 0
	}
	return float64(ps.NumPoisoned()) / float64(len(ps.Pairs))
}

// Subset returns a dataset with the examples at the given indices, in that order. Examples are shared.
func (d *Dataset) Subset(name string, indices []int) *Dataset {
	out := &Dataset{Name: name, Classes: d.Classes, Examples: make([]Example, len(indices))}
	for i, idx := range indices {
		out.Examples[i] = d.Examples[idx]
	}
	return out
}

// Splits are the datasets an experiment trains and evaluates on: a clean pre-training pool, the fine-tuning
// train split the attacks poison, the test split, and an optional clean held-out split for defenses.
type Splits struct {
	// Pool is the clean pre-training pool (empty when a pre-trained model is loaded instead) and Train the
	// fine-tuning split; Test holds the images and captions evaluation queries and searches.
	Pool, Train, Test *Dataset
	// HeldOut is an extra clean split, disjoint from Pool and Train, for defenses that fine-tune on clean data
	// the victim never saw (nil when there is none).
	HeldOut *Dataset
	// Dir is the directory the data was read from (empty when generated in memory).
	Dir string
}
