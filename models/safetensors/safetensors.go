// Package safetensors reads and writes the safetensors format (a little-endian u64 header length, a JSON header
// naming each tensor's dtype, shape and byte range, then the raw data). mmpoison uses it for its own checkpoints
// and for importing and exporting CLIP weights, so a model trained here loads in PyTorch and back.
//
// Reading checks every bound: the header length, each tensor's byte range against the file and against its
// dtype and shape, and overlapping or out-of-order ranges, and names the file and the tensor in each error.
//
// # Bounds
//
// The header is at most MaxHeaderSize bytes and is parsed in at most 16 times its size of memory; a shape
// has at most MaxRank dimensions, and its element count is computed without overflow. Every tensor's range is
// checked against the data and against the others before any tensor is decoded, so tensors never share bytes
// and the decoded values take at most twice the file's data bytes (F16 and BF16 widen to F32; F32, F64 and raw
// dtypes take at most their size). ReadFile reads regular files of at most MaxFileSize bytes only, sized with
// Stat: a device such as /dev/zero is refused instead of read forever.
//
// # Checksums
//
// WriteFile records the file's SHA-256 in its metadata (ChecksumKey) and Parse verifies it, so a checkpoint
// written here and damaged since (a zeroed block, random bytes, a cut) is refused with ErrChecksum, or with a
// size error, instead of loading as other weights.
package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"unicode/utf8"

	"github.com/mmpoison/mmpoison/poisoning/atomicfile"
)

// MaxHeaderSize bounds the JSON header: 16 MiB, room for about a hundred thousand tensors (a CLIP ViT-L/14
// header takes about 60 KiB). The reference implementation allows 100 MB, which can take a gigabyte to parse.
const MaxHeaderSize = 16 << 20

// MaxRank bounds the number of dimensions of a tensor's shape.
const MaxRank = 64

// Tensor is one named tensor. Data holds the raw little-endian bytes for dtypes other than F32.
type Tensor struct {
	Name  string
	DType string // "F32", "F16", "BF16", "F64", "I64", "I32", ...
	Shape []int
	// F32 holds the values for DType "F32" (and for F16/BF16/F64 after conversion by Float32).
	F32 []float32
	// Raw holds the bytes for other dtypes.
	Raw []byte
}

// File is a set of tensors with optional string metadata (never ChecksumKey: WriteFile adds it, Parse and
// ReadMetadata verify and remove it).
type File struct {
	Tensors  []*Tensor
	Metadata map[string]string
}

// Get returns the tensor with the given name, or nil.
func (f *File) Get(name string) *Tensor {
	for _, t := range f.Tensors {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// NumElements returns the product of the shape's dimensions.
func NumElements(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

var dtypeSize = map[string]int{"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
	"U8": 1, "BOOL": 1, "U16": 2, "U32": 4, "U64": 8}

type headerEntry struct {
	DType       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// WriteFile writes the tensors (in the given order) and metadata to path atomically: it writes a temporary file
// in the same directory and renames it over path only when everything was written and synced. The metadata
// gains the file's SHA-256 under ChecksumKey (replacing any value f has), which reading verifies.
func WriteFile(path string, f *File) error {
	hdr, err := withChecksum(f)
	if err != nil {
		return fmt.Errorf("safetensors %s: %w", path, err)
	}
	return atomicfile.Write(path, func(w io.Writer) error { return encode(w, hdr, f) })
}

// encodeHeader returns the padded JSON header of f. Names and metadata must be valid UTF-8: JSON would replace
// invalid bytes, and the file would not read back as written.
func encodeHeader(f *File) ([]byte, error) {
	header := map[string]any{}
	for k, v := range f.Metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, fmt.Errorf("metadata %q: %q is not valid UTF-8", k, v)
		}
	}
	if len(f.Metadata) > 0 {
		header["__metadata__"] = f.Metadata
	}
	var offset int64
	for _, t := range f.Tensors {
		if _, dup := header[t.Name]; dup || t.Name == "__metadata__" || !utf8.ValidString(t.Name) {
			return nil, fmt.Errorf("tensor name %q is repeated, reserved or not valid UTF-8", t.Name)
		}
		size, err := t.byteSize()
		if err != nil {
			return nil, err
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[t.Name] = headerEntry{DType: t.DType, Shape: shape, DataOffsets: [2]int64{offset, offset + size}}
		offset += size
	}
	hdr, err := json.Marshal(header)
	if err != nil {
		return nil, err
	}
	for len(hdr)%8 != 0 { // Pad with spaces to 8-byte alignment, as the reference writer does.
		hdr = append(hdr, ' ')
	}
	return hdr, nil
}

// encode writes the header length, the header hdr and the tensors' data of f to w.
func encode(w io.Writer, hdr []byte, f *File) error {
	if err := binary.Write(w, binary.LittleEndian, uint64(len(hdr))); err != nil {
		return err
	}
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	buf := make([]byte, 0, 1<<16)
	for _, t := range f.Tensors {
		if t.DType != "F32" {
			if _, err := w.Write(t.Raw); err != nil {
				return err
			}
			continue
		}
		for _, v := range t.F32 {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
			if len(buf) >= 1<<16 {
				if _, err := w.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
		buf = buf[:0]
	}
	return nil
}

func (t *Tensor) byteSize() (int64, error) {
	n := NumElements(t.Shape)
	if t.DType == "F32" {
		if len(t.F32) != n {
			return 0, fmt.Errorf("tensor %q: shape %v needs %d values, has %d", t.Name, t.Shape, n, len(t.F32))
		}
		return int64(4 * n), nil
	}
	size, ok := dtypeSize[t.DType]
	if !ok {
		return 0, fmt.Errorf("tensor %q: unknown dtype %q", t.Name, t.DType)
	}
	if len(t.Raw) != n*size {
		return 0, fmt.Errorf("tensor %q: shape %v and dtype %s need %d bytes, has %d", t.Name, t.Shape, t.DType, n*size, len(t.Raw))
	}
	return int64(len(t.Raw)), nil
}

// MaxFileSize bounds the files ReadFile reads: 16 GiB, above the largest public CLIP checkpoint (ViT-bigG/14,
// 2.5 billion parameters, about 10 GB in F32). ReadFile holds the file and its decoded tensors at once.
const MaxFileSize = 16 << 30

// ReadFile reads a safetensors file. F32, F16, BF16 and F64 tensors are decoded into F32; other dtypes keep Raw.
// It reads regular files of at most MaxFileSize bytes only; it holds the file and its decoded tensors (see the
// package's Bounds), and verifies the file's ChecksumKey when it has one.
func ReadFile(path string) (*File, error) {
	f, st, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st.Size() > MaxFileSize {
		return nil, fmt.Errorf("safetensors %s: %d bytes, more than the %d a checkpoint may take (MaxFileSize)", path,
			st.Size(), int64(MaxFileSize))
	}
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	sf, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	return sf, nil
}

// openRegular opens path, refusing anything but a regular file (a device, a pipe or a folder). It looks before
// opening, since opening a named pipe waits for a writer.
func openRegular(path string) (*os.File, os.FileInfo, error) {
	if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("reading safetensors: %s is not a regular file (%v)", path, st.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading safetensors: %w", err)
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file (%v)", path, st.Mode().Type())
	}
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("reading safetensors: %w", err)
	}
	return f, st, nil
}

// ReadMetadata returns the string metadata (__metadata__) of the safetensors file at path, reading only its
// header: a cheap way to tell an mmpoison checkpoint (whose config is in the metadata) from other files. It
// leaves ChecksumKey out: only reading the whole file verifies it.
func ReadMetadata(path string) (map[string]string, error) {
	f, st, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var n [8]byte
	if _, err := io.ReadFull(f, n[:]); err != nil {
		return nil, fmt.Errorf("safetensors %s: file too short for a header: %w", path, err)
	}
	hlen := binary.LittleEndian.Uint64(n[:])
	if hlen > MaxHeaderSize || hlen > uint64(st.Size()-8) {
		return nil, fmt.Errorf("safetensors %s: header length %d exceeds the file size %d or the limit %d", path, hlen,
			st.Size(), MaxHeaderSize)
	}
	header := make([]byte, hlen)
	if _, err := io.ReadFull(f, header); err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	var h struct {
		Metadata map[string]string `json:"__metadata__"`
	}
	if err := json.Unmarshal(header, &h); err != nil {
		return nil, fmt.Errorf("safetensors %s: malformed header: %w", path, err)
	}
	delete(h.Metadata, ChecksumKey)
	return h.Metadata, nil
}

// Parse decodes a safetensors file held in memory, checking every bound (see the package's Bounds) before
// decoding any tensor.
func Parse(data []byte) (*File, error) {
	if len(data) < 8 {
		return nil, fmt.Errorf("file too short (%d bytes) for a safetensors header", len(data))
	}
	hlen := binary.LittleEndian.Uint64(data[:8])
	if hlen > MaxHeaderSize || hlen > uint64(len(data)-8) {
		return nil, fmt.Errorf("header length %d exceeds the file size %d or the limit %d (not a safetensors file? "+
			"PyTorch .pt/.bin pickles must be converted first)", hlen, len(data), MaxHeaderSize)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data[8:8+hlen], &raw); err != nil {
		return nil, fmt.Errorf("malformed JSON header: %w", err)
	}
	body := data[8+hlen:]
	f := &File{}
	if msg, ok := raw["__metadata__"]; ok {
		if err := json.Unmarshal(msg, &f.Metadata); err != nil {
			return nil, fmt.Errorf("malformed __metadata__ (must map strings to strings): %w", err)
		}
		delete(raw, "__metadata__")
	}
	if sum, ok := f.Metadata[ChecksumKey]; ok {
		if err := verifyChecksum(data, int(8+hlen), sum); err != nil {
			return nil, err
		}
		delete(f.Metadata, ChecksumKey)
	}
	names := make([]string, 0, len(raw))
	for name := range raw {
		names = append(names, name)
	}
	sort.Strings(names) // Check in a fixed order, so the same file always gives the same error.
	type span struct {
		t          *Tensor
		start, end int64
	}
	spans := make([]span, 0, len(names))
	for _, name := range names {
		e, err := parseEntry(name, raw[name], int64(len(body)))
		if err != nil {
			return nil, err
		}
		spans = append(spans, span{&Tensor{Name: name, DType: e.DType, Shape: e.Shape}, e.DataOffsets[0], e.DataOffsets[1]})
	}
	// Keep a deterministic order: by data offset, as written.
	sort.SliceStable(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	for i := 1; i < len(spans); i++ {
		if spans[i].start < spans[i-1].end {
			return nil, fmt.Errorf("tensors %q and %q overlap", spans[i-1].t.Name, spans[i].t.Name)
		}
	}
	for _, s := range spans {
		if err := s.t.decode(body[s.start:s.end]); err != nil {
			return nil, err
		}
		f.Tensors = append(f.Tensors, s.t)
	}
	return f, nil
}

// parseEntry decodes and checks the header entry of one tensor: a known dtype, a shape of at most MaxRank
// non-negative dimensions, and a byte range inside the bodySize data bytes whose length the dtype and shape
// need, with overflow-safe arithmetic.
func parseEntry(name string, msg json.RawMessage, bodySize int64) (headerEntry, error) {
	var e headerEntry
	if err := json.Unmarshal(msg, &e); err != nil {
		return e, fmt.Errorf("tensor %q: malformed header entry: %w", name, err)
	}
	size, ok := dtypeSize[e.DType]
	if !ok {
		return e, fmt.Errorf("tensor %q: unsupported dtype %q", name, e.DType)
	}
	if len(e.Shape) > MaxRank {
		return e, fmt.Errorf("tensor %q: shape of %d dimensions, more than %d", name, len(e.Shape), MaxRank)
	}
	n := int64(1)
	for _, d := range e.Shape {
		if d < 0 || (d > 0 && n > math.MaxInt64/int64(d)/8) {
			return e, fmt.Errorf("tensor %q: invalid shape %v", name, e.Shape)
		}
		n *= int64(d)
	}
	start, end := e.DataOffsets[0], e.DataOffsets[1]
	if start < 0 || end < start || end > bodySize {
		return e, fmt.Errorf("tensor %q: data offsets [%d, %d] outside the %d data bytes", name, start, end, bodySize)
	}
	if end-start != n*int64(size) {
		return e, fmt.Errorf("tensor %q: %d bytes for shape %v and dtype %s, which need %d", name, end-start,
			e.Shape, e.DType, n*int64(size))
	}
	return e, nil
}

func (t *Tensor) decode(b []byte) error {
	n := len(b) / max(1, dtypeSize[t.DType])
	switch t.DType {
	case "F32":
		t.F32 = make([]float32, n)
		for i := range t.F32 {
			t.F32[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case "F64":
		t.F32 = make([]float32, n)
		for i := range t.F32 {
			t.F32[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		}
	case "BF16":
		t.F32 = make([]float32, n)
		for i := range t.F32 {
			t.F32[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
		}
	case "F16":
		t.F32 = make([]float32, n)
		for i := range t.F32 {
			t.F32[i] = halfToFloat(binary.LittleEndian.Uint16(b[2*i:]))
		}
	default:
		t.Raw = append([]byte(nil), b...)
		return nil
	}
	t.DType = "F32"
	return nil
}

func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h & 0x3ff)
	switch {
	case exp == 0 && frac == 0:
		return math.Float32frombits(sign)
	case exp == 0: // Subnormal.
		f := float32(frac) / 1024 * float32(math.Pow(2, -14))
		if sign != 0 {
			return -f
		}
		return f
	case exp == 31:
		return math.Float32frombits(sign | 0x7f800000 | frac<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
}
