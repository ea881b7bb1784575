package train

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// TestOrder32 checks that Order32 is Order element for element.
func TestOrder32(t *testing.T) {
	for _, n := range []int{0, 1, 7, 1000} {
		for epoch := range 3 {
			want := Order(42, epoch, n)
			got := Order32(42, epoch, n)
			if len(got) != len(want) {
				t.Fatalf("n=%d: %d indices, want %d", n, len(got), len(want))
			}
			for i := range want {
				if int(got[i]) != want[i] {
					t.Fatalf("n=%d epoch %d: index %d is %d, Order gives %d", n, epoch, i, got[i], want[i])
				}
			}
		}
	}
}

// pixelSource is a dataset.PairSource of 28×28 grayscale pictures and captions "w<i>" that counts its reads
// and can fail on one pair.
type pixelSource struct {
	pics   []dataset.Image
	mu     sync.Mutex
	reads  int
	failAt int // -1: never
}

func newPixelSource(n int, seed uint64) *pixelSource {
	rng := rand.New(rand.NewPCG(seed, 1))
	s := &pixelSource{failAt: -1}
	for range n {
		img := dataset.Image{Height: 28, Width: 28, Channels: 1, Pix: make([]uint8, 28*28)}
		for j := range img.Pix {
			img.Pix[j] = uint8(rng.IntN(256))
		}
		s.pics = append(s.pics, img)
	}
	return s
}

func (s *pixelSource) NumPairs() int { return len(s.pics) }

func (s *pixelSource) Pair(i int) (dataset.Image, string, error) {
	s.mu.Lock()
	s.reads++
	s.mu.Unlock()
	if i == s.failAt {
		return dataset.Image{}, "", fmt.Errorf("picture %d is corrupt", i)
	}
	return s.pics[i], fmt.Sprintf("w%d", i%7), nil
}

// encode is a toy tokenizer for tinyConfig: start token, one word id, end token, padding.
func encode(caption string) []int32 {
	toks := make([]int32, tinyConfig().ContextLength)
	toks[0], toks[1], toks[2] = 48, int32(1+caption[1]-'0'), 49
	return toks
}

// memoryData is the in-memory Data equal to streaming s with encode and no transform.
func memoryData(t *testing.T, s *pixelSource) *Data {
	d := &Data{}
	for i := range s.NumPairs() {
		img, caption, _ := s.Pair(i)
		pre, err := clip.Preprocess(tinyConfig(), img)
		if err != nil {
			t.Fatal(err)
		}
		d.Images, d.ImageOf, d.Tokens = append(d.Images, pre), append(d.ImageOf, i), append(d.Tokens, encode(caption))
	}
	return d
}

// TestStreamEqualsMemory: training from a Stream gives the losses and weights of training on the same pairs
// held in memory, whatever the prefetch depth and workers; a Transform gets seeded generators (the same seed
// repeats it exactly); the feed reads at most Prefetch + 2 batches ahead of the step; a read error stops
// training naming the pair.
func TestStreamEqualsMemory(t *testing.T) {
	src := newPixelSource(32, 3)
	mem, memParams := fitParams(t, 7, smallOptions(), memoryData(t, src))
	for _, c := range []struct{ prefetch, workers int }{{0, 0}, {1, 1}, {5, 3}} {
		src.reads = 0
		ahead := 0
		opts := smallOptions()
		data := &Data{Stream: &Stream{Pairs: src, Encode: encode}, Prefetch: c.prefetch, Workers: c.workers}
		opts.Progress = func(p Progress) {
			src.mu.Lock()
			ahead = max(ahead, src.reads-p.Step*opts.BatchSize)
			src.mu.Unlock()
		}
		losses, params := fitParams(t, 7, opts, data)
		if !slices.Equal(losses, mem) {
			t.Errorf("prefetch %d, workers %d: streamed losses %v, in memory %v", c.prefetch, c.workers, losses, mem)
		}
		for name, v := range memParams {
			if !slices.Equal(v, params[name]) {
				t.Fatalf("prefetch %d: parameter %q differs from training in memory", c.prefetch, name)
			}
		}
		prefetch := c.prefetch
		if prefetch == 0 {
			prefetch = DefaultPrefetch
		}
		if limit := (prefetch + 2) * opts.BatchSize; ahead > limit {
			t.Errorf("prefetch %d: the feed read %d pairs ahead of the step, more than %d", c.prefetch, ahead, limit)
		}
	}
	jitter := func(img dataset.Image, rng *rand.Rand) (dataset.Image, error) {
		out := img
		out.Pix = slices.Clone(img.Pix)
		out.Pix[0] = uint8(rng.IntN(256))
		return out, nil
	}
	data := &Data{Stream: &Stream{Pairs: src, Encode: encode, Transform: jitter}}
	l1, _ := fitParams(t, 7, smallOptions(), data)
	l2, _ := fitParams(t, 7, smallOptions(), data)
	if !slices.Equal(l1, l2) || slices.Equal(l1, mem) {
		t.Errorf("a seeded transform: losses %v then %v (without it %v)", l1, l2, mem)
	}
	src.failAt = 5
	cfg := tinyConfig()
	ctx, _ := clip.NewContext(cfg, 1)
	tr, err := New(benchBackend(t), cfg, ctx, smallOptions())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Fit(&Data{Stream: &Stream{Pairs: src, Encode: encode}}); err == nil || !strings.Contains(err.Error(), "pair 5: picture 5 is corrupt") {
		t.Errorf("a corrupt picture: error %v", err)
	}
}

// TestResumeMidEpoch: a run stopped or killed after k steps (4 steps per epoch, 2 epochs) and resumed from its
// checkpoint goes on with the losses, epoch means and weights of the uninterrupted run. Stopping writes the
// checkpoint of the position reached; a kill loses the steps after the last CheckpointEvery checkpoint, which
// the resumed run trains again.
func TestResumeMidEpoch(t *testing.T) {
	src := newPixelSource(32, 4)
	data := &Data{Stream: &Stream{Pairs: src, Encode: encode}}
	cfg := tinyConfig()
	straight, straightParams := fitParams(t, 5, smallOptions(), data)
	_, straightHist := fitHistory(t, smallOptions(), data)
	cases := []struct {
		name      string
		k         int  // steps before the interruption
		kill      bool // killed (the on-disk checkpoint is CheckpointEvery's) rather than stopped
		resumesAt int  // the step the resumed run starts after
	}{
		{"stop after 1", 1, false, 1}, {"stop after 3", 3, false, 3}, {"stop at the epoch's end", 4, false, 4},
		{"stop after 6", 6, false, 6}, {"kill after 3", 3, true, 2}, {"kill after 7", 7, true, 6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path, killed := filepath.Join(dir, "ckpt.safetensors"), filepath.Join(dir, "killed.safetensors")
			ctx, _ := clip.NewContext(cfg, 5)
			opts := smallOptions()
			opts.Checkpoint, opts.CheckpointEvery = path, 2
			stop, cancel := context.WithCancel(context.Background())
			defer cancel()
			opts.Progress = func(p Progress) {
				if p.Step == c.k {
					if c.kill { // What is on disk when the process dies now.
						copyFile(t, path, killed)
					}
					cancel()
				}
			}
			tr, err := New(benchBackend(t), cfg, ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tr.FitContext(stop, data); !errors.Is(err, context.Canceled) {
				t.Fatalf("interrupted Fit returned %v", err)
			}
			if c.kill {
				path = killed
			}
			ctx2, _ := clip.NewContext(cfg, 99) // Everything must come from the checkpoint.
			var losses []float64
			opts2 := smallOptions()
			opts2.Progress = func(p Progress) { losses = append(losses, p.Loss) }
			tr2, err := New(benchBackend(t), cfg, ctx2, opts2)
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := tr2.Resume(path); !ok || err != nil {
				t.Fatalf("Resume = %v, %v", ok, err)
			}
			hist, err := tr2.Fit(data)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(losses, straight[c.resumesAt:]) {
				t.Errorf("resumed losses %v, want %v", losses, straight[c.resumesAt:])
			}
			if want := straightHist[len(straightHist)-len(hist):]; !sameMeans(hist, want) {
				t.Errorf("resumed epochs %+v, want the means of %+v", hist, want)
			}
			ts, _ := clip.ParamsToTensors(ctx2, cfg)
			for _, x := range ts {
				if !slices.Equal(x.F32, straightParams[x.Name]) {
					t.Fatalf("parameter %q after resume differs from an uninterrupted run", x.Name)
				}
			}
		})
	}
}

// fitHistory trains a fresh model (seed 5) and returns its epoch statistics.
func fitHistory(t *testing.T, opts Options, data *Data) (*Trainer, []EpochStats) {
	t.Helper()
	cfg := tinyConfig()
	ctx, _ := clip.NewContext(cfg, 5)
	tr, err := New(benchBackend(t), cfg, ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	hist, err := tr.Fit(data)
	if err != nil {
		t.Fatal(err)
	}
	return tr, hist
}

func sameMeans(a, b []EpochStats) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Epoch != b[i].Epoch || a[i].MeanLoss != b[i].MeanLoss || a[i].LogitScale != b[i].LogitScale {
			return false
		}
	}
	return true
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
