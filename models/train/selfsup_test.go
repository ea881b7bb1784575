package train

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX graph-building style.
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/mmpoison/mmpoison/models/clip"
)

// swapTwo is a minimal caption augmentation for tests: it swaps two word tokens (between start and end).
func swapTwo(tokens []int32, rng *rand.Rand) []int32 {
	out := slices.Clone(tokens)
	end := int(slices.Index(out, slices.Max(out)))
	if end > 2 {
		i, j := 1+rng.IntN(end-1), 1+rng.IntN(end-1)
		out[i], out[j] = out[j], out[i]
	}
	return out
}

func selfSupOptions(mm, um float64) Options {
	opts := smallOptions()
	opts.SelfSupervised = &SelfSupervised{MultimodalWeight: mm, UnimodalWeight: um,
		AugmentImage: DefaultImageAugment().Func(tinyConfig()), AugmentText: swapTwo}
	return opts
}

// TestSelfSupervisedDeterministic: the CleanCLIP objective is seeded like the default one (same seed, same
// weights bit for bit), its loss is finite and falls, and it moves the weights differently from the CLIP loss.
func TestSelfSupervisedDeterministic(t *testing.T) {
	data := RandomData(tinyConfig(), 32, 5)
	l1, p1 := fitParams(t, 7, selfSupOptions(1, 1), data)
	l2, p2 := fitParams(t, 7, selfSupOptions(1, 1), data)
	if !slices.Equal(l1, l2) {
		t.Fatalf("same seed, different self-supervised losses:\n%v\n%v", l1, l2)
	}
	for name, v := range p1 {
		if !slices.Equal(v, p2[name]) {
			t.Fatalf("same seed, parameter %q differs", name)
		}
	}
	for _, l := range l1 {
		if math.IsNaN(l) || math.IsInf(l, 0) {
			t.Fatalf("non-finite loss %v", l)
		}
	}
	_, plain := fitParams(t, 7, smallOptions(), data)
	if slices.Equal(plain["visual.proj"], p1["visual.proj"]) {
		t.Fatal("the self-supervised objective trained the same weights as the CLIP loss")
	}
}

// TestSelfSupervisedLearns: on a tiny fixed set, a few epochs of the CleanCLIP objective lower its loss well
// below its start.
func TestSelfSupervisedLearns(t *testing.T) {
	if testing.Short() {
		t.Skip("trains 15 epochs")
	}
	data := RandomData(tinyConfig(), 16, 9)
	opts := selfSupOptions(1, 1)
	opts.Epochs, opts.LearningRate = 15, 3e-3
	losses, _ := fitParams(t, 1, opts, data)
	if first, last := losses[0], losses[len(losses)-1]; !(last < 0.6*first) {
		t.Fatalf("loss went from %.3f to %.3f", first, last)
	}
}

// TestSelfSupervisedMultimodalOnlyMatchesCLIP: with λ₂ = 0 and λ₁ = 1 the first step's loss is the CLIP loss of
// the same batch (the views are computed but weigh nothing); λ₁ = 2 doubles it.
func TestSelfSupervisedMultimodalOnlyMatchesCLIP(t *testing.T) {
	data := RandomData(tinyConfig(), 16, 4)
	first := func(opts Options) float64 {
		opts.Epochs = 1
		l, _ := fitParams(t, 3, opts, data)
		return l[0]
	}
	plain := first(smallOptions())
	for _, c := range []struct{ mm, factor float64 }{{1, 1}, {2, 2}} {
		if got := first(selfSupOptions(c.mm, 0)); math.Abs(got-c.factor*plain) > 1e-4*c.factor*plain {
			t.Errorf("λ₁ = %v, λ₂ = 0: first loss %.6f, want %.6f", c.mm, got, c.factor*plain)
		}
	}
}

// TestInModalityLoss checks the in-modality InfoNCE on logits with a known answer: uniform logits give ln B,
// a strongly diagonal matrix gives about 0, and a row preferring another view by Δ adds ln(1 + e^Δ) / B.
func TestInModalityLoss(t *testing.T) {
	eval := func(logits [][]float32) float64 {
		e := MustNewExec(benchBackend(t), func(l *Node) *Node { return InModalityLoss(l) })
		return float64(tensors.ToScalar[float32](e.MustExec(tensors.FromValue(logits))[0]))
	}
	cases := []struct {
		name   string
		logits [][]float32
		want   float64
	}{
		{"uniform", [][]float32{{0, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 0}}, math.Log(4)},
		{"diagonal", [][]float32{{50, 0, 0}, {0, 50, 0}, {0, 0, 50}}, 0},
		// Row 0 prefers view 1 by 2: its loss is ln(1 + e²); row 1 is sure of its own view (loss ≈ 0).
		{"one wrong", [][]float32{{0, 2}, {-100, 100}}, math.Log(1+math.Exp(2)) / 2},
	}
	for _, c := range cases {
		if got := eval(c.logits); math.Abs(got-c.want) > 1e-4 {
			t.Errorf("%s: loss %.6f, want %.6f", c.name, got, c.want)
		}
	}
}

// TestImageAugment: a whole-image "crop" with a certain flip and no noise mirrors the image exactly; the default
// views are seeded, change the image, and keep its length.
func TestImageAugment(t *testing.T) {
	cfg := tinyConfig()
	n := cfg.ImageSize
	img := make([]float32, n*n)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range img { // Values of real 8-bit pixels, as clip.Preprocess makes them.
		img[i] = float32((float64(rng.IntN(256))/255 - cfg.ImageMean[0]) / cfg.ImageStd[0])
	}
	orig := slices.Clone(img)
	mirror := ImageAugment{Scale: [2]float64{1, 1}, Ratio: [2]float64{1, 1}, FlipProb: 1}.Func(cfg)
	got := mirror(img, rand.New(rand.NewPCG(3, 4)))
	for y := range n {
		for x := range n {
			if d := math.Abs(float64(got[y*n+x] - img[y*n+n-1-x])); d > 1e-5 {
				t.Fatalf("pixel (%d, %d): %v, want the mirrored %v", y, x, got[y*n+x], img[y*n+n-1-x])
			}
		}
	}
	def := DefaultImageAugment().Func(cfg)
	a := def(img, rand.New(rand.NewPCG(5, 6)))
	b := def(img, rand.New(rand.NewPCG(5, 6)))
	c := def(img, rand.New(rand.NewPCG(5, 7)))
	if !slices.Equal(a, b) || slices.Equal(a, c) || slices.Equal(a, img) || len(a) != len(img) {
		t.Fatal("default image views are not seeded, not random, or the wrong size")
	}
	if !slices.Equal(img, orig) {
		t.Fatal("the augmentation modified its input")
	}
}

// TestSelfSupervisedValidation: missing hooks and bad weights are refused by New with a message naming them.
func TestSelfSupervisedValidation(t *testing.T) {
	cfg := tinyConfig()
	ctx, err := clip.NewContext(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	aug := DefaultImageAugment().Func(cfg)
	cases := []struct {
		name string
		s    *SelfSupervised
		want string
	}{
		{"no hooks", &SelfSupervised{MultimodalWeight: 1, UnimodalWeight: 1}, "AugmentImage"},
		{"negative", &SelfSupervised{MultimodalWeight: -1, UnimodalWeight: 1, AugmentImage: aug, AugmentText: swapTwo}, "λ₁ = -1"},
		{"both zero", &SelfSupervised{AugmentImage: aug, AugmentText: swapTwo}, "not both 0"},
		{"NaN", &SelfSupervised{MultimodalWeight: math.NaN(), UnimodalWeight: 1, AugmentImage: aug, AugmentText: swapTwo}, "NaN"},
	}
	for _, c := range cases {
		opts := smallOptions()
		opts.SelfSupervised = c.s
		_, err := New(benchBackend(t), cfg, ctx, opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %q", c.name, err, c.want)
		}
	}
	if s := CleanCLIP(aug, swapTwo); s.MultimodalWeight != 1 || s.UnimodalWeight != 1 {
		t.Errorf("CleanCLIP weights %v, %v, want 1, 1", s.MultimodalWeight, s.UnimodalWeight)
	}
}
