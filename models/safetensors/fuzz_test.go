package safetensors

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mmpoison/mmpoison/poisoning/fuzzcheck"
)

// withHeader returns a file made of the JSON header h and the data bytes.
func withHeader(h string, data ...byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	return append(append(b, h...), data...)
}

// encodeFile returns the bytes WriteFile would write for f.
func encodeFile(t testing.TB, f *File) []byte {
	hdr, err := encodeHeader(f)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := encode(&buf, hdr, f); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sameTensors reports whether two files hold the same tensors (names, dtypes, shapes, bits) and metadata.
func sameTensors(a, b *File) bool {
	if len(a.Tensors) != len(b.Tensors) || len(a.Metadata) != len(b.Metadata) {
		return false
	}
	for k, v := range a.Metadata {
		if w, ok := b.Metadata[k]; !ok || w != v {
			return false
		}
	}
	for i, x := range a.Tensors {
		y := b.Tensors[i]
		if x.Name != y.Name || x.DType != y.DType || NumElements(x.Shape) != NumElements(y.Shape) ||
			!slices.Equal(x.Shape, y.Shape) && len(x.Shape)+len(y.Shape) > 0 || !bytes.Equal(x.Raw, y.Raw) ||
			!slices.EqualFunc(x.F32, y.F32, func(p, q float32) bool { return math.Float32bits(p) == math.Float32bits(q) }) {
			return false
		}
	}
	return true
}

// FuzzParse feeds arbitrary bytes to Parse (header and tensors). Properties: no panic; an input of n bytes
// allocates at most 16 times its header plus twice its data (the package's bound); a parsed file has values
// matching every shape, and writing it and parsing it back gives the same tensors; ReadFile and ReadMetadata
// agree with Parse and name the file in their errors.
func FuzzParse(f *testing.F) {
	f.Add(encodeFile(f, &File{Metadata: map[string]string{"format": "pt"}, Tensors: []*Tensor{
		{Name: "a", DType: "F32", Shape: []int{2, 3}, F32: []float32{1, 2, 3, 4, 5, 6}},
		{Name: "scalar", DType: "F32", F32: []float32{7}},
		{Name: "ids", DType: "I64", Shape: []int{2}, Raw: make([]byte, 16)},
	}}))
	f.Add(withHeader(`{"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[1],"data_offsets":[4,6]}}`,
		0, 0x3c, 0xff, 0x7c, 0x80, 0x3f))
	f.Add(withHeader(`{"d":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},"__metadata__":{"k":"v"}}`, make([]byte, 8)...))
	f.Add(withHeader(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)...))
	f.Add(withHeader(`{"z":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"e":{"dtype":"BOOL","shape":[],"data_offsets":[0,1]}}`, 1))
	dir := f.TempDir()
	path := filepath.Join(dir, "fuzz.safetensors")
	f.Fuzz(func(t *testing.T, in []byte) {
		hlen := uint64(0)
		if len(in) >= 8 {
			hlen = min(binary.LittleEndian.Uint64(in), uint64(len(in)))
		}
		var got *File
		var err error
		fuzzcheck.Within(t, "Parse", 16*hlen+2*uint64(len(in)), func() { got, err = Parse(in) })
		if err := os.WriteFile(path, in, 0o644); err != nil {
			t.Fatal(err)
		}
		fromFile, ferr := ReadFile(path)
		meta, merr := ReadMetadata(path)
		if (err == nil) != (ferr == nil) {
			t.Fatalf("Parse error %v, ReadFile error %v", err, ferr)
		}
		if ferr != nil {
			if !strings.Contains(ferr.Error(), path) {
				t.Fatalf("ReadFile error %q does not name the file", ferr)
			}
			if merr != nil && !strings.Contains(merr.Error(), path) {
				t.Fatalf("ReadMetadata error %q does not name the file", merr)
			}
			return
		}
		if merr != nil || len(meta) != len(got.Metadata) {
			t.Fatalf("ReadMetadata = %v, %v; Parse found %v", meta, merr, got.Metadata)
		}
		if !sameTensors(got, fromFile) {
			t.Fatal("ReadFile and Parse disagree")
		}
		for _, x := range got.Tensors {
			if n := NumElements(x.Shape); x.DType == "F32" && len(x.F32) != n || x.DType != "F32" && len(x.Raw) != n*dtypeSize[x.DType] {
				t.Fatalf("tensor %q: shape %v, %d values, %d raw bytes", x.Name, x.Shape, len(x.F32), len(x.Raw))
			}
		}
		again, err := Parse(encodeFile(t, got))
		if err != nil || !sameTensors(got, again) {
			t.Fatalf("write → parse: %v", err)
		}
	})
}

// FuzzRoundTrip writes one tensor built from the fuzzer's values, with metadata, and parses it back: the bytes,
// the shape, the dtype and the metadata must come back unchanged.
func FuzzRoundTrip(f *testing.F) {
	f.Add("w", uint8(0), []byte{0, 0, 128, 63, 0, 0, 0, 64}, uint8(2), "format", "pt")
	f.Add("ids", uint8(5), []byte{1, 0, 0, 0, 0, 0, 0, 0}, uint8(1), "", "")
	f.Add("", uint8(9), []byte{1}, uint8(0), "k\x00", "\xff")
	dtypes := []string{"F32", "F16", "BF16", "F64", "I32", "I64", "I16", "I8", "U8", "BOOL", "U16", "U32", "U64"}
	f.Fuzz(func(t *testing.T, name string, dtype uint8, raw []byte, rank uint8, key, value string) {
		dt := dtypes[int(dtype)%len(dtypes)]
		size := dtypeSize[dt]
		n := len(raw) / size
		raw = raw[:n*size]
		shape := []int{n} // Rank 0 holds one value; otherwise the values are spread over rank dimensions.
		switch rank % 3 {
		case 0:
			if n != 1 {
				return
			}
			shape = nil
		case 2:
			shape = []int{1, n}
		}
		in := &Tensor{Name: name, DType: dt, Shape: shape, Raw: raw}
		if dt == "F32" {
			in = &Tensor{Name: name, DType: dt, Shape: shape, F32: make([]float32, n)}
			for i := range in.F32 {
				in.F32[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
		}
		file := &File{Tensors: []*Tensor{in}}
		if key != "" {
			file.Metadata = map[string]string{key: value}
		}
		hdr, err := encodeHeader(file)
		writable := name != "__metadata__" && utf8.ValidString(name) && (key == "" || utf8.ValidString(key) && utf8.ValidString(value))
		if (err == nil) != writable {
			t.Fatalf("writing name %q, metadata %q: %q: error %v", name, key, value, err)
		}
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := encode(&buf, hdr, file); err != nil {
			t.Fatal(err)
		}
		got, err := Parse(buf.Bytes())
		if err != nil {
			t.Fatalf("parsing what was written: %v", err)
		}
		if len(got.Tensors) != 1 || got.Tensors[0].Name != name || !slices.Equal(got.Tensors[0].Shape, shape) && len(shape) > 0 {
			t.Fatalf("tensor changed: %+v", got.Tensors)
		}
		out := got.Tensors[0]
		switch dt {
		case "F32":
			if !sameTensors(&File{Tensors: []*Tensor{in}}, &File{Tensors: []*Tensor{out}}) {
				t.Fatal("F32 values changed")
			}
		case "F16", "BF16", "F64":
			if out.DType != "F32" || len(out.F32) != n {
				t.Fatalf("%s tensor decoded to %s with %d values", dt, out.DType, len(out.F32))
			}
		default:
			if out.DType != dt || !bytes.Equal(out.Raw, raw) {
				t.Fatalf("%s bytes changed", dt)
			}
		}
		if key != "" && got.Metadata[key] != value {
			t.Fatalf("metadata %q = %q, want %q", key, got.Metadata[key], value)
		}
	})
}

// TestHostileFiles: headers that are too big, shapes that overflow, tensors that share bytes and devices are
// refused with one clear error, in memory far below what they announce.
func TestHostileFiles(t *testing.T) {
	manyShared := `{`
	for i := range 1000 {
		if i > 0 {
			manyShared += ","
		}
		manyShared += `"t` + strconv.Itoa(i) + `":{"dtype":"F16","shape":[65536],"data_offsets":[0,131072]}`
	}
	manyShared += `}`
	tests := []struct {
		name  string
		in    []byte
		want  string
		bound uint64
	}{
		{"99 MiB header", binary.LittleEndian.AppendUint64(nil, 99<<20), "exceeds the file size", 1 << 20},
		{"shape overflow", withHeader(`{"a":{"dtype":"F32","shape":[4611686018427387905,4],"data_offsets":[0,16]}}`, make([]byte, 16)...), "invalid shape", 1 << 20},
		{"offsets past the data", withHeader(`{"a":{"dtype":"F32","shape":[1000000000],"data_offsets":[0,4000000000]}}`), "outside the 0 data bytes", 1 << 20},
		{"1000 tensors on the same 128 KiB", withHeader(manyShared, make([]byte, 131072)...), "overlap", 2 << 20},
		{"rank 100", withHeader(`{"a":{"dtype":"U8","shape":[`+strings.Repeat("1,", 99)+`1],"data_offsets":[0,1]}}`, 0), "more than 64", 1 << 20},
	}
	dir := t.TempDir()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			fuzzcheck.Within(t, "Parse", tc.bound, func() { _, err = Parse(tc.in) })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse error %v, want one containing %q", err, tc.want)
			}
			path := filepath.Join(dir, "hostile.safetensors")
			if err := os.WriteFile(path, tc.in, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := ReadFile(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ReadFile error %v, want one naming the file and containing %q", err, tc.want)
			}
		})
	}
}

// TestHeaderAtTheLimit: a header just over MaxHeaderSize is refused before it is read; a header of MaxHeaderSize
// bytes holding many small tensors parses in at most 16 times its size (the package's bound).
func TestHeaderAtTheLimit(t *testing.T) {
	over := withHeader(strings.Repeat(" ", MaxHeaderSize+1))
	if _, err := Parse(over); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("a header of %d bytes: error %v", MaxHeaderSize+1, err)
	}
	var b strings.Builder
	b.WriteString("{")
	for i := 0; b.Len() < MaxHeaderSize-100; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"` + strings.Repeat("n", 8) + strconv.Itoa(i) + `":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}`)
	}
	b.WriteString("}")
	in := withHeader(b.String())
	var err error
	fuzzcheck.Within(t, "Parse of a full header", 16*MaxHeaderSize, func() { _, err = Parse(in) })
	if err != nil {
		t.Fatal(err)
	}
}

func TestReadFileRefusesDevices(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero")
	}
	for name, read := range map[string]func(string) error{
		"ReadFile":     func(p string) error { _, err := ReadFile(p); return err },
		"ReadMetadata": func(p string) error { _, err := ReadMetadata(p); return err },
	} {
		if err := read("/dev/zero"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("%s(/dev/zero) = %v, want a 'not a regular file' error", name, err)
		}
	}
}
