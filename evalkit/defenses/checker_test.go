package defenses

import (
	"github.com/mmpoison/mmpoison/models/tokenizer"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/evalkit/cache"
	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/internal/minidata"
	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/safetensors"
	"github.com/mmpoison/mmpoison/models/weights"
	"github.com/mmpoison/mmpoison/poisoning/defense"
	"github.com/mmpoison/mmpoison/poisoning/imageprep"
)

// checkerTestSpec is QuickSpec shrunk for the checker tests, so that a "small" checker pre-trains in well under
// a minute on 2 cores: a fifth of the pool in batches of 32, half the fine-tuning split (about 2,500 training
// pairs, 25 of them poisoned), one fine-tuning epoch.
func checkerTestSpec() experiment.Spec {
	s := experiment.QuickSpec()
	s.Data.Pool, s.Data.Train, s.Finetune.Epochs, s.Batch = 600, 550, 1, 32
	return s
}

// loadCheckerData loads checkerTestSpec's data, skipping the test when Fashion-MNIST is not installed.
func loadCheckerData(t *testing.T) *experiment.Data {
	t.Helper()
	requireData(t)
	d, err := experiment.LoadData(checkerTestSpec())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// quantile95 drops the 5% highest-scoring pairs.
var quantile95 = defense.Threshold{Kind: defense.KindQuantile, Value: 0.95}

// Every checker setting gives the data-side defenses' models and matrix cells other cache keys than the
// default checker's, and a replaced checkpoint file at the same path is another checker.
func TestCheckerKeys(t *testing.T) {
	spec := experiment.QuickSpec()
	fs := FilterSpec{Threshold: quantile95}
	ks := KDistanceSpec{Threshold: defense.Threshold{Kind: defense.KindLabelled, MaxCleanDrop: 0.05}}
	keys := func(ck CheckerSpec) [3]string {
		t.Helper()
		m := Matrix{Checker: ck, Filter: fs, KDistance: ks}
		var out [3]string
		for i, def := range []string{DefenseFilter, DefenseKDistance} {
			k, err := m.cellKey(Cell{Spec: spec, Defense: def})
			if err != nil {
				t.Fatal(err)
			}
			out[i] = k.Name()
		}
		p, err := cache.NewKey("checker", ck.parts(spec))
		if err != nil {
			t.Fatal(err)
		}
		out[2] = p.Hash
		return out
	}
	def := keys(CheckerSpec{})
	if def != keys(CheckerSpec{Seed: spec.Seed + 1}) {
		t.Error("the default checker seed spelt out changes the keys")
	}
	file := filepath.Join(t.TempDir(), "checker.safetensors")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ck   CheckerSpec
	}{
		{"seed", CheckerSpec{Seed: 7}},
		{"preset", CheckerSpec{Preset: "small"}},
		{"weights", CheckerSpec{Weights: file}},
		{"weights and tokenizer", CheckerSpec{Weights: file, Tokenizer: file}},
	} {
		got := keys(tc.ck)
		for i := range got {
			if got[i] == def[i] {
				t.Errorf("%s: key %d is the default checker's", tc.name, i)
			}
		}
	}
	before := keys(CheckerSpec{Weights: file})
	if err := os.WriteFile(file, []byte("longer"), 0o644); err != nil {
		t.Fatal(err)
	}
	if after := keys(CheckerSpec{Weights: file}); after[0] == before[0] || after[2] == before[2] {
		t.Error("a replaced checker checkpoint keeps its cache key")
	}
}

// TestCheckerErrors: bad checker settings are refused, naming the value, before anything trains.
func TestCheckerErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ckpt.safetensors")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.safetensors")
	weighted := experiment.QuickSpec()
	weighted.Real.Weights, weighted.Real.Tokenizer = file, file
	quick := experiment.QuickSpec()
	cases := []struct {
		name string
		c    CheckerSpec
		spec experiment.Spec
		want []string
	}{
		{"unknown preset", CheckerSpec{Preset: "huge"}, quick, []string{`unknown model preset "huge"`, `"small"`}},
		{"missing checkpoint", CheckerSpec{Weights: missing}, quick, []string{missing, "does not exist"}},
		{"checkpoint is a folder", CheckerSpec{Weights: dir}, quick, []string{dir, "is a folder"}},
		{"missing tokenizer", CheckerSpec{Weights: file, Tokenizer: missing}, quick, []string{"CheckerSpec.Tokenizer", missing, "does not exist"}},
		{"tokenizer without checkpoint", CheckerSpec{Tokenizer: file}, quick, []string{"CheckerSpec.Tokenizer " + file, "needs CheckerSpec.Weights"}},
		{"preset and checkpoint", CheckerSpec{Preset: "small", Weights: file}, quick, []string{`"small"`, file, "not both"}},
		{"preset without a pool", CheckerSpec{Preset: "small"}, weighted, []string{`"small"`, "no pre-training pool", "CheckerSpec.Weights"}},
	}
	for _, tc := range cases {
		err := tc.c.Validate(tc.spec)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %v, want one containing %q", tc.name, err, w)
			}
		}
	}
	if err := (CheckerSpec{Preset: "small", Seed: 3}).Validate(quick); err != nil {
		t.Errorf("a known preset: %v", err)
	}

	// The runners refuse them before training: Filter, Detect, KDistance and the matrix.
	m := Matrix{Attacks: []experiment.Spec{quick}, Defenses: []string{DefenseKDistance}, Dir: t.TempDir(),
		Checker: CheckerSpec{Preset: "huge"}}
	if _, err := m.Run(experiment.Options{}); err == nil || !strings.Contains(err.Error(), `"huge"`) {
		t.Errorf("matrix with an unknown checker preset: %v", err)
	}
	d := loadCheckerData(t)
	quiet := experiment.Options{Quiet: true}
	if _, err := Filter(d, CheckerSpec{Preset: "huge"}, FilterSpec{}, quiet); err == nil || !strings.Contains(err.Error(), `unknown model preset "huge"`) {
		t.Errorf("filter with an unknown preset: %v", err)
	}
	if _, err := Filter(d, CheckerSpec{Weights: missing}, FilterSpec{}, quiet); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("filter with a missing checkpoint: %v", err)
	}
	if _, err := Detect(d, CheckerSpec{Weights: missing}, KDistanceSpec{}, quiet); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("detector with a missing checkpoint: %v", err)
	}
	if _, err := KDistance(d, CheckerSpec{Preset: "huge"}, KDistanceSpec{}, quiet); err == nil || !strings.Contains(err.Error(), `"huge"`) {
		t.Errorf("k-distance filter with an unknown preset: %v", err)
	}
	// A CLIP-vocabulary checkpoint without its tokenizer: the Fashion-MNIST words do not fit it.
	clipCkpt := filepath.Join(dir, "mini-clip.safetensors")
	if err := minidata.WriteRandomCheckpoint(clipCkpt, 1); err != nil {
		t.Fatal(err)
	}
	_, err := Detect(d, CheckerSpec{Weights: clipCkpt}, KDistanceSpec{Threshold: quantile95}, quiet)
	if err == nil || !strings.Contains(err.Error(), "49408") || !strings.Contains(err.Error(), "set CheckerSpec.Tokenizer") {
		t.Errorf("checkpoint with another vocabulary and no tokenizer: %v", err)
	}
}

// TestDetectCheckerCheckpoint: a checkpoint saved by a pre-training stage, given as CheckerSpec.Weights, is the
// checker it was: the detector's scores are those of the seed-based checker that produced it.
func TestDetectCheckerCheckpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("pre-trains a checker")
	}
	d := loadCheckerData(t)
	quiet := experiment.Options{Quiet: true}
	seeded, err := Detect(d, CheckerSpec{}, KDistanceSpec{Threshold: quantile95}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := Detect(d, CheckerSpec{Weights: seeded.Checker.Path}, KDistanceSpec{Threshold: quantile95}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded checker %q (%s), loaded %q; recall %v", seeded.CheckerModel, seeded.Checker.Path, loaded.CheckerModel,
		deref(loaded.Report.Recall))
	if loaded.Checker.Path != seeded.Checker.Path {
		t.Errorf("the mmpoison checkpoint was not used in place: %s, want %s", loaded.Checker.Path, seeded.Checker.Path)
	}
	if !slices.Equal(loaded.Scores, seeded.Scores) || loaded.Gamma != seeded.Gamma || loaded.Report.Dropped != seeded.Report.Dropped {
		t.Errorf("the loaded checkpoint scores differently from the checker that wrote it (γ %v vs %v)", loaded.Gamma, seeded.Gamma)
	}
	if want := "tiny pre-trained on the clean pool, seed 43"; seeded.CheckerModel != want {
		t.Errorf("seeded checker described as %q, want %q", seeded.CheckerModel, want)
	}
	if !strings.HasPrefix(loaded.CheckerModel, "checkpoint model.safetensors") || !strings.HasSuffix(loaded.CheckerModel, "(tiny)") {
		t.Errorf("loaded checker described as %q", loaded.CheckerModel)
	}
	// The filter's distances through the same path agree as well.
	poisoned, _, err := experiment.Poison(d)
	if err != nil {
		t.Fatal(err)
	}
	a, err := pairDistances(d, seeded.Checker.Path, poisoned, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ck := CheckerSpec{Weights: seeded.Checker.Path}
	img, txt, _, err := ck.embedPairs(d, seeded.Checker.Path, poisoned, quiet)
	if err != nil {
		t.Fatal(err)
	}
	b, err := defense.PairDistances(img, txt)
	if err != nil || !slices.Equal(a, b) {
		t.Errorf("distances of the loaded checker differ (%v)", err)
	}
	// They are the distances of the victim's own preprocessing and tokenizer (Data.TrainingData), as before the
	// checker brought its own.
	td, err := d.TrainingData(poisoned)
	if err != nil {
		t.Fatal(err)
	}
	emb, _, err := experiment.LoadEmbedder(seeded.Checker.Path, quiet)
	if err != nil {
		t.Fatal(err)
	}
	allImg, err := emb.Images(td.Images)
	if err != nil {
		t.Fatal(err)
	}
	oldTxt, err := emb.Texts(td.Tokens)
	if err != nil {
		t.Fatal(err)
	}
	oldImg := make([][]float32, len(poisoned.Pairs))
	for i, p := range poisoned.Pairs {
		oldImg[i] = allImg[p.Image]
	}
	if old, err := defense.PairDistances(oldImg, oldTxt); err != nil || !slices.Equal(old, a) {
		t.Errorf("the default checker's distances changed (%v)", err)
	}
}

// TestCheckerForeignCheckpoint: an RGB checker at another resolution and with the CLIP BPE vocabulary embeds
// Fashion-MNIST's 28×28 grayscale pairs (resized, repeated over RGB, its own normalisation, its tokenizer), the
// same whether its file carries mmpoison's config (used in place) or only OpenAI's tensor names and the head
// counts (converted by models/weights and cached).
func TestCheckerForeignCheckpoint(t *testing.T) {
	d := loadCheckerData(t)
	vocab := testVocab(t)
	quiet := experiment.Options{Quiet: true}
	dir := t.TempDir()
	withConfig := filepath.Join(dir, "mini-clip.safetensors")
	if err := minidata.WriteRandomCheckpoint(withConfig, 3); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.ReadFile(withConfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg := minidata.CLIPConfig()
	f.Metadata = map[string]string{weights.MetadataVisionHeads: strconv.Itoa(cfg.VisionHeads),
		weights.MetadataTextHeads: strconv.Itoa(cfg.TextHeads)}
	openAI := filepath.Join(dir, "openai-names.safetensors")
	if err := safetensors.WriteFile(openAI, f); err != nil {
		t.Fatal(err)
	}
	poisoned, _, err := experiment.Poison(d)
	if err != nil {
		t.Fatal(err)
	}
	var dists [][]float64
	for _, tc := range []struct {
		name, path string
		inPlace    bool
	}{{"mmpoison config", withConfig, true}, {"OpenAI names only", openAI, false}} {
		ck := CheckerSpec{Weights: tc.path, Tokenizer: vocab}
		if err := ck.Validate(d.Spec); err != nil {
			t.Fatal(err)
		}
		st, err := ck.stage(d, quiet)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if abs, _ := filepath.Abs(tc.path); (st.Path == abs) != tc.inPlace {
			t.Errorf("%s: checker stage %s (in place: want %v)", tc.name, st.Path, tc.inPlace)
		}
		img, txt, got, err := ck.embedPairs(d, st.Path, poisoned, quiet)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got.ImageSize != 32 || got.ImageChannels != 3 || len(img[0]) != cfg.EmbedDim || len(txt[0]) != cfg.EmbedDim {
			t.Errorf("%s: embedded with %+v into %d dimensions", tc.name, got, len(img[0]))
		}
		dist, err := defense.PairDistances(img, txt)
		if err != nil {
			t.Fatal(err)
		}
		dists = append(dists, dist)
		// The first pair by hand: CLIP's resize to 32 px, the grayscale repeated over RGB, OpenAI's normalisation.
		emb, _, err := experiment.LoadEmbedder(st.Path, quiet)
		if err != nil {
			t.Fatal(err)
		}
		p := poisoned.Pairs[0]
		pix, err := clip.Preprocess(got, imageprep.CLIP(poisoned.Images[p.Image].Image, 32))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := tokenizer.LoadFile(vocab, got.ContextLength)
		if err != nil {
			t.Fatal(err)
		}
		wantImg, err := emb.Images([][]float32{pix})
		if err != nil {
			t.Fatal(err)
		}
		wantTxt, err := emb.Texts([][]int32{tok.Encode(p.Caption)})
		if err != nil {
			t.Fatal(err)
		}
		if !close32(img[0], wantImg[0]) || !close32(txt[0], wantTxt[0]) {
			t.Errorf("%s: the first pair's embeddings differ from those of its images and caption prepared by hand", tc.name)
		}
	}
	for i := range dists[0] {
		if math.Abs(dists[0][i]-dists[1][i]) > 1e-5 {
			t.Fatalf("pair %d: distance %v in place, %v converted", i, dists[0][i], dists[1][i])
		}
	}
	// The conversion is cached, and Detect runs on it.
	det, err := Detect(d, CheckerSpec{Weights: openAI, Tokenizer: vocab}, KDistanceSpec{Threshold: quantile95}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if !det.Checker.Cached || !strings.Contains(det.CheckerModel, "openai-names.safetensors") {
		t.Errorf("detector's checker %+v, described as %q", det.Checker, det.CheckerModel)
	}
}

func close32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > 1e-5 {
			return false
		}
	}
	return true
}

// TestFilterCheckerPreset: a Filter whose checker has another preset ("small" for the "tiny" victim) pre-trains
// and uses a model of that preset on the same clean pool, whose distances differ from the default checker's,
// and it still catches the poison: dropping the 5% most distant pairs removes far more than 5% of the poison.
func TestFilterCheckerPreset(t *testing.T) {
	if testing.Short() {
		t.Skip("pre-trains two checkers and fine-tunes a model")
	}
	d := loadCheckerData(t)
	quiet := experiment.Options{Quiet: true}
	f, err := Filter(d, CheckerSpec{Preset: "small"}, FilterSpec{Threshold: quantile95}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	_, cfg, err := clip.Load(f.Checker.Path)
	if err != nil {
		t.Fatal(err)
	}
	small, _ := clip.Preset("small")
	if cfg.Name != "small" || cfg.EmbedDim != small.EmbedDim || cfg.VisionLayers != small.VisionLayers || cfg.PatchSize != small.PatchSize {
		t.Errorf("the checker is %+v, not the small preset", cfg)
	}
	if want := "small pre-trained on the clean pool, seed 43"; f.CheckerModel != want {
		t.Errorf("checker described as %q, want %q", f.CheckerModel, want)
	}
	poisoned, _, err := experiment.Poison(d)
	if err != nil {
		t.Fatal(err)
	}
	def, err := CheckerSpec{}.stage(d, quiet)
	if err != nil {
		t.Fatal(err)
	}
	dist, err := pairDistances(d, def.Path, poisoned, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(dist, f.Distances) {
		t.Error("the small checker's distances are the default checker's")
	}
	r := f.Report
	hit, _ := f.Eval.Attack.HitAt(10)
	t.Logf("small checker (%.0fs): γ=%.3f dropped %d/%d, poison %d, recall %v precision %v; filtered model Hit@10 %.3f (%.0fs)",
		f.Checker.Seconds, f.Gamma, r.Dropped, r.Total, r.Poisoned, deref(r.Recall), deref(r.Precision), hit, f.Model.Seconds)
	if rc := r.Recall; rc == nil || *rc < 0.5 {
		t.Errorf("the small checker caught too little poison: recall %v (chance: 0.05)", deref(rc))
	}
}
