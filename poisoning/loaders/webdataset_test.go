package loaders

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// member is one file of a generated tar shard.
type member struct {
	name string
	data []byte
}

// tarBytes builds a tar archive of the members, in order (a folder entry first, as tar -c writes one).
func tarBytes(t testing.TB, members []member) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if err := tw.WriteHeader(&tar.Header{Name: m.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(m.data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipBytes(t testing.TB, data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// miniShards writes two shards in WebDataset's layout (the second gzip-compressed) and returns their paths.
func miniShards(t testing.TB, dir string) (string, string) {
	s0 := []member{
		{"000000.jpg", encodeImage(t, "jpg", 32, 24, 0)},
		{"000000.txt", []byte("A dog on a beach.\n")},
		{"000000.cls", []byte("1")},
		{"000001.png", encodeImage(t, "png", 20, 20, 1)},
		{"000001.json", []byte(`{"caption": "A cat asleep.", "label": "cat", "width": 20}`)},
		{"000002.jpg", corruptJPEG(t)},
		{"000002.txt", []byte("A broken picture.")},
		{"000003.txt", []byte("A caption without an image.")},
		{"000004.jpeg", encodeImage(t, "gray", 24, 18, 4)},
		{"000004.json", []byte(`{"captions": ["First caption.", " Second caption. "], "label": 1}`)},
		{"000005.jpg", encodeImage(t, "jpg", 16, 16, 5)},
		{"000005.json", []byte(`{"caption": "x", `)},
	}
	s1 := []member{
		{"part/000000.jpg", encodeImage(t, "jpg", 26, 22, 6)},
		{"part/000000.seg.png", []byte("ignored")},
		{"part/000000.txt", []byte("A bird in flight.")},
		{"part/000000.cls", []byte("bird")},
	}
	p0, p1 := filepath.Join(dir, "shard-000000.tar"), filepath.Join(dir, "shard-000001.tar.gz")
	writeFile(t, p0, tarBytes(t, s0))
	writeFile(t, p1, gzipBytes(t, tarBytes(t, s1)))
	return p0, p1
}

func TestWebDataset(t *testing.T) {
	dir := t.TempDir()
	p0, p1 := miniShards(t, dir)
	classes := []string{"cat", "dog", "bird"}
	w, err := OpenWebDataset(WebDatasetConfig{Shards: []string{filepath.Join(dir, "shard-{000000..000000}.tar"), p1}, Classes: classes})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(w.Shards(), []string{p0, p1}) {
		t.Fatalf("shards %q", w.Shards())
	}
	d, rep, err := Collect(w, Options{ImageSize: 14, SkipCorrupt: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"shard-000000/000000", "shard-000000/000001", "shard-000000/000004", "shard-000001/part/000000"}
	if got := ids(d.Examples); !slices.Equal(got, want) || d.Name != "webdataset" {
		t.Fatalf("%s: IDs %q\nwant %q", d.Name, got, want)
	}
	ex := d.Examples
	if ex[0].Label != 1 || ex[0].Captions[0] != "A dog on a beach." || ex[1].Label != 0 || ex[1].Captions[0] != "A cat asleep." ||
		!slices.Equal(ex[2].Captions, []string{"First caption.", "Second caption."}) || ex[2].Label != 1 || ex[3].Label != 2 {
		t.Errorf("examples %+v", ex)
	}
	checkImages(t, ex, 14)
	// The three bad samples are named by shard and member (or key).
	if len(rep.Skipped) != 3 {
		t.Fatalf("report %s", rep)
	}
	wantErr[*ExampleError](t, rep.Skipped[0], p0+":000002.jpg", "corrupt")
	wantErr[*ExampleError](t, rep.Skipped[1], p0, "sample 000003 has no jpg, jpeg or png member", "000003.txt")
	wantErr[*ExampleError](t, rep.Skipped[2], p0+":000005.json", "malformed JSON")

	// Without classes, labels are not read; without SkipCorrupt Collect stops at the corrupt image and keeps
	// the two examples before it.
	w2, err := OpenWebDataset(WebDatasetConfig{Shards: []string{p0}, Name: "wds"})
	if err != nil {
		t.Fatal(err)
	}
	d, _, err = Collect(w2, Options{})
	wantErr[*ExampleError](t, err, p0+":000002.jpg")
	if len(d.Examples) != 2 || d.Examples[0].Label != dataset.NoLabel || d.Examples[0].Image.Width != 32 || d.Name != "wds" {
		t.Errorf("partial collect: %d examples", len(d.Examples))
	}

	// A label outside the classes is a sample error naming the valid ones.
	wb, _ := OpenWebDataset(WebDatasetConfig{Shards: []string{p1}, Classes: []string{"cat", "dog"}})
	_, errs := collectAll(t, wb, Options{})
	if len(errs) != 1 {
		t.Fatalf("errors %v", errs)
	}
	wantErr[*ExampleError](t, errs[0], p1+":part/000000.cls", `"bird"`, `"dog"`)
}

func TestWebDatasetRefusesTraversal(t *testing.T) {
	img := encodeImage(t, "jpg", 8, 8, 1)
	for _, name := range []string{"../000001.jpg", "/etc/000001.jpg", "a/../../000001.jpg", `..\000001.jpg`} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "evil.tar")
			writeFile(t, p, tarBytes(t, []member{
				{"000000.jpg", img}, {"000000.txt", []byte("fine")},
				{name, img}, {"000001.txt", []byte("evil")},
			}))
			w, err := OpenWebDataset(WebDatasetConfig{Shards: []string{p}})
			if err != nil {
				t.Fatal(err)
			}
			exs, errs := collectAll(t, w, Options{})
			if len(exs) != 1 || len(errs) != 1 {
				t.Fatalf("%d examples, errors %v", len(exs), errs)
			}
			wantErr[error](t, errs[0], p, "refusing member", fmt.Sprintf("%q", name))
		})
	}
}

// TestWebDatasetStreams: a shard is read only as far as the consumer goes, so stopping after two examples never
// reaches the damage at its end, while a full pass reports it naming the shard.
func TestWebDatasetStreams(t *testing.T) {
	var ms []member
	for i := range 6 {
		key := string(rune('0'+i)) + "00000"
		ms = append(ms, member{key + ".jpg", encodeImage(t, "jpg", 8+i, 8, i)}, member{key + ".txt", []byte("caption")})
	}
	full := tarBytes(t, ms)
	cut := full[:len(full)*2/3] // Ends in the middle of a later sample.
	p := filepath.Join(t.TempDir(), "cut.tar")
	writeFile(t, p, cut)
	w, err := OpenWebDataset(WebDatasetConfig{Shards: []string{p}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for ex, err := range w.Examples(Options{}) {
		if err != nil {
			t.Fatalf("after %d examples: %v", n, err)
		}
		if ex.Image.Width != 8+n {
			t.Errorf("example %d has width %d", n, ex.Image.Width)
		}
		if n++; n == 2 {
			break
		}
	}
	d, _, err := Collect(w, Options{SkipCorrupt: true, Workers: 2})
	wantErr[error](t, err, p, "damaged")
	if len(d.Examples) < 2 {
		t.Errorf("%d examples kept before the damage", len(d.Examples))
	}
	// MaxMemberBytes: an oversized member is skipped unread.
	p2 := filepath.Join(t.TempDir(), "big.tar")
	writeFile(t, p2, full)
	wb, _ := OpenWebDataset(WebDatasetConfig{Shards: []string{p2}, MaxMemberBytes: 400})
	d, rep, err := Collect(wb, Options{SkipCorrupt: true})
	if err != nil || len(d.Examples)+len(rep.Skipped) != 6 || len(rep.Skipped) == 0 || !strings.Contains(rep.Skipped[0].Error(), "above the limit of 400") {
		t.Errorf("size limit: %d examples, %s, %v", len(d.Examples), rep, err)
	}
}

func TestExpandShards(t *testing.T) {
	cases := []struct {
		pattern string
		want    []string
		err     string
	}{
		{"a.tar", []string{"a.tar"}, ""},
		{"s-{000..002}.tar", []string{"s-000.tar", "s-001.tar", "s-002.tar"}, ""},
		{"d{1..2}/s{08..09}.tar", []string{"d1/s08.tar", "d1/s09.tar", "d2/s08.tar", "d2/s09.tar"}, ""},
		{"s-{000..}.tar", nil, "not a numeric range"},
		{"s-{3..1}.tar", nil, "not a numeric range"},
		{"s-{a,b}.tar", nil, "not a numeric range"},
		{"s-{000.tar", nil, "unmatched {"},
		{"s-}.tar", nil, "unmatched }"},
		{"s-{0..9999999}.tar", nil, "more than a million"},
	}
	for _, c := range cases {
		got, err := ExpandShards(c.pattern)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), c.pattern) {
				t.Errorf("ExpandShards(%q) error %v, want %q", c.pattern, err, c.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("ExpandShards(%q) = %q, %v; want %q", c.pattern, got, err, c.want)
		}
	}
	if _, err := OpenWebDataset(WebDatasetConfig{Shards: []string{"/nonexistent/s-{0..1}.tar"}}); err == nil || !strings.Contains(err.Error(), "s-0.tar") {
		t.Errorf("missing shard: %v", err)
	}
}
