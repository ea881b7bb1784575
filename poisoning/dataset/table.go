package dataset

import (
	"fmt"
	"sort"
)

// Encoded is a picture as it is stored: the bytes of its file or tar member and their format.
type Encoded struct {
	// Data is the JPEG or PNG file's content; nil for a picture held in memory only.
	Data []byte
	// Format is "jpg" or "png" (empty with Data).
	Format string
}

// ImageSource is a pool of examples read by index when asked for, from memory, image files or tar shards, so
// that a dataset of any size can be poisoned, filtered and written without holding it: labels and caption
// counts are kept (a few bytes per example), IDs, captions and pictures are read on demand. Implementations are
// safe for concurrent use. Dataset.Source is the one of a dataset in memory; poisoning/loaders has those of
// files and WebDataset shards.
type ImageSource interface {
	// Name identifies the pool and Classes names the labels.
	Name() string
	Classes() []string
	// Len is the number of examples.
	Len() int
	// Label and NumCaptions describe example i without reading it.
	Label(i int) int
	NumCaptions(i int) int
	// Read reads example i: its ID, captions and label, its picture decoded when decode is true (else Image is
	// empty and Ref is nil), and the picture as stored (empty for a pool held in memory).
	Read(i int, decode bool) (Example, Encoded, error)
}

// memory is the ImageSource of examples held in memory (or read through their Ref).
type memory struct {
	name     string
	classes  []string
	examples []Example
}

// Source returns the dataset as an ImageSource.
func (d *Dataset) Source() ImageSource { return &memory{d.Name, d.Classes, d.Examples} }

func (m *memory) Name() string          { return m.name }
func (m *memory) Classes() []string     { return m.classes }
func (m *memory) Len() int              { return len(m.examples) }
func (m *memory) Label(i int) int       { return m.examples[i].Label }
func (m *memory) NumCaptions(i int) int { return len(m.examples[i].Captions) }

func (m *memory) Read(i int, decode bool) (Example, Encoded, error) {
	if i < 0 || i >= len(m.examples) {
		return Example{}, Encoded{}, fmt.Errorf("example %d of %q out of range [0, %d)", i, m.name, len(m.examples))
	}
	ex := m.examples[i]
	if !decode {
		ex.Image, ex.Ref = Image{}, nil
		return ex, Encoded{}, nil
	}
	img, err := ex.Pixels()
	ex.Image, ex.Ref = img, nil
	return ex, Encoded{}, err
}

// Table is the compact description of a pair set that attacks choose from: the pool's labels (read from an
// ImageSource) and, per pair, the image its caption was written for and whether it is poisoned; no pixels and
// no caption text. The table of a clean set (CleanTable) adds 4 bytes per image at most, so the pairs of a
// million images are chosen in a few megabytes.
type Table struct {
	// Name and Classes are the pair set's.
	Name    string
	Classes []string
	// Images is the pool: labels, and IDs and pictures read on demand (e.g. a backdoor's carriers).
	Images ImageSource
	pairs  int
	// A clean table: image i's pairs are starts[i] … starts[i+1]−1 (nil: one pair per image, pair i is image
	// i's). A pair set's: image, captionOf and poisoned per pair.
	starts           []int32
	image, captionOf []int32
	poisoned         []bool
}

// CleanTable returns the table of the clean pairs of src: one pair per (example, caption), in example order,
// as Dataset.Pairs expands a dataset.
func CleanTable(src ImageSource) *Table {
	t := &Table{Name: src.Name(), Classes: src.Classes(), Images: src}
	n := src.Len()
	single := true
	for i := range n {
		if src.NumCaptions(i) != 1 {
			single = false
			break
		}
	}
	if single {
		t.pairs = n
		return t
	}
	t.starts = make([]int32, n+1)
	for i := range n {
		t.starts[i+1] = t.starts[i] + int32(src.NumCaptions(i))
	}
	t.pairs = int(t.starts[n])
	return t
}

// Table returns the table of the pair set (its pool read through ps.Images).
func (ps *PairSet) Table() *Table {
	n := len(ps.Pairs)
	t := &Table{Name: ps.Name, Classes: ps.Classes, Images: &memory{ps.Name, ps.Classes, ps.Images}, pairs: n,
		image: make([]int32, n), captionOf: make([]int32, n), poisoned: make([]bool, n)}
	for i, p := range ps.Pairs {
		t.image[i], t.captionOf[i], t.poisoned[i] = int32(p.Image), int32(p.CaptionOf), p.Poisoned
	}
	return t
}

// ImageOf returns the pool image pair p shows.
func (t *Table) ImageOf(p int) int {
	if t.image != nil {
		return int(t.image[p])
	}
	return t.CaptionOf(p)
}

// NumPairs and NumImages count the pairs and the pool's images.
func (t *Table) NumPairs() int  { return t.pairs }
func (t *Table) NumImages() int { return t.Images.Len() }

// Label returns pool image i's label.
func (t *Table) Label(image int) int { return t.Images.Label(image) }

// CaptionOf returns the pool image pair p's caption was written for.
func (t *Table) CaptionOf(p int) int {
	switch {
	case t.captionOf != nil:
		return int(t.captionOf[p])
	case t.starts == nil:
		return p
	}
	return t.imageOfClean(p)
}

// imageOfClean is the image of clean pair p of a table with starts.
func (t *Table) imageOfClean(p int) int {
	return sort.Search(len(t.starts)-1, func(i int) bool { return int(t.starts[i+1]) > p })
}

// Clean returns, for a clean table, the image of pair p and the caption's position among its captions.
func (t *Table) Clean(p int) (image, caption int) {
	if t.starts == nil {
		return p, 0
	}
	i := t.imageOfClean(p)
	return i, p - int(t.starts[i])
}

// IsClean says whether the table is a CleanTable (its pairs are its images' captions in order).
func (t *Table) IsClean() bool { return t.captionOf == nil }

// Poisoned says whether pair p is poisoned.
func (t *Table) Poisoned(p int) bool { return t.poisoned != nil && t.poisoned[p] }

// Pair returns clean pair p's picture and caption, read from the pool: a clean table is the PairSource of its
// pool's pairs (models/train streams a training set from it).
func (t *Table) Pair(p int) (Image, string, error) {
	if !t.IsClean() || p < 0 || p >= t.pairs {
		return Image{}, "", fmt.Errorf("pair %d of %q: not a clean pair of the table's %d", p, t.Name, t.pairs)
	}
	i, j := t.Clean(p)
	ex, _, err := t.Images.Read(i, true)
	if err != nil {
		return Image{}, "", err
	}
	if j >= len(ex.Captions) {
		return Image{}, "", fmt.Errorf("example %s has %d captions, its pool said %d", ex.ID, len(ex.Captions), t.Images.NumCaptions(i))
	}
	return ex.Image, ex.Captions[j], nil
}

var _ PairSource = (*Table)(nil)
