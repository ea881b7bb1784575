package defense

import (
	"fmt"

	"github.com/mmpoison/mmpoison/poisoning/vecmath"
)

// PairDistances returns the cosine distance 1 − cos(imageEmb[i], textEmb[i]) of every pair i, where imageEmb[i]
// and textEmb[i] are the embeddings of pair i's image and caption by an independent clean model (the caller
// embeds; rows need not be normalised and are not modified).
//
// Distances lie in [0, 2] (rounding is clamped). A zero vector has cosine 0 with everything, so its pair gets
// distance 1. A row with NaN or infinite components gives a NaN distance, which [Filter] drops as unscored.
// PairDistances returns an error when the two inputs have different numbers of rows or rows of different
// lengths.
func PairDistances(imageEmb, textEmb [][]float32) ([]float64, error) {
	if len(imageEmb) != len(textEmb) {
		return nil, fmt.Errorf("defense.PairDistances: %d image embeddings vs %d text embeddings", len(imageEmb), len(textEmb))
	}
	dist, err := vecmath.CosineDistances(imageEmb, textEmb)
	if err != nil {
		return nil, fmt.Errorf("defense.PairDistances: %w", err)
	}
	return dist, nil
}
