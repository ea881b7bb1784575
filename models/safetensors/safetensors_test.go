package safetensors

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.safetensors")
	in := &File{Metadata: map[string]string{"k": "v"}, Tensors: []*Tensor{
		{Name: "a", DType: "F32", Shape: []int{2, 3}, F32: []float32{1, 2, 3, 4, 5, 6}},
		{Name: "scalar", DType: "F32", Shape: nil, F32: []float32{7}},
		{Name: "ids", DType: "I64", Shape: []int{2}, Raw: []byte{1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0}},
	}}
	if err := WriteFile(path, in); err != nil {
		t.Fatal(err)
	}
	out, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if out.Metadata["k"] != "v" || len(out.Tensors) != 3 {
		t.Fatalf("metadata or tensors lost: %+v", out)
	}
	for _, want := range in.Tensors {
		got := out.Get(want.Name)
		if got == nil || !slices.Equal(got.F32, want.F32) || !slices.Equal(got.Raw, want.Raw) {
			t.Fatalf("tensor %q changed: %+v", want.Name, got)
		}
	}
}

func TestParseRejectsBadFiles(t *testing.T) {
	header := func(h string) []byte {
		b := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
		return append(b, h...)
	}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"too short", []byte{1, 2}, "too short"},
		{"header beyond file", binary.LittleEndian.AppendUint64(nil, 1<<40), "header length"},
		{"malformed json", header("{"), "malformed JSON"},
		{"offsets outside", header(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`), "outside"},
		{"size mismatch", append(header(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`), make([]byte, 8)...), "need 12"},
		{"overlap", append(header(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`), make([]byte, 8)...), "overlap"},
		{"unknown dtype", append(header(`{"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}}`), 0), "unsupported dtype"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.data)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Parse error = %v, want one containing %q", err, c.want)
			}
		})
	}
}

func ExampleWriteFile() {
	dir, _ := os.MkdirTemp("", "st")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "model.safetensors")
	_ = WriteFile(path, &File{Tensors: []*Tensor{{Name: "logit_scale", DType: "F32", F32: []float32{2.6593}}}})
	f, _ := ReadFile(path)
	fmt.Println(f.Get("logit_scale").F32)
	// Output: [2.6593]
}

// TestReadMetadata: the metadata comes from the header alone, and bad files give errors naming them.
func TestReadMetadata(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.safetensors")
	f := &File{Metadata: map[string]string{"mmpoison.config": "{}", "format": "pt"},
		Tensors: []*Tensor{{Name: "w", DType: "F32", Shape: []int{2}, F32: []float32{1, 2}}}}
	if err := WriteFile(good, f); err != nil {
		t.Fatal(err)
	}
	none := filepath.Join(dir, "none.safetensors")
	if err := WriteFile(none, &File{Tensors: f.Tensors}); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(dir, "huge.safetensors")
	var h [8]byte
	binary.LittleEndian.PutUint64(h[:], 1<<40)
	if err := os.WriteFile(huge, append(h[:], "{}"...), 0o644); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short.safetensors")
	if err := os.WriteFile(short, []byte{1, 2}, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path    string
		want    map[string]string
		wantErr string
	}{
		{good, f.Metadata, ""},
		{none, nil, ""},
		{huge, nil, "header length"},
		{short, nil, "too short"},
		{filepath.Join(dir, "missing.safetensors"), nil, "missing.safetensors"},
	}
	for _, c := range cases {
		t.Run(filepath.Base(c.path), func(t *testing.T) {
			got, err := ReadMetadata(c.path)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("metadata %v, want %v", got, c.want)
			}
		})
	}
}
