package npy

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/fuzzcheck"
)

// headerBytes returns a header whose dict is dict, in format version major (1, 2 or 3), unpadded.
func headerBytes(major byte, dict string) []byte {
	h := append([]byte(Magic), major, 0)
	if major == 1 {
		h = binary.LittleEndian.AppendUint16(h, uint16(len(dict)))
	} else {
		h = binary.LittleEndian.AppendUint32(h, uint32(len(dict)))
	}
	return append(h, dict...)
}

// encoded returns the .npy bytes of values 0, 1, … in the given shape.
func encoded(t testing.TB, shape ...int) []byte {
	n, err := numValues(shape)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]float32, n)
	for i := range data {
		data[i] = float32(i) - 1.5
	}
	var buf bytes.Buffer
	if err := Encode(&buf, data, shape...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzDecode feeds arbitrary bytes to Decode and, through a file, to Read. Properties: no panic; both agree;
// Read's errors name the file; a decoded array has as many values as its shape says and survives Encode →
// Decode bit for bit; and an input of n bytes allocates at most about 2n bytes plus the header (the package's
// bound), whatever shape its header declares.
func FuzzDecode(f *testing.F) {
	for _, shape := range [][]int{{2, 3}, {5}, {}, {0, 4}, {2, 1, 3}} {
		f.Add(encoded(f, shape...))
	}
	f.Add(append(headerBytes(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2L,), }\n"), make([]byte, 8)...))
	f.Add(append(headerBytes(3, `{"descr": "<f4", "fortran_order": False, "shape": (1, 1), }`+"\n"), 1, 2, 3, 4))
	f.Add(headerBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000,), }\n"))
	f.Add(headerBytes(1, "{'descr': '<f8', 'fortran_order': True, 'shape': (1,), }\n"))
	path := filepath.Join(f.TempDir(), "fuzz.npy")
	f.Fuzz(func(t *testing.T, in []byte) {
		var data []float32
		var shape []int
		var err error
		fuzzcheck.Within(t, "Decode", uint64(3*len(in)+2*MaxHeaderLen+1<<16), func() {
			data, shape, err = Decode(bytes.NewReader(in))
		})
		if err := os.WriteFile(path, in, 0o644); err != nil {
			t.Fatal(err)
		}
		fdata, fshape, ferr := Read(path)
		if (ferr == nil) != (err == nil) {
			t.Fatalf("Decode error %v but Read error %v", err, ferr)
		}
		if ferr != nil {
			if !strings.Contains(ferr.Error(), path) {
				t.Fatalf("Read error %q does not name the file", ferr)
			}
			return
		}
		if !slices.Equal(fshape, shape) || !sameBits(fdata, data) {
			t.Fatal("Read and Decode disagree")
		}
		if n, err := numValues(shape); err != nil || n != len(data) {
			t.Fatalf("shape %v but %d values (%v)", shape, len(data), err)
		}
		var buf bytes.Buffer
		if err := Encode(&buf, data, shape...); err != nil {
			t.Fatalf("re-encoding shape %v: %v", shape, err)
		}
		data2, shape2, err := Decode(&buf)
		if err != nil || !slices.Equal(shape2, shape) || !sameBits(data2, data) {
			t.Fatalf("round trip of shape %v: got shape %v, error %v", shape, shape2, err)
		}
	})
}

// sameBits reports whether a and b hold the same float32 bit patterns (NaNs included).
func sameBits(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

// TestHostileHeaders feeds headers that declare far more data than they hold, or impossible shapes: each is
// refused with a clear error, in little memory, both from a stream (Decode) and from a file (Read).
func TestHostileHeaders(t *testing.T) {
	dict := func(shape string) string {
		return "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }\n"
	}
	hugeHeader := binary.LittleEndian.AppendUint32(append([]byte(Magic), 2, 0), math.MaxUint32) // 4 GiB dict
	tests := []struct {
		name       string
		in         []byte
		decodeErr  string // Decode's error
		readErr    string // Read's error (the file size is known)
		allocBound uint64
	}{
		{"10^11 values, no data", headerBytes(1, dict("(100000000000,)")),
			"reading 100000000000 values", "needs 400000000000 data bytes, the file holds 0", 1 << 20},
		{"(2^61+1,)", headerBytes(1, dict("(2305843009213693953,)")),
			"holds more than", "holds more than", 1 << 20},
		{"(2^62+1, 4)", append(headerBytes(1, dict("(4611686018427387905, 4)")), make([]byte, 16)...),
			"holds more than", "holds more than", 1 << 20},
		{"4 GiB header length", hugeHeader, "header of 4294967295 bytes", "header of 4294967295 bytes", 1 << 20},
		{"65 dimensions", headerBytes(1, dict("("+strings.Repeat("1, ", 65)+")")), "more than 64 dimensions",
			"more than 64 dimensions", 1 << 20},
	}
	dir := t.TempDir()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			fuzzcheck.Within(t, "Decode", tc.allocBound, func() { _, _, err = Decode(bytes.NewReader(tc.in)) })
			if err == nil || !strings.Contains(err.Error(), tc.decodeErr) {
				t.Errorf("Decode error %v, want one containing %q", err, tc.decodeErr)
			}
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".npy")
			if err := os.WriteFile(path, tc.in, 0o644); err != nil {
				t.Fatal(err)
			}
			fuzzcheck.Within(t, "Read", tc.allocBound, func() { _, _, err = Read(path) })
			if err == nil || !strings.Contains(err.Error(), tc.readErr) || !strings.Contains(err.Error(), path) {
				t.Errorf("Read error %v, want one naming %s and containing %q", err, path, tc.readErr)
			}
		})
	}
}

func TestReadRefusesDevices(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero")
	}
	_, _, err := Read("/dev/zero")
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Read(/dev/zero) = %v, want a 'not a regular file' error", err)
	}
}

func TestWriterRefusesWhatTheReaderWould(t *testing.T) {
	if _, err := Header(make([]int, MaxDims+1)...); err == nil {
		t.Errorf("Header accepted %d dimensions", MaxDims+1)
	}
	if _, err := Header(1<<40, 1<<40); err == nil {
		t.Error("Header accepted a shape of 2^80 values")
	}
}
