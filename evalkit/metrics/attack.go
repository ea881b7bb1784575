package metrics

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/mmpoison/mmpoison/poisoning/vecmath"
)

// HitValue is Hit@K at one cut-off K.
type HitValue struct {
	// K is the cut-off.
	K int `json:"k"`
	// Hit is the fraction of queries whose minrank is below K (NaN, written
	// as null in JSON, when there are no queries).
	Hit float64 `json:"hit"`
}

type hitValueJSON struct {
	K   int    `json:"k"`
	Hit jfloat `json:"hit"`
}

// MarshalJSON implements [json.Marshaler], writing NaN as null.
func (h HitValue) MarshalJSON() ([]byte, error) {
	return json.Marshal(hitValueJSON{K: h.K, Hit: jfloat(h.Hit)})
}

// UnmarshalJSON implements [json.Unmarshaler], reading null as NaN.
func (h *HitValue) UnmarshalJSON(data []byte) error {
	aux := hitValueJSON{Hit: jfloat(math.NaN())}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	*h = HitValue{K: aux.K, Hit: float64(aux.Hit)}
	return nil
}

// AttackResult holds the attack-success metrics of a text-to-image
// poisoning attack for one goal (one source class A and its targets).
type AttackResult struct {
	// NumQueries is the number of query captions (class-A test captions).
	NumQueries int `json:"num_queries"`
	// NumGallery is the number of gallery images (all test images).
	NumGallery int `json:"num_gallery"`
	// NumTargets is the number of distinct target gallery images (class-B
	// test images for Attacks II and III, 1 for Attack I).
	NumTargets int `json:"num_targets"`
	// Hits is Hit@K for every requested K, in the order requested.
	Hits []HitValue `json:"hits"`
	// MinRank summarises the per-query minranks; MinRank.Mean is the paper's
	// MinRank metric.
	MinRank RankStats `json:"min_rank"`
	// MinRanks is minrank(q) of every query, in query order.
	MinRanks []int `json:"min_ranks"`
}

// HitAt returns Hit@k and whether k was among the evaluated cut-offs.
func (r *AttackResult) HitAt(k int) (float64, bool) {
	for _, h := range r.Hits {
		if h.K == k {
			return h.Hit, true
		}
	}
	return math.NaN(), false
}

// String returns a one-line human-readable summary.
func (r *AttackResult) String() string {
	s := fmt.Sprintf("queries=%d gallery=%d targets=%d", r.NumQueries, r.NumGallery, r.NumTargets)
	for _, h := range r.Hits {
		s += fmt.Sprintf(" hit@%d=%.3f", h.K, h.Hit)
	}
	return s + fmt.Sprintf(" minrank=%.2f median=%.1f", r.MinRank.Mean, r.MinRank.Median)
}

// EvaluateAttack computes the attack metrics of a text-to-image attack.
//
// queries are the caption embeddings used as queries (the class-A test
// captions), gallery the image embeddings searched (all test images) and
// targets the gallery indices of the target images (the class-B test images,
// or the single target image for Attack I). Embeddings need not be
// normalised; similarities are cosine similarities ([CosineSimilarity]),
// ranks follow [MinRank] (ties conservative). ks are the Hit@K cut-offs;
// nil or empty means [DefaultKs].
//
// It returns an error for empty queries, gallery or targets, for targets
// out of range and for embeddings of inconsistent dimensions.
func EvaluateAttack(queries, gallery [][]float32, targets []int, ks []int) (*AttackResult, error) {
	if len(queries) == 0 {
		return nil, errors.New("metrics.EvaluateAttack: no queries")
	}
	if len(gallery) == 0 {
		return nil, errors.New("metrics.EvaluateAttack: empty gallery")
	}
	if _, err := vecmath.CommonDim(queries, gallery); err != nil {
		return nil, fmt.Errorf("metrics.EvaluateAttack: %w", err)
	}
	scores := CosineSimilarity(queries, gallery)
	return EvaluateAttackScores(scores, targets, ks)
}

// EvaluateAttackScores is like [EvaluateAttack] but takes an already
// computed score matrix (one row per query, one column per gallery item;
// higher is better), for instance similarities computed on an accelerator.
func EvaluateAttackScores(scores [][]float32, targets []int, ks []int) (*AttackResult, error) {
	if len(scores) == 0 {
		return nil, errors.New("metrics.EvaluateAttackScores: no queries")
	}
	ng := len(scores[0])
	for i, row := range scores {
		if len(row) != ng {
			return nil, fmt.Errorf("metrics.EvaluateAttackScores: score row %d has %d columns, want %d", i, len(row), ng)
		}
	}
	if err := checkTargets(targets, ng); err != nil {
		return nil, fmt.Errorf("metrics.EvaluateAttackScores: %w", err)
	}
	res := AttackResultFromRanks(MinRanks(scores, targets), ks)
	res.NumGallery = ng
	res.NumTargets = countDistinct(targets)
	return res, nil
}

// AttackResultFromRanks builds an [AttackResult] from per-query minranks
// computed elsewhere. NumGallery and NumTargets are left 0 for the caller to
// fill in. ks nil or empty means [DefaultKs].
func AttackResultFromRanks(minRanks []int, ks []int) *AttackResult {
	if len(ks) == 0 {
		ks = DefaultKs
	}
	res := &AttackResult{
		NumQueries: len(minRanks),
		Hits:       make([]HitValue, len(ks)),
		MinRank:    SummarizeRanks(minRanks),
		MinRanks:   slices.Clone(minRanks),
	}
	if res.MinRanks == nil {
		res.MinRanks = []int{}
	}
	for i, k := range ks {
		res.Hits[i] = HitValue{K: k, Hit: HitAtK(minRanks, k)}
	}
	return res
}

func checkTargets(targets []int, n int) error {
	if len(targets) == 0 {
		return errors.New("no target indices")
	}
	for _, t := range targets {
		if t < 0 || t >= n {
			return fmt.Errorf("target index %d out of range [0, %d)", t, n)
		}
	}
	return nil
}

func countDistinct(xs []int) int {
	s := slices.Clone(xs)
	slices.Sort(s)
	return len(slices.Compact(s))
}
