package train

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"

	"github.com/mmpoison/mmpoison/models/clip"
)

// randomData builds n pairs of random images and token sequences (end token = highest id at a random position).
func randomData(cfg clip.Config, n int, seed uint64) *Data {
	rng := rand.New(rand.NewPCG(seed, 3))
	d := &Data{}
	size := cfg.ImageSize * cfg.ImageSize * cfg.ImageChannels
	for i := range n {
		img := make([]float32, size)
		for j := range img {
			img[j] = float32(rng.NormFloat64())
		}
		d.Images = append(d.Images, img)
		d.ImageOf = append(d.ImageOf, i)
		toks := make([]int32, cfg.ContextLength)
		end := 2 + rng.IntN(cfg.ContextLength-2)
		toks[0] = int32(cfg.VocabSize - 2)
		for j := 1; j < end; j++ {
			toks[j] = int32(1 + rng.IntN(cfg.VocabSize-3))
		}
		toks[end] = int32(cfg.VocabSize - 1)
		d.Tokens = append(d.Tokens, toks)
	}
	return d
}

var sharedBackend backends.Backend

func benchBackend(b testing.TB) backends.Backend {
	if sharedBackend != nil {
		return sharedBackend
	}
	be, err := simplego.New("parallelism=-1")
	if err != nil {
		b.Fatal(err)
	}
	sharedBackend = be
	return be
}

// BenchmarkTrainStep measures one AdamW training step of a preset at a batch size (pure-Go backend).
func BenchmarkTrainStep(b *testing.B) {
	for _, bc := range []struct {
		preset string
		batch  int
	}{{"tiny", 64}, {"small", 64}} {
		b.Run(fmt.Sprintf("%s/batch=%d", bc.preset, bc.batch), func(b *testing.B) {
			cfg := clip.Presets[bc.preset]
			cfg.VocabSize = 1000
			ctx, err := clip.NewContext(cfg, 1)
			if err != nil {
				b.Fatal(err)
			}
			opts := DefaultOptions()
			opts.BatchSize = bc.batch
			tr, err := New(benchBackend(b), cfg, ctx, opts)
			if err != nil {
				b.Fatal(err)
			}
			data := randomData(cfg, bc.batch, 1)
			if _, err := tr.Fit(data); err != nil { // warm-up: compiles the step.
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				tr.epoch, tr.step = 0, 0
				if _, err := tr.Fit(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
