package experiment

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
)

// Sweep runs a list of specs, one result each, keeping every finished result in Dir under the hash of its spec.
// Re-running a sweep (or a notebook cell) loads finished results instead of recomputing them, so a sweep that was
// interrupted resumes where it stopped.
type Sweep struct {
	// Dir holds one <hash>.json result per finished spec.
	Dir string
	// Options are passed to each run.
	Options Options
	// Progress, when set, is told about each spec before it runs (cached says it was loaded instead).
	Progress func(i, n int, spec Spec, cached bool)
	// run executes one spec (Run; tests replace it).
	run func(Spec, Options) (*Result, error)
}

// ResultPath is where the sweep keeps the result of spec.
func (s *Sweep) ResultPath(spec Spec) string {
	return filepath.Join(s.Dir, "result-"+hash(spec)+".json")
}

// Run returns the results of all specs, in order, computing only those not already in Dir. It stops at the first
// error; the results finished before it stay in Dir.
func (s *Sweep) Run(specs []Spec) ([]*Result, error) {
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("sweep folder: %w", err)
	}
	run := s.run
	if run == nil {
		run = Run
	}
	results := make([]*Result, len(specs))
	for i, spec := range specs {
		if err := spec.Validate(); err != nil {
			return nil, fmt.Errorf("sweep spec %d: %w", i, err)
		}
		path := s.ResultPath(spec)
		r, err := ReadResult(path)
		cached := err == nil
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return results[:i], fmt.Errorf("sweep spec %d: unreadable result %s (remove it to recompute): %w", i, path, err)
		}
		if s.Progress != nil {
			s.Progress(i, len(specs), spec, cached)
		}
		if !cached {
			if r, err = run(spec, s.Options); err != nil {
				return results[:i], fmt.Errorf("sweep spec %d: %w", i, err)
			}
			if err := r.WriteJSON(path); err != nil {
				return results[:i], err
			}
		}
		results[i] = r
	}
	return results, nil
}

// WithSeeds returns base once per seed.
func WithSeeds(base Spec, seeds ...int64) []Spec {
	return vary(base, seeds, func(s *Spec, v int64) { s.Seed = v })
}

// WithRates returns base once per poisoning rate φ.
func WithRates(base Spec, rates ...float64) []Spec {
	return vary(base, rates, func(s *Spec, v float64) { s.Rate = v })
}

// WithEpochs returns base once per number of fine-tuning epochs.
func WithEpochs(base Spec, epochs ...int) []Spec {
	return vary(base, epochs, func(s *Spec, v int) { s.FinetuneEpochs = v })
}

// vary returns one copy of base per value, each changed by set.
func vary[T any](base Spec, values []T, set func(*Spec, T)) []Spec {
	out := make([]Spec, len(values))
	for i, v := range values {
		out[i] = base
		set(&out[i], v)
	}
	return out
}

// GoalMatrix returns base once per ordered pair (A, B) of distinct classes: the paper's goal matrix.
func GoalMatrix(base Spec, classes []string) []Spec {
	var out []Spec
	for _, a := range classes {
		for _, b := range classes {
			if a != b {
				s := base
				s.Source, s.Target = a, b
				out = append(out, s)
			}
		}
	}
	return out
}

// Summary describes a metric over repeated runs (e.g. seeds): mean, sample standard deviation, and a 95%
// percentile-bootstrap interval of the mean.
type Summary struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	Std  float64 `json:"std"`
	Lo   float64 `json:"ci95_lo"`
	Hi   float64 `json:"ci95_hi"`
}

// Summarize computes a Summary with 2,000 bootstrap resamples drawn by a generator seeded with seed.
func Summarize(values []float64, seed uint64) Summary {
	n := len(values)
	s := Summary{N: n}
	if n == 0 {
		s.Mean, s.Std, s.Lo, s.Hi = math.NaN(), math.NaN(), math.NaN(), math.NaN()
		return s
	}
	for _, v := range values {
		s.Mean += v
	}
	s.Mean /= float64(n)
	if n > 1 {
		for _, v := range values {
			s.Std += (v - s.Mean) * (v - s.Mean)
		}
		s.Std = math.Sqrt(s.Std / float64(n-1))
	}
	const resamples = 2000
	rng := rand.New(rand.NewPCG(seed, 0x626f6f74))
	means := make([]float64, resamples)
	for i := range means {
		var sum float64
		for range n {
			sum += values[rng.IntN(n)]
		}
		means[i] = sum / float64(n)
	}
	slices.Sort(means)
	s.Lo, s.Hi = means[int(0.025*resamples)], means[int(0.975*resamples)-1]
	return s
}

// CachedSweep returns a sweep that keeps its results in the cache directory, under sweeps/<name>: notebooks use
// it so that a re-run (or the next notebook) loads finished runs.
func CachedSweep(name string, opts Options) (*Sweep, error) {
	dir, err := CacheDir()
	if err != nil {
		return nil, err
	}
	return &Sweep{Dir: filepath.Join(dir, "sweeps", name), Options: opts}, nil
}
