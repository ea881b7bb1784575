package loaders

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// AnnotationError is a malformed annotation file (JSON, CSV, sentence file): it names the file and, where
// known, the position of the problem.
type AnnotationError struct {
	// File is the annotation file.
	File string
	// Offset is the byte offset of the problem, or -1 when unknown.
	Offset int64
	// Line and Column (1-based) locate the problem; 0 when unknown.
	Line, Column int
	// Err is the underlying error.
	Err error
}

// Error names the file and the position.
func (e *AnnotationError) Error() string {
	switch {
	case e.Line > 0 && e.Offset >= 0:
		return fmt.Sprintf("loaders: %s: line %d, column %d (byte %d): %v", e.File, e.Line, e.Column, e.Offset, e.Err)
	case e.Line > 0:
		return fmt.Sprintf("loaders: %s: line %d, column %d: %v", e.File, e.Line, e.Column, e.Err)
	}
	return fmt.Sprintf("loaders: %s: %v", e.File, e.Err)
}

// Unwrap returns the underlying error.
func (e *AnnotationError) Unwrap() error { return e.Err }

// annotationErrorAt returns an AnnotationError at byte offset off of file, with the line and column counted by
// reading the file up to off (only done on the error path).
func annotationErrorAt(file string, off int64, err error) *AnnotationError {
	e := &AnnotationError{File: file, Offset: off, Err: err}
	if off < 0 {
		return e
	}
	f, ferr := os.Open(file)
	if ferr != nil {
		return e
	}
	defer f.Close()
	r := bufio.NewReader(io.LimitReader(f, off))
	line, col := 1, 1
	for {
		b, rerr := r.ReadByte()
		if rerr != nil {
			break
		}
		if b == '\n' {
			line, col = line+1, 1
		} else if b&0xC0 != 0x80 { // Count characters, not UTF-8 continuation bytes.
			col++
		}
	}
	e.Line, e.Column = line, col
	return e
}

// Bounds of the JSON annotation readers (COCO, Karpathy). A file is streamed: the decoder holds one token, or one
// element of the arrays the loaders read, at a time. Past either bound the file is refused with an
// *AnnotationError naming it and the position.
const (
	// maxJSONValue bounds one token (a string, a number) or one decoded array element, in bytes of the file:
	// 16 MiB, far above COCO's largest annotation (a crowd segmentation of a few hundred kilobytes). The decoder's
	// buffer, its largest allocation, stays within twice that, and the heap within four times that counting the
	// buffers it outgrew.
	maxJSONValue = 16 << 20
	// maxJSONDepth bounds the nesting of a value under a key the loaders skip. A skipped value of any size is
	// read token by token in the memory of its largest token; one nested deeper is refused.
	maxJSONDepth = 64
)

// errJSONValueTooLong is the error of a value longer than maxJSONValue.
var errJSONValueTooLong = fmt.Errorf("a JSON value longer than %d bytes (the loaders read one token or array element at a time and refuse larger ones)", maxJSONValue)

// windowReader passes on the bytes of r up to the offset end and then fails with tooLong: with end set to the
// start of the value being decoded plus a bound, the decoder reading from it never buffers more than that.
type windowReader struct {
	r         io.Reader
	read, end int64
	tooLong   error
}

func (w *windowReader) Read(p []byte) (int, error) {
	if w.read >= w.end {
		return 0, w.tooLong
	}
	if rem := w.end - w.read; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := w.r.Read(p)
	w.read += int64(n)
	return n, err
}

// jsonFile streams one JSON annotation file whose top level is an object: only the fields the loader needs are
// decoded, arrays element by element, so a large file (COCO's instances_train2014.json is about 330 MB) is never
// held whole in memory (see maxJSONValue and maxJSONDepth for the bounds).
type jsonFile struct {
	path string
	f    *os.File
	win  *windowReader
	dec  *json.Decoder
}

// openJSON opens path for streaming.
func openJSON(path string) (*jsonFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("loaders: opening annotation file: %w", err)
	}
	win := &windowReader{r: bufio.NewReaderSize(f, 1<<16), tooLong: errJSONValueTooLong}
	j := &jsonFile{path: path, f: f, win: win, dec: json.NewDecoder(win)}
	j.mark()
	return j, nil
}

// mark starts a new value at the decoder's position: the decoder may read maxJSONValue bytes from there.
func (j *jsonFile) mark() { j.win.end = j.dec.InputOffset() + maxJSONValue }

// token reads the next token, within maxJSONValue bytes.
func (j *jsonFile) token() (json.Token, error) {
	j.mark()
	return j.dec.Token()
}

// decode decodes the next value into v, within maxJSONValue bytes.
func (j *jsonFile) decode(v any) error {
	j.mark()
	return j.dec.Decode(v)
}

// more reports whether the current array or object has another element.
func (j *jsonFile) more() bool {
	j.mark()
	return j.dec.More()
}

// Close closes the file.
func (j *jsonFile) Close() error { return j.f.Close() }

// fail converts a decoding error into an *AnnotationError with the position; start is the offset where the
// value being decoded began (type errors report offsets relative to it).
func (j *jsonFile) fail(start int64, err error) error {
	var ae *AnnotationError
	if errors.As(err, &ae) {
		return err
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	off := j.dec.InputOffset()
	switch {
	case errors.As(err, &syn):
		off = syn.Offset
		err = fmt.Errorf("malformed JSON: %w", err)
	case errors.As(err, &typ):
		off = start + typ.Offset
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		err = fmt.Errorf("malformed JSON: the file ends early: %w", io.ErrUnexpectedEOF)
	}
	return annotationErrorAt(j.path, off, err)
}

// errorf returns an *AnnotationError at the current position.
func (j *jsonFile) errorf(format string, args ...any) error {
	return annotationErrorAt(j.path, j.dec.InputOffset(), fmt.Errorf(format, args...))
}

// delim reads the next token and checks that it is the delimiter want.
func (j *jsonFile) delim(want json.Delim, what string) error {
	start := j.dec.InputOffset()
	tok, err := j.token()
	if err != nil {
		return j.fail(start, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return annotationErrorAt(j.path, start, fmt.Errorf("%s: want %q, found %v", what, string(want), tok))
	}
	return nil
}

// object reads the top-level object, calling fields[key] positioned at each known key's value (which the
// handler must consume entirely) and skipping the values of other keys. Keys in required that never appear are
// an error.
func (j *jsonFile) object(fields map[string]func() error, required ...string) error {
	if err := j.delim('{', "top level"); err != nil {
		return err
	}
	seen := map[string]bool{}
	for j.more() {
		start := j.dec.InputOffset()
		tok, err := j.token()
		if err != nil {
			return j.fail(start, err)
		}
		key, _ := tok.(string)
		seen[key] = true
		if fn, ok := fields[key]; ok {
			if err := fn(); err != nil {
				return err
			}
			continue
		}
		if err := j.skip(); err != nil {
			return err
		}
	}
	if err := j.delim('}', "end of the top-level object"); err != nil {
		return err
	}
	for _, k := range required {
		if !seen[k] {
			return &AnnotationError{File: j.path, Offset: -1, Err: fmt.Errorf("no %q field in the top-level object", k)}
		}
	}
	return nil
}

// skip consumes one value token by token, without building it; a value nested deeper than maxJSONDepth is an
// error.
func (j *jsonFile) skip() error {
	depth := 0
	for {
		start := j.dec.InputOffset()
		tok, err := j.token()
		if err != nil {
			return j.fail(start, err)
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if depth++; depth > maxJSONDepth {
				return annotationErrorAt(j.path, start, fmt.Errorf("a value nested deeper than %d levels", maxJSONDepth))
			}
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

// array decodes the array value at the current position element by element into a fresh T, calling fn on
// each. An error of fn is reported at the element's position.
func array[T any](j *jsonFile, what string, fn func(T) error) error {
	if err := j.delim('[', what); err != nil {
		return err
	}
	for j.more() {
		start := j.dec.InputOffset()
		var v T
		if err := j.decode(&v); err != nil {
			return j.fail(start, fmt.Errorf("%s: %w", what, err))
		}
		if err := fn(v); err != nil {
			return annotationErrorAt(j.path, start, fmt.Errorf("%s: %w", what, err))
		}
	}
	return j.delim(']', "end of "+what)
}

// readJSONObject streams the top-level object of the file at path with the given field handlers (see
// jsonFile.object); handlers get the open file to decode with.
func readJSONObject(path string, fields func(j *jsonFile) map[string]func() error, required ...string) error {
	j, err := openJSON(path)
	if err != nil {
		return err
	}
	defer j.Close()
	return j.object(fields(j), required...)
}
