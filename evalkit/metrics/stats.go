package metrics

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
)

// RankStats summarises a distribution of minranks.
//
// Mean, Std, Median and the quartiles are NaN when N is 0 (null in JSON);
// Min and Max are then 0. Std is the population standard deviation
// (divisor N, like numpy.std). Quartiles and the median use linear
// interpolation between order statistics (numpy's default "linear" method),
// so the median of an even number of ranks is the mean of the two middle ones.
type RankStats struct {
	// N is the number of ranks summarised.
	N int `json:"n"`
	// Mean is the average rank: the paper's "MinRank" metric.
	Mean float64 `json:"mean"`
	// Std is the population standard deviation of the ranks.
	Std float64 `json:"std"`
	// Min is the smallest rank.
	Min int `json:"min"`
	// Q1 is the first quartile (25th percentile).
	Q1 float64 `json:"q1"`
	// Median is the 50th percentile.
	Median float64 `json:"median"`
	// Q3 is the third quartile (75th percentile).
	Q3 float64 `json:"q3"`
	// Max is the largest rank.
	Max int `json:"max"`
	// Counts is the full distribution: Counts[r] is the number of ranks equal
	// to r, for r in [0, Max]. Negative ranks, which MinRank never returns,
	// are counted in N and the statistics but not here.
	Counts []int `json:"counts"`
}

// SummarizeRanks computes the [RankStats] of a set of minranks. The input is
// not modified.
func SummarizeRanks(ranks []int) RankStats {
	st := RankStats{N: len(ranks)}
	if len(ranks) == 0 {
		nan := math.NaN()
		st.Mean, st.Std, st.Q1, st.Median, st.Q3 = nan, nan, nan, nan, nan
		st.Counts = []int{}
		return st
	}
	sorted := slices.Clone(ranks)
	slices.Sort(sorted)
	st.Min, st.Max = sorted[0], sorted[len(sorted)-1]
	var sum float64
	for _, r := range sorted {
		sum += float64(r)
	}
	st.Mean = sum / float64(len(sorted))
	var ss float64
	for _, r := range sorted {
		d := float64(r) - st.Mean
		ss += d * d
	}
	st.Std = math.Sqrt(ss / float64(len(sorted)))
	st.Q1 = quantileSorted(sorted, 0.25)
	st.Median = quantileSorted(sorted, 0.5)
	st.Q3 = quantileSorted(sorted, 0.75)
	st.Counts = make([]int, max(st.Max+1, 0))
	for _, r := range sorted {
		if r >= 0 {
			st.Counts[r]++
		}
	}
	return st
}

// Quantile returns the p-quantile (0 ≤ p ≤ 1) of the ranks, with linear
// interpolation between order statistics. It returns NaN for an empty input
// or p outside [0, 1].
func Quantile(ranks []int, p float64) float64 {
	if len(ranks) == 0 || !(p >= 0 && p <= 1) {
		return math.NaN()
	}
	sorted := slices.Clone(ranks)
	slices.Sort(sorted)
	return quantileSorted(sorted, p)
}

func quantileSorted(sorted []int, p float64) float64 {
	h := p * float64(len(sorted)-1)
	lo := int(math.Floor(h))
	hi := min(lo+1, len(sorted)-1)
	frac := h - float64(lo)
	return float64(sorted[lo]) + frac*float64(sorted[hi]-sorted[lo])
}

// String returns a one-line human-readable summary.
func (s RankStats) String() string {
	return fmt.Sprintf("n=%d mean=%.2f median=%.1f std=%.2f min=%d q1=%.1f q3=%.1f max=%d",
		s.N, s.Mean, s.Median, s.Std, s.Min, s.Q1, s.Q3, s.Max)
}

type rankStatsJSON struct {
	N      int    `json:"n"`
	Mean   jfloat `json:"mean"`
	Std    jfloat `json:"std"`
	Min    int    `json:"min"`
	Q1     jfloat `json:"q1"`
	Median jfloat `json:"median"`
	Q3     jfloat `json:"q3"`
	Max    int    `json:"max"`
	Counts []int  `json:"counts"`
}

// MarshalJSON implements [json.Marshaler], writing NaN and infinite values
// as null.
func (s RankStats) MarshalJSON() ([]byte, error) {
	counts := s.Counts
	if counts == nil {
		counts = []int{}
	}
	return json.Marshal(rankStatsJSON{
		N: s.N, Mean: jfloat(s.Mean), Std: jfloat(s.Std), Min: s.Min,
		Q1: jfloat(s.Q1), Median: jfloat(s.Median), Q3: jfloat(s.Q3), Max: s.Max,
		Counts: counts,
	})
}

// UnmarshalJSON implements [json.Unmarshaler]; null (or missing) floating
// point fields become NaN.
func (s *RankStats) UnmarshalJSON(data []byte) error {
	nan := jfloat(math.NaN())
	aux := rankStatsJSON{Mean: nan, Std: nan, Q1: nan, Median: nan, Q3: nan}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	*s = RankStats{
		N: aux.N, Mean: float64(aux.Mean), Std: float64(aux.Std), Min: aux.Min,
		Q1: float64(aux.Q1), Median: float64(aux.Median), Q3: float64(aux.Q3), Max: aux.Max,
		Counts: aux.Counts,
	}
	return nil
}

// jfloat is a float64 that marshals NaN and ±Inf as JSON null and
// unmarshals null as NaN.
type jfloat float64

func (f jfloat) MarshalJSON() ([]byte, error) {
	x := float64(f)
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(x)
}

func (f *jfloat) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		*f = jfloat(math.NaN())
		return nil
	}
	var x float64
	if err := json.Unmarshal(data, &x); err != nil {
		return err
	}
	*f = jfloat(x)
	return nil
}

func toJFloats(xs []float64) []jfloat {
	out := make([]jfloat, len(xs))
	for i, x := range xs {
		out[i] = jfloat(x)
	}
	return out
}

func fromJFloats(xs []jfloat) []float64 {
	if xs == nil {
		return nil
	}
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(x)
	}
	return out
}
