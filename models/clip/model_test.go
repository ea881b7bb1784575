package clip

import (
	"math"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/mmpoison/mmpoison/models/backend"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// testBackend is the backend the environment chooses (models/backend's rule).
var testBackend = sync.OnceValue(func() backends.Backend {
	b, err := backend.Default()
	if err != nil {
		panic(err)
	}
	return b
})

func testModel(t *testing.T) (Config, *context.Context) {
	t.Helper()
	cfg := Presets["tiny"]
	cfg.VocabSize = 30
	ctx, err := NewContext(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, ctx
}

func maxAbsDiff(a, b []float32) float64 {
	var m float64
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i]-b[i])))
	}
	return m
}

// TestTextFeatureIsCausalAndAtEOT: the text feature is read at the end token (the highest id), and the causal
// mask keeps tokens after it from mattering, while a change before it does matter.
func TestTextFeatureIsCausalAndAtEOT(t *testing.T) {
	cfg, ctx := testModel(t)
	emb, err := NewEmbedder(testBackend(), ctx, cfg, 4)
	if err != nil {
		t.Fatal(err)
	}
	eot := int32(cfg.VocabSize - 1)
	base := []int32{28, 5, 6, 7, eot, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	after := append([]int32(nil), base...)
	after[6], after[9] = 11, 12 // Changed after the end token.
	before := append([]int32(nil), base...)
	before[2] = 13 // Changed before the end token.
	out, err := emb.Texts([][]int32{base, after, before})
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(out[0], out[1]); d > 1e-5 {
		t.Errorf("tokens after the end token changed the feature by %g", d)
	}
	if d := maxAbsDiff(out[0], out[2]); d < 1e-4 {
		t.Errorf("a token before the end token did not change the feature (diff %g)", d)
	}
	if len(out[0]) != cfg.EmbedDim {
		t.Errorf("feature size %d, want %d", len(out[0]), cfg.EmbedDim)
	}
}

// TestImageFeaturesIndependentOfBatch: an image's feature does not depend on the other images of its batch or on
// padding, and a different image gives a different feature.
func TestImageFeaturesIndependentOfBatch(t *testing.T) {
	cfg, ctx := testModel(t)
	emb, err := NewEmbedder(testBackend(), ctx, cfg, 4)
	if err != nil {
		t.Fatal(err)
	}
	img := func(v uint8) []float32 {
		im := dataset.Image{Height: 28, Width: 28, Channels: 1, Pix: make([]uint8, 28*28)}
		for i := range im.Pix {
			im.Pix[i] = uint8((int(v) + i*7) % 256)
		}
		x, err := Preprocess(cfg, im)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	a, b, c := img(1), img(90), img(200)
	one, err := emb.Images([][]float32{a})
	if err != nil {
		t.Fatal(err)
	}
	three, err := emb.Images([][]float32{b, c, a})
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(one[0], three[2]); d > 1e-5 {
		t.Errorf("batch neighbours changed an image's feature by %g", d)
	}
	if d := maxAbsDiff(three[0], three[1]); d < 1e-4 {
		t.Errorf("different images gave the same feature")
	}
}

// TestPreprocessNormalises checks CLIP's pixel normalisation and the size check.
func TestPreprocessNormalises(t *testing.T) {
	cfg := Presets["tiny"]
	im := dataset.Image{Height: 28, Width: 28, Channels: 1, Pix: make([]uint8, 28*28)}
	im.Pix[0] = 255
	x, err := Preprocess(cfg, im)
	if err != nil {
		t.Fatal(err)
	}
	want0 := (1 - cfg.ImageMean[0]) / cfg.ImageStd[0]
	want1 := (0 - cfg.ImageMean[0]) / cfg.ImageStd[0]
	if math.Abs(float64(x[0])-want0) > 1e-6 || math.Abs(float64(x[1])-want1) > 1e-6 {
		t.Errorf("Preprocess = %v, %v; want %v, %v", x[0], x[1], want0, want1)
	}
	if _, err := Preprocess(cfg, dataset.Image{Height: 32, Width: 32, Channels: 1, Pix: make([]uint8, 1024)}); err == nil {
		t.Error("a 32×32 image was accepted by a 28×28 model")
	}
}

func TestPresetAndValidate(t *testing.T) {
	if _, err := Preset("ViT-H/14"); err == nil {
		t.Error("unknown preset accepted")
	}
	cfg := Presets["ViT-B/32"]
	if err := cfg.Validate(); err != nil {
		t.Errorf("ViT-B/32: %v", err)
	}
	if cfg.NumPatches() != 49 {
		t.Errorf("ViT-B/32 has %d patches, want 49", cfg.NumPatches())
	}
	bad := Presets["tiny"]
	bad.VocabSize, bad.PatchSize = 10, 5
	if err := bad.Validate(); err == nil {
		t.Error("image size 28 with patch 5 accepted")
	}
}

// TestPreprocessValues compares Preprocess with the plain formula, float32((v/255 − mean)/std) in float64 (the
// channels' average for an RGB image given to a grayscale model), value by value, for RGB and grayscale images
// and models.
func TestPreprocessValues(t *testing.T) {
	rgb, gray := Presets["ViT-B/32"], Presets["tiny"]
	gray.ImageSize = rgb.ImageSize
	n := rgb.ImageSize
	for _, tc := range []struct {
		name     string
		cfg      Config
		channels int
	}{{"RGB to RGB", rgb, 3}, {"gray to RGB", rgb, 1}, {"RGB to gray", gray, 3}, {"gray to gray", gray, 1}} {
		img := dataset.Image{Height: n, Width: n, Channels: tc.channels, Pix: make([]uint8, n*n*tc.channels)}
		for i := range img.Pix {
			img.Pix[i] = uint8(i * 31 % 256)
		}
		got, err := Preprocess(tc.cfg, img)
		if err != nil {
			t.Fatal(err)
		}
		c := tc.cfg.ImageChannels
		if len(got) != n*n*c {
			t.Fatalf("%s: %d values, want %d", tc.name, len(got), n*n*c)
		}
		for i := range n * n {
			for ch := range c {
				var v float64
				if tc.channels == 1 {
					v = float64(img.Pix[i])
				} else if c == 1 {
					v = (float64(img.Pix[3*i]) + float64(img.Pix[3*i+1]) + float64(img.Pix[3*i+2])) / 3
				} else {
					v = float64(img.Pix[3*i+ch])
				}
				if want := float32((v/255 - tc.cfg.ImageMean[ch]) / tc.cfg.ImageStd[ch]); got[i*c+ch] != want {
					t.Fatalf("%s: value %d of channel %d is %v, want %v", tc.name, i, ch, got[i*c+ch], want)
				}
			}
		}
	}
}
