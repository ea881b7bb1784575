package metrics

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// DefaultKs are the cut-offs K at which the paper reports Hit@K.
var DefaultKs = []int{1, 5, 10, 20, 30, 50}

// RecallKs are the cut-offs K at which the paper reports utility Recall@K.
var RecallKs = []int{1, 5, 10}

// MinRank returns the smallest 0-based rank that any of the target indices
// reaches when the items are sorted by score in descending order (rank 0 is
// the best-scoring item).
//
// Tie rule (conservative, deterministic): a target tied with non-targets is
// ranked after all of them, so the result is the number of non-target items
// whose score is greater than or equal to the best target score. Targets
// tied with each other do not push each other down. With this rule a poisoned
// model cannot gain from degenerate (for instance constant) scores: if every
// score is equal, MinRank is the number of non-targets.
//
// NaN scores are treated as −Inf: a NaN non-target never outranks a target,
// and a NaN target ranks after every non-NaN item.
//
// MinRank runs in O(len(scores) + len(targets)) without sorting. Duplicate
// target indices are allowed. It panics if targets is empty or contains an
// index outside [0, len(scores)).
func MinRank(scores []float32, targets []int) int {
	if len(targets) == 0 {
		panic("metrics.MinRank: no target indices")
	}
	best := math.Inf(-1)
	for _, t := range targets {
		if t < 0 || t >= len(scores) {
			panic(fmt.Sprintf("metrics.MinRank: target index %d out of range [0, %d)", t, len(scores)))
		}
		if s := key(scores[t]); s > best {
			best = s
		}
	}
	// Number of items (targets included) scoring at least as well as the best target.
	atLeast := 0
	for _, s := range scores {
		if key(s) >= best {
			atLeast++
		}
	}
	// Subtract the distinct targets that tie with the best score.
	var tied []int
	for _, t := range targets {
		if key(scores[t]) == best {
			tied = append(tied, t)
		}
	}
	if len(tied) > 1 {
		slices.Sort(tied)
		tied = slices.Compact(tied)
	}
	return atLeast - len(tied)
}

// MinRanks applies [MinRank] to every row of scores with the same targets
// (for instance every query of a text-to-image attack evaluation).
// It panics under the same conditions as MinRank.
func MinRanks(scores [][]float32, targets []int) []int {
	out := make([]int, len(scores))
	for i, row := range scores {
		out[i] = MinRank(row, targets)
	}
	return out
}

// key maps a score to the value used for ranking: NaN becomes −Inf.
func key(s float32) float64 {
	if s != s {
		return math.Inf(-1)
	}
	return float64(s)
}

// HitAtK returns the fraction of minRanks that are smaller than k, that is,
// the fraction of queries that retrieve a target within their top k results.
// It returns NaN for an empty slice (written as null in JSON).
func HitAtK(minRanks []int, k int) float64 {
	if len(minRanks) == 0 {
		return math.NaN()
	}
	hits := 0
	for _, r := range minRanks {
		if r < k {
			hits++
		}
	}
	return float64(hits) / float64(len(minRanks))
}

// ChanceHitAtK returns the expected Hit@K of a ranking that is uniformly
// random: the probability that at least one of numTargets targets lands in
// the top k of a gallery of galleryN items, 1 − C(galleryN−numTargets, k) /
// C(galleryN, k). It is a sanity baseline next to the clean-model baseline.
// It returns NaN when the arguments make no sense (numTargets < 1,
// numTargets > galleryN, or k < 0).
func ChanceHitAtK(galleryN, numTargets, k int) float64 {
	if numTargets < 1 || numTargets > galleryN || k < 0 {
		return math.NaN()
	}
	if k >= galleryN-numTargets+1 {
		return 1
	}
	// Probability that none of the first k items is a target.
	miss := 1.0
	for i := 0; i < k; i++ {
		miss *= float64(galleryN-numTargets-i) / float64(galleryN-i)
	}
	return 1 - miss
}

// ChanceMinRank returns the expected minrank of numTargets targets placed
// uniformly at random in a gallery of galleryN items,
// (galleryN − numTargets) / (numTargets + 1). It returns NaN when
// numTargets < 1 or numTargets > galleryN.
func ChanceMinRank(galleryN, numTargets int) float64 {
	if numTargets < 1 || numTargets > galleryN {
		return math.NaN()
	}
	return float64(galleryN-numTargets) / float64(numTargets+1)
}

// TopK returns the indices of the k highest scores, best first (ties keep the lower index first; NaN scores
// rank last, as in MinRank). k larger than len(scores) returns every index.
func TopK(scores []float32, k int) []int {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(key(scores[b]), key(scores[a])) })
	return idx[:min(max(k, 0), len(idx))]
}
