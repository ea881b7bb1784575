package safetensors

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/fuzzcheck"
)

// A file WriteFile wrote and something changed since is refused, whatever changed: the damages of issue 15
// (64 KiB zeroed in the middle, random bytes, the file cut in half) and a metadata value edited into another
// valid one. The error names the file.
func TestChecksumRefusesDamagedFiles(t *testing.T) {
	values := make([]float32, 100_000) // 400 kB of data
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range values {
		values[i] = rng.Float32()
	}
	f := &File{Metadata: map[string]string{"mmpoison.clip_config": `{"image_size":32}`},
		Tensors: []*Tensor{{Name: "w", DType: "F32", Shape: []int{len(values)}, F32: values}}}
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		damage func([]byte) []byte
		want   string
	}{
		{"zeroed 64 KiB in the middle", func(b []byte) []byte {
			copy(b[len(b)/2:], make([]byte, 64<<10))
			return b
		}, ErrChecksum.Error()},
		{"random bytes in the middle", func(b []byte) []byte {
			for i := len(b) / 2; i < len(b)/2+4096; i++ {
				b[i] = byte(rng.Uint32())
			}
			return b
		}, ErrChecksum.Error()},
		{"cut in half", func(b []byte) []byte { return b[:len(b)/2] }, ErrChecksum.Error()},
		{"a metadata value edited", func(b []byte) []byte {
			return bytes.Replace(b, []byte(`\"image_size\":32`), []byte(`\"image_size\":64`), 1)
		}, ErrChecksum.Error()},
		{"the checksum edited", func(b []byte) []byte {
			i := bytes.Index(b, []byte(ChecksumKey+`":"`)) + len(ChecksumKey) + 3
			b[i] ^= 1
			return b
		}, ErrChecksum.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".safetensors")
			if err := WriteFile(path, f); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tc.damage(data), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = ReadFile(path)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ReadFile error %v, want one naming %s and saying %q", err, path, tc.want)
			}
		})
	}
}

// The checksum is verified and removed: the metadata reads back as written, a file without one (written by other
// tools) reads unchecked, and a value that is not 64 hex digits is refused.
func TestChecksumRoundTrip(t *testing.T) {
	f := &File{Metadata: map[string]string{"k": "v", ChecksumKey: "stale"},
		Tensors: []*Tensor{{Name: "w", DType: "F32", Shape: []int{2}, F32: []float32{1, 2}}}}
	path := filepath.Join(t.TempDir(), "w.safetensors")
	if err := WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path)
	if err != nil || len(got.Metadata) != 1 || got.Metadata["k"] != "v" {
		t.Fatalf("read back %v, %v", got.Metadata, err)
	}
	if meta, err := ReadMetadata(path); err != nil || len(meta) != 1 {
		t.Errorf("ReadMetadata = %v, %v", meta, err)
	}
	data, _ := os.ReadFile(path)
	if unchecked, err := Parse(fuzzcheck.WithoutChecksum(data)); err != nil || unchecked.Metadata["unchecked.sha25"] == "" {
		t.Errorf("fuzzcheck.WithoutChecksum does not rename %s: %v", ChecksumKey, err)
	}
	plain := encodeFile(t, &File{Metadata: map[string]string{"k": "v"}, Tensors: f.Tensors})
	if _, err := Parse(plain); err != nil {
		t.Errorf("a file without a checksum: %v", err)
	}
	short := encodeFile(t, &File{Metadata: map[string]string{ChecksumKey: "abc"}, Tensors: f.Tensors})
	if _, err := Parse(short); !errors.Is(err, ErrChecksum) {
		t.Errorf("a checksum of 3 digits: %v", err)
	}
	field := `"` + ChecksumKey + `":"` + zeroSum + `"`
	twice := withHeader(`{"__metadata__":{` + field + `,` + field + `}}`)
	if _, err := Parse(twice); !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "once") {
		t.Errorf("the checksum written twice: %v", err)
	}
}

// A (sparse) file above MaxFileSize is refused before it is read, and a named pipe without a writer is refused
// instead of waited on.
func TestReadFileBounds(t *testing.T) {
	dir := t.TempDir()
	huge := filepath.Join(dir, "huge.safetensors")
	if err := os.WriteFile(huge, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(huge, MaxFileSize+1); err != nil {
		t.Skipf("no sparse file: %v", err)
	}
	var err error
	fuzzcheck.Within(t, "ReadFile of a huge file", 0, func() { _, err = ReadFile(huge) })
	if err == nil || !strings.Contains(err.Error(), "MaxFileSize") || !strings.Contains(err.Error(), huge) {
		t.Errorf("a file of %d bytes: %v", int64(MaxFileSize+1), err)
	}
	fifo := filepath.Join(dir, "fifo.safetensors")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("no named pipe: %v", err)
	}
	for name, read := range map[string]func(string) error{
		"ReadFile":     func(p string) error { _, err := ReadFile(p); return err },
		"ReadMetadata": func(p string) error { _, err := ReadMetadata(p); return err },
	} {
		if err := read(fifo); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("%s(a named pipe) = %v", name, err)
		}
	}
}
