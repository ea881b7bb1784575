package loaders

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// ImageFile is a picture in a file, read and decoded each time it is loaded: the dataset.ImageRef of the
// examples of Lazy. Size, when positive, brings it to CLIP's test transform at that side (imageprep.CLIPImage,
// as Options.ImageSize does); MaxPixels is the decompression-bomb limit (see Options.MaxPixels).
type ImageFile struct {
	Path      string
	Size      int
	MaxPixels int64
}

// Load reads, decodes and (with Size) resizes the picture.
func (f ImageFile) Load() (dataset.Image, error) {
	ex, err := item{entry: Entry{ID: f.Path, Path: f.Path}}.decode(Options{ImageSize: f.Size, MaxPixels: f.MaxPixels})
	return ex.Image, err
}

// Lazy returns the examples of ix as a dataset whose pictures are read on demand: every example holds its
// ID, captions and label, and an ImageFile (with opts.ImageSize and opts.MaxPixels) as its Ref. Nothing is
// read now; a missing or corrupt file is an error when its picture is loaded (see CheckImages).
func Lazy(ix *Index, opts Options) *dataset.Dataset {
	d := &dataset.Dataset{Name: ix.Name(), Classes: ix.Classes(), Examples: make([]dataset.Example, ix.Len())}
	for i, e := range ix.Entries() {
		d.Examples[i] = dataset.Example{ID: e.ID, Captions: slices.Clone(e.Captions), Label: e.Label,
			Ref: ImageFile{Path: e.Path, Size: opts.ImageSize, MaxPixels: opts.MaxPixels}}
	}
	return d
}

// CheckImages decodes every picture of src once, on opts.Workers goroutines (0: GOMAXPROCS), keeping none, and
// returns the indices of the examples that decode, in order, and the report of those that do not (an
// *ExampleError each). Without opts.SkipCorrupt the first failure is returned as the error instead. Memory
// holds one picture per worker.
func CheckImages(src dataset.ImageSource, opts Options) ([]int, *Report, error) {
	errs := make([]error, src.Len())
	dataset.Parallel(src.Len(), opts.Workers, func(i int) error {
		_, _, errs[i] = src.Read(i, true)
		return nil
	})
	rep := &Report{}
	var good []int
	for i, err := range errs {
		if err == nil {
			good = append(good, i)
			continue
		}
		var exErr *ExampleError
		if !opts.SkipCorrupt || !errors.As(err, &exErr) {
			rep.Loaded = len(good)
			return good, rep, err
		}
		rep.Skipped = append(rep.Skipped, exErr)
	}
	rep.Loaded = len(good)
	return good, rep, nil
}

// indexSource is the dataset.ImageSource of an Index: annotations in memory, pictures read from their files.
type indexSource struct {
	ix   *Index
	opts Options
}

// Source returns ix as a dataset.ImageSource whose Read reads the image file (decoding it as opts says:
// ImageSize and MaxPixels) and gives its bytes as stored. Problems with a file are *ExampleError.
func (ix *Index) Source(opts Options) dataset.ImageSource { return &indexSource{ix, opts} }

func (s *indexSource) Name() string          { return s.ix.Name() }
func (s *indexSource) Classes() []string     { return s.ix.Classes() }
func (s *indexSource) Len() int              { return s.ix.Len() }
func (s *indexSource) Label(i int) int       { return s.ix.entries[i].Label }
func (s *indexSource) NumCaptions(i int) int { return len(s.ix.entries[i].Captions) }

func (s *indexSource) Read(i int, decode bool) (dataset.Example, dataset.Encoded, error) {
	if i < 0 || i >= s.ix.Len() {
		return dataset.Example{}, dataset.Encoded{}, fmt.Errorf("loaders: example %d of %s out of range [0, %d)", i, s.ix.Name(), s.ix.Len())
	}
	e := s.ix.entries[i]
	data, err := os.ReadFile(e.Path)
	if err != nil {
		return dataset.Example{}, dataset.Encoded{}, &ExampleError{ID: e.ID, File: e.Path, Err: err}
	}
	return readItem(item{entry: e, data: data}, decode, s.opts)
}

// readItem is the Read of an item whose bytes are in memory: its example (decoded or not) and its encoding.
func readItem(it item, decode bool, opts Options) (dataset.Example, dataset.Encoded, error) {
	name := it.file
	if name == "" {
		name = it.entry.Path
	}
	enc := dataset.Encoded{Data: it.data, Format: formatOf(it.data)}
	if enc.Format == "" {
		return dataset.Example{}, dataset.Encoded{}, &ExampleError{ID: it.entry.ID, File: name, Err: errors.New("neither JPEG nor PNG data")}
	}
	if !decode {
		e := it.entry
		return dataset.Example{ID: e.ID, Captions: slices.Clone(e.Captions), Label: e.Label}, enc, nil
	}
	ex, err := it.decode(opts)
	return ex, enc, err
}

// formatOf names the format of encoded picture data from its first bytes: "jpg", "png", or "" for neither.
func formatOf(data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte{0xff, 0xd8, 0xff}):
		return "jpg"
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	}
	return ""
}
