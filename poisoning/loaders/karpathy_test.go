package loaders

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/imageprep"
)

// karpathyImage is one image of a generated Karpathy file.
type karpathyImage struct {
	file, split, filepath string
	sentences             []string
	kind                  string // "jpg", "png", "corrupt", "" (no file written)
}

// writeKarpathy writes a Karpathy-format JSON file (the real field names and nesting) and its images under
// imageDir.
func writeKarpathy(t testing.TB, jsonPath, imageDir, name string, imgs []karpathyImage) {
	t.Helper()
	var images []map[string]any
	sentID := 0
	for i, im := range imgs {
		var sents []map[string]any
		var sentIDs []int
		for _, s := range im.sentences {
			sents = append(sents, map[string]any{
				"tokens": strings.Fields(strings.ToLower(strings.Trim(s, ". "))), "raw": s, "imgid": i, "sentid": sentID,
			})
			sentIDs = append(sentIDs, sentID)
			sentID++
		}
		m := map[string]any{"sentids": sentIDs, "imgid": i, "sentences": sents, "split": im.split, "filename": im.file}
		if im.filepath != "" {
			m["filepath"] = im.filepath
		}
		images = append(images, m)
		path := filepath.Join(imageDir, im.filepath, im.file)
		switch im.kind {
		case "jpg", "png":
			writeImage(t, path, im.kind, 30+i, 22, i)
		case "corrupt":
			writeFile(t, path, corruptJPEG(t))
		}
	}
	writeJSON(t, jsonPath, map[string]any{"images": images, "dataset": name})
}

// miniFlickr writes a Flickr30k miniature: five images over the three splits, one corrupt.
func miniFlickr(t testing.TB, dir string) (jsonPath, imageDir string) {
	jsonPath = filepath.Join(dir, "dataset_flickr30k.json")
	imageDir = filepath.Join(dir, "flickr30k-images")
	writeKarpathy(t, jsonPath, imageDir, "flickr30k", []karpathyImage{
		{file: "1000092795.jpg", split: "train", sentences: []string{"Two young guys with shaggy hair look at their hands .", "Two friends enjoy time spent together ."}, kind: "jpg"},
		{file: "10002456.jpg", split: "train", sentences: []string{"Several men in hard hats are operating a giant pulley system ."}, kind: "png"},
		{file: "1000268201.jpg", split: "test", sentences: []string{"A child in a pink dress is climbing up a set of stairs ."}, kind: "jpg"},
		{file: "1000344755.jpg", split: "train", sentences: []string{"Someone in a blue shirt and hat is standing on stairs ."}, kind: "corrupt"},
		{file: "1000366164.jpg", split: "val", sentences: []string{"Two men , one in a gray shirt , one in a black shirt , standing near a stove ."}, kind: "jpg"},
	})
	return jsonPath, imageDir
}

func TestLoadKarpathy(t *testing.T) {
	dir := t.TempDir()
	jsonPath, imageDir := miniFlickr(t, dir)
	ix, err := LoadKarpathy(KarpathyConfig{File: jsonPath, ImageDir: imageDir})
	if err != nil {
		t.Fatal(err)
	}
	if ix.Name() != "flickr30k" || ix.Len() != 5 || ix.Classes() != nil {
		t.Fatalf("name %q, %d entries, classes %v", ix.Name(), ix.Len(), ix.Classes())
	}
	e := ix.Entries()[0]
	if e.ID != "flickr30k/1000092795.jpg" || e.Path != filepath.Join(imageDir, "1000092795.jpg") || e.Split != "train" ||
		len(e.Captions) != 2 || e.Captions[1] != "Two friends enjoy time spent together ." || e.Label != -1 {
		t.Errorf("entry 0: %+v", e)
	}

	train, err := LoadKarpathy(KarpathyConfig{File: jsonPath, ImageDir: imageDir, Splits: []string{"train"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := entryIDs(train); train.Name() != "flickr30k/train" || !slices.Equal(got, []string{"flickr30k/1000092795.jpg", "flickr30k/10002456.jpg", "flickr30k/1000344755.jpg"}) {
		t.Errorf("train split %s: %q", train.Name(), got)
	}

	exs, errs := collectAll(t, train, Options{ImageSize: 8})
	if len(exs) != 2 || len(errs) != 1 {
		t.Fatalf("%d examples, errors %v", len(exs), errs)
	}
	wantErr[*ExampleError](t, errs[0], filepath.Join(imageDir, "1000344755.jpg"))
	checkImages(t, exs, 8)
	// The decompression-bomb guard applies: above MaxPixels every image is refused, by name.
	_, errs = collectAll(t, train, Options{MaxPixels: 100})
	if len(errs) != 3 || !errors.Is(errs[0], imageprep.ErrTooManyPixels) || !strings.Contains(errs[0].Error(), "1000092795.jpg") {
		t.Errorf("MaxPixels 100: errors %v", errs)
	}

	// Karpathy's COCO file: the filepath field names the image folder.
	cocoJSON := filepath.Join(dir, "dataset_coco.json")
	writeKarpathy(t, cocoJSON, filepath.Join(dir, "coco"), "coco", []karpathyImage{
		{file: "COCO_val2014_000000391895.jpg", filepath: "val2014", split: "restval", sentences: []string{"A man riding a bike."}, kind: "jpg"},
	})
	cix, err := LoadKarpathy(KarpathyConfig{File: cocoJSON, ImageDir: filepath.Join(dir, "coco")})
	if err != nil {
		t.Fatal(err)
	}
	if e := cix.Entries()[0]; e.ID != "coco/val2014/COCO_val2014_000000391895.jpg" || e.Path != filepath.Join(dir, "coco", "val2014", "COCO_val2014_000000391895.jpg") {
		t.Errorf("COCO Karpathy entry %+v", e)
	}
}

func TestKarpathyMalformed(t *testing.T) {
	cases := []struct {
		name  string
		text  string // file content; the error must name the file and these
		want  []string
		split []string
	}{
		{"syntax", "{\"images\": [\n {\"filename\": \"a.jpg\", \"split\": \"train\", \"sentences\": [{\"raw\": \"x\"}]},\n {\"filename\": \"b.jpg\" \"split\": \"train\"}\n]}", []string{"line 3", "malformed JSON"}, nil},
		{"truncated", "{\"images\": [\n {\"filename\": \"a.jpg\", \"split\": \"train\", \"sente", []string{"ends early"}, nil},
		{"no images", `{"dataset": "flickr30k"}`, []string{`no "images" field`}, nil},
		{"not an object", `[1, 2]`, []string{"top level"}, nil},
		{"missing raw", `{"images": [{"filename": "a.jpg", "split": "train", "sentences": [{"tokens": ["x"]}]}]}`, []string{"no raw text"}, nil},
		{"unknown split", `{"images": [{"filename": "a.jpg", "split": "training", "sentences": []}]}`, []string{`"training"`, "restval"}, nil},
		{"path traversal", `{"images": [{"filename": "../../etc/passwd", "split": "train", "sentences": []}]}`, []string{"climbs out"}, nil},
		{"bad split option", `{"images": []}`, []string{`"tst"`, "train, val, test, restval"}, []string{"tst"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "dataset_flickr30k.json")
			writeFile(t, p, []byte(c.text))
			_, err := LoadKarpathy(KarpathyConfig{File: p, Splits: c.split})
			if c.split == nil {
				c.want = append(c.want, p)
			}
			wantErr[error](t, err, c.want...)
		})
	}
}

// TestLazyStreaming shows that images are read only when asked for: after the first two images the files are
// removed, and a loop that stops after two examples (or MaxImages 2) never notices.
func TestLazyStreaming(t *testing.T) {
	dir := t.TempDir()
	var imgs []karpathyImage
	for i := range 6 {
		imgs = append(imgs, karpathyImage{file: fmt.Sprintf("%d.jpg", i), split: "train", sentences: []string{"x"}, kind: "jpg"})
	}
	jsonPath, imageDir := filepath.Join(dir, "k.json"), filepath.Join(dir, "img")
	writeKarpathy(t, jsonPath, imageDir, "flickr8k", imgs)
	ix, err := LoadKarpathy(KarpathyConfig{File: jsonPath, ImageDir: imageDir})
	if err != nil {
		t.Fatal(err)
	}
	for i := 2; i < 6; i++ {
		if err := os.Remove(filepath.Join(imageDir, fmt.Sprintf("%d.jpg", i))); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for ex, err := range ix.Examples(Options{}) {
		if err != nil {
			t.Fatalf("example %d: %v (an image beyond the loop's end was read)", n, err)
		}
		if ex.Image.Width != 30+n {
			t.Errorf("example %d has width %d", n, ex.Image.Width)
		}
		if n++; n == 2 {
			break
		}
	}
	d, rep, err := Collect(ix, Options{MaxImages: 2})
	if err != nil || len(d.Examples) != 2 || rep.Loaded != 2 {
		t.Fatalf("MaxImages 2: %d examples, %v", len(d.Examples), err)
	}
	// The full pass reports the four missing files, each by name, and keeps going.
	d, rep, err = Collect(ix, Options{SkipCorrupt: true})
	if err != nil || len(d.Examples) != 2 || len(rep.Skipped) != 4 || !errors.Is(rep.Skipped[0], os.ErrNotExist) ||
		!strings.Contains(rep.Skipped[3].Error(), "5.jpg") {
		t.Fatalf("full pass: %d examples, %s, %v", len(d.Examples), rep, err)
	}
}

// TestParallelDecoding checks that Workers > 1 gives the same examples and errors, in the same order, as the
// sequential pass, and that it can stop early.
func TestParallelDecoding(t *testing.T) {
	dir := t.TempDir()
	var imgs []karpathyImage
	for i := range 13 {
		kind := "jpg"
		if i%5 == 3 {
			kind = "corrupt"
		}
		imgs = append(imgs, karpathyImage{file: fmt.Sprintf("%02d.jpg", i), split: "train", sentences: []string{fmt.Sprint(i)}, kind: kind})
	}
	jsonPath, imageDir := filepath.Join(dir, "k.json"), filepath.Join(dir, "img")
	writeKarpathy(t, jsonPath, imageDir, "flickr8k", imgs)
	ix, err := LoadKarpathy(KarpathyConfig{File: jsonPath, ImageDir: imageDir})
	if err != nil {
		t.Fatal(err)
	}
	seqEx, seqErr := collectAll(t, ix, Options{ImageSize: 12})
	parEx, parErr := collectAll(t, ix, Options{ImageSize: 12, Workers: 4})
	if len(seqEx) != 11 || len(seqErr) != 2 || !slices.Equal(ids(seqEx), ids(parEx)) || fmt.Sprint(seqErr) != fmt.Sprint(parErr) {
		t.Fatalf("sequential %q %v\nparallel %q %v", ids(seqEx), seqErr, ids(parEx), parErr)
	}
	for i := range seqEx {
		if !slices.Equal(seqEx[i].Image.Pix, parEx[i].Image.Pix) {
			t.Fatalf("example %s differs between sequential and parallel decoding", seqEx[i].ID)
		}
	}
	d, _, err := Collect(ix, Options{Workers: 3, MaxImages: 4, SkipCorrupt: true})
	if err != nil || !slices.Equal(ids(d.Examples), ids(seqEx[:4])) {
		t.Fatalf("parallel MaxImages 4: %q, %v", ids(d.Examples), err)
	}
	for _, bad := range []Options{{Workers: -1}, {ImageSize: -2}, {MaxImages: -1}} {
		if _, _, err := Collect(ix, bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
