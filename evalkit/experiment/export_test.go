package experiment

import (
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/mmpoison/mmpoison/models/train"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// Hooks for the external tests (package experiment_test), which use internal/minidata and so cannot be in
// package experiment.

// TrainFeed is Data.trainFeed.
func TrainFeed(d *Data, ps *dataset.PairSet) (*train.Data, error) { return d.trainFeed(ps) }

// PretrainedContext is Data.pretrained.
func PretrainedContext(d *Data) (*context.Context, error) { return d.pretrained() }

// TrainLosses trains from init on pairs for epochs epochs with the fine-tuning learning rate and returns the
// mean loss of each epoch.
func TrainLosses(d *Data, init *context.Context, pairs *dataset.PairSet, epochs int) ([]float64, error) {
	st := d.Spec.Finetune
	st.Epochs = epochs
	_, hist, err := trainModel(d, &Options{Quiet: true}, "test", init, pairs, st)
	var out []float64
	for _, h := range hist {
		out = append(out, h.MeanLoss)
	}
	return out, err
}
