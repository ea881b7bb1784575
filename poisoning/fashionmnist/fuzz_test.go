package fashionmnist

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/fuzzcheck"
)

// idxBound is the most a stream of n bytes may make the reader allocate: the payload it can hold (the package's
// bound) plus the fixed buffers (64 KiB bufio, the gzip reader's window and tables).
func idxBound(n int, compressed bool) uint64 {
	payload := min(int64(n), maxPayload)
	if compressed {
		payload = min(int64(n)*maxGzipRatio, maxPayload)
	}
	return uint64(payload) + 1<<18
}

// FuzzReadIDX feeds arbitrary bytes, as an image or a label file, to the file reader and to the stream decoders.
// Properties: no panic; the reader allocates no more than the package's bound for the input's size; errors of
// ReadImages and ReadLabels name the file; a decoded file has as many bytes as its dimensions say, and
// re-encoding it (compressed or not) reads back the same.
func FuzzReadIDX(f *testing.F) {
	pix := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6}, 4)
	good := idxBytes(magicImages, []uint32{4, 2, 3}, pix)
	labels := idxBytes(magicLabels, []uint32{4}, []byte{0, 9, 3, 3})
	for _, seed := range [][]byte{good, gz(good), gz(labels), labels, good[:10], gz(good)[:20],
		gz(idxBytes(magicImages, []uint32{1 << 20, 1 << 10, 1 << 10}, pix)),
		gz(idxBytes(magicImages, []uint32{3, 2, 3}, pix))} {
		f.Add(seed, seed[3] == 1)
	}
	path := filepath.Join(f.TempDir(), "fuzz-idx.gz")
	f.Fuzz(func(t *testing.T, in []byte, isLabels bool) {
		magic := uint32(magicImages)
		if isLabels {
			magic = magicLabels
		}
		compressed := len(in) >= 2 && in[0] == 0x1f && in[1] == 0x8b
		var file *idxFile
		var err error
		fuzzcheck.Within(t, "readIDX", idxBound(len(in), compressed), func() {
			file, err = readIDX(bytes.NewReader(in), int64(len(in)), magic)
		})
		if !compressed {
			dims, data, derr := decodeIDX(bytes.NewReader(in), magic, -1)
			if (derr == nil) != (err == nil) || err == nil && (len(dims) != len(file.dims) || !bytes.Equal(data, file.data)) {
				t.Fatalf("decodeIDX of a stream (%v) and readIDX of a file (%v) disagree", derr, err)
			}
		}
		if err := os.WriteFile(path, in, 0o644); err != nil {
			t.Fatal(err)
		}
		if isLabels {
			_, ferr := ReadLabels(path)
			checkSameOutcome(t, err, ferr, path)
		} else {
			_, ferr := ReadImages(path)
			checkSameOutcome(t, err, ferr, path)
		}
		if err != nil {
			return
		}
		n := 1
		dims32 := make([]uint32, len(file.dims))
		for i, d := range file.dims {
			n *= d
			dims32[i] = uint32(d)
		}
		if n != len(file.data) {
			t.Fatalf("dimensions %v but %d bytes", file.dims, len(file.data))
		}
		again := idxBytes(magic, dims32, file.data)
		for _, enc := range [][]byte{again, gz(again)} {
			back, err := readIDX(bytes.NewReader(enc), int64(len(enc)), magic)
			if err != nil || !bytes.Equal(back.data, file.data) {
				t.Fatalf("re-encoded file does not read back: %v", err)
			}
		}
	})
}

// checkSameOutcome fails t unless the file reader (ferr) and the stream reader (err) agree, and the file
// reader's error names path.
func checkSameOutcome(t *testing.T, err, ferr error, path string) {
	t.Helper()
	if (err == nil) != (ferr == nil) {
		t.Fatalf("stream error %v, file error %v", err, ferr)
	}
	if ferr != nil && !strings.Contains(ferr.Error(), path) {
		t.Fatalf("error %q does not name %s", ferr, path)
	}
}

// TestHostileIDX: headers announcing more than the bound, or more than the file can hold, are refused before the
// payload is read, with an error naming the file, in little memory; a gzip bomb is read no further than its
// header allows.
func TestHostileIDX(t *testing.T) {
	zeros := make([]byte, 4<<20)
	tests := []struct {
		name  string
		in    []byte
		want  string
		bound uint64
	}{
		{"gzip bomb announcing 1 GiB", gz(append(idxBytes(magicImages, []uint32{1 << 20, 32, 32}, nil), zeros...)),
			"announce more than 134217728 bytes", 1 << 20},
		{"small gzip announcing 100 MB", gz(idxBytes(magicImages, []uint32{100_000, 1000, 1}, pix(1000))),
			"more than the file can hold", 1 << 20},
		{"uncompressed file announcing more than its size", idxBytes(magicImages, []uint32{1000, 28, 28}, pix(784)),
			"more than the file can hold", 1 << 20},
		{"gzip bomb with a payload past its header", gz(append(idxBytes(magicLabels, []uint32{1 << 10}, nil), zeros...)),
			"trailing data after the 1024 labels", 1 << 20},
	}
	dir := t.TempDir()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".gz")
			if err := os.WriteFile(path, tc.in, 0o644); err != nil {
				t.Fatal(err)
			}
			var err error
			read := func() { _, err = ReadImages(path) }
			if strings.Contains(tc.want, "labels") {
				read = func() { _, err = ReadLabels(path) }
			}
			fuzzcheck.Within(t, "reading "+tc.name, tc.bound, read)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %v, want one naming %s and containing %q", err, path, tc.want)
			}
		})
	}
	if _, err := ReadImages("/dev/zero"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("ReadImages(/dev/zero) = %v, want a 'not a regular file' error", err)
	}
}

// pix returns n bytes of a repeating pattern.
func pix(n int) []byte { return bytes.Repeat([]byte{7}, n) }

// TestDecodeGrowsWithTheData: a stream whose header announces the largest payload allowed but holds a few
// bytes costs little memory.
func TestDecodeGrowsWithTheData(t *testing.T) {
	in := idxBytes(magicImages, []uint32{maxPayload / 784, 28, 28}, pix(100))
	var err error
	fuzzcheck.Within(t, "DecodeImages", 2<<20, func() { _, err = DecodeImages(bytes.NewReader(in)) })
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("error %v, want a truncation error", err)
	}
}
