package loaders

import (
	"errors"
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
	case !slices.Equal(dec.Image.Pix, want.Image.Pix) || formatOf(enc.Data) != enc.Format || enc.Format == "":
		t.Errorf("sample %d: decoded picture or format %q differs from the streamed one", i, enc.Format)
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
