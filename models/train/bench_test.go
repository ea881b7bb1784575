package train

import (
	"fmt"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"

	"github.com/mmpoison/mmpoison/models/clip"
)

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
			data := RandomData(cfg, bc.batch, 1)
			if _, err := tr.Fit(data); err != nil { // warm-up: compiles the step.
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				tr.Restart()
				if _, err := tr.Fit(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
