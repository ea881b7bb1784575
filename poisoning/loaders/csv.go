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

// maxCSVRecord bounds one row of a CSV or TSV file (with the line breaks of its quoted fields): 1 MiB. The reader
// never reads further ahead, and holds a few copies of a row at most (the line, the fields, what the collector
// has not yet freed); a longer row is an *AnnotationError naming the file.
const maxCSVRecord = 1 << 20

// errCSVRecordTooLong is the error of a row longer than maxCSVRecord.
var errCSVRecordTooLong = fmt.Errorf("a row longer than %d bytes (an unterminated quote?)", maxCSVRecord)

// CSV is an open_clip CSV/TSV source, streamed row by row: the file is read as the examples are consumed, so
// its size does not matter; a row may take at most 1 MiB. Captions and IDs are valid UTF-8 (see validText). Consecutive rows with the same image become one example with several captions
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
	rows, err := c.open()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	header, err := rows.next()
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

// csvRows reads the rows of an open CSV file, each within maxCSVRecord bytes.
type csvRows struct {
	f   *os.File
	win *windowReader
	*csv.Reader
}

// next reads the next row.
func (r *csvRows) next() ([]string, error) {
	r.win.end = r.InputOffset() + maxCSVRecord
	return r.Read()
}

// Close closes the file.
func (r *csvRows) Close() error { return r.f.Close() }

// open opens the file with a CSV reader set up for it (a UTF-8 byte-order mark is skipped).
func (c *CSV) open() (*csvRows, error) {
	f, err := os.Open(c.cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("loaders: opening CSV: %w", err)
	}
	br := bufio.NewReaderSize(f, 1<<16)
	if bom, err := br.Peek(3); err == nil && string(bom) == "\xef\xbb\xbf" {
		_, _ = br.Discard(3)
	}
	win := &windowReader{r: br, tooLong: errCSVRecordTooLong}
	r := csv.NewReader(win)
	r.Comma = c.sep
	r.LazyQuotes = true
	r.ReuseRecord = true
	return &csvRows{f: f, win: win, Reader: r}, nil
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
		rows, err := c.open()
		if err != nil {
			yield(item{}, err)
			return
		}
		defer rows.Close()
		rows.FieldsPerRecord = c.nFields
		if _, err := rows.next(); err != nil { // The header, checked by OpenCSV.
			yield(item{}, c.readError(err))
			return
		}
		var cur *Entry
		var curImg string // the image cell of cur, as written
		var curLine int
		// fail passes the entry gathered so far on (a broken row further down does not lose it), then err.
		fail := func(err error) {
			if cur == nil || yield(item{entry: *cur}, nil) {
				yield(item{}, err)
			}
		}
		for {
			rec, err := rows.next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				fail(c.readError(err))
				return
			}
			line, _ := rows.FieldPos(0)
			img, caption, label, err := c.row(rec, line)
			if err != nil {
				fail(err)
				return
			}
			if cur != nil && curImg == img {
				if cur.Label != label {
					fail(&AnnotationError{File: c.cfg.Path, Offset: -1, Line: line, Column: 1,
						Err: fmt.Errorf("image %s has label %d here but %d on line %d", cur.ID, label, cur.Label, curLine)})
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
			cur = &Entry{ID: validText(img), Path: p, Captions: []string{caption}, Label: label}
			curImg, curLine = img, line
		}
		if cur != nil {
			yield(item{entry: *cur}, nil)
		}
	}
}

// row returns the image cell (as written), the caption (valid UTF-8) and the label of one row.
func (c *CSV) row(rec []string, line int) (img, caption string, label int, err error) {
	img = strings.TrimSpace(rec[c.imgCol])
	if img == "" {
		return "", "", 0, &AnnotationError{File: c.cfg.Path, Offset: -1, Line: line, Column: 1, Err: fmt.Errorf("empty %q cell", c.cfg.ImageKey)}
	}
	label = dataset.NoLabel
	if c.labelCol >= 0 {
		if label, err = c.label(rec[c.labelCol]); err != nil {
			return "", "", 0, &AnnotationError{File: c.cfg.Path, Offset: -1, Line: line, Column: 1, Err: err}
		}
	}
	return img, validText(strings.TrimSpace(rec[c.capCol])), label, nil
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
