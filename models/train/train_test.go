package train

import (
	"context"
	"errors"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/backends"

	"github.com/mmpoison/mmpoison/models/clip"
)

func tinyConfig() clip.Config {
	cfg := clip.Presets["tiny"]
	cfg.VocabSize = 50
	cfg.VisionLayers, cfg.TextLayers = 1, 1
	return cfg
}

// fitParams trains a fresh model and returns its losses and final parameters.
func fitParams(t *testing.T, seed uint64, opts Options, data *Data) ([]float64, map[string][]float32) {
	t.Helper()
	return fitOn(t, benchBackend(t), seed, opts, data)
}

// fitOn is fitParams on the backend be; opts.Progress, when set, is called after every step too.
func fitOn(t *testing.T, be backends.Backend, seed uint64, opts Options, data *Data) ([]float64, map[string][]float32) {
	t.Helper()
	cfg := tinyConfig()
	ctx, err := clip.NewContext(cfg, seed)
	if err != nil {
		t.Fatal(err)
	}
	var losses []float64
	hook := opts.Progress
	opts.Progress = func(p Progress) {
		losses = append(losses, p.Loss)
		if hook != nil {
			hook(p)
		}
	}
	tr, err := New(be, cfg, ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Fit(data); err != nil {
		t.Fatal(err)
	}
	ts, err := clip.ParamsToTensors(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	params := map[string][]float32{}
	for _, x := range ts {
		params[x.Name] = x.F32
	}
	return losses, params
}

func smallOptions() Options {
	opts := DefaultOptions()
	opts.BatchSize, opts.Epochs, opts.WarmupSteps = 8, 2, 2
	return opts
}

// TestSameSeedSameNumbers: the same seed gives bit-identical losses and weights; another seed does not.
func TestSameSeedSameNumbers(t *testing.T) {
	data := RandomData(tinyConfig(), 32, 5)
	l1, p1 := fitParams(t, 7, smallOptions(), data)
	l2, p2 := fitParams(t, 7, smallOptions(), data)
	if !slices.Equal(l1, l2) {
		t.Fatalf("same seed, different losses:\n%v\n%v", l1, l2)
	}
	for name, v := range p1 {
		if !slices.Equal(v, p2[name]) {
			t.Fatalf("same seed, parameter %q differs", name)
		}
	}
	opts := smallOptions()
	opts.Seed = 8
	l3, _ := fitParams(t, 7, opts, data)
	if slices.Equal(l1, l3) {
		t.Fatal("a different data-order seed gave identical losses")
	}
}

// TestTrainingLowersLoss: a few epochs on a tiny fixed set must fit it (the loss falls well below its start).
func TestTrainingLowersLoss(t *testing.T) {
	data := RandomData(tinyConfig(), 16, 9)
	opts := smallOptions()
	opts.Epochs, opts.LearningRate = 15, 3e-3
	losses, _ := fitParams(t, 1, opts, data)
	first, last := losses[0], losses[len(losses)-1]
	if !(last < 0.5*first) {
		t.Fatalf("loss went from %.3f to %.3f: training does not learn", first, last)
	}
}

// TestFreezeKeepsTowerFixed: with the image tower frozen, its parameters do not move but the text tower's do.
func TestFreezeKeepsTowerFixed(t *testing.T) {
	data := RandomData(tinyConfig(), 16, 3)
	_, before := fitParams(t, 3, Options{BatchSize: 8, Epochs: 0, LearningRate: 1e-3, Beta1: 0.9, Beta2: 0.98, Epsilon: 1e-6}, data)
	opts := smallOptions()
	opts.Freeze = []string{"visual"}
	_, after := fitParams(t, 3, opts, data)
	for name, v := range before {
		moved := !slices.Equal(v, after[name])
		visual := len(name) > 7 && name[:7] == "visual."
		if visual && moved {
			t.Errorf("frozen image-tower parameter %q changed", name)
		}
		if name == "token_embedding.weight" && !moved {
			t.Errorf("text-tower parameter %q did not change", name)
		}
	}
}

// TestCheckpointResume: training 1 epoch, checkpointing, and resuming for the 2nd gives the same weights as
// training 2 epochs straight.
func TestCheckpointResume(t *testing.T) {
	data := RandomData(tinyConfig(), 32, 11)
	_, straight := fitParams(t, 5, smallOptions(), data)

	path := filepath.Join(t.TempDir(), "ckpt.safetensors")
	cfg := tinyConfig()
	ctx, _ := clip.NewContext(cfg, 5)
	opts := smallOptions()
	opts.Checkpoint = path
	tr, err := New(benchBackend(t), cfg, ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	// Interrupt the run right after the first epoch (steps per epoch = 32/8 = 4).
	stop, cancel := context.WithCancel(context.Background())
	tr.opts.Progress = func(p Progress) {
		if p.Step == 4 {
			cancel()
		}
	}
	if _, err := tr.FitContext(stop, data); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted Fit returned %v, want context.Canceled", err)
	}
	ctx2, _ := clip.NewContext(cfg, 99) // Different init: everything must come from the checkpoint.
	tr2, err := New(benchBackend(t), cfg, ctx2, smallOptions())
	if err != nil {
		t.Fatal(err)
	}
	ok, err := tr2.Resume(path)
	if err != nil || !ok {
		t.Fatalf("Resume = %v, %v", ok, err)
	}
	if _, err := tr2.Fit(data); err != nil {
		t.Fatal(err)
	}
	resumed, err := clip.ParamsToTensors(ctx2, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range resumed {
		if !slices.Equal(x.F32, straight[x.Name]) {
			t.Fatalf("parameter %q after resume differs from an uninterrupted run", x.Name)
		}
	}
	// A checkpoint from other options is refused with a message naming them.
	other := smallOptions()
	other.Seed = 1234
	tr3, _ := New(benchBackend(t), cfg, ctx2, other)
	if _, err := tr3.Resume(path); err == nil {
		t.Fatal("Resume accepted a checkpoint written with another seed")
	}
}

// TestNaNLossIsReported: an absurd learning rate makes the loss non-finite; Fit stops with ErrNaNLoss and leaves
// the checkpoint of the last good epoch intact.
func TestNaNLossIsReported(t *testing.T) {
	data := RandomData(tinyConfig(), 16, 2)
	path := filepath.Join(t.TempDir(), "ckpt.safetensors")
	if err := os.WriteFile(path, []byte("previous checkpoint"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := tinyConfig()
	ctx, _ := clip.NewContext(cfg, 1)
	opts := smallOptions()
	opts.Epochs, opts.LearningRate, opts.WarmupSteps, opts.Checkpoint = 3, 1e30, 0, path
	tr, err := New(benchBackend(t), cfg, ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tr.Fit(data)
	if !errors.Is(err, ErrNaNLoss) {
		t.Fatalf("Fit error = %v, want ErrNaNLoss", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "previous checkpoint" {
		t.Fatalf("checkpoint was overwritten after a NaN loss: %q", got)
	}
}

func TestCosineLR(t *testing.T) {
	cases := []struct {
		step, warmup, total int
		want                float64
	}{
		{0, 10, 110, 0.1}, {9, 10, 110, 1}, {10, 10, 110, 1}, {60, 10, 110, 0.5}, {110, 10, 110, 0}, {500, 10, 110, 0},
	}
	for _, c := range cases {
		if got := CosineLR(c.step, c.warmup, c.total, 1, 0); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("CosineLR(%d, %d, %d) = %g, want %g", c.step, c.warmup, c.total, got, c.want)
		}
	}
}

// Data.View makes an image's view every time a batch draws it: each epoch sees new views, every view comes
// from its own generator of (seed, step, batch position), and the same seed repeats losses and views exactly.
func TestDataView(t *testing.T) {
	base := RandomData(tinyConfig(), 32, 5)
	run := func(seed uint64) ([]float64, map[[2]int]uint64) {
		t.Helper()
		var mu sync.Mutex
		draws := map[[2]int]uint64{} // (image, call number for that image) → the generator's first number
		calls := map[int]int{}
		data := &Data{ImageOf: base.ImageOf, Tokens: base.Tokens, View: func(i int, rng *rand.Rand) ([]float32, error) {
			r := rng.Uint64()
			mu.Lock()
			draws[[2]int{i, calls[i]}] = r
			calls[i]++
			mu.Unlock()
			img := slices.Clone(base.Images[i])
			for j := range img {
				img[j] += float32(r%1000) / 1000 // a view that depends on its draw
			}
			return img, nil
		}}
		opts := smallOptions()
		opts.Seed = seed
		losses, _ := fitParams(t, 7, opts, data)
		return losses, draws
	}
	l1, d1 := run(3)
	if want := 2 * 32; len(d1) != want { // 2 epochs × 32 pairs (4 full batches of 8 each)
		t.Fatalf("%d views, want %d", len(d1), want)
	}
	for i := range 32 {
		if d1[[2]int{i, 0}] == d1[[2]int{i, 1}] {
			t.Errorf("image %d: both epochs drew the same view", i)
		}
	}
	l2, d2 := run(3)
	if !slices.Equal(l1, l2) || !maps.Equal(d1, d2) {
		t.Error("the same seed gave other losses or views")
	}
	l3, _ := run(4)
	if slices.Equal(l1, l3) {
		t.Error("another seed gave the same losses")
	}
	plain, _ := fitParams(t, 7, smallOptions(), base)
	if slices.Equal(plain, l1) {
		t.Error("training with views gave the losses of training without them")
	}

	bad := &Data{ImageOf: base.ImageOf, Tokens: base.Tokens, View: func(i int, _ *rand.Rand) ([]float32, error) {
		return make([]float32, 3), nil
	}}
	tr := newTestTrainer(t, tinyConfig(), smallOptions())
	if _, err := tr.Fit(bad); err == nil || !strings.Contains(err.Error(), "has 3 values") {
		t.Errorf("a view of the wrong size: error %v", err)
	}
}
