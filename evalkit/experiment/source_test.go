package experiment

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/loaders"
)

// testVocab returns the real CLIP BPE vocabulary, or skips the test.
func testVocab(t *testing.T) string {
	t.Helper()
	p, err := FindCLIPVocab("../../../shared/data/clip/bpe_simple_vocab_16e6.txt.gz")
	if err != nil {
		t.Skip(err)
	}
	return p
}

// The Fashion-MNIST default's cache keys must not change with the new fields empty: they hash as the structs
// written before real data existed.
func TestFashionKeysUnchanged(t *testing.T) {
	for _, s := range []Spec{DefaultSpec(), QuickSpec()} {
		oldPre := struct {
			Preset                 string
			PoolSize, TestPerClass int
			Epochs, Batch          int
			LR                     float64
			Seed                   int64
			Version                int
		}{s.Preset, s.PoolSize, s.TestPerClass, s.PretrainEpochs, s.BatchSize, s.PretrainLR, s.Seed, cacheVersion}
		if got, want := hash(s.pretrainKey()), hash(oldPre); got != want {
			t.Errorf("pretrain key %s, want %s", got, want)
		}
		oldFine := struct {
			Pretrain          any
			TrainSize, Epochs int
			SourceImages      int
			LR                float64
			Poisoned          bool
			Source, Target    string
			Rate              float64
			Mode              attack.Mode
			Attack, TargetID  string
			Goals             []attack.Goal
			Freeze            []string
			Trigger           *attack.Trigger `json:",omitempty"`
		}{Pretrain: oldPre, TrainSize: s.TrainSize, Epochs: s.FinetuneEpochs, SourceImages: s.SourceTrainImages,
			LR: s.FinetuneLR, Poisoned: true, Goals: s.Goals(), Source: s.Source, Target: s.Target, Rate: s.Rate,
			Mode: s.Mode, Attack: s.AttackKind()}
		if got, want := hash(s.finetuneKey(true)), hash(oldFine); got != want {
			t.Errorf("fine-tune key %s, want %s", got, want)
		}
	}
}

// With a checkpoint, the pre-training key follows the file (path, size, modification time) and nothing else.
func TestWeightsKey(t *testing.T) {
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "w.safetensors")
	if err := os.WriteFile(ckpt, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := PaperSpec(DatasetCOCO, dir, ckpt, "vocab")
	k0 := hash(s.pretrainKey())
	other := s
	other.PoolSize, other.PretrainEpochs, other.Preset = 5, 3, "small"
	if hash(other.pretrainKey()) != k0 {
		t.Error("pre-training key of a checkpoint depends on unused pre-training fields")
	}
	if hash(s.finetuneKey(true)) == hash(func() Spec { c := s; c.MaxTrainImages = 10; return c }().finetuneKey(true)) {
		t.Error("fine-tune key ignores MaxTrainImages")
	}
	if err := os.Chtimes(ckpt, time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if hash(s.pretrainKey()) == k0 {
		t.Error("pre-training key unchanged after the checkpoint's mtime changed")
	}
	k1 := hash(s.pretrainKey())
	if err := os.WriteFile(ckpt, []byte("xy"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.Chtimes(ckpt, time.Now(), time.Now().Add(time.Hour))
	if hash(s.pretrainKey()) == k1 {
		t.Error("pre-training key unchanged after the checkpoint's size changed")
	}
}

func TestValidateSource(t *testing.T) {
	paper := PaperSpec(DatasetCOCO, "/data/coco", "w.safetensors", "vocab.txt.gz")
	for _, tc := range []struct {
		name   string
		change func(*Spec)
		want   string // "" means valid
	}{
		{"paper spec", func(*Spec) {}, ""},
		{"flickr-pascal", func(s *Spec) { *s = PaperSpec(DatasetFlickrPASCAL, "/d", "w", "v") }, ""},
		{"unknown dataset", func(s *Spec) { s.Dataset = "imagenet" }, `unknown dataset "imagenet"`},
		{"no root", func(s *Spec) { s.DataRoot = "" }, "needs DataRoot"},
		{"no weights", func(s *Spec) { s.Weights = "" }, "needs a pre-trained checkpoint"},
		{"no tokenizer", func(s *Spec) { s.TokenizerFile = "" }, "needs TokenizerFile"},
		{"negative cap", func(s *Spec) { s.MaxTrainImages = -1 }, "MaxTrainImages is -1"},
		{"min lr fraction", func(s *Spec) { s.MinLRFraction = 2 }, "MinLRFraction 2"},
		{"tokenizer without weights", func(s *Spec) { *s = QuickSpec(); s.TokenizerFile = "v" }, "needs a pre-trained checkpoint"},
		{"backdoor on coco", func(s *Spec) { s.Attack, s.Mode, s.Source = AttackBackdoor, attack.Inject, "" }, ""},
		{"backdoor with a source", func(s *Spec) { s.Attack, s.Mode = AttackBackdoor, attack.Inject }, "leave the source class empty"},
		{"no test images", func(s *Spec) { s.TestPerClass = 0 }, "data sizes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := paper
			tc.change(&s)
			err := s.Validate()
			if tc.want == "" && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestCapTrain(t *testing.T) {
	var entries []loaders.Entry
	labels := []int{dataset.NoLabel, 0, dataset.NoLabel, 1, 0, dataset.NoLabel, 1}
	for i, l := range labels {
		entries = append(entries, loaders.Entry{ID: string(rune('a' + i)), Path: "x", Captions: []string{"c"}, Label: l})
	}
	ix, err := loaders.NewIndex("t", []string{"p", "q"}, entries)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		max  int
		want string
	}{{0, "abcdefg"}, {10, "abcdefg"}, {2, "bd"}, {4, "bdeg"}, {5, "abdeg"}, {6, "abcdeg"}} {
		var got string
		for _, e := range capTrain(ix, tc.max).Entries() {
			got += e.ID
		}
		if got != tc.want {
			t.Errorf("cap %d: kept %q, want %q", tc.max, got, tc.want)
		}
	}
}

// Both real layouts load at the checkpoint's resolution with the paper's kind of split, and the tokenizer is the
// checkpoint's BPE.
func TestLoadDataRealLayouts(t *testing.T) {
	vocab := testVocab(t)
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "mini.safetensors")
	if err := WriteRandomCheckpoint(ckpt, 1); err != nil {
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
		{DatasetCOCO, WriteMiniCOCO, 0, 6*MiniImagesPerClass + 2 - 6*MiniTestPerClass, 6 * MiniTestPerClass, "boat", "dog",
			6 * (MiniImagesPerClass - MiniTestPerClass), 6, "coco/"},
		{DatasetFlickrPASCAL, WriteMiniFlickrPASCAL, 0, MiniFlickrImages + 20*(MiniPASCALImagesPerClass-MiniTestPerClass),
			20 * MiniTestPerClass, "sheep", "aeroplane", 20 * (MiniPASCALImagesPerClass - MiniTestPerClass), 20, "flickr30k/"},
		// The cap keeps the labelled PASCAL images before Flickr's unlabelled ones.
		{DatasetFlickrPASCAL, WriteMiniFlickrPASCAL, 50, 50, 20 * MiniTestPerClass, "sheep", "aeroplane",
			20 * (MiniPASCALImagesPerClass - MiniTestPerClass), 20, "flickr30k/"},
	} {
		t.Run(tc.dataset, func(t *testing.T) {
			root := filepath.Join(dir, tc.dataset)
			if err := tc.write(root, 7); err != nil {
				t.Fatal(err)
			}
			spec := PaperSpec(tc.dataset, root, ckpt, vocab)
			spec.TestPerClass, spec.MaxTrainImages = MiniTestPerClass, tc.maxTrain
			d, err := LoadData(spec)
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
				if ex.Image.Width != 32 || ex.Image.Height != 32 || ex.Image.Channels != 3 {
					t.Fatalf("%s is %d×%d×%d, want the checkpoint's 32×32×3", ex.ID, ex.Image.Width, ex.Image.Height, ex.Image.Channels)
				}
			}
			if labelled != tc.labelledInTrain {
				t.Errorf("%d labelled train images, want %d", labelled, tc.labelledInTrain)
			}
			if got := len(te.IndicesOfClass(d.Target)); got != MiniTestPerClass {
				t.Errorf("%d %s test images, want %d", got, tc.target, MiniTestPerClass)
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
	if err := WriteRandomCheckpoint(ckpt, 1); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "fp")
	if err := WriteMiniFlickrPASCAL(root, 3); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(root, "flickr30k-images", "1000092795.jpg")
	if err := os.WriteFile(bad, []byte("not a jpeg"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := PaperSpec(DatasetFlickrPASCAL, root, ckpt, vocab)
	spec.TestPerClass = MiniTestPerClass
	d, err := LoadData(spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Skipped) != 1 || !strings.Contains(d.Skipped[0], bad) {
		t.Fatalf("skipped %q, want the one corrupt file %s", d.Skipped, bad)
	}
	if got, want := len(d.Splits.Train.Examples), MiniFlickrImages-1+20*(MiniPASCALImagesPerClass-MiniTestPerClass); got != want {
		t.Errorf("%d train images, want %d", got, want)
	}
}

// A loaded checkpoint works on the Fashion-MNIST default too: images are resized to its input, captions go
// through its BPE.
func TestLoadDataFashionWithCheckpoint(t *testing.T) {
	requireData(t)
	vocab := testVocab(t)
	ckpt := filepath.Join(t.TempDir(), "mini.safetensors")
	if err := WriteRandomCheckpoint(ckpt, 1); err != nil {
		t.Fatal(err)
	}
	spec := QuickSpec()
	spec.PoolSize, spec.TrainSize, spec.TestPerClass = 20, 100, 2
	spec.Weights, spec.TokenizerFile = ckpt, vocab
	d, err := LoadData(spec)
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
	if hash(spec.finetuneKey(true)) == hash(func() Spec { c := spec; c.PoolSize = 30; return c }().finetuneKey(true)) {
		t.Error("fine-tune key ignores PoolSize, which decides Fashion-MNIST's train split")
	}
}
