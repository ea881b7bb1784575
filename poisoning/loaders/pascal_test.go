package loaders

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// miniPASCAL writes a PASCAL-sentences miniature in the download script's layout (dataset/<class>/<name>.jpg,
// sentence/<class>/<name>txt), perClass images in each of the 20 classes; every other class uses the
// "<name>.txt" spelling instead. It returns the root.
func miniPASCAL(t testing.TB, perClass int) string {
	root := t.TempDir()
	for c, class := range PASCALClasses {
		for i := range perClass {
			stem := fmt.Sprintf("2008_%06d", 100*c+i)
			writeImage(t, filepath.Join(root, "dataset", class, stem+".jpg"), "jpg", 20, 16, c*perClass+i)
			sentFile := stem + "txt"
			if c%2 == 1 {
				sentFile = stem + ".txt"
			}
			var lines []string
			for k := range 5 {
				lines = append(lines, fmt.Sprintf(" A %s, picture %d, sentence %d.", class, i, k))
			}
			writeFile(t, filepath.Join(root, "sentence", class, sentFile), []byte(strings.Join(lines, "\n")+"\n\n"))
		}
	}
	writeFile(t, filepath.Join(root, "dataset", "index.html"), []byte("<html></html>")) // Ignored.
	return root
}

func TestLoadPASCAL(t *testing.T) {
	root := miniPASCAL(t, 3)
	ix, err := LoadPASCAL(PASCALConfig{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if ix.Len() != 60 || len(ix.Classes()) != 20 || ix.Name() != "pascal" {
		t.Fatalf("%s: %d entries, %d classes", ix.Name(), ix.Len(), len(ix.Classes()))
	}
	for i, e := range ix.Entries() {
		class := PASCALClasses[i/3]
		if e.Label != i/3 || !strings.HasPrefix(e.ID, "pascal/"+class+"/2008_") || len(e.Captions) != 5 ||
			e.Captions[0] != fmt.Sprintf("A %s, picture %d, sentence 0.", class, i%3) {
			t.Fatalf("entry %d: %+v", i, e)
		}
	}
	// A corrupt image is reported by name; the others load.
	bad := filepath.Join(root, "dataset", "sheep", "2008_001601.jpg")
	writeFile(t, bad, corruptJPEG(t))
	d, rep, err := Collect(ix, Options{ImageSize: 10, SkipCorrupt: true})
	if err != nil || len(d.Examples) != 59 || len(rep.Skipped) != 1 || rep.Skipped[0].File != bad {
		t.Fatalf("%d examples, %s, %v", len(d.Examples), rep, err)
	}
	checkImages(t, d.Examples, 10)
}

func TestPASCALMalformed(t *testing.T) {
	cases := []struct {
		name string
		edit func(t *testing.T, root string)
		want []string
	}{
		{"unknown class folder", func(t *testing.T, root string) {
			writeImage(t, filepath.Join(root, "dataset", "sheeps", "x.jpg"), "jpg", 8, 8, 1)
		}, []string{`"sheeps"`, `"tvmonitor"`}},
		{"missing sentences", func(t *testing.T, root string) {
			os.Remove(filepath.Join(root, "sentence", "bird", "2008_000200txt"))
		}, []string{filepath.Join("bird", "2008_000200.jpg"), "no sentence file"}},
		{"empty sentences", func(t *testing.T, root string) {
			writeFile(t, filepath.Join(root, "sentence", "bird", "2008_000200txt"), []byte("\n \n"))
		}, []string{filepath.Join("sentence", "bird", "2008_000200txt"), "no sentences"}},
		{"no image folder", func(t *testing.T, root string) {
			os.RemoveAll(filepath.Join(root, "dataset"))
		}, []string{"PASCAL-sentences image folder", "dataset"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := miniPASCAL(t, 1)
			c.edit(t, root)
			_, err := LoadPASCAL(PASCALConfig{Root: root})
			wantErr[error](t, err, c.want...)
		})
	}
}

func TestFlickrPASCAL(t *testing.T) {
	dir := t.TempDir()
	jsonPath, imageDir := miniFlickr(t, dir)
	flickr, err := LoadKarpathy(KarpathyConfig{File: jsonPath, ImageDir: imageDir})
	if err != nil {
		t.Fatal(err)
	}
	pascal, err := LoadPASCAL(PASCALConfig{Root: miniPASCAL(t, 4)})
	if err != nil {
		t.Fatal(err)
	}
	train, test, err := FlickrPASCAL(flickr, pascal, FlickrPASCALConfig{TestPerClass: 2, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if train.Len() != 3+40 || test.Len() != 40 || !slices.Equal(train.Classes(), PASCALClasses) || !slices.Equal(test.Classes(), PASCALClasses) {
		t.Fatalf("train %d, test %d", train.Len(), test.Len())
	}
	for i, e := range train.Entries() {
		if (i < 3) != (e.Label == dataset.NoLabel) || (i < 3) != strings.HasPrefix(e.ID, "flickr30k/") || (i < 3 && e.Split != "train") {
			t.Fatalf("train entry %d: %+v (want the 3 Flickr train images first, unlabelled, then labelled PASCAL)", i, e)
		}
	}
	perClass := make([]int, 20)
	inTrain := map[string]bool{}
	for _, id := range entryIDs(train) {
		inTrain[id] = true
	}
	for _, e := range test.Entries() {
		perClass[e.Label]++
		if inTrain[e.ID] || !strings.HasPrefix(e.ID, "pascal/"+PASCALClasses[e.Label]+"/") {
			t.Fatalf("test entry %+v", e)
		}
	}
	for c, n := range perClass {
		if n != 2 {
			t.Errorf("class %s: %d test images, want 2", PASCALClasses[c], n)
		}
	}
	_, test2, _ := FlickrPASCAL(flickr, pascal, FlickrPASCALConfig{TestPerClass: 2, Seed: 3})
	_, test3, _ := FlickrPASCAL(flickr, pascal, FlickrPASCALConfig{TestPerClass: 2, Seed: 4})
	if !slices.Equal(entryIDs(test), entryIDs(test2)) || slices.Equal(entryIDs(test), entryIDs(test3)) {
		t.Error("the PASCAL split does not follow the seed")
	}
	// The test half loads with its labels.
	d, _, err := Collect(test, Options{ImageSize: 8})
	if err != nil || len(d.Examples) != 40 || d.Examples[39].Label != 19 || d.Name != "flickr-pascal/test" {
		t.Fatalf("test collect: %v, %d examples", err, len(d.Examples))
	}
	// The paper's default (25 per class) needs 50 images per class; splits and labels are checked.
	_, _, err = FlickrPASCAL(flickr, pascal, FlickrPASCALConfig{})
	wantErr[error](t, err, "25 test images per class", `"aeroplane" (4)`)
	_, _, err = FlickrPASCAL(flickr, pascal, FlickrPASCALConfig{TestPerClass: 1, FlickrSplits: []string{"trian"}})
	wantErr[error](t, err, `"trian"`)
	_, _, err = FlickrPASCAL(pascal, pascal, FlickrPASCALConfig{TestPerClass: 1})
	wantErr[error](t, err, "labelled")
	all, _, err := FlickrPASCAL(flickr, pascal, FlickrPASCALConfig{TestPerClass: 1, FlickrSplits: KarpathySplits})
	if err != nil || all.Len() != 5+60 {
		t.Errorf("all Flickr splits: %v, %d", err, all.Len())
	}
}

func TestConcat(t *testing.T) {
	a, _ := NewIndex("a", []string{"cat", "dog"}, []Entry{{ID: "1", Label: 1}, {ID: "2", Label: dataset.NoLabel}})
	b, _ := NewIndex("b", []string{"Dog"}, []Entry{{ID: "3", Label: 0}})
	ab, err := Concat("ab", []string{"dog", "bird", "cat"}, a, b)
	if err != nil {
		t.Fatal(err)
	}
	var labels []int
	for _, e := range ab.Entries() {
		labels = append(labels, e.Label)
	}
	if fmt.Sprint(labels) != "[0 -1 0]" {
		t.Errorf("labels %v, want [0 -1 0]", labels)
	}
	_, err = Concat("x", []string{"bird"}, a)
	wantErr[error](t, err, `"cat"`, `"bird"`)
	_, err = Concat("aa", []string{"cat", "dog"}, a, a)
	wantErr[error](t, err, "ID 1 appears twice")
	_, err = NewIndex("bad", []string{"cat"}, []Entry{{ID: "1", Label: 1}})
	wantErr[error](t, err, "label 1")
}
