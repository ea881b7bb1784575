package main

import (
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/mmpoison/mmpoison/evalkit/npy"
	"github.com/mmpoison/mmpoison/models/backend"
	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/imageprep"
	"github.com/mmpoison/mmpoison/models/tokenizer"
	"github.com/mmpoison/mmpoison/models/weights"
)

// tinyMerges is a vocabulary in OpenAI's format (as in models/tokenizer's ExampleBPE): 512 byte tokens, five
// merges, start and end: 519 ids.
const tinyMerges = "#version: 0.2\nh e\nl l\nl o</w>\nhe ll\nhell o</w>\n"

func writePNG(t *testing.T, path string, w, h int, seed int) {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, color.NRGBA{uint8(x*7 + seed), uint8(y*5 + 3*seed), uint8((x*y + seed) % 256), 255})
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

func TestEmbed(t *testing.T) {
	if _, set := os.LookupEnv(backends.ConfigEnvVar); !set {
		t.Setenv(backends.ConfigEnvVar, "go") // The pure-Go backend: no plugin download in tests.
	}
	dir := t.TempDir()
	cfg := clip.Config{Name: "test", EmbedDim: 16, ImageSize: 32, ImageChannels: 3, PatchSize: 8,
		VisionWidth: 32, VisionLayers: 1, VisionHeads: 2,
		ContextLength: 8, VocabSize: 519, TextWidth: 32, TextLayers: 1, TextHeads: 2,
		ImageMean: clip.OpenAIMean, ImageStd: clip.OpenAIStd}
	ctx, err := clip.NewContext(cfg, 5)
	if err != nil {
		t.Fatal(err)
	}
	// A logit scale above ln(100), so the clamp matters.
	pctx := ctx.In(clip.Scope)
	if err := pctx.GetVariableByScopeAndName(pctx.Scope(), "logit_scale").SetValue(tensors.FromFlatDataAndDimensions([]float32{5})); err != nil {
		t.Fatal(err)
	}
	weightsPath := filepath.Join(dir, "model.safetensors")
	if err := weights.SaveOpenAI(weightsPath, ctx, cfg); err != nil {
		t.Fatal(err)
	}
	vocab := filepath.Join(dir, "vocab.txt")
	captionsPath := filepath.Join(dir, "captions.txt")
	imgA, imgB := filepath.Join(dir, "a.png"), filepath.Join(dir, "b.png")
	writePNG(t, imgA, 48, 40, 1) // Resized and cropped.
	writePNG(t, imgB, 32, 32, 2) // Already at the model's size.
	captions := []string{"hello", "hello, hello!", "hell"}
	for path, content := range map[string]string{vocab: tinyMerges, captionsPath: strings.Join(captions, "\n") + "\n"} {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "out")
	err = embedCommand([]string{"--weights", weightsPath, "--tokenizer", vocab, "--captions", captionsPath,
		"--out", out, "--images", imgA, imgB})
	if err != nil {
		t.Fatal(err)
	}

	read := func(name string, rows, cols int) [][]float32 {
		data, shape, err := npy.Read(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(shape, []int{rows, cols}) {
			t.Fatalf("%s has shape %v, want [%d %d]", name, shape, rows, cols)
		}
		m := make([][]float32, rows)
		for i := range m {
			m[i] = data[i*cols : (i+1)*cols]
		}
		return m
	}
	imageFeatures := read("image_features.npy", 2, cfg.EmbedDim)
	textFeatures := read("text_features.npy", 3, cfg.EmbedDim)
	logits := read("logits.npy", 2, 3)

	// The logits are min(exp(5), 100) = 100 times the cosine similarities of the features.
	cosine := func(a, b []float32) float64 {
		var ab, aa, bb float64
		for i := range a {
			ab += float64(a[i]) * float64(b[i])
			aa += float64(a[i]) * float64(a[i])
			bb += float64(b[i]) * float64(b[i])
		}
		return ab / math.Sqrt(aa*bb)
	}
	for i := range imageFeatures {
		for j := range textFeatures {
			want := 100 * cosine(imageFeatures[i], textFeatures[j])
			if d := math.Abs(float64(logits[i][j]) - want); d > 1e-5*math.Max(1, math.Abs(want)) {
				t.Errorf("logits[%d][%d] = %g, want %g", i, j, logits[i][j], want)
			}
		}
	}

	// The features are clip.Embedder's for the same preprocessed images and tokenised captions.
	b, err := backend.Default()
	if err != nil {
		t.Fatal(err)
	}
	emb, err := clip.NewEmbedder(b, ctx, cfg, 4)
	if err != nil {
		t.Fatal(err)
	}
	var pixels [][]float32
	for _, path := range []string{imgA, imgB} {
		img, err := imageprep.LoadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		x, err := clip.Preprocess(cfg, imageprep.CLIP(img, cfg.ImageSize))
		if err != nil {
			t.Fatal(err)
		}
		pixels = append(pixels, x)
	}
	wantImages, err := emb.Images(pixels)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.ReadOpenAIVocab(strings.NewReader(tinyMerges), cfg.ContextLength)
	if err != nil {
		t.Fatal(err)
	}
	wantTexts, err := emb.Texts(tokenizer.EncodeAll(tok, captions))
	if err != nil {
		t.Fatal(err)
	}
	for name, pair := range map[string][2][][]float32{"image": {imageFeatures, wantImages}, "text": {textFeatures, wantTexts}} {
		for i := range pair[0] {
			for k := range pair[0][i] {
				if d := math.Abs(float64(pair[0][i][k] - pair[1][i][k])); d > 1e-5 {
					t.Fatalf("%s feature %d[%d] = %g, clip.Embedder gives %g", name, i, k, pair[0][i][k], pair[1][i][k])
				}
			}
		}
	}
	if slices.Equal(imageFeatures[0], imageFeatures[1]) {
		t.Error("two different images have the same feature")
	}
}

func TestEmbedErrors(t *testing.T) {
	dir := t.TempDir()
	weightsPath := filepath.Join(dir, "model.safetensors")
	captions := filepath.Join(dir, "captions.txt")
	corrupt := filepath.Join(dir, "corrupt.png")
	_ = os.WriteFile(captions, []byte("hello\n"), 0o644)
	_ = os.WriteFile(corrupt, []byte("\x89PNG\r\n\x1a\nnot really"), 0o644)
	cfg := clip.Config{Name: "test", EmbedDim: 8, ImageSize: 16, ImageChannels: 3, PatchSize: 8,
		VisionWidth: 16, VisionLayers: 1, VisionHeads: 2, ContextLength: 8, VocabSize: 519,
		TextWidth: 16, TextLayers: 1, TextHeads: 2, ImageMean: clip.OpenAIMean, ImageStd: clip.OpenAIStd}
	ctx, err := clip.NewContext(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := weights.SaveOpenAI(weightsPath, ctx, cfg); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	base := []string{"--weights", weightsPath, "--captions", captions, "--out", out}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"no tokenizer", append(slices.Clone(base), corrupt), []string{"--tokenizer", weightsPath}},
		{"flag after image", []string{"--weights", weightsPath, corrupt, "--out", out}, []string{`"--out"`, "before"}},
		{"no images", base, []string{"no images"}},
		{"missing captions", []string{"--weights", weightsPath, "--captions", filepath.Join(dir, "none.txt"), "--out", out, corrupt},
			[]string{"none.txt"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := embedCommand(tc.args)
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
	// With the tokenizer found beside the weights, the corrupt image is named.
	if err := os.WriteFile(filepath.Join(dir, "bpe_simple_vocab_16e6.txt.gz"), []byte(tinyMerges), 0o644); err != nil {
		t.Fatal(err)
	}
	err = embedCommand(append(slices.Clone(base), corrupt))
	if err == nil || !strings.Contains(err.Error(), corrupt) {
		t.Errorf("corrupt image: %v", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("a failed run created the output folder")
	}
}
