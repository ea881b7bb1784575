package metrics

// How far poisoning moves a model's embeddings, per tower: the paper reports the cosine distance between the
// clean and the poisoned model's embeddings of the same test samples, for images and captions separately, to
// ask which modality the attack changes more. The official code ships no implementation (its evaluation script
// imports scipy.spatial.distance.cosine but never calls it); here the distance of sample i is that function's
// 1 − cos(clean_i, poisoned_i), and the per-tower figure is its mean over the samples, reported with its spread.

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/mmpoison/mmpoison/poisoning/vecmath"
)

// EmbeddingShift summarises per-sample cosine distances 1 − cos(clean_i, poisoned_i) between two models'
// embeddings of the same inputs. Mean is the paper's figure. Distances lie in [0, 2]; 0 means the embedding kept
// its direction.
//
// The statistics are NaN when N is 0 (null in JSON). Std is the population standard deviation; the median and
// quartiles interpolate linearly between order statistics, as [RankStats] does.
type EmbeddingShift struct {
	// N is the number of samples.
	N int `json:"n"`
	// Mean, Std, Min, Q1, Median, Q3 and Max describe the distances.
	Mean   float64 `json:"mean"`
	Std    float64 `json:"std"`
	Min    float64 `json:"min"`
	Q1     float64 `json:"q1"`
	Median float64 `json:"median"`
	Q3     float64 `json:"q3"`
	Max    float64 `json:"max"`
	// Distances are the per-sample distances in input order; set it to nil before marshalling to keep a
	// result small.
	Distances []float64 `json:"distances,omitempty"`
}

// EmbeddingDistance returns the shift between clean[i] and poisoned[i], the embeddings of the same input i by a
// clean and a poisoned model (one tower: all images, or all captions). Embeddings need not be normalised; a zero
// vector has cosine 0, hence distance 1, with anything ([vecmath.CosineDistances]). Errors: no rows, different
// row counts, rows of different lengths, or a NaN distance (named by its row).
func EmbeddingDistance(clean, poisoned [][]float32) (*EmbeddingShift, error) {
	if len(clean) == 0 {
		return nil, errors.New("metrics.EmbeddingDistance: no embeddings")
	}
	d, err := vecmath.CosineDistances(clean, poisoned)
	if err != nil {
		return nil, fmt.Errorf("metrics.EmbeddingDistance: %w", err)
	}
	for i, v := range d {
		if math.IsNaN(v) {
			return nil, fmt.Errorf("metrics.EmbeddingDistance: row %d has a NaN cosine (NaN in an embedding)", i)
		}
	}
	s := SummarizeDistances(d)
	return &s, nil
}

// SummarizeDistances returns the statistics of the distances d (for instance a subset of
// EmbeddingShift.Distances, such as the captions of one class), keeping a copy of d.
func SummarizeDistances(d []float64) EmbeddingShift {
	s := EmbeddingShift{N: len(d), Distances: slices.Clone(d)}
	if len(d) == 0 {
		nan := math.NaN()
		s.Mean, s.Std, s.Min, s.Q1, s.Median, s.Q3, s.Max = nan, nan, nan, nan, nan, nan, nan
		return s
	}
	sorted := slices.Clone(d)
	slices.Sort(sorted)
	var sum float64
	for _, x := range sorted {
		sum += x
	}
	s.Mean = sum / float64(len(sorted))
	var ss float64
	for _, x := range sorted {
		ss += (x - s.Mean) * (x - s.Mean)
	}
	s.Std = math.Sqrt(ss / float64(len(sorted)))
	s.Min, s.Max = sorted[0], sorted[len(sorted)-1]
	s.Q1 = quantileSortedFloat(sorted, 0.25)
	s.Median = quantileSortedFloat(sorted, 0.5)
	s.Q3 = quantileSortedFloat(sorted, 0.75)
	return s
}

// quantileSortedFloat is the p-quantile of sorted values with linear interpolation (numpy's default).
func quantileSortedFloat(sorted []float64, p float64) float64 {
	h := p * float64(len(sorted)-1)
	lo := int(math.Floor(h))
	hi := min(lo+1, len(sorted)-1)
	return sorted[lo] + (h-float64(lo))*(sorted[hi]-sorted[lo])
}

// String returns a one-line human-readable summary.
func (s EmbeddingShift) String() string {
	return fmt.Sprintf("n=%d mean=%.4f std=%.4f min=%.4f median=%.4f max=%.4f", s.N, s.Mean, s.Std, s.Min, s.Median, s.Max)
}

type embeddingShiftJSON struct {
	N         int      `json:"n"`
	Mean      jfloat   `json:"mean"`
	Std       jfloat   `json:"std"`
	Min       jfloat   `json:"min"`
	Q1        jfloat   `json:"q1"`
	Median    jfloat   `json:"median"`
	Q3        jfloat   `json:"q3"`
	Max       jfloat   `json:"max"`
	Distances []jfloat `json:"distances,omitempty"`
}

// MarshalJSON implements [json.Marshaler], writing NaN and infinite values as null.
func (s EmbeddingShift) MarshalJSON() ([]byte, error) {
	aux := embeddingShiftJSON{N: s.N, Mean: jfloat(s.Mean), Std: jfloat(s.Std), Min: jfloat(s.Min), Q1: jfloat(s.Q1),
		Median: jfloat(s.Median), Q3: jfloat(s.Q3), Max: jfloat(s.Max)}
	if s.Distances != nil {
		aux.Distances = toJFloats(s.Distances)
	}
	return json.Marshal(aux)
}

// UnmarshalJSON implements [json.Unmarshaler]; null (or missing) statistics become NaN.
func (s *EmbeddingShift) UnmarshalJSON(data []byte) error {
	nan := jfloat(math.NaN())
	aux := embeddingShiftJSON{Mean: nan, Std: nan, Min: nan, Q1: nan, Median: nan, Q3: nan, Max: nan}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	*s = EmbeddingShift{N: aux.N, Mean: float64(aux.Mean), Std: float64(aux.Std), Min: float64(aux.Min),
		Q1: float64(aux.Q1), Median: float64(aux.Median), Q3: float64(aux.Q3), Max: float64(aux.Max),
		Distances: fromJFloats(aux.Distances)}
	return nil
}

// TowerShift is the clean-vs-poisoned embedding distance of each tower.
type TowerShift struct {
	// Image is the shift of the image embeddings (the visual tower), Text that of the caption embeddings.
	Image *EmbeddingShift `json:"image"`
	Text  *EmbeddingShift `json:"text"`
}

// TowerDistances returns the clean-vs-poisoned embedding distance of both towers: cleanImages[i] and
// poisonedImages[i] embed the same test image by the clean and the poisoned model, cleanTexts[j] and
// poisonedTexts[j] the same caption. A frozen tower has distance 0 on every sample. Errors are those of
// EmbeddingDistance, naming the tower.
func TowerDistances(cleanImages, poisonedImages, cleanTexts, poisonedTexts [][]float32) (*TowerShift, error) {
	img, err := EmbeddingDistance(cleanImages, poisonedImages)
	if err != nil {
		return nil, fmt.Errorf("image tower: %w", err)
	}
	txt, err := EmbeddingDistance(cleanTexts, poisonedTexts)
	if err != nil {
		return nil, fmt.Errorf("text tower: %w", err)
	}
	return &TowerShift{Image: img, Text: txt}, nil
}
