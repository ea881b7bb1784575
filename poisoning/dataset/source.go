package dataset

import (
	"errors"
	"fmt"
)

// ImageRef reads a picture that is not held in memory (a file, a tar member, an attack's stamped copy of
// another picture) each time it is asked for. Implementations are safe for concurrent use.
type ImageRef interface {
	Load() (Image, error)
}

// ErrNoImage is wrapped by Example.Pixels for an example with neither pixels nor a reference.
var ErrNoImage = errors.New("example has no image")

// Pixels returns the example's picture: Image when its pixels are held, else the one Ref reads now. Code that
// may see examples of a streamed dataset (whose pixels are read on demand) calls it instead of reading Image.
func (ex *Example) Pixels() (Image, error) {
	if len(ex.Image.Pix) > 0 || ex.Ref == nil {
		if len(ex.Image.Pix) == 0 {
			return Image{}, fmt.Errorf("%s: %w", ex.ID, ErrNoImage)
		}
		return ex.Image, nil
	}
	img, err := ex.Ref.Load()
	if err != nil {
		return Image{}, fmt.Errorf("image %s: %w", ex.ID, err)
	}
	return img, nil
}

// PairSource gives the pairs of a training set by index, each read when it is asked for, so that a training
// set need not fit in memory: models/train streams batches from it. Implementations are safe for concurrent
// use. PairSet is one (its images held or read through their Ref); poisoning/loaders reads sets of any size
// from files and tar shards.
type PairSource interface {
	// NumPairs is the number of pairs.
	NumPairs() int
	// Pair returns pair i's picture and caption.
	Pair(i int) (Image, string, error)
}

// NumPairs returns the number of pairs.
func (ps *PairSet) NumPairs() int { return len(ps.Pairs) }

// Pair returns pair i's picture (held or read now, see Example.Pixels) and caption.
func (ps *PairSet) Pair(i int) (Image, string, error) {
	if i < 0 || i >= len(ps.Pairs) {
		return Image{}, "", fmt.Errorf("pair %d of %q out of range [0, %d)", i, ps.Name, len(ps.Pairs))
	}
	p := ps.Pairs[i]
	img, err := ps.Images[p.Image].Pixels()
	return img, p.Caption, err
}

var _ PairSource = (*PairSet)(nil)
