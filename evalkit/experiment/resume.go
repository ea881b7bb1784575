package experiment

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/mmpoison/mmpoison/models/train"
	"github.com/mmpoison/mmpoison/poisoning/atomicfile"
)

// Resumable training: a stage trained into the cache keeps, in its entry's partial folder (cache.Partial), the
// state of its training after every epoch and, within an epoch, every Options.StateEvery: the trainer's checkpoint (model, optimizer moments, position) and
// the stage so far (history, per-epoch evaluations), written together as one folder (atomicfile.ReplaceDir), so
// a kill leaves the previous state or the new one whole. A rerun resumes from it and gives the numbers an
// uninterrupted run gives: the data order, views and learning rates follow the seed and the step, not the
// process.

// Files of a stage's saved training state, in the folder stateDir of its partial folder.
const (
	stateDir        = "state"
	stateCheckpoint = "train.safetensors"
)

// errStateUnusable is returned by trainModel when the saved state of a stage could not be loaded: it is removed,
// and the stage must be trained again from a fresh start (the model in memory may be half-loaded).
var errStateUnusable = errors.New("the saved training state is unusable")

// resumeState loads the saved training state of st, if any, into tr and st. It returns errStateUnusable (having
// removed the state, with a notice naming it) when the state cannot be loaded.
func resumeState(tr *train.Trainer, st *Stage, opts *Options) error {
	state := filepath.Join(st.partial, stateDir)
	if _, err := os.Stat(state); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var saved Stage
	err := readStageFile(filepath.Join(state, stageFile), &saved)
	if err == nil {
		var ok bool
		if ok, err = tr.Resume(filepath.Join(state, stateCheckpoint)); err == nil && !ok {
			err = fmt.Errorf("%s is missing", stateCheckpoint)
		}
	}
	if err != nil {
		notice(opts, "mmpoison: the saved training state %s is unusable (%v): removed, training the stage from its start\n", state, err)
		return errors.Join(errStateUnusable, os.RemoveAll(state))
	}
	st.History, st.Epochs = saved.History, saved.Epochs
	epochs, step := tr.Position()
	notice(opts, "mmpoison: resuming the training after epoch %d, step %d of the next, from %s\n", epochs, step, state)
	return nil
}

// keepState makes the training save its state after every epoch (after the epoch's other EpochEnd work, e.g.
// its evaluation), with the epoch's statistics added to st's history, and, when every is positive, also after
// the first step that ends at least every after the last save: *tr's checkpoint (its position inside the epoch
// included) and st.
func keepState(to *train.Options, tr **train.Trainer, st *Stage, every time.Duration) {
	inner := to.EpochEnd
	last := time.Now()
	to.EpochEnd = func(es train.EpochStats) error {
		if inner != nil {
			if err := inner(es); err != nil {
				return err
			}
		}
		st.History = append(st.History, es)
		last = time.Now()
		return saveState(*tr, st)
	}
	if every <= 0 {
		return
	}
	progress := to.Progress
	to.Progress = func(p train.Progress) {
		if progress != nil {
			progress(p)
		}
		if time.Since(last) < every {
			return
		}
		last = time.Now()
		if err := saveState(*tr, st); err != nil {
			// The next save (or the epoch's, which fails the training on error) tries again.
			fmt.Fprintf(os.Stderr, "mmpoison: saving the training state: %v\n", err)
		}
	}
}

// saveState writes tr's checkpoint and st into st's state folder, as one folder.
func saveState(tr *train.Trainer, st *Stage) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	err = atomicfile.ReplaceDir(filepath.Join(st.partial, stateDir), func(dir string) error {
		if err := tr.SaveCheckpoint(filepath.Join(dir, stateCheckpoint)); err != nil {
			return err
		}
		return atomicfile.WriteFile(filepath.Join(dir, stageFile), data)
	})
	if err == nil && stateSaved != nil {
		stateSaved(tr.Position())
	}
	return err
}

// stateSaved, when set (by tests), is called after each save of a training state with its position.
var stateSaved func(epochs, epochStep int)

// readStageFile reads a stage's JSON (stage.json of a cache entry or of a saved state).
func readStageFile(path string, st *Stage) error {
	data, err := atomicfile.ReadFile(path, maxStageFile)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, st); err != nil {
		return fmt.Errorf("%s: malformed stage JSON: %w", path, err)
	}
	return nil
}

// maxStageFile bounds the size of a stage's JSON read back: 64 MiB.
const maxStageFile = 64 << 20

// notice writes a one-line notice to opts.Log, or to standard error as the cache's notices (even when quiet).
func notice(opts *Options, format string, args ...any) {
	w := opts.Log
	if w == nil {
		w = os.Stderr
	}
	fmt.Fprintf(w, format, args...)
}
