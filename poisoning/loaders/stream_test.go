package loaders

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// TestIndexShards: the index of a shard gives, by index and in any order, the samples the streaming reader
// gives in order (a sample skipped for its annotations between two others included); annotation problems are
// errors or, with SkipCorrupt, skipped and listed; a corrupt picture is an error only when it is decoded; a
// gzip-compressed shard is refused.
func TestIndexShards(t *testing.T) {
	dir := t.TempDir()
	p0, p1 := miniShards(t, dir)
	classes := []string{"dog", "cat", "bird"}
	w, err := OpenWebDataset(WebDatasetConfig{Shards: []string{p0}, Classes: classes})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := IndexShards(w, Options{}); err == nil || !strings.Contains(err.Error(), "000003") {
		t.Errorf("a sample without an image: error %v, want one naming it", err)
	}
	s, err := IndexShards(w, Options{SkipCorrupt: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var want []dataset.Example
	for ex, err := range w.Examples(Options{}) {
		var exErr *ExampleError
		if errors.As(err, &exErr) && strings.Contains(exErr.ID, "000002") {
			want = append(want, dataset.Example{ID: exErr.ID}) // the corrupt picture: indexed, fails to decode
			continue
		}
		if err == nil {
			want = append(want, ex)
		}
	}
	if s.Len() != len(want) || len(s.Skipped()) != 2 {
		t.Fatalf("index has %d samples and skipped %d, want %d and 2", s.Len(), len(s.Skipped()), len(want))
	}
	var wg sync.WaitGroup
	for _, i := range []int{3, 1, 2, 0, 3, 1} { // any order, concurrently
		wg.Add(1)
		go func() {
			defer wg.Done()
			checkSample(t, s, i, want[i])
		}()
	}
	wg.Wait()
	w2, err := OpenWebDataset(WebDatasetConfig{Shards: []string{p0, p1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := IndexShards(w2, Options{SkipCorrupt: true}); err == nil || !strings.Contains(err.Error(), "gzip") {
		t.Errorf("a gzip-compressed shard: error %v", err)
	}
}

// checkSample checks sample i of s against the streamed example want (ID only for a corrupt picture).
func checkSample(t *testing.T, s *Shards, i int, want dataset.Example) {
	ex, enc, err := s.Read(i, false)
	if err != nil || ex.ID != want.ID {
		t.Errorf("sample %d: %q, %v; want %q", i, ex.ID, err, want.ID)
		return
	}
	dec, _, err := s.Read(i, true)
	if want.Image.Pix == nil {
		var exErr *ExampleError
		if !errors.As(err, &exErr) {
			t.Errorf("sample %d (corrupt picture): error %v, want an *ExampleError", i, err)
		}
		return
	}
	switch {
	case err != nil:
		t.Errorf("sample %d: %v", i, err)
	case !slices.Equal(ex.Captions, want.Captions) || ex.Label != want.Label || s.Label(i) != want.Label ||
		s.NumCaptions(i) != len(want.Captions):
		t.Errorf("sample %d: %q label %d (indexed %d, %d captions), want %q label %d", i, ex.Captions, ex.Label,
			s.Label(i), s.NumCaptions(i), want.Captions, want.Label)
	case !slices.Equal(dec.Image.Pix, want.Image.Pix) || FormatOf(enc.Data) != enc.Format || enc.Format == "":
		t.Errorf("sample %d: decoded picture or format %q differs from the streamed one", i, enc.Format)
	}
}

// writtenSamples are samples with awkward captions (separators, quotes, a newline, non-ASCII), pictures of
// both formats, and runs of samples sharing a picture.
func writtenSamples(t *testing.T) []Sample {
	captions := []string{"a plain caption", "commas, \"quotes\" and\ttabs", "two\nlines", "naïve café ☕", "last one"}
	var out []Sample
	for i := range 7 {
		kind := []string{"png", "jpg"}[i%2]
		pic := i / 2 // samples 0–1, 2–3, 4–5 share a picture ID (not the bytes' format: IDs decide)
		out = append(out, Sample{Image: dataset.Encoded{Data: encodeImage(t, kind, 12, 10, i), Format: kind},
			ImageID: fmt.Sprintf("pic-%d", pic), Caption: captions[i%len(captions)],
			Meta: []byte(fmt.Sprintf(`{"label": %d, "poisoned": %v}`, i%3, i == 4))})
	}
	return out
}

// TestShardWriter: written shards list with tar -t in member order, read back through OpenWebDataset and
// IndexShards as the samples written, and the same samples write byte-identical shards.
func TestShardWriter(t *testing.T) {
	samples := writtenSamples(t)
	write := func(dir string) []WrittenFile {
		w := NewShardWriter(dir, 3)
		for _, s := range samples {
			if err := w.Write(s); err != nil {
				t.Fatal(err)
			}
		}
		files, err := w.Close()
		if err != nil {
			t.Fatal(err)
		}
		return files
	}
	d1, d2 := t.TempDir(), t.TempDir()
	f1, f2 := write(d1), write(d2)
	if len(f1) != 3 || !slices.Equal(f1, f2) {
		t.Fatalf("shards %v and %v: want the same 3", f1, f2)
	}
	for _, f := range f1 {
		a, _ := os.ReadFile(filepath.Join(d1, f.Path))
		b, _ := os.ReadFile(filepath.Join(d2, f.Path))
		if !bytes.Equal(a, b) || int64(len(a)) != f.Size {
			t.Errorf("shard %s: not byte-identical, or not %d bytes", f.Path, f.Size)
		}
	}
	if tarBin, err := exec.LookPath("tar"); err == nil {
		out, err := exec.Command(tarBin, "-tf", filepath.Join(d1, "000001.tar")).Output()
		if want := "000003.jpg\n000003.txt\n000003.json\n000004.png\n000004.txt\n000004.json\n000005.jpg\n000005.txt\n000005.json\n"; err != nil || string(out) != want {
			t.Errorf("tar -t lists %q (%v), want %q", out, err, want)
		}
	}
	w, err := OpenWebDataset(WebDatasetConfig{Shards: []string{filepath.Join(d1, "{000000..000002}.tar")}, Classes: []string{"a", "b", "c"}})
	if err != nil {
		t.Fatal(err)
	}
	k := 0
	for ex, err := range w.Examples(Options{}) {
		if err != nil || ex.Captions[0] != strings.TrimSpace(samples[k].Caption) || ex.Label != k%3 {
			t.Errorf("streamed sample %d: %q label %d, %v", k, ex.Captions, ex.Label, err)
		}
		k++
	}
	s, err := IndexShards(w, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range samples {
		_, enc, err := s.Read(i, false)
		if err != nil || !bytes.Equal(enc.Data, samples[i].Image.Data) {
			t.Errorf("indexed sample %d: picture bytes differ (%v)", i, err)
		}
		meta, err := s.Member(i, "json")
		none, err2 := s.Member(i, "cls")
		if err != nil || err2 != nil || !bytes.Equal(meta, samples[i].Meta) || none != nil {
			t.Errorf("sample %d: json member %q (%v), cls member %q (%v)", i, meta, err, none, err2)
		}
	}
}

// TestCSVWriter: the written CSV or TSV is read by a plain CSV reader (header filepath, title; one row per
// sample) and by OpenCSV; consecutive samples with one ImageID share a picture file.
func TestCSVWriter(t *testing.T) {
	samples := writtenSamples(t)
	for _, sep := range []rune{',', '\t'} {
		dir := t.TempDir()
		name := map[rune]string{',': "train.csv", '\t': "train.tsv"}[sep]
		c, err := NewCSVWriter(dir, name, sep)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range samples {
			if err := c.Write(s); err != nil {
				t.Fatal(err)
			}
		}
		file, pictures, sum, err := c.Close()
		if err != nil || pictures != 4 || len(sum) != 64 {
			t.Fatalf("%s: %d pictures, sum %q, %v; want 4", name, pictures, sum, err)
		}
		f, _ := os.Open(filepath.Join(dir, file.Path))
		r := csv.NewReader(f)
		r.Comma = sep
		rows, err := r.ReadAll()
		f.Close()
		if err != nil || len(rows) != len(samples)+1 || !slices.Equal(rows[0], []string{"filepath", "title"}) {
			t.Fatalf("%s: plain reader: %d rows %q, %v", name, len(rows), rows, err)
		}
		for i, row := range rows[1:] {
			data, err := os.ReadFile(filepath.Join(dir, row[0]))
			if err != nil || row[1] != samples[i].Caption || (i%2 == 0 || i == 6) && !bytes.Equal(data, samples[i].Image.Data) {
				t.Errorf("%s row %d: %q (%v)", name, i, row, err)
			}
		}
		src, err := OpenCSV(CSVConfig{Path: filepath.Join(dir, name), Separator: sep})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for ex, err := range src.Examples(Options{}) {
			if err != nil {
				t.Fatalf("%s: OpenCSV: %v", name, err)
			}
			n += len(ex.Captions)
		}
		if n != len(samples) {
			t.Errorf("%s: OpenCSV read %d captions, want %d", name, n, len(samples))
		}
	}
}

// TestCheckImagesAndLazy: CheckImages keeps the examples whose pictures decode and reports the others; Lazy
// examples read their pictures only when asked, as Collect decodes them.
func TestCheckImagesAndLazy(t *testing.T) {
	dir := t.TempDir()
	writeImage(t, filepath.Join(dir, "a.png"), "png", 30, 20, 1)
	writeFile(t, filepath.Join(dir, "b.jpg"), corruptJPEG(t))
	writeImage(t, filepath.Join(dir, "c.jpg"), "jpg", 20, 30, 2)
	var entries []Entry
	for _, n := range []string{"a.png", "b.jpg", "c.jpg", "missing.jpg"} {
		entries = append(entries, Entry{ID: n, Path: filepath.Join(dir, n), Captions: []string{"about " + n}, Label: dataset.NoLabel})
	}
	ix, err := NewIndex("files", nil, entries)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{ImageSize: 16, SkipCorrupt: true}
	good, rep, err := CheckImages(ix.Source(opts), opts)
	if err != nil || !slices.Equal(good, []int{0, 2}) || len(rep.Skipped) != 2 {
		t.Fatalf("CheckImages = %v, %v, %v", good, rep, err)
	}
	if _, _, err := CheckImages(ix.Source(Options{}), Options{}); err == nil {
		t.Error("CheckImages without SkipCorrupt accepted a corrupt picture")
	}
	want, _, err := Collect(ix.Filter("good", func(e Entry) bool { return e.ID != "b.jpg" && e.ID != "missing.jpg" }), opts)
	if err != nil {
		t.Fatal(err)
	}
	lazy := Lazy(ix, opts)
	for i, k := range good {
		ex := lazy.Examples[k]
		if ex.Image.Pix != nil || ex.Ref == nil {
			t.Fatalf("lazy example %d holds its pixels or has no Ref", k)
		}
		img, err := ex.Pixels()
		if err != nil || !slices.Equal(img.Pix, want.Examples[i].Image.Pix) || img.Height != 16 {
			t.Errorf("lazy example %d: picture differs from Collect's (%v)", k, err)
		}
	}
	if _, err := lazy.Examples[3].Pixels(); err == nil || !strings.Contains(err.Error(), "missing.jpg") {
		t.Errorf("a missing file: %v", err)
	}
}
