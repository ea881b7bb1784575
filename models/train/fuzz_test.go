package train

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/models/internal/cliptest"
	"github.com/mmpoison/mmpoison/poisoning/fuzzcheck"
)

// FuzzResume resumes a trainer from arbitrary bytes as a training checkpoint (model, optimizer moments, and the
// run's options and position in the metadata). Properties: no panic; memory within 16 times the header plus 8
// times the file; an error names the file; an accepted checkpoint puts the trainer at a position inside its
// run (0 ≤ epoch ≤ Epochs, step ≥ epoch).
func FuzzResume(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, "train.safetensors")
	cfg := cliptest.MicroConfig()
	opts := smallOptions()
	newTrainer := func() *Trainer { return newTestTrainer(f, cfg, opts) }
	seed := newTrainer()
	seed.epoch, seed.step = 1, 4
	if err := seed.SaveCheckpoint(path); err != nil {
		f.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(fuzzcheck.WithoutChecksum(data))
	f.Add(data)
	tr := newTrainer()
	f.Fuzz(func(t *testing.T, in []byte) {
		tr.epoch, tr.step = 0, 0
		var ok bool
		var err error
		cliptest.ReadAsCheckpoint(t, path, in, func() { ok, err = tr.Resume(path) })
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if !ok || tr.epoch < 0 || tr.epoch > opts.Epochs || tr.step < tr.epoch {
			t.Fatalf("resumed at epoch %d, step %d (ok %v) of a run of %d epochs", tr.epoch, tr.step, ok, opts.Epochs)
		}
	})
}

// A checkpoint whose position lies outside the run (epoch 5 of a run of 2) is refused, naming the file.
func TestResumeRefusesPositionOutsideRun(t *testing.T) {
	tr := newTestTrainer(t, cliptest.MicroConfig(), smallOptions())
	path := filepath.Join(t.TempDir(), "train.safetensors")
	tr.epoch, tr.step = 5, 9
	if err := tr.SaveCheckpoint(path); err != nil {
		t.Fatal(err)
	}
	tr.epoch, tr.step = 0, 0
	if ok, err := tr.Resume(path); ok || err == nil || !strings.Contains(err.Error(), path+": position epoch 5, step 9 is outside a run of 2 epochs") {
		t.Errorf("Resume = %v, %v", ok, err)
	}
	if tr.epoch != 0 || tr.step != 0 {
		t.Errorf("the refused checkpoint moved the trainer to epoch %d, step %d", tr.epoch, tr.step)
	}
}
