package defense

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// kthSmallest agrees with sorting, whatever the values: signs, zeros, ties, infinities, NaN (skipped).
func TestKthSmallest(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cases := map[string][]float64{
		"one":      {0.5},
		"ties":     {0.3, 0.3, 0.3, 0.1, 0.3},
		"signs":    {-1, 2, -0.5, 0, 1e-300, -1e-300, 3},
		"extremes": {math.Inf(1), math.Inf(-1), math.NaN(), 0.25, math.MaxFloat64, -math.MaxFloat64},
		"NaNs":     {math.NaN(), 0.7, math.NaN(), 0.2},
	}
	random := make([]float64, 5000)
	for i := range random {
		random[i] = rng.Float64()*2 - 0.5
		if i%7 == 0 {
			random[i] = random[i/2] // ties
		}
	}
	cases["random"] = random
	for name, dist := range cases {
		var sorted []float64
		for _, d := range dist {
			if !math.IsNaN(d) {
				sorted = append(sorted, d)
			}
		}
		slices.Sort(sorted)
		for k := 1; k <= len(sorted); k += 1 + len(sorted)/50 {
			if got := kthSmallest(dist, k); got != sorted[k-1] {
				t.Errorf("%s: k = %d: %v, sorting gives %v", name, k, got, sorted[k-1])
			}
		}
	}
}
