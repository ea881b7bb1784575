package experiment_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/internal/minidata"
	"github.com/mmpoison/mmpoison/evalkit/internal/testenv"
	"github.com/mmpoison/mmpoison/evalkit/report"
	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/train"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/loaders"
)

// testVocab returns the real CLIP BPE vocabulary, or skips the test.
func testVocab(t *testing.T) string { return testenv.Vocab(t, "../../..") }

// A spec declares one experiment; Run executes it (see the quickstart notebook for the stage-by-stage API).
func ExampleDefaultSpec() {
	spec := experiment.DefaultSpec()
	spec.Attack.Rate = 0.02
	fmt.Println(spec.Attack.Kind, spec.Attack.Source(), "→", spec.Attack.Target(), spec.Attack.Mode, spec.Validate())
	spec.Attack.Rate = 1.5
	fmt.Println(spec.Validate())
	// Output:
	// II trouser → bag repair <nil>
	// attack II: poisoning rate φ = 1.5 is outside (0, 1) (φ is a fraction: 2% is 0.02; or set a count)
}

// The paper's setup on COCO: Attack II boat → dog in re-pair mode, fine-tuned 10 epochs from a pre-trained
// checkpoint at lr 1e-5 → 1e-6, batch 128.
func ExamplePaperSpec() {
	s := experiment.PaperSpec(experiment.DatasetCOCO, "/data/coco", "ViT-B-32.safetensors", "bpe_simple_vocab_16e6.txt.gz")
	fmt.Println(s.Real.Dataset, s.Attack.Source(), "→", s.Attack.Target(), s.Attack.Mode, s.Attack.Rate, s.Data.TestPerClass, "test images per class")
	fmt.Printf("%d epochs, lr %.0e → %.0e, batch %d, %v\n", s.Finetune.Epochs, s.Finetune.LR, s.Finetune.LR*s.Finetune.MinLRFraction, s.Batch, s.Validate())
	// Output:
	// coco boat → dog repair 0.0024 50 test images per class
	// 10 epochs, lr 1e-05 → 1e-06, batch 128, <nil>
}

// Both real layouts load at the checkpoint's resolution with the paper's kind of split, and the tokenizer is the
// checkpoint's BPE.
func TestLoadDataRealLayouts(t *testing.T) {
	vocab := testVocab(t)
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "mini.safetensors")
	if err := minidata.WriteRandomCheckpoint(ckpt, 1); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dataset          string
		write            func(string, int64) error
		maxTrain         int
		train, test      int
		source, target   string
		labelledInTrain  int
		testClasses      int
		firstTrainPrefix string
	}{
		{experiment.DatasetCOCO, minidata.WriteCOCO, 0, 6*minidata.ImagesPerClass + 2 - 6*minidata.TestPerClass, 6 * minidata.TestPerClass, "boat", "dog",
			6 * (minidata.ImagesPerClass - minidata.TestPerClass), 6, "coco/"},
		{experiment.DatasetFlickrPASCAL, minidata.WriteFlickrPASCAL, 0, minidata.FlickrImages + 20*(minidata.PASCALImagesPerClass-minidata.TestPerClass),
			20 * minidata.TestPerClass, "sheep", "aeroplane", 20 * (minidata.PASCALImagesPerClass - minidata.TestPerClass), 20, "flickr30k/"},
		// The cap keeps the labelled PASCAL images before Flickr's unlabelled ones.
		{experiment.DatasetFlickrPASCAL, minidata.WriteFlickrPASCAL, 50, 50, 20 * minidata.TestPerClass, "sheep", "aeroplane",
			20 * (minidata.PASCALImagesPerClass - minidata.TestPerClass), 20, "flickr30k/"},
	} {
		t.Run(tc.dataset, func(t *testing.T) {
			root := filepath.Join(dir, tc.dataset)
			if err := tc.write(root, 7); err != nil {
				t.Fatal(err)
			}
			spec := experiment.PaperSpec(tc.dataset, root, ckpt, vocab)
			spec.Data.TestPerClass, spec.Real.MaxTrainImages = minidata.TestPerClass, tc.maxTrain
			d, err := experiment.LoadData(spec)
			if err != nil {
				t.Fatal(err)
			}
			tr, te := d.Splits.Train, d.Splits.Test
			if len(tr.Examples) != tc.train || len(te.Examples) != tc.test {
				t.Fatalf("train %d, test %d images; want %d, %d", len(tr.Examples), len(te.Examples), tc.train, tc.test)
			}
			labelled := 0
			for _, ex := range tr.Examples {
				if ex.Label != dataset.NoLabel {
					labelled++
				}
				if ex.Image.Pix != nil {
					t.Fatalf("%s holds its pixels: a real dataset is read on demand", ex.ID)
				}
				img, err := ex.Pixels()
				if err != nil || img.Width != 32 || img.Height != 32 || img.Channels != 3 {
					t.Fatalf("%s is %d×%d×%d (%v), want the checkpoint's 32×32×3", ex.ID, img.Width, img.Height, img.Channels, err)
				}
			}
			if labelled != tc.labelledInTrain {
				t.Errorf("%d labelled train images, want %d", labelled, tc.labelledInTrain)
			}
			if got := len(te.IndicesOfClass(d.Target)); got != minidata.TestPerClass {
				t.Errorf("%d %s test images, want %d", got, tc.target, minidata.TestPerClass)
			}
			if te.Classes[d.Source] != tc.source || te.Classes[d.Target] != tc.target {
				t.Errorf("goal %s → %s, want %s → %s", te.Classes[d.Source], te.Classes[d.Target], tc.source, tc.target)
			}
			if d.Tokenizer.VocabSize() != 49408 || d.Model.VocabSize != 49408 || d.Model.ContextLength != 77 {
				t.Errorf("tokenizer %d tokens, model vocabulary %d, context %d", d.Tokenizer.VocabSize(), d.Model.VocabSize, d.Model.ContextLength)
			}
			if p := d.ClassPrompts(); len(p) != len(te.Classes) || p[d.Target] != "a photo of a "+tc.target {
				t.Errorf("class prompts %q", p)
			}
			if len(te.Classes) != tc.testClasses {
				t.Errorf("%d classes, want %d", len(te.Classes), tc.testClasses)
			}
			if !strings.HasPrefix(tr.Examples[0].ID, tc.firstTrainPrefix) {
				t.Errorf("first train example %s, want one of %s", tr.Examples[0].ID, tc.firstTrainPrefix)
			}
		})
	}
}

// A corrupt image is skipped and named; the rest of the run's data loads.
func TestLoadDataSkipsCorruptImage(t *testing.T) {
	vocab := testVocab(t)
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "mini.safetensors")
	if err := minidata.WriteRandomCheckpoint(ckpt, 1); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "fp")
	if err := minidata.WriteFlickrPASCAL(root, 3); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(root, "flickr30k-images", "1000092795.jpg")
	if err := os.WriteFile(bad, []byte("not a jpeg"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := experiment.PaperSpec(experiment.DatasetFlickrPASCAL, root, ckpt, vocab)
	spec.Data.TestPerClass = minidata.TestPerClass
	d, err := experiment.LoadData(spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Skipped) != 1 || !strings.Contains(d.Skipped[0], bad) {
		t.Fatalf("skipped %q, want the one corrupt file %s", d.Skipped, bad)
	}
	if got, want := len(d.Splits.Train.Examples), minidata.FlickrImages-1+20*(minidata.PASCALImagesPerClass-minidata.TestPerClass); got != want {
		t.Errorf("%d train images, want %d", got, want)
	}
}

// A loaded checkpoint works on the Fashion-MNIST default too: images are resized to its input, captions go
// through its BPE.
func TestLoadDataFashionWithCheckpoint(t *testing.T) {
	testenv.RequireFashionMNIST(t)
	vocab := testVocab(t)
	ckpt := filepath.Join(t.TempDir(), "mini.safetensors")
	if err := minidata.WriteRandomCheckpoint(ckpt, 1); err != nil {
		t.Fatal(err)
	}
	spec := experiment.QuickSpec()
	spec.Data.Pool, spec.Data.Train, spec.Data.TestPerClass = 20, 100, 2
	spec.Real.Weights, spec.Real.Tokenizer = ckpt, vocab
	d, err := experiment.LoadData(spec)
	if err != nil {
		t.Fatal(err)
	}
	ex := d.Splits.Test.Examples[0]
	if ex.Image.Width != 32 || ex.Image.Height != 32 {
		t.Errorf("test image %d×%d, want the checkpoint's 32×32", ex.Image.Width, ex.Image.Height)
	}
	if d.Tokenizer.VocabSize() != 49408 || d.Model.Name != "mini-rgb" {
		t.Errorf("tokenizer of %d tokens, model %q", d.Tokenizer.VocabSize(), d.Model.Name)
	}
	if p := d.ClassPrompts(); len(p) != 10 {
		t.Errorf("%d class prompts, want Fashion-MNIST's 10", len(p))
	}
}

// miniPaperData loads minidata.PaperSpec's data of dataset with PreCaption and TrainCrop set as given.
func miniPaperData(t *testing.T, ds string, preCaption, trainCrop bool) *experiment.Data {
	t.Helper()
	vocab := testVocab(t)
	spec, err := minidata.PaperSpec(ds, t.TempDir(), vocab)
	if err != nil {
		t.Fatal(err)
	}
	if !spec.Real.PreCaption || !spec.Real.TrainCrop {
		t.Fatalf("minidata.PaperSpec (PaperSpec) has PreCaption %v, TrainCrop %v; want both on", spec.Real.PreCaption, spec.Real.TrainCrop)
	}
	spec.Real.PreCaption, spec.Real.TrainCrop = preCaption, trainCrop
	d, err := experiment.LoadData(spec)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// With PreCaption every train and test caption is as the official pre_caption leaves it (the miniature
// Flickr30k captions end in " ." as the real ones do); without it they are as in the files.
func TestPreCaptionApplied(t *testing.T) {
	raw := miniPaperData(t, experiment.DatasetFlickrPASCAL, false, false)
	pre := miniPaperData(t, experiment.DatasetFlickrPASCAL, true, false)
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
	ps, _, err := experiment.Poison(pre)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps.Pairs {
		if strings.Contains(p.Caption, ".") {
			t.Fatalf("pair caption %q was not pre-processed", p.Caption)
		}
	}
}

// A real dataset's training feed is streamed and holds no preprocessed images. With TrainCrop each view is a new
// random resized crop of the image's file, the same for the same generator, different for another, and not
// the test transform's centre crop; an image held in memory (as an attack that edits images makes) is cropped
// from its pixels, not read from the original's file.
func TestTrainCropFeed(t *testing.T) {
	d := miniPaperData(t, experiment.DatasetCOCO, true, true)
	pairs := d.Splits.Train.Pairs()
	td, err := experiment.TrainFeed(d, pairs)
	if err != nil {
		t.Fatal(err)
	}
	if td.Stream == nil || td.Stream.Transform == nil || td.Images != nil || td.NumPairs() != len(pairs.Pairs) {
		t.Fatalf("feed: stream %v, %d images, %d pairs", td.Stream != nil, len(td.Images), td.NumPairs())
	}
	test, err := d.TrainingData(pairs) // The test transform, as evaluation and the defenses embed.
	if err != nil {
		t.Fatal(err)
	}
	view := func(st *train.Stream, i int, seed uint64) []float32 {
		t.Helper()
		img, _, err := st.Pairs.Pair(i)
		if err != nil {
			t.Fatal(err)
		}
		if img, err = st.Transform(img, rand.New(rand.NewPCG(seed, 1))); err != nil {
			t.Fatal(err)
		}
		v, err := clip.Preprocess(d.Model, img)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	differ := 0
	for i := range 5 {
		p := pairs.Pairs[i]
		if _, ok := pairs.Images[p.Image].Ref.(loaders.ImageFile); !ok {
			t.Fatalf("training image %s has no file", pairs.Images[p.Image].ID)
		}
		a, b := view(td.Stream, i, 1), view(td.Stream, i, 1)
		if len(a) != len(test.Images[p.Image]) || !slices.Equal(a, b) {
			t.Fatalf("pair %d: views of one seed differ (or have %d values, want %d)", i, len(a), len(test.Images[p.Image]))
		}
		if !slices.Equal(a, view(td.Stream, i, 2)) && !slices.Equal(a, test.Images[p.Image]) {
			differ++
		}
	}
	if differ == 0 {
		t.Error("views do not change with the generator, or equal the centre crop")
	}
	// A copy with its pixels held under the same ID (as an attack that edits images makes) is not the file's.
	ex := pairs.Images[0]
	ex.Image, err = ex.Pixels()
	if err != nil {
		t.Fatal(err)
	}
	made := &dataset.PairSet{Images: []dataset.Example{ex}, Pairs: []dataset.Pair{{Image: 0, Caption: "a dog"}}}
	if img, _, err := experiment.FullSize(made).Pair(0); err != nil || img.Width != d.Model.ImageSize {
		t.Errorf("an in-memory copy is read as %d px wide (%v), not from its own %d px pixels", img.Width, err, d.Model.ImageSize)
	}
	mtd, err := experiment.TrainFeed(d, made)
	if err != nil {
		t.Fatal(err)
	}
	if v := view(mtd.Stream, 0, 1); len(v) != len(test.Images[0]) {
		t.Errorf("view of an in-memory image: %d values", len(v))
	}

	off := miniPaperData(t, experiment.DatasetCOCO, true, false)
	otd, err := experiment.TrainFeed(off, off.Splits.Train.Pairs())
	if err != nil {
		t.Fatal(err)
	}
	if otd.Stream == nil || otd.Stream.Transform != nil || otd.Images != nil {
		t.Errorf("without TrainCrop the feed is not a plain stream (transform %v, %d images held)", otd.Stream != nil && otd.Stream.Transform != nil, len(otd.Images))
	}
}

// Fine-tuning with TrainCrop is reproducible (the same seed gives the same losses) and differs from
// fine-tuning on the centre crops, and from another seed's crops.
func TestTrainCropTraining(t *testing.T) {
	d := miniPaperData(t, experiment.DatasetCOCO, true, true)
	pairs := d.Splits.Train.Pairs()
	init, err := experiment.PretrainedContext(d)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "init.safetensors")
	if err := clip.Save(path, init, d.Model); err != nil {
		t.Fatal(err)
	}
	losses := func(d *experiment.Data) []float64 {
		t.Helper()
		ctx, _, err := clip.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		out, err := experiment.TrainLosses(d, ctx, pairs, 2)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	a, b := losses(d), losses(d)
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different losses: %v and %v", a, b)
	}
	centre := *d
	centre.Spec.Real.TrainCrop = false
	if c := losses(&centre); slices.Equal(a, c) {
		t.Errorf("TrainCrop on and off give the same losses %v: the crops are not applied", a)
	}
	reseeded := *d
	reseeded.Spec.Seed++
	if c := losses(&reseeded); slices.Equal(a, c) {
		t.Errorf("another seed gives the same losses %v", a)
	}
}

// The whole paper pipeline on generated miniatures of COCO and Flickr-PASCAL and a random checkpoint in OpenAI
// naming: load, convert the checkpoint (the pre-training stage), fine-tune clean and poisoned, evaluate, and
// render every table, figure and the report folder. A second run finds every stage in the cache.
func TestPaperPipeline(t *testing.T) {
	vocab := testVocab(t)
	dir := t.TempDir()
	t.Setenv("MMPOISON_CACHE", filepath.Join(dir, "cache"))
	for _, tc := range []struct {
		dataset         string
		train, test     int
		goal, paperGoal string
		paperMinRank    string
	}{
		{experiment.DatasetCOCO, 38, 24, "boat → dog", "COCO boat → dog", "123.1 → 15.3"},
		{experiment.DatasetFlickrPASCAL, 64, 80, "sheep → aeroplane", "Flickr-PASCAL sheep → aeroplane", "51.0 → 2.19"},
	} {
		t.Run(tc.dataset, func(t *testing.T) {
			spec, err := minidata.PaperSpec(tc.dataset, dir, vocab)
			if err != nil {
				t.Fatal(err)
			}
			ckpt := spec.Real.Weights
			res, err := experiment.Run(spec, experiment.Options{Quiet: true})
			if err != nil {
				t.Fatal(err)
			}
			d := res.Data
			if d == nil || d.TrainImages != tc.train || d.TestImages != tc.test || !strings.Contains(d.Model, "mini-rgb") {
				t.Fatalf("data summary %+v", d)
			}
			if len(res.Pretrain.History) != 0 {
				t.Errorf("the pre-training stage trained (%d epochs) instead of converting the checkpoint", len(res.Pretrain.History))
			}
			if res.Poison.PoisonedPairs == 0 || res.Poison.TotalPairs != d.TrainCaptions {
				t.Errorf("poison %+v, want poisoned pairs among all %d train captions (re-pair mode)", res.Poison, d.TrainCaptions)
			}
			a := res.Poisoned.Attack
			if a.NumQueries != minidata.TestPerClass*5 || a.NumTargets != minidata.TestPerClass || a.NumGallery != tc.test {
				t.Errorf("attack queries %d, targets %d, gallery %d", a.NumQueries, a.NumTargets, a.NumGallery)
			}
			if len(res.FinetunePois.History) != 1 || len(res.FinetunePois.Epochs) != 1 {
				t.Errorf("poisoned fine-tuning: %d epochs of history, %d evaluations; want 1", len(res.FinetunePois.History), len(res.FinetunePois.Epochs))
			}
			source := strings.Fields(tc.goal)[0]
			for _, tab := range []struct {
				name, text string
				want       []string
			}{
				{"attack", report.AttackTable(res).Text(), []string{tc.goal, "class-" + source + " captions", "Hit@10", "MinRank"}},
				{"utility", report.UtilityTable(res).Text(), []string{"TR@10", "IR@10", "classes other than " + source}},
				{"paper", report.PaperComparison(res).Text(), []string{tc.paperGoal, tc.paperMinRank, "this run: " + tc.dataset + " " + tc.goal}},
			} {
				for _, w := range tab.want {
					if !strings.Contains(tab.text, w) {
						t.Errorf("%s table lacks %q:\n%s", tab.name, w, tab.text)
					}
				}
			}
			out := filepath.Join(dir, "report-"+tc.dataset)
			files, err := report.Write(out, res)
			if err != nil {
				t.Fatal(err)
			}
			md, err := os.ReadFile(filepath.Join(out, "report.md"))
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range []string{"pre-trained checkpoint " + ckpt, "fine-tuned on " + tc.dataset,
				fmt.Sprintf("%d train images", tc.train), "Utility on the test split"} {
				if !strings.Contains(string(md), w) {
					t.Errorf("report.md lacks %q:\n%s", w, md)
				}
			}
			if len(files) < 5 {
				t.Errorf("report wrote %d files: %v", len(files), files)
			}

			again, err := experiment.Run(spec, experiment.Options{Quiet: true})
			if err != nil {
				t.Fatal(err)
			}
			if !again.Pretrain.Cached || !again.FinetuneClean.Cached || !again.FinetunePois.Cached {
				t.Errorf("second run retrained: cached %v %v %v", again.Pretrain.Cached, again.FinetuneClean.Cached, again.FinetunePois.Cached)
			}
			if again.Poisoned.Attack.MinRank.Mean != res.Poisoned.Attack.MinRank.Mean {
				t.Errorf("cached MinRank %v differs from %v", again.Poisoned.Attack.MinRank.Mean, res.Poisoned.Attack.MinRank.Mean)
			}
		})
	}
}
