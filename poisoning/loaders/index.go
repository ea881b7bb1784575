package loaders

import (
	"fmt"
	"iter"
	"math/rand/v2"
	"strings"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// Entry is one image of an Index: its annotations and where its file is, without the pixels.
type Entry struct {
	// ID is the example's stable ID, e.g. "coco/train2014/COCO_train2014_000000000009.jpg".
	ID string
	// Path is the image file.
	Path string
	// Captions are the image's captions, in the annotation file's order.
	Captions []string
	// Label indexes the index's Classes, or is dataset.NoLabel.
	Label int
	// Split is the split the annotation file assigns ("train2014", Karpathy's "train", …), or "".
	Split string
}

// Index is a dataset's annotations (captions, labels, image paths) without the pixels: the loaders of
// directory-based formats (COCO, Karpathy, PASCAL) build one, splits and combinations are drawn on it, and its
// Examples method decodes the images lazily. An Index is read-only once built.
type Index struct {
	name    string
	classes []string
	entries []Entry
}

// NewIndex returns an index over the given entries. Labels must index classes (or be dataset.NoLabel) and IDs
// must be unique.
func NewIndex(name string, classes []string, entries []Entry) (*Index, error) {
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		if e.Label != dataset.NoLabel && (e.Label < 0 || e.Label >= len(classes)) {
			return nil, fmt.Errorf("loaders: index %s: entry %s has label %d but there are %d classes", name, e.ID, e.Label, len(classes))
		}
		if seen[e.ID] {
			return nil, fmt.Errorf("loaders: index %s: ID %s appears twice", name, e.ID)
		}
		seen[e.ID] = true
	}
	return &Index{name: name, classes: classes, entries: entries}, nil
}

// Name identifies the index, e.g. "coco/train2014+val2014".
func (ix *Index) Name() string { return ix.name }

// Classes holds the class names the labels index (nil when unlabelled).
func (ix *Index) Classes() []string { return ix.classes }

// Len returns the number of entries.
func (ix *Index) Len() int { return len(ix.entries) }

// Entries returns the entries in order. The slice is shared: do not modify it.
func (ix *Index) Entries() []Entry { return ix.entries }

// Examples yields the entries as examples, reading and decoding each image only when it is asked for (or, with
// opts.Workers > 1, a bounded number ahead). A missing or corrupt image is yielded as an *ExampleError naming
// the file, and the iteration goes on if the consumer continues.
func (ix *Index) Examples(opts Options) iter.Seq2[dataset.Example, error] {
	items := func(yield func(item, error) bool) {
		for _, e := range ix.entries {
			if !yield(item{entry: e}, nil) {
				return
			}
		}
	}
	return decodeAll(items, opts)
}

// Filter returns the index of the entries for which keep is true, in order, under a new name.
func (ix *Index) Filter(name string, keep func(Entry) bool) *Index {
	var out []Entry
	for _, e := range ix.entries {
		if keep(e) {
			out = append(out, e)
		}
	}
	return &Index{name: name, classes: ix.classes, entries: out}
}

// Concat joins indices into one with the given classes: each labelled entry's class is looked up by name in
// classes (an unknown name is an error listing the valid ones), unlabelled entries stay unlabelled. IDs must be
// unique over all parts.
func Concat(name string, classes []string, parts ...*Index) (*Index, error) {
	var entries []Entry
	for _, p := range parts {
		remap := make([]int, len(p.classes))
		for i, c := range p.classes {
			j, err := dataset.ClassIndex(classes, c)
			if err != nil {
				return nil, fmt.Errorf("loaders: joining %s into %s: %w", p.name, name, err)
			}
			remap[i] = j
		}
		for _, e := range p.entries {
			if e.Label != dataset.NoLabel {
				e.Label = remap[e.Label]
			}
			entries = append(entries, e)
		}
	}
	return NewIndex(name, classes, entries)
}

// SplitConfig says how SplitPerClass draws a test set.
type SplitConfig struct {
	// PerClass is the number of test images drawn from each class (required, positive).
	PerClass int
	// Exclude names classes that get no test images (their images all stay in train); names are matched
	// case-insensitively and must be classes of the index.
	Exclude []string
	// Seed drives the draw.
	Seed int64
}

// SplitPerClass draws a seeded, class-balanced test set: cfg.PerClass images of every class not in
// cfg.Exclude, chosen uniformly (a seeded shuffle of the class's entries in index order, then the first
// PerClass). Every other entry, unlabelled ones included, goes to train. Both keep the index order. A class with
// fewer than PerClass images is an error naming it and its count. The result depends only on the seed and the
// index's entries, not on the images.
func SplitPerClass(ix *Index, cfg SplitConfig) (train, test *Index, err error) {
	if cfg.PerClass <= 0 {
		return nil, nil, fmt.Errorf("loaders: splitting %s: PerClass is %d; want a positive number", ix.name, cfg.PerClass)
	}
	excluded := make([]bool, len(ix.classes))
	for _, name := range cfg.Exclude {
		c, err := dataset.ClassIndex(ix.classes, name)
		if err != nil {
			return nil, nil, fmt.Errorf("loaders: splitting %s: Exclude: %w", ix.name, err)
		}
		excluded[c] = true
	}
	byClass := make([][]int, len(ix.classes))
	for i, e := range ix.entries {
		if e.Label != dataset.NoLabel {
			byClass[e.Label] = append(byClass[e.Label], i)
		}
	}
	inTest := make([]bool, len(ix.entries))
	var short []string
	for c, idx := range byClass {
		if excluded[c] {
			continue
		}
		if len(idx) < cfg.PerClass {
			short = append(short, fmt.Sprintf("%q (%d)", ix.classes[c], len(idx)))
			continue
		}
		// One stream per class: a class's draw does not depend on the other classes.
		rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x7e57_5911_7000_0000^uint64(c)))
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		for _, i := range idx[:cfg.PerClass] {
			inTest[i] = true
		}
	}
	if len(short) > 0 {
		return nil, nil, fmt.Errorf("loaders: splitting %s: %d test images per class needed, but these classes have fewer: %s (exclude them with SplitConfig.Exclude)",
			ix.name, cfg.PerClass, strings.Join(short, ", "))
	}
	var trainE, testE []Entry
	for i, e := range ix.entries {
		if inTest[i] {
			testE = append(testE, e)
		} else {
			trainE = append(trainE, e)
		}
	}
	train = &Index{name: ix.name + "/train", classes: ix.classes, entries: trainE}
	test = &Index{name: ix.name + "/test", classes: ix.classes, entries: testE}
	return train, test, nil
}
