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
	"github.com/mmpoison/mmpoison/models/tokenizer"
	"github.com/mmpoison/mmpoison/models/weights"
	"github.com/mmpoison/mmpoison/poisoning/imageprep"
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
	// A logit scale above ln(100): the logits use exp(5) unclamped, as OpenAI's CLIP.forward does.
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

	// The logits are exp(5) ≈ 148.4 times the cosine similarities of the features.
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
			want := math.Exp(5) * cosine(imageFeatures[i], textFeatures[j])
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
		img, err := imageprep.CLIPFile(path, cfg.ImageSize)
		if err != nil {
			t.Fatal(err)
		}
		x, err := clip.Preprocess(cfg, img)
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

// referenceDir holds tiny random CLIP models (a ViT and a ModifiedResNet) with the outputs that OpenAI's own
// clip/model.py computed for them; its README.md says how they were made.
const referenceDir = "testdata/clipref"

// TestEmbedMatchesOpenAIReference runs the embed command on the reference models and checks its outputs against
// OpenAI's: max|ours − ref| ≤ 1e-4·max(1, max|ref|) for image features, text features and logits. The ViT also
// runs under HuggingFace names (converted here as transformers' conversion script maps them), and the ResNet
// once with OpenAI's default head count, which must not match: the comparison can fail.
func TestEmbedMatchesOpenAIReference(t *testing.T) {
	if _, set := os.LookupEnv(backends.ConfigEnvVar); !set {
		t.Setenv(backends.ConfigEnvVar, "go")
	}
	ref := func(name string) string { return filepath.Join(referenceDir, name) }
	vocab, captionsPath := ref("vocab.txt"), ref("captions.txt")
	images := []string{ref("image0.png"), ref("image1.png"), ref("image2.png")}

	// The tokenizer gives the ids of OpenAI's clip.tokenize on the same vocabulary.
	data, err := os.ReadFile(captionsPath)
	if err != nil {
		t.Fatal(err)
	}
	wantTokens, shape, err := npy.Read(ref("tokens.npy"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.LoadOpenAIVocab(vocab, shape[1])
	if err != nil {
		t.Fatal(err)
	}
	captions := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	for i, ids := range tokenizer.EncodeAll(tok, captions) {
		for j, id := range ids {
			if float32(id) != wantTokens[i*shape[1]+j] {
				t.Fatalf("caption %q: token ids %v, OpenAI's are %v", captions[i], ids, wantTokens[i*shape[1]:(i+1)*shape[1]])
			}
		}
	}

	cases := []struct {
		name, model string
		args        []string
		huggingFace bool
		// openCLIPConfig, when set, is written to a file given as --config.
		openCLIPConfig string
		mismatch       bool // The image features must differ from the reference.
	}{
		{name: "ViT, heads from metadata", model: "vit"},
		{name: "ViT, HuggingFace names", model: "vit", huggingFace: true},
		{name: "ResNet, heads from flags", model: "rn", args: []string{"--vision-heads", "4", "--text-heads", "2"}},
		{name: "ResNet, heads from an open_clip config", model: "rn", openCLIPConfig: rnOpenCLIPConfig},
		{name: "ResNet, OpenAI's head rule", model: "rn", args: []string{"--text-heads", "2"}, mismatch: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			weightsPath := ref(c.model + ".safetensors")
			if c.huggingFace {
				weightsPath = writeHuggingFace(t, weightsPath, 4, 2)
			}
			out := t.TempDir()
			args := append([]string{"--weights", weightsPath, "--tokenizer", vocab, "--captions", captionsPath, "--out", out}, c.args...)
			if c.openCLIPConfig != "" {
				config := filepath.Join(t.TempDir(), "open_clip_config.json")
				if err := os.WriteFile(config, []byte(c.openCLIPConfig), 0o644); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--config", config)
			}
			if err := embedCommand(append(args, images...)); err != nil {
				t.Fatal(err)
			}
			for _, what := range []string{"image_features", "text_features", "logits"} {
				want, wantShape, err := npy.Read(ref(c.model + "_" + what + ".npy"))
				if err != nil {
					t.Fatal(err)
				}
				got, gotShape, err := npy.Read(filepath.Join(out, what+".npy"))
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(gotShape, wantShape) {
					t.Fatalf("%s has shape %v, OpenAI's %v", what, gotShape, wantShape)
				}
				var diff, scale float64
				for i := range want {
					diff = math.Max(diff, math.Abs(float64(got[i]-want[i])))
					scale = math.Max(scale, math.Abs(float64(want[i])))
				}
				tol := 1e-4 * math.Max(1, scale)
				t.Logf("%s: max|ours − OpenAI| = %.3g (tolerance %.3g)", what, diff, tol)
				switch {
				case c.mismatch && what == "image_features" && diff <= tol:
					t.Errorf("%s matches OpenAI's (%.3g) with the wrong head count", what, diff)
				case !c.mismatch && diff > tol:
					t.Errorf("%s: max|ours − OpenAI| = %.3g > %.3g", what, diff, tol)
				}
			}
		})
	}
}

// rnOpenCLIPConfig describes the reference ResNet as open_clip_config.json would (README.md: vision layers
// (2, 1, 2, 1), width 2, 4 attention-pool heads = 32·2/head_width 16; text width 16, 2 heads).
const rnOpenCLIPConfig = `{"model_cfg": {"embed_dim": 16, "quick_gelu": true,
  "vision_cfg": {"image_size": 64, "layers": [2, 1, 2, 1], "width": 2, "head_width": 16, "patch_size": null},
  "text_cfg": {"context_length": 24, "vocab_size": 530, "width": 16, "heads": 2, "layers": 1}},
 "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]}}`

// writeHuggingFace writes the OpenAI-named ViT checkpoint at path with HuggingFace CLIPModel names and layouts
// (weights.SaveHuggingFace: in_proj chunked into q, k and v, the projections transposed), with a config.json
// beside it, and returns the new file's path.
func writeHuggingFace(t *testing.T, path string, visionHeads, textHeads int) string {
	t.Helper()
	ctx, cfg, err := weights.LoadOpenAI(path, weights.Hints{VisionHeads: visionHeads, TextHeads: textHeads})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := weights.SaveHuggingFace(dir, ctx, cfg); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "model.safetensors")
}
