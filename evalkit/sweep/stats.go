package sweep

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
)

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

// CurvePoint is one x of a swept curve with the mean and standard deviation of the runs at that x.
type CurvePoint struct {
	X, Mean, Std float64
	N            int
}

// RateCurve groups results by their spec's poisoning rate and summarises value over each group (seeds), in
// increasing φ.
func RateCurve(rs []*experiment.Result, value func(*experiment.Result) float64) []CurvePoint {
	return Curve(rs, func(r *experiment.Result) float64 { return r.Spec.Attack.Rate }, value)
}

// Curve groups results by x and summarises value over each group, in increasing x.
func Curve(rs []*experiment.Result, x, value func(*experiment.Result) float64) []CurvePoint {
	xs, vs := make([]float64, len(rs)), make([]float64, len(rs))
	for i, r := range rs {
		xs[i], vs[i] = x(r), value(r)
	}
	return CurveOf(xs, vs)
}

// CurveOf groups values by their x (xs[i] belongs to values[i]) and summarises each group, in increasing x.
func CurveOf(xs, values []float64) []CurvePoint {
	byX := map[float64][]float64{}
	for i, x := range xs {
		byX[x] = append(byX[x], values[i])
	}
	var out []CurvePoint
	for xv, vs := range byX {
		s := Summarize(vs, 1)
		out = append(out, CurvePoint{X: xv, Mean: s.Mean, Std: s.Std, N: s.N})
	}
	slices.SortFunc(out, func(a, b CurvePoint) int { return cmp.Compare(a.X, b.X) })
	return out
}

// Text formats the summary for a table cell with format (e.g. "%.3f"): "mean ± std" over two or more runs, the
// value alone for one run (a single seed has no spread), "–" for none. Say how many seeds stand behind the
// cells (SeedsNote).
func (s Summary) Text(format string) string {
	switch {
	case s.N == 0:
		return "–"
	case s.N == 1:
		return fmt.Sprintf(format, s.Mean)
	}
	return fmt.Sprintf(format+" ± "+format, s.Mean, s.Std)
}

// TextCI is Text with the 95% bootstrap interval of the mean: "mean ± std [lo, hi]" over two or more runs.
func (s Summary) TextCI(format string) string {
	if s.N < 2 {
		return s.Text(format)
	}
	return fmt.Sprintf(format+" ± "+format+" ["+format+", "+format+"]", s.Mean, s.Std, s.Lo, s.Hi)
}

// Spread returns the standard deviation for an error bar: NaN (no bar) with fewer than two runs.
func (s Summary) Spread() float64 {
	if s.N < 2 {
		return math.NaN()
	}
	return s.Std
}

// SeedsNote says what the cells of a summary over n seeds are: "1 seed: single values, no spread (statistics
// need 2 or more seeds)." or "3 seeds: mean ± standard deviation [95% bootstrap interval of the mean]." (ci
// false: without the interval).
func SeedsNote(n int, ci bool) string {
	switch {
	case n == 0:
		return "no runs."
	case n == 1:
		return "1 seed: single values, no spread (statistics need 2 or more seeds)."
	case ci:
		return fmt.Sprintf("%d seeds: mean ± standard deviation [95%% bootstrap interval of the mean].", n)
	}
	return fmt.Sprintf("%d seeds: mean ± standard deviation.", n)
}
