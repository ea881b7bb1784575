package scale

import (
	"fmt"
	"strings"

	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/models/backend"
	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/tokenizer"
	"github.com/mmpoison/mmpoison/models/train"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/fashionmnist"
)

// TrainSpec is a training run from scratch on a streamed input with the Fashion-MNIST word-level vocabulary
// (the presets trained here): the scale benchmark's training stage.
type TrainSpec struct {
	// Preset is the model (see clip.Presets: one with 28 px grayscale input for Fashion-MNIST-like data).
	Preset string
	// Epochs, Batch and LR are the recipe (LR: peak of the cosine schedule, warm-up min(50, steps/10)).
	Epochs, Batch int
	LR            float64
	// Seed drives initialisation, data order and views.
	Seed int64
	// Checkpoint, when set, is written every CheckpointEvery steps (and when stopped) and resumed from.
	Checkpoint      string
	CheckpointEvery int
	// Progress, when set, is called after every step.
	Progress func(train.Progress)
}

// Train trains a fresh model on the clean pairs of in, streamed: each batch's pictures are read and decoded
// by the training feed (train.Stream) when the batch comes, so memory does not grow with the input.
func Train(in *Opened, ts TrainSpec, opts experiment.Options) (*context.Context, clip.Config, []train.EpochStats, error) {
	cfg, err := clip.Preset(ts.Preset)
	if err != nil {
		return nil, cfg, nil, err
	}
	tok, err := fashionTokenizer(cfg.ContextLength)
	if err != nil {
		return nil, cfg, nil, err
	}
	cfg.VocabSize = tok.VocabSize()
	ctx, err := clip.NewContext(cfg, uint64(ts.Seed))
	if err != nil {
		return nil, cfg, nil, err
	}
	table := dataset.CleanTable(in.Source)
	to := train.DefaultOptions()
	to.Epochs, to.BatchSize, to.LearningRate, to.Seed = ts.Epochs, ts.Batch, ts.LR, uint64(ts.Seed)
	to.MinLearningRate = ts.LR / 100
	to.WarmupSteps = min(50, ts.Epochs*(table.NumPairs()/max(ts.Batch, 1))/10)
	to.Checkpoint, to.CheckpointEvery, to.Progress = ts.Checkpoint, ts.CheckpointEvery, ts.Progress
	be := opts.Backend
	if be == nil {
		if be, err = backend.Default(); err != nil {
			return nil, cfg, nil, err
		}
	}
	tr, err := train.New(be, cfg, ctx, to)
	if err != nil {
		return nil, cfg, nil, err
	}
	if ts.Checkpoint != "" {
		if _, err := tr.Resume(ts.Checkpoint); err != nil {
			return nil, cfg, nil, err
		}
	}
	hist, err := tr.Fit(&train.Data{Stream: &train.Stream{Pairs: table, Encode: tok.Encode}})
	if err != nil {
		return nil, cfg, nil, fmt.Errorf("training on %s: %w", in.Source.Name(), err)
	}
	return ctx, cfg, hist, nil
}

// fashionTokenizer is the word-level tokenizer of the Fashion-MNIST captions, for n tokens.
func fashionTokenizer(n int) (*tokenizer.WordLevel, error) {
	return tokenizer.NewWordLevel([]string{strings.Join(fashionmnist.Vocabulary(), " ")}, n)
}
