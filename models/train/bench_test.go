package train

import (
	"fmt"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/backends"

	"github.com/mmpoison/mmpoison/models/backend"
	"github.com/mmpoison/mmpoison/models/clip"
)

// benchBackend is the backend the environment chooses (models/backend's rule).
func benchBackend(tb testing.TB) backends.Backend {
	tb.Helper()
	be, err := backend.Default()
	if err != nil {
		tb.Fatal(err)
	}
	return be
}

// pureGo is the pure-Go backend, for the tests of what is specific to it.
var pureGo = sync.OnceValues(func() (backends.Backend, error) { return backend.FromConfig("go") })

// pureGoBackend returns pureGo's backend or fails tb.
func pureGoBackend(tb testing.TB) backends.Backend {
	tb.Helper()
	be, err := pureGo()
	if err != nil {
		tb.Fatal(err)
	}
	return be
}

// BenchmarkTrainStep measures one AdamW training step of a preset at a batch size (on the environment's backend).
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

// newTestTrainer makes a freshly initialised model of cfg and its trainer with opts, on benchBackend.
func newTestTrainer(tb testing.TB, cfg clip.Config, opts Options) *Trainer {
	tb.Helper()
	ctx, err := clip.NewContext(cfg, 1)
	if err != nil {
		tb.Fatal(err)
	}
	tr, err := New(benchBackend(tb), cfg, ctx, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return tr
}
