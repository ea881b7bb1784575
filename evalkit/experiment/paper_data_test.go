package experiment

import (
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/loaders"
)

// PreCaption and TrainCrop left off keep every cache key and sweep file name as before they existed (the
// values below were computed by the code before them); turning either on changes the fine-tuning keys.
func TestCaptionAndCropKeys(t *testing.T) {
	paper := PaperSpec(DatasetCOCO, "/nonexistent/coco", "/nonexistent/ckpt.safetensors", "/nonexistent/bpe.txt.gz")
	paper.PreCaption, paper.TrainCrop = false, false
	for _, tc := range []struct {
		name string
		s    Spec
		want [4]string // pretrainKey, finetuneKey(false), finetuneKey(true), the spec (sweep results)
	}{
		{"default", DefaultSpec(), [4]string{"6ddeffba4e53c7ee", "27a23f4f259fb043", "2f3cbe2e657b43d8", "3d12a42a71128eb1"}},
		{"quick", QuickSpec(), [4]string{"5988564fa76ad347", "f2240dd4067351fd", "e5bd08a12d4320eb", "8f6ee9b87f174142"}},
		{"paper, both off", paper, [4]string{"6c64b7d61f605e70", "c6f004761cfe5bf4", "034a978188ff5390", "a056864b5ea4fe5b"}},
	} {
		got := [4]string{hash(tc.s.pretrainKey()), hash(tc.s.finetuneKey(false)), hash(tc.s.finetuneKey(true)), hash(tc.s)}
		if got != tc.want {
			t.Errorf("%s: keys %v, want %v", tc.name, got, tc.want)
		}
	}
	seen := map[string]bool{hash(paper.finetuneKey(true)): true}
	for _, on := range []func(*Spec){func(s *Spec) { s.PreCaption = true }, func(s *Spec) { s.TrainCrop = true },
		func(s *Spec) { s.PreCaption, s.TrainCrop = true, true }} {
		s := paper
		on(&s)
		for _, poisoned := range []bool{false, true} {
			k := hash(s.finetuneKey(poisoned))
			if poisoned && seen[k] {
				t.Errorf("spec %+v shares a fine-tuning key with another setting", s)
			}
			seen[k] = true
		}
	}
	if s := QuickSpec(); func() bool { s.TrainCrop = true; return s.Validate() == nil }() {
		t.Error("TrainCrop on Fashion-MNIST validates")
	}
	if s := QuickSpec(); func() bool { s.PreCaption = true; return s.Validate() == nil }() {
		t.Error("PreCaption on Fashion-MNIST validates")
	}
}

// miniPaperData loads MiniPaperSpec's data of dataset with PreCaption and TrainCrop set as given.
func miniPaperData(t *testing.T, ds string, preCaption, trainCrop bool) *Data {
	t.Helper()
	vocab := testVocab(t)
	spec, err := MiniPaperSpec(ds, t.TempDir(), vocab)
	if err != nil {
		t.Fatal(err)
	}
	if !spec.PreCaption || !spec.TrainCrop {
		t.Fatalf("MiniPaperSpec (PaperSpec) has PreCaption %v, TrainCrop %v; want both on", spec.PreCaption, spec.TrainCrop)
	}
	spec.PreCaption, spec.TrainCrop = preCaption, trainCrop
	d, err := LoadData(spec)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// With PreCaption every train and test caption is as the official pre_caption leaves it (the miniature
// Flickr30k captions end in " ." as the real ones do); without it they are as in the files.
func TestPreCaptionApplied(t *testing.T) {
	raw := miniPaperData(t, DatasetFlickrPASCAL, false, false)
	pre := miniPaperData(t, DatasetFlickrPASCAL, true, false)
	dotted := 0
	for _, split := range []string{"train", "test"} {
		r, p := raw.Splits.Train, pre.Splits.Train
		if split == "test" {
			r, p = raw.Splits.Test, pre.Splits.Test
		}
		if len(r.Examples) != len(p.Examples) {
			t.Fatalf("%s: %d and %d examples", split, len(r.Examples), len(p.Examples))
		}
		for i, ex := range p.Examples {
			for j, c := range ex.Captions {
				orig := r.Examples[i].Captions[j]
				if want := loaders.PreCaption(orig, loaders.PaperMaxWords); c != want {
					t.Fatalf("%s caption %q, want %q (from %q)", split, c, want, orig)
				}
				if strings.HasSuffix(orig, " .") {
					dotted++
				}
			}
		}
	}
	if dotted == 0 {
		t.Fatal("no raw caption ends in \" .\": the test checks nothing")
	}
	// The attack works on the processed captions.
	ps, _, err := Poison(pre)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps.Pairs {
		if strings.Contains(p.Caption, ".") {
			t.Fatalf("pair caption %q was not pre-processed", p.Caption)
		}
	}
}

// With TrainCrop the training feed holds no preprocessed images: each view is a new random resized crop of
// the image's file, the same for the same generator, different for another, and not the test transform's
// centre crop; an image an attack made in memory is cropped from its pixels.
func TestTrainCropFeed(t *testing.T) {
	d := miniPaperData(t, DatasetCOCO, true, true)
	pairs := d.Splits.Train.Pairs()
	td, err := d.trainFeed(pairs)
	if err != nil {
		t.Fatal(err)
	}
	if td.View == nil || td.Images != nil || td.NumPairs() != len(pairs.Pairs) {
		t.Fatalf("feed: view %v, %d images, %d pairs", td.View != nil, len(td.Images), td.NumPairs())
	}
	test, err := d.TrainingData(pairs) // The test transform, as evaluation and the defenses embed.
	if err != nil {
		t.Fatal(err)
	}
	view := func(i int, seed uint64) []float32 {
		t.Helper()
		v, err := td.View(i, rand.New(rand.NewPCG(seed, 1)))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	differ := 0
	for i := range 5 {
		if d.file(pairs.Images[i]) == "" {
			t.Fatalf("training image %s has no file", pairs.Images[i].ID)
		}
		a, b := view(i, 1), view(i, 1)
		if len(a) != len(test.Images[i]) || !slices.Equal(a, b) {
			t.Fatalf("image %d: views of one seed differ (or have %d values, want %d)", i, len(a), len(test.Images[i]))
		}
		if !slices.Equal(a, view(i, 2)) && !slices.Equal(a, test.Images[i]) {
			differ++
		}
	}
	if differ == 0 {
		t.Error("views do not change with the generator, or equal the centre crop")
	}
	// A copy with other pixels under the same ID (as an attack that edits images makes) is not the file's.
	ex := pairs.Images[0]
	ex.Image.Pix = slices.Clone(ex.Image.Pix)
	if d.file(ex) != "" {
		t.Error("an in-memory copy is read from the original's file")
	}
	made := &dataset.PairSet{Images: []dataset.Example{ex}, Pairs: []dataset.Pair{{Image: 0, Caption: "a dog"}}}
	mtd, err := d.trainFeed(made)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := mtd.View(0, rand.New(rand.NewPCG(1, 1))); err != nil || len(v) != len(test.Images[0]) {
		t.Errorf("view of an in-memory image: %d values, %v", len(v), err)
	}

	off := miniPaperData(t, DatasetCOCO, true, false)
	otd, err := off.trainFeed(off.Splits.Train.Pairs())
	if err != nil {
		t.Fatal(err)
	}
	if otd.View != nil || len(otd.Images) != len(off.Splits.Train.Examples) {
		t.Errorf("without TrainCrop the feed has a view (%v) or %d images", otd.View != nil, len(otd.Images))
	}
}

// Fine-tuning with TrainCrop is reproducible (the same seed gives the same losses) and differs from
// fine-tuning on the centre crops, and from another seed's crops.
func TestTrainCropTraining(t *testing.T) {
	d := miniPaperData(t, DatasetCOCO, true, true)
	pairs := d.Splits.Train.Pairs()
	init, err := d.pretrained()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "init.safetensors")
	if err := clip.Save(path, init, d.Model); err != nil {
		t.Fatal(err)
	}
	losses := func(d *Data) []float64 {
		t.Helper()
		ctx, _, err := clip.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		_, hist, err := trainModel(d, &Options{Quiet: true}, "test", ctx, pairs, 2, d.Spec.FinetuneLR, nil)
		if err != nil {
			t.Fatal(err)
		}
		var out []float64
		for _, h := range hist {
			out = append(out, h.MeanLoss)
		}
		return out
	}
	a, b := losses(d), losses(d)
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different losses: %v and %v", a, b)
	}
	centre := *d
	centre.Spec.TrainCrop = false
	if c := losses(&centre); slices.Equal(a, c) {
		t.Errorf("TrainCrop on and off give the same losses %v: the crops are not applied", a)
	}
	reseeded := *d
	reseeded.Spec.Seed++
	if c := losses(&reseeded); slices.Equal(a, c) {
		t.Errorf("another seed gives the same losses %v", a)
	}
}
