package loaders

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// open_clip's defaults for --csv-img-key and --csv-caption-key.
const (
	DefaultCSVImageKey   = "filepath"
	DefaultCSVCaptionKey = "title"
)

// CSVConfig describes an open_clip-style CSV or TSV file: a header row naming the columns, one (image,
// caption) pair per row.
type CSVConfig struct {
	// Path is the CSV or TSV file.
	Path string
	// ImageKey is the image column (open_clip's --csv-img-key; empty means "filepath"). Relative paths are
	// resolved against the directory of Path.
	ImageKey string
	// CaptionKey is the caption column (open_clip's --csv-caption-key; empty means "title").
	CaptionKey string
	// LabelKey, if set, is a column holding each row's class: a name from Classes (case-insensitive) or its
	// 0-based index. An empty cell means no label.
	LabelKey string
	// Classes are the class names labels refer to; required with LabelKey.
	Classes []string
	// Separator is the field separator (open_clip's --csv-separator); 0 means ',' for a .csv file and a tab
	// otherwise (.tsv, .tab, …; open_clip's default).
	Separator rune
	// Name names the source (the collected Dataset.Name); empty means the file name without extension.
	// Example IDs are the image column's text as written.
	Name string
}

// CSV is an open_clip CSV/TSV source, streamed row by row: the file is read as the examples are consumed, so
// its size does not matter. Consecutive rows with the same image become one example with several captions
// (rows of the same image elsewhere in the file make another example with the same ID).
type CSV struct {
	cfg               CSVConfig
	dir               string
	sep               rune
	imgCol, capCol    int
	labelCol, nFields int
}

// OpenCSV checks the configuration and the header row (the columns must exist; a missing one is an error
// listing the header's columns) and returns the source. Rows are read when Examples is ranged over.
func OpenCSV(cfg CSVConfig) (*CSV, error) {
	if cfg.ImageKey == "" {
		cfg.ImageKey = DefaultCSVImageKey
	}
	if cfg.CaptionKey == "" {
		cfg.CaptionKey = DefaultCSVCaptionKey
	}
	if cfg.LabelKey != "" && len(cfg.Classes) == 0 {
		return nil, fmt.Errorf("loaders: %s: the label column %q needs CSVConfig.Classes", cfg.Path, cfg.LabelKey)
	}
	if cfg.Name == "" {
		cfg.Name = strings.TrimSuffix(filepath.Base(cfg.Path), filepath.Ext(cfg.Path))
	}
	c := &CSV{cfg: cfg, dir: filepath.Dir(cfg.Path), sep: cfg.Separator, labelCol: -1}
	if c.sep == 0 {
		c.sep = '\t'
		if strings.EqualFold(filepath.Ext(cfg.Path), ".csv") {
			c.sep = ','
		}
	}
	f, r, err := c.open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	header, err := r.Read()
	if err != nil {
		return nil, c.readError(err)
	}
	c.nFields = len(header)
	find := func(key string) (int, error) {
		for i, h := range header {
			if strings.TrimSpace(h) == key {
				return i, nil
			}
		}
		return -1, fmt.Errorf("loaders: %s has no column %q: its columns are %s (separator %q)", cfg.Path, key, strings.Join(quoteAll(header), ", "), c.sep)
	}
	if c.imgCol, err = find(cfg.ImageKey); err != nil {
		return nil, err
	}
	if c.capCol, err = find(cfg.CaptionKey); err != nil {
		return nil, err
	}
	if cfg.LabelKey != "" {
		if c.labelCol, err = find(cfg.LabelKey); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = strconv.Quote(v)
	}
	return out
}

// open opens the file with a CSV reader set up for it (a UTF-8 byte-order mark is skipped).
func (c *CSV) open() (*os.File, *csv.Reader, error) {
	f, err := os.Open(c.cfg.Path)
	if err != nil {
		return nil, nil, fmt.Errorf("loaders: opening CSV: %w", err)
	}
	br := bufio.NewReaderSize(f, 1<<16)
	if bom, err := br.Peek(3); err == nil && string(bom) == "\xef\xbb\xbf" {
		_, _ = br.Discard(3)
	}
	r := csv.NewReader(br)
	r.Comma = c.sep
	r.LazyQuotes = true
	r.ReuseRecord = true
	return f, r, nil
}

// readError converts a CSV reading error into an *AnnotationError with the position.
func (c *CSV) readError(err error) error {
	if errors.Is(err, io.EOF) {
		return &AnnotationError{File: c.cfg.Path, Offset: -1, Err: fmt.Errorf("empty file: no header row")}
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &AnnotationError{File: c.cfg.Path, Offset: -1, Line: pe.Line, Column: pe.Column, Err: pe.Err}
	}
	return &AnnotationError{File: c.cfg.Path, Offset: -1, Err: err}
}

// Name returns CSVConfig.Name.
func (c *CSV) Name() string { return c.cfg.Name }

// Classes returns CSVConfig.Classes.
func (c *CSV) Classes() []string { return c.cfg.Classes }

// label parses a label cell: empty (no label), a 0-based class index or a class name.
func (c *CSV) label(cell string) (int, error) {
	if cell = strings.TrimSpace(cell); cell == "" {
		return dataset.NoLabel, nil
	}
	return parseLabel(c.cfg.Classes, cell)
}

// entries streams the rows, grouped into entries.
func (c *CSV) entries() iter.Seq2[item, error] {
	return func(yield func(item, error) bool) {
		f, r, err := c.open()
		if err != nil {
			yield(item{}, err)
			return
		}
		defer f.Close()
		r.FieldsPerRecord = c.nFields
		if _, err := r.Read(); err != nil { // The header, checked by OpenCSV.
			yield(item{}, c.readError(err))
			return
		}
		var cur *Entry
		var curLine int
		// fail passes the entry gathered so far on (a broken row further down does not lose it), then err.
		fail := func(err error) {
			if cur == nil || yield(item{entry: *cur}, nil) {
				yield(item{}, err)
			}
		}
		for {
			rec, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				fail(c.readError(err))
				return
			}
			line, _ := r.FieldPos(0)
			img := strings.TrimSpace(rec[c.imgCol])
			if img == "" {
				fail(&AnnotationError{File: c.cfg.Path, Offset: -1, Line: line, Column: 1, Err: fmt.Errorf("empty %q cell", c.cfg.ImageKey)})
				return
			}
			label := dataset.NoLabel
			if c.labelCol >= 0 {
				if label, err = c.label(rec[c.labelCol]); err != nil {
					fail(&AnnotationError{File: c.cfg.Path, Offset: -1, Line: line, Column: 1, Err: err})
					return
				}
			}
			caption := strings.TrimSpace(rec[c.capCol])
			if cur != nil && cur.ID == img {
				if cur.Label != label {
					fail(&AnnotationError{File: c.cfg.Path, Offset: -1, Line: line, Column: 1,
						Err: fmt.Errorf("image %s has label %d here but %d on line %d", img, label, cur.Label, curLine)})
					return
				}
				cur.Captions = append(cur.Captions, caption)
				continue
			}
			if cur != nil && !yield(item{entry: *cur}, nil) {
				return
			}
			p := filepath.FromSlash(img)
			if !filepath.IsAbs(p) {
				p = filepath.Join(c.dir, p)
			}
			cur = &Entry{ID: img, Path: p, Captions: []string{caption}, Label: label}
			curLine = line
		}
		if cur != nil {
			yield(item{entry: *cur}, nil)
		}
	}
}

// Examples streams the file: rows are read only as examples are consumed, and each image is decoded when its
// example is asked for (see Options.Workers). IDs are the image column's text. A malformed row is an
// *AnnotationError naming the file and line; a missing or corrupt image an *ExampleError naming the file.
func (c *CSV) Examples(opts Options) iter.Seq2[dataset.Example, error] {
	return decodeAll(c.entries(), opts)
}

// Index reads the whole file into an Index (annotations only, no pixels), for splitting or combining. An
// image listed again after other images is an error there, since Index IDs are unique: group its rows.
func (c *CSV) Index() (*Index, error) {
	var entries []Entry
	for it, err := range c.entries() {
		if err != nil {
			return nil, err
		}
		entries = append(entries, it.entry)
	}
	ix, err := NewIndex(c.cfg.Name, c.cfg.Classes, entries)
	if err != nil {
		return nil, fmt.Errorf("loaders: %s: %w", c.cfg.Path, err)
	}
	return ix, nil
}
