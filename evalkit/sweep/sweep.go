// Package sweep runs lists of experiments (seeds, rates, epochs, the paper's goal matrix) and summarises them
// over repetitions: mean, standard deviation and bootstrap intervals (Summarize), and curves of a metric
// against what the sweep varies (Curve). A Sweep keeps every finished result in the cache, so a sweep that was
// interrupted, or a notebook re-run, loads finished runs instead of recomputing them.
package sweep

import (
	"fmt"
	"path/filepath"

	"github.com/mmpoison/mmpoison/evalkit/cache"
	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/poisoning/attack"
)

// Sweep runs a list of specs, one result each, keeping every finished result as a cache entry keyed by its
// spec (experiment.Spec.CacheParts). The zero value uses the model cache.
type Sweep struct {
	// Dir is the cache root folder keeping the results ("": the model cache, cache.Root()).
	Dir string
	// Options are passed to each run.
	Options experiment.Options
	// Progress, when set, is told about each spec before it runs (cached says it was loaded instead).
	Progress func(i, n int, spec experiment.Spec, cached bool)
	// run executes one spec (experiment.Run; tests replace it).
	run func(experiment.Spec, experiment.Options) (*experiment.Result, error)
}

// resultFile is the file of a result's cache entry.
const resultFile = "result.json"

// Key is the cache key of spec's result.
func Key(spec experiment.Spec) (cache.Key, error) {
	return cache.NewKey("result", spec.CacheParts())
}

// Run returns the results of all specs, in order, computing only those not already in the cache. Every spec
// is validated before anything runs. It stops at the first error; the results finished before it stay.
func (s *Sweep) Run(specs []experiment.Spec) ([]*experiment.Result, error) {
	for i, spec := range specs {
		if err := spec.Validate(); err != nil {
			return nil, fmt.Errorf("sweep spec %d: %w", i, err)
		}
	}
	c, err := cache.Open(s.Dir)
	if err != nil {
		return nil, err
	}
	run := s.run
	if run == nil {
		run = experiment.Run
	}
	results := make([]*experiment.Result, len(specs))
	for i, spec := range specs {
		key, err := Key(spec)
		if err != nil {
			return results[:i], fmt.Errorf("sweep spec %d: %w", i, err)
		}
		dir, cached, err := c.Get(key, func(dir string) error {
			if s.Progress != nil {
				s.Progress(i, len(specs), spec, false)
			}
			r, err := run(spec, s.Options)
			if err != nil {
				return err
			}
			return r.WriteJSON(filepath.Join(dir, resultFile))
		})
		if err != nil {
			return results[:i], fmt.Errorf("sweep spec %d: %w", i, err)
		}
		if cached && s.Progress != nil {
			s.Progress(i, len(specs), spec, true)
		}
		if results[i], err = experiment.ReadResult(filepath.Join(dir, resultFile)); err != nil {
			return results[:i], fmt.Errorf("sweep spec %d: %w", i, err)
		}
	}
	return results, nil
}

// WithSeeds returns base once per seed.
func WithSeeds(base experiment.Spec, seeds ...int64) []experiment.Spec {
	return vary(base, seeds, func(s *experiment.Spec, v int64) { s.Seed = v })
}

// WithRates returns base once per poisoning rate φ.
func WithRates(base experiment.Spec, rates ...float64) []experiment.Spec {
	return vary(base, rates, func(s *experiment.Spec, v float64) { s.Attack.Rate = v })
}

// WithEpochs returns base once per number of fine-tuning epochs.
func WithEpochs(base experiment.Spec, epochs ...int) []experiment.Spec {
	return vary(base, epochs, func(s *experiment.Spec, v int) { s.Finetune.Epochs = v })
}

// vary returns one copy of base per value, each changed by set.
func vary[T any](base experiment.Spec, values []T, set func(*experiment.Spec, T)) []experiment.Spec {
	out := make([]experiment.Spec, len(values))
	for i, v := range values {
		out[i] = base
		set(&out[i], v)
	}
	return out
}

// GoalMatrix returns base once per ordered pair (A, B) of distinct classes, as its only goal: the paper's goal
// matrix.
func GoalMatrix(base experiment.Spec, classes []string) []experiment.Spec {
	var out []experiment.Spec
	for _, a := range classes {
		for _, b := range classes {
			if a != b {
				s := base
				s.Attack.Goals = []attack.Goal{{Source: a, Target: b}}
				out = append(out, s)
			}
		}
	}
	return out
}
