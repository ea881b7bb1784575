// Package npy writes and reads float32 arrays as NumPy .npy files (format version 1.0), so that features and
// logits computed in Go load with numpy.load.
//
// Files are little-endian float32 ('<f4'), C order, with the header dict NumPy itself writes, e.g.
//
//	{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
//
// padded with spaces and ended by a newline so that the data starts at a multiple of 64 bytes. Writes are
// atomic (poisoning/atomicfile): a reader never sees a half-written file. The reader understands what the
// writer produces, plus format versions 2.0 and 3.0 and '<f4' files from NumPy; it is meant for tests and
// tools, not as a general .npy reader.
//
// # Bounds
//
// A header is at most MaxHeaderLen bytes and a shape at most MaxDims dimensions; the number of values a shape
// declares is computed without overflow and checked against the data before anything is allocated for it
// (Read compares it with the file size; Decode, which cannot know the size of its stream, lets its buffer grow
// only with the bytes that actually arrive). So a file of n bytes never makes the reader allocate much more
// than 2n bytes, whatever its header says.
package npy

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/mmpoison/mmpoison/poisoning/atomicfile"
)

// Magic is the first six bytes of every .npy file.
const Magic = "\x93NUMPY"

// Alignment is the multiple of bytes at which the data starts.
const Alignment = 64

// MaxHeaderLen bounds the header dict the reader accepts: 65535 bytes, the most a format 1.0 header can hold
// (versions 2.0 and 3.0 could announce 4 GiB).
const MaxHeaderLen = math.MaxUint16

// MaxDims bounds the number of dimensions of a shape, NumPy 2's NPY_MAXDIMS.
const MaxDims = 64

// Header returns the complete v1.0 header (magic, version, length and padded dict) for a float32 array of
// the given shape; its length is a multiple of Alignment.
func Header(shape ...int) ([]byte, error) {
	if len(shape) > MaxDims {
		return nil, fmt.Errorf("npy: shape with %d dimensions, more than %d", len(shape), MaxDims)
	}
	if _, err := numValues(shape); err != nil {
		return nil, err
	}
	dims := make([]string, len(shape))
	for i, d := range shape {
		if d < 0 {
			return nil, fmt.Errorf("npy: negative dimension in shape %v", shape)
		}
		dims[i] = strconv.Itoa(d)
	}
	tuple := "(" + strings.Join(dims, ", ") + ")"
	if len(shape) == 1 {
		tuple = "(" + dims[0] + ",)" // Python's one-element tuple.
	}
	dict := "{'descr': '<f4', 'fortran_order': False, 'shape': " + tuple + ", }"
	prefix := len(Magic) + 2 + 2
	// NumPy's _wrap_header: 1 to Alignment spaces, then the newline.
	pad := Alignment - (prefix+len(dict)+1)%Alignment
	total := prefix + len(dict) + pad + 1
	if total-prefix > math.MaxUint16 {
		return nil, fmt.Errorf("npy: header for shape %v is too long for format 1.0", shape)
	}
	h := make([]byte, 0, total)
	h = append(h, Magic...)
	h = append(h, 1, 0)
	h = binary.LittleEndian.AppendUint16(h, uint16(total-prefix))
	h = append(h, dict...)
	for len(h) < total-1 {
		h = append(h, ' ')
	}
	return append(h, '\n'), nil
}

// numValues returns the number of values of shape, or an error when a dimension is negative or the data would
// not fit in an int of bytes.
func numValues(shape []int) (int, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("npy: negative dimension in shape %v", shape)
		}
		if d > 0 && n > math.MaxInt/4/d {
			return 0, fmt.Errorf("npy: shape %v holds more than %d values", shape, math.MaxInt/4)
		}
		n *= d
	}
	return n, nil
}

// Encode writes data, an array of the given shape in C (row-major) order, to w in .npy format.
func Encode(w io.Writer, data []float32, shape ...int) error {
	h, err := Header(shape...)
	if err != nil {
		return err
	}
	if n, _ := numValues(shape); n != len(data) {
		return fmt.Errorf("npy: shape %v holds %d values, got %d", shape, n, len(data))
	}
	if _, err := w.Write(h); err != nil {
		return err
	}
	buf := make([]byte, 0, 4*min(len(data), 1<<16))
	for start := 0; start < len(data); start += 1 << 16 {
		buf = buf[:0]
		for _, v := range data[start:min(start+1<<16, len(data))] {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

// Write atomically creates or replaces path with data as an array of the given shape. Errors name the file.
func Write(path string, data []float32, shape ...int) error {
	return atomicfile.Write(path, func(w io.Writer) error { return Encode(w, data, shape...) })
}

// WriteMatrix writes rows, which must all have the same length c, as an array of shape (len(rows), c).
// No rows give shape (0, 0).
func WriteMatrix(path string, rows [][]float32) error {
	flat, r, c, err := Flatten(rows)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return Write(path, flat, r, c)
}

// Flatten concatenates rows of equal length, returning the values and the matrix's shape.
func Flatten(rows [][]float32) (flat []float32, r, c int, err error) {
	if len(rows) == 0 {
		return nil, 0, 0, nil
	}
	c = len(rows[0])
	flat = make([]float32, 0, len(rows)*c)
	for i, row := range rows {
		if len(row) != c {
			return nil, 0, 0, fmt.Errorf("npy: row %d has %d values, row 0 has %d", i, len(row), c)
		}
		flat = append(flat, row...)
	}
	return flat, len(rows), c, nil
}

// Decode reads a little-endian float32 C-order .npy array from r, returning its values and shape. Its memory
// grows with the data read, never with what the header announces (see the package's Bounds).
func Decode(r io.Reader) (data []float32, shape []int, err error) {
	return decode(r, -1)
}

// decode is Decode for a stream of size bytes (-1 when unknown): a known size is checked against the header
// before the data is allocated.
func decode(r io.Reader, size int64) (data []float32, shape []int, err error) {
	br := bufio.NewReader(r)
	pre := make([]byte, len(Magic)+2)
	if _, err := io.ReadFull(br, pre); err != nil {
		return nil, nil, fmt.Errorf("npy: reading the header: %w", err)
	}
	if string(pre[:len(Magic)]) != Magic {
		return nil, nil, errors.New("npy: not a .npy file (bad magic)")
	}
	var lenField [4]byte
	var hlen uint32
	switch major := pre[len(Magic)]; major {
	case 1:
		if _, err := io.ReadFull(br, lenField[:2]); err != nil {
			return nil, nil, fmt.Errorf("npy: reading the header: %w", err)
		}
		hlen = uint32(binary.LittleEndian.Uint16(lenField[:2]))
	case 2, 3:
		if _, err := io.ReadFull(br, lenField[:]); err != nil {
			return nil, nil, fmt.Errorf("npy: reading the header: %w", err)
		}
		if hlen = binary.LittleEndian.Uint32(lenField[:]); hlen > MaxHeaderLen {
			return nil, nil, fmt.Errorf("npy: header of %d bytes, more than %d", hlen, MaxHeaderLen)
		}
	default:
		return nil, nil, fmt.Errorf("npy: unsupported format version %d.%d", major, pre[len(Magic)+1])
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return nil, nil, fmt.Errorf("npy: reading the header: %w", err)
	}
	shape, err = parseHeader(string(hdr))
	if err != nil {
		return nil, nil, err
	}
	n, err := numValues(shape)
	if err != nil {
		return nil, nil, err
	}
	lenBytes := 4
	if pre[len(Magic)] == 1 {
		lenBytes = 2
	}
	if offset := int64(len(pre) + lenBytes + len(hdr)); size >= 0 && size-offset != 4*int64(n) {
		return nil, nil, fmt.Errorf("npy: shape %v needs %d data bytes, the file holds %d", shape, 4*int64(n), size-offset)
	}
	if data, err = readValues(br, n, size >= 0); err != nil {
		return nil, nil, fmt.Errorf("npy: reading %d values of shape %v: %w", n, shape, err)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return nil, nil, fmt.Errorf("npy: trailing data after %d values of shape %v", n, shape)
	}
	return data, shape, nil
}

// readValues reads n little-endian float32 values. With sized (the stream is known to hold them) the slice is
// allocated at once; otherwise it grows with the values that arrive, so a header that lies about the shape
// cannot force a large allocation.
func readValues(r io.Reader, n int, sized bool) ([]float32, error) {
	data := make([]float32, 0, min(n, 1<<14))
	if sized {
		data = make([]float32, 0, n)
	}
	buf := make([]byte, 4*min(n, 1<<14))
	for len(data) < n {
		chunk := buf[:4*min(n-len(data), len(buf)/4)]
		if _, err := io.ReadFull(r, chunk); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		for i := 0; i < len(chunk); i += 4 {
			data = append(data, math.Float32frombits(binary.LittleEndian.Uint32(chunk[i:])))
		}
	}
	return data, nil
}

// parseHeader checks the header dict and returns the shape.
func parseHeader(h string) ([]int, error) {
	h = strings.TrimSpace(h)
	if !strings.HasPrefix(h, "{") || !strings.HasSuffix(h, "}") {
		return nil, fmt.Errorf("npy: malformed header %q", h)
	}
	descr := field(h, "descr")
	if descr != "'<f4'" && descr != `"<f4"` {
		return nil, fmt.Errorf("npy: dtype %s is not supported (only '<f4')", descr)
	}
	if fo := field(h, "fortran_order"); fo != "False" {
		return nil, fmt.Errorf("npy: fortran_order %s is not supported", fo)
	}
	s := field(h, "shape")
	if !strings.HasPrefix(s, "(") || !strings.HasSuffix(s, ")") {
		return nil, fmt.Errorf("npy: malformed shape %q", s)
	}
	shape := []int{}
	for _, part := range strings.Split(s[1:len(s)-1], ",") {
		part = strings.TrimSpace(strings.TrimSuffix(part, "L"))
		if part == "" {
			continue
		}
		d, err := strconv.Atoi(part)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("npy: malformed shape %q", s)
		}
		if len(shape) == MaxDims {
			return nil, fmt.Errorf("npy: shape %q has more than %d dimensions", s, MaxDims)
		}
		shape = append(shape, d)
	}
	return shape, nil
}

// field returns the raw value of key in a Python dict literal whose values are strings, booleans or tuples.
func field(h, key string) string {
	i := strings.Index(h, "'"+key+"'")
	if i < 0 {
		i = strings.Index(h, `"`+key+`"`)
		if i < 0 {
			return ""
		}
	}
	rest := h[i+len(key)+2:]
	rest = strings.TrimLeft(rest, " ")
	rest = strings.TrimPrefix(rest, ":")
	rest = strings.TrimLeft(rest, " ")
	if strings.HasPrefix(rest, "(") {
		if j := strings.IndexByte(rest, ')'); j >= 0 {
			return rest[:j+1]
		}
		return rest
	}
	if j := strings.IndexAny(rest, ",}"); j >= 0 {
		return strings.TrimSpace(rest[:j])
	}
	return rest
}

// Read reads the .npy file at path, returning its values and shape. The shape is checked against the file size
// before the values are allocated, and only regular files are read. Errors name the file.
func Read(path string) (data []float32, shape []int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: npy: not a regular file (%s)", path, st.Mode().Type())
	}
	data, shape, err = decode(f, st.Size())
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, shape, nil
}
