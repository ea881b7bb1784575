package loaders

import (
	"errors"
	"fmt"
	"iter"
	"os"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/imageprep"
)

// Options control how a Source's images are decoded and how many are kept. The zero value keeps every image at
// its full size, decodes one at a time and stops at the first corrupt image.
type Options struct {
	// ImageSize, when positive, resizes every image as CLIP's test transform does: the shorter side to
	// ImageSize with Pillow's bicubic filter, then the centre ImageSize×ImageSize square (imageprep.CLIPBytes). A
	// collected set of N images then holds exactly N·ImageSize²·3 bytes of pixels. 0 keeps the decoded size.
	ImageSize int
	// MaxImages, when positive, stops after that many examples have been yielded (skipped ones do not count).
	MaxImages int
	// SkipCorrupt makes Collect skip examples that fail with an *ExampleError (corrupt or missing image, …),
	// listing them in Report.Skipped, instead of stopping. The iterators always yield such errors and go on if
	// the consumer does.
	SkipCorrupt bool
	// MaxPixels is the decompression-bomb limit passed to imageprep.Decoder: 0 means
	// imageprep.DefaultMaxPixels, a negative value disables the check.
	MaxPixels int64
	// MaxDecodeBytes is the memory limit of one decode passed to imageprep.Decoder (MaxBytes): 0 means
	// imageprep.DefaultMaxBytes (512 MiB), a negative value disables the check. Every image in flight (see
	// Workers) may take that much.
	MaxDecodeBytes int64
	// Workers is the number of images decoded in parallel, ahead of the consumer; a producer goroutine then
	// reads the annotations (and WebDataset members) ahead too, and at most Workers+2 images are held at once.
	// 0 or 1 decodes each image in the consumer's goroutine only when it is asked for.
	Workers int
}

// validate reports invalid option values.
func (o Options) validate() error {
	if o.ImageSize < 0 || o.ImageSize > imageprep.MaxSide {
		return fmt.Errorf("loaders: Options.ImageSize is %d; want 0 (keep the size) or a side of 1 to %d", o.ImageSize, imageprep.MaxSide)
	}
	if o.MaxImages < 0 {
		return fmt.Errorf("loaders: Options.MaxImages is %d; want 0 (no limit) or more", o.MaxImages)
	}
	if o.Workers < 0 {
		return fmt.Errorf("loaders: Options.Workers is %d; want 0 or more", o.Workers)
	}
	return nil
}

// Source is a dataset that can be streamed: the loaders of this package (Index, CSV, WebDataset) implement it.
type Source interface {
	// Name identifies the source and split, e.g. "coco/train2014+val2014"; Collect uses it as Dataset.Name.
	Name() string
	// Classes holds the class names that the examples' labels index (nil for unlabelled sources).
	Classes() []string
	// Examples yields the examples in a fixed order, decoding each image only when the consumer asks for the
	// next one. A problem with one example is yielded as an *ExampleError and the iteration goes on if the
	// consumer continues; any other error ends it.
	Examples(opts Options) iter.Seq2[dataset.Example, error]
}

// ExampleError is a problem confined to one example: its image is corrupt, missing or too large, or (in a
// WebDataset shard) its sample lacks an image or caption or has a malformed member. Skipping it loses nothing
// else.
type ExampleError struct {
	// ID is the example's ID.
	ID string
	// File names where the problem is: the image file, or "shard.tar:member" for WebDataset.
	File string
	// Err is the underlying error.
	Err error
}

// Error names the example and the file.
func (e *ExampleError) Error() string {
	msg := e.Err.Error()
	if strings.Contains(msg, e.File) {
		return fmt.Sprintf("loaders: example %s: %s", e.ID, msg)
	}
	return fmt.Sprintf("loaders: example %s (%s): %s", e.ID, e.File, msg)
}

// Unwrap returns the underlying error.
func (e *ExampleError) Unwrap() error { return e.Err }

// Report says what Collect loaded and what it skipped.
type Report struct {
	// Loaded is the number of examples in the collected dataset.
	Loaded int
	// Skipped lists the examples skipped with Options.SkipCorrupt, in order, each naming its file.
	Skipped []*ExampleError
}

// String summarises the report: the counts and the skipped files (the first 20).
func (r *Report) String() string {
	if len(r.Skipped) == 0 {
		return fmt.Sprintf("loaded %d examples, skipped none", r.Loaded)
	}
	const shown = 20
	var files []string
	for _, e := range r.Skipped[:min(len(r.Skipped), shown)] {
		files = append(files, e.File)
	}
	if len(r.Skipped) > shown {
		files = append(files, fmt.Sprintf("and %d more", len(r.Skipped)-shown))
	}
	return fmt.Sprintf("loaded %d examples, skipped %d: %s", r.Loaded, len(r.Skipped), strings.Join(files, ", "))
}

// Collect reads every example of src into a dataset.Dataset named src.Name() with src.Classes(). It stops at
// the first error, except that with opts.SkipCorrupt an *ExampleError is recorded in the report and skipped.
// On error the returned dataset is not nil: it holds the examples collected before the error, and the report
// counts them.
func Collect(src Source, opts Options) (*dataset.Dataset, *Report, error) {
	d := &dataset.Dataset{Name: src.Name(), Classes: src.Classes()}
	rep := &Report{}
	for ex, err := range src.Examples(opts) {
		if err != nil {
			var exErr *ExampleError
			if opts.SkipCorrupt && errors.As(err, &exErr) {
				rep.Skipped = append(rep.Skipped, exErr)
				continue
			}
			rep.Loaded = len(d.Examples)
			return d, rep, err
		}
		d.Examples = append(d.Examples, ex)
	}
	rep.Loaded = len(d.Examples)
	return d, rep, nil
}

// validText returns s with every byte that is not part of valid UTF-8 replaced by U+FFFD, as the tokenizers read
// it (so the ids do not change), and as JSON can record it: captions and IDs written into a poison manifest
// must read back unchanged.
func validText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.String()
}

// item is one example before decoding: the annotation side (an Entry) and either the encoded image bytes
// (WebDataset) or, when data is nil, the file Entry.Path to read.
type item struct {
	entry Entry
	data  []byte
	file  string // names the image in errors; Entry.Path when empty
}

// decode turns an item into an Example: reads (if needed), decodes with the pixel guard, converts to RGB and
// resizes. Errors are *ExampleError.
func (it item) decode(opts Options) (dataset.Example, error) {
	e := it.entry
	name := it.file
	if name == "" {
		name = e.Path
	}
	dec := imageprep.Decoder{MaxPixels: opts.MaxPixels, MaxBytes: opts.MaxDecodeBytes}
	data := it.data
	if data == nil {
		var err error
		if data, err = os.ReadFile(e.Path); err != nil {
			return dataset.Example{}, &ExampleError{ID: e.ID, File: name, Err: err}
		}
	}
	var pix dataset.Image
	var err error
	if opts.ImageSize > 0 {
		pix, err = dec.CLIPBytes(data, name, opts.ImageSize) // resized in PIL's mode for the image, as OpenAI's preprocess
	} else {
		pix, err = dec.LoadBytes(data, name)
	}
	if err != nil {
		return dataset.Example{}, &ExampleError{ID: e.ID, File: name, Err: err}
	}
	return dataset.Example{ID: e.ID, Image: pix, Captions: slices.Clone(e.Captions), Label: e.Label}, nil
}

// decodeAll turns a sequence of items into examples following opts: it yields an *ExampleError for an item
// that fails to decode and continues, passes any other error of items on and stops, and stops after
// opts.MaxImages examples. With opts.Workers > 1 a producer goroutine decodes up to Workers items ahead.
func decodeAll(items iter.Seq2[item, error], opts Options) iter.Seq2[dataset.Example, error] {
	return func(yield func(dataset.Example, error) bool) {
		if err := opts.validate(); err != nil {
			yield(dataset.Example{}, err)
			return
		}
		n := 0
		// emit passes one result on; it returns false when the iteration must stop.
		emit := func(ex dataset.Example, err error) bool {
			if err != nil {
				var exErr *ExampleError
				return yield(dataset.Example{}, err) && errors.As(err, &exErr)
			}
			if !yield(ex, nil) {
				return false
			}
			n++
			return opts.MaxImages == 0 || n < opts.MaxImages
		}
		if opts.Workers <= 1 {
			for it, err := range items {
				if err != nil {
					if !emit(dataset.Example{}, err) {
						return
					}
					continue
				}
				if !emit(it.decode(opts)) {
					return
				}
			}
			return
		}
		decodeParallel(items, opts, emit)
	}
}

// result is the outcome of decoding one item.
type result struct {
	ex  dataset.Example
	err error
}

// decodeParallel decodes items with opts.Workers goroutines, passing the results to emit in order. A
// producer goroutine ranges over items and starts one decoding goroutine per item; the bounded queue of
// pending results keeps at most Workers+2 items in flight. When emit returns false, the producer stops and the
// function waits for the decodes in flight.
func decodeParallel(items iter.Seq2[item, error], opts Options, emit func(dataset.Example, error) bool) {
	queue := make(chan chan result, opts.Workers)
	done := make(chan struct{})
	var wg sync.WaitGroup
	go func() {
		defer close(queue)
		for it, err := range items {
			ch := make(chan result, 1)
			select {
			case queue <- ch:
			case <-done:
				return
			}
			if err != nil {
				ch <- result{err: err}
				var exErr *ExampleError
				if !errors.As(err, &exErr) {
					return // A fatal error ends the sequence.
				}
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				ex, err := it.decode(opts)
				ch <- result{ex, err}
			}()
		}
	}()
	defer func() {
		close(done)
		for range queue { // Let the producer see done and close the queue.
		}
		wg.Wait()
	}()
	for ch := range queue {
		r := <-ch
		if !emit(r.ex, r.err) {
			return
		}
	}
}
