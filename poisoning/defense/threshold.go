package defense

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Threshold kinds accepted by [ChooseGamma].
const (
	// KindFixed uses Threshold.Value as γ (the paper's γ = 0.8).
	KindFixed = "fixed"
	// KindQuantile sets γ to the Threshold.Value quantile of the distances, dropping at most the top 1 − q.
	KindQuantile = "quantile"
	// KindLabelled picks γ from a [LabelledSample], as the paper suggests.
	KindLabelled = "labelled"
)

// Threshold says how [ChooseGamma] picks the filter threshold γ.
type Threshold struct {
	// Kind is KindFixed, KindQuantile or KindLabelled.
	Kind string `json:"kind"`
	// Value is γ itself for KindFixed (any finite number) and the quantile q, in (0, 1), for KindQuantile: γ is
	// chosen so that at most the top 1 − q fraction of the pairs is dropped. KindLabelled ignores it.
	Value float64 `json:"value,omitempty"`
	// MaxCleanDrop is, for KindLabelled, the largest fraction of the sample's clean pairs that γ may drop, in
	// [0, 1]. Other kinds ignore it.
	MaxCleanDrop float64 `json:"max_clean_drop,omitempty"`
}

// LabelledSample is a small set of pairs whose status is known: indices into the distance list (and the pair
// set) of pairs known to be clean and known to be poisoned.
type LabelledSample struct {
	// Clean and Poisoned are pair indices. ChooseGamma needs at least one of each, all distinct and in range.
	Clean    []int `json:"clean"`
	Poisoned []int `json:"poisoned"`
}

// budgetEps absorbs rounding in fractions × counts (0.1 × 30 = 3.0000000000000004).
const budgetEps = 1e-9

// ChooseGamma returns the filter threshold γ for the distances dist (from [PairDistances]) according to t:
//
//   - KindFixed returns t.Value, which must be finite; dist and sample are not used.
//   - KindQuantile returns the nearest-rank q-quantile of the non-NaN distances, q = t.Value in (0, 1): with the
//     n distances sorted, γ = d[⌈q·n⌉], so that [Filter] drops at most ⌊(1 − q)·n⌋ of them (fewer when
//     distances tie at γ; NaN distances are dropped on top). It is an error when no distance is a number.
//   - KindLabelled uses sample (which must have at least one clean and one poisoned pair, with distinct
//     in-range indices and non-NaN distances) and t.MaxCleanDrop in [0, 1]. Among all cuts, it keeps those that
//     drop at most ⌊MaxCleanDrop · |clean|⌋ of the sample's clean pairs and, of these, the one with the highest
//     recall of the sample's poisoned pairs; ties in recall go to the cut that drops fewer clean pairs (the most
//     lenient one), which makes the choice unique. Any γ from the largest kept sample distance up to (not
//     including) the smallest dropped one makes that cut; ChooseGamma returns the midpoint of the two, for the
//     same margin on both sides. When the best cut drops no sample pair, γ is the largest sample distance; when
//     it drops all of them (only possible with MaxCleanDrop = 1), γ is the largest float64 below the smallest.
//
// Errors name the problem: an unknown kind, a NaN or infinite value, a quantile outside (0, 1), a budget outside
// [0, 1], an empty or invalid sample.
func ChooseGamma(dist []float64, t Threshold, sample *LabelledSample) (float64, error) {
	switch t.Kind {
	case KindFixed:
		if math.IsNaN(t.Value) || math.IsInf(t.Value, 0) {
			return 0, fmt.Errorf("defense.ChooseGamma: fixed γ must be a finite number, got %v", t.Value)
		}
		return t.Value, nil
	case KindQuantile:
		return quantileGamma(dist, t.Value)
	case KindLabelled:
		return labelledGamma(dist, t.MaxCleanDrop, sample)
	default:
		return 0, fmt.Errorf("defense.ChooseGamma: unknown threshold kind %q: want %q, %q or %q",
			t.Kind, KindFixed, KindQuantile, KindLabelled)
	}
}

func quantileGamma(dist []float64, q float64) (float64, error) {
	if !(q > 0 && q < 1) { // also rejects NaN
		return 0, fmt.Errorf("defense.ChooseGamma: quantile must be in (0, 1), got %v", q)
	}
	n := 0
	for _, d := range dist {
		if !math.IsNaN(d) {
			n++
		}
	}
	if n == 0 {
		return 0, fmt.Errorf("defense.ChooseGamma: quantile of %d distances, none of them a number", len(dist))
	}
	k := int(math.Ceil(q*float64(n) - budgetEps))
	k = min(max(k, 1), n)
	return kthSmallest(dist, k), nil
}

func labelledGamma(dist []float64, maxCleanDrop float64, s *LabelledSample) (float64, error) {
	if !(maxCleanDrop >= 0 && maxCleanDrop <= 1) {
		return 0, fmt.Errorf("defense.ChooseGamma: MaxCleanDrop must be in [0, 1], got %v", maxCleanDrop)
	}
	if s == nil || len(s.Clean) == 0 || len(s.Poisoned) == 0 {
		return 0, errors.New("defense.ChooseGamma: the labelled kind needs a sample with at least one clean and one poisoned pair")
	}
	type point struct {
		d        float64
		poisoned bool
	}
	pts := make([]point, 0, len(s.Clean)+len(s.Poisoned))
	seen := make(map[int]bool, cap(pts))
	for _, group := range []struct {
		idx      []int
		poisoned bool
	}{{s.Clean, false}, {s.Poisoned, true}} {
		for _, i := range group.idx {
			switch {
			case i < 0 || i >= len(dist):
				return 0, fmt.Errorf("defense.ChooseGamma: sample index %d out of range [0, %d)", i, len(dist))
			case seen[i]:
				return 0, fmt.Errorf("defense.ChooseGamma: sample index %d listed twice", i)
			case math.IsNaN(dist[i]):
				return 0, fmt.Errorf("defense.ChooseGamma: sample pair %d has a NaN distance", i)
			}
			seen[i] = true
			pts = append(pts, point{dist[i], group.poisoned})
		}
	}
	budget := int(math.Floor(maxCleanDrop*float64(len(s.Clean)) + budgetEps))

	// Cut j (0 ≤ j ≤ len(u)) keeps the sample distances ≤ u[j-1] and drops those ≥ u[j] (u sorted, distinct);
	// j = len(u) drops nothing. Walking j down from len(u), both the clean drops and the poison caught grow, so
	// the best feasible cut is the lowest j within the budget: the highest recall, and among equal recalls the
	// fewest clean drops (the first j reached with that recall).
	slices.SortFunc(pts, func(a, b point) int { return cmp.Compare(a.d, b.d) })
	var u []float64
	var cleanAt, poisonAt []int
	for _, p := range pts {
		if len(u) == 0 || p.d != u[len(u)-1] {
			u = append(u, p.d)
			cleanAt, poisonAt = append(cleanAt, 0), append(poisonAt, 0)
		}
		if p.poisoned {
			poisonAt[len(u)-1]++
		} else {
			cleanAt[len(u)-1]++
		}
	}
	best, bestCaught := len(u), 0
	cleanDropped, caught := 0, 0
	for j := len(u) - 1; j >= 0; j-- {
		cleanDropped += cleanAt[j]
		caught += poisonAt[j]
		if cleanDropped > budget {
			break
		}
		if caught > bestCaught {
			best, bestCaught = j, caught
		}
	}
	switch best {
	case len(u):
		return u[len(u)-1], nil
	case 0:
		return math.Nextafter(u[0], math.Inf(-1)), nil
	default:
		lo, hi := u[best-1], u[best]
		switch {
		case math.IsInf(hi, 1):
			return lo, nil
		case math.IsInf(lo, -1):
			return math.Nextafter(hi, math.Inf(-1)), nil
		}
		return lo + (hi-lo)/2, nil
	}
}
