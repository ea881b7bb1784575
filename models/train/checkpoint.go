package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strconv"

	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/safetensors"
)

// Checkpoint metadata keys and tensor-name prefixes for the optimizer state.
const (
	metaEpoch   = "mmpoison.train.epoch"
	metaStep    = "mmpoison.train.step"
	metaOptions = "mmpoison.train.options"
	// metaEpochStep and metaEpochLoss record a position inside an epoch: the steps done in it and the sum of
	// their losses (absent in checkpoints written at an epoch's end by earlier versions: 0).
	metaEpochStep = "mmpoison.train.epoch_step"
	metaEpochLoss = "mmpoison.train.epoch_loss"
	prefixM       = "adamw.m."
	prefixV       = "adamw.v."
)

// SaveCheckpoint writes the model, the optimizer moments and the position in the run (epoch, global step, step
// within the epoch and the epoch's loss so far) to path, atomically: an interrupted write leaves the previous
// checkpoint intact.
func (t *Trainer) SaveCheckpoint(path string) error {
	ts, err := clip.ParamsToTensors(t.ctx, t.cfg)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	for _, scope := range []struct{ name, prefix string }{{"m", prefixM}, {"v", prefixV}} {
		more, err := clip.VariablesToTensors(t.ctx.In(OptimizerScope).In(scope.name), scope.prefix, t.specs)
		if err != nil {
			return fmt.Errorf("checkpoint %s: %w", path, err)
		}
		ts = append(ts, more...)
	}
	cfgJSON, _ := json.Marshal(t.cfg)
	optJSON, _ := json.Marshal(t.opts)
	return safetensors.WriteFile(path, &safetensors.File{Tensors: ts, Metadata: map[string]string{
		clip.MetadataConfig: string(cfgJSON), metaOptions: string(optJSON),
		metaEpoch: strconv.Itoa(t.epoch), metaStep: strconv.Itoa(t.step),
		metaEpochStep: strconv.Itoa(t.epochStep), metaEpochLoss: strconv.FormatFloat(t.epochLoss, 'g', -1, 64),
	}})
}

// Position returns where the training stands: the epochs finished and the steps done in the epoch under way
// (after Resume, where the checkpoint left it).
func (t *Trainer) Position() (epochs, epochStep int) { return t.epoch, t.epochStep }

// Resume loads a checkpoint written by SaveCheckpoint into the trainer's model and optimizer, so that Fit goes
// on from the step after the one it records (mid-epoch too: the same batches, views and losses follow as in
// an uninterrupted run). It returns false (and no error) when path does not exist.
func (t *Trainer) Resume(path string) (bool, error) {
	f, err := safetensors.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	cfg, err := clip.ConfigFromMetadata(path, f)
	if err != nil {
		return false, err
	}
	if cfg != t.cfg {
		return false, fmt.Errorf("checkpoint %s holds a %+v model, the trainer has %+v", path, cfg, t.cfg)
	}
	var saved Options
	if err := json.Unmarshal([]byte(f.Metadata[metaOptions]), &saved); err != nil {
		return false, fmt.Errorf("checkpoint %s: malformed training options: %w", path, err)
	}
	if saved.Seed != t.opts.Seed || saved.BatchSize != t.opts.BatchSize || saved.Epochs != t.opts.Epochs {
		return false, fmt.Errorf("checkpoint %s was written with seed %d, batch %d, %d epochs; this run has seed %d, "+
			"batch %d, %d epochs: remove it or use the same options", path, saved.Seed, saved.BatchSize, saved.Epochs,
			t.opts.Seed, t.opts.BatchSize, t.opts.Epochs)
	}
	epoch, err1 := strconv.Atoi(f.Metadata[metaEpoch])
	step, err2 := strconv.Atoi(f.Metadata[metaStep])
	epochStep, epochLoss, err3 := inEpoch(f.Metadata)
	if err := errors.Join(err1, err2, err3); err != nil {
		return false, fmt.Errorf("checkpoint %s: malformed position: %w", path, err)
	}
	if epoch < 0 || epoch > t.opts.Epochs || step < epoch {
		return false, fmt.Errorf("checkpoint %s: position epoch %d, step %d is outside a run of %d epochs", path,
			epoch, step, t.opts.Epochs)
	}
	if err := clip.SetVariablesFromTensors(t.ctx.In(clip.Scope), "", t.cfg.Params(), f); err != nil {
		return false, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if err := clip.SetVariablesFromTensors(t.ctx.In(OptimizerScope).In("m"), prefixM, t.specs, f); err != nil {
		return false, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if err := clip.SetVariablesFromTensors(t.ctx.In(OptimizerScope).In("v"), prefixV, t.specs, f); err != nil {
		return false, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	t.epoch, t.step, t.epochStep, t.epochLoss = epoch, step, epochStep, epochLoss
	return true, nil
}

// inEpoch reads the position inside an epoch from checkpoint metadata (0 and 0 when absent).
func inEpoch(meta map[string]string) (step int, loss float64, err error) {
	if s, ok := meta[metaEpochStep]; ok {
		if step, err = strconv.Atoi(s); err != nil || step < 0 {
			return 0, 0, errors.Join(err, fmt.Errorf("step within the epoch %q", s))
		}
	}
	if s, ok := meta[metaEpochLoss]; ok {
		if loss, err = strconv.ParseFloat(s, 64); err != nil {
			return 0, 0, err
		}
	}
	return step, loss, nil
}
