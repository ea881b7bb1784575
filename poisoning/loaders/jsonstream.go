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

// jsonFile streams one JSON annotation file whose top level is an object: only the fields the loader needs are
// decoded, arrays element by element, so a large file (COCO's instances_train2014.json is about 330 MB) is never
// held whole in memory.
type jsonFile struct {
	path string
	f    *os.File
	dec  *json.Decoder
}

// openJSON opens path for streaming.
func openJSON(path string) (*jsonFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("loaders: opening annotation file: %w", err)
	}
	return &jsonFile{path: path, f: f, dec: json.NewDecoder(bufio.NewReaderSize(f, 1<<16))}, nil
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
	tok, err := j.dec.Token()
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
	for j.dec.More() {
		start := j.dec.InputOffset()
		tok, err := j.dec.Token()
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

// skip consumes one value token by token, without building it.
func (j *jsonFile) skip() error {
	depth := 0
	for {
		start := j.dec.InputOffset()
		tok, err := j.dec.Token()
		if err != nil {
			return j.fail(start, err)
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
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
	for j.dec.More() {
		start := j.dec.InputOffset()
		var v T
		if err := j.dec.Decode(&v); err != nil {
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
