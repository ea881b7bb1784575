// Package vecmath holds the row-wise maths on embedding matrices (one float32 row per image or caption) that
// both a defense and the evaluation need: the cosine, and the cosine distance, of matching rows, and the check
// that rows have one dimension. It sits low in the import graph so that poisoning/defense and evalkit/metrics
// share one implementation.
package vecmath

import (
	"fmt"
	"math"
)

// RowwiseCosine returns cos(a[i], b[i]) for every i: for instance the cosine similarity between the image and
// the caption of pair i, or between the clean and the poisoned embedding of the same input. Rows need not be
// normalised and are not modified. A zero vector gives 0 (whatever the other row holds); otherwise NaN or
// infinite components give NaN. It returns an error when the inputs have different numbers of rows or rows of different lengths.
func RowwiseCosine(a, b [][]float32) ([]float64, error) {
	if len(a) != len(b) {
		return nil, fmt.Errorf("vecmath.RowwiseCosine: %d rows vs %d rows", len(a), len(b))
	}
	if _, err := CommonDim(a, b); err != nil {
		return nil, fmt.Errorf("vecmath.RowwiseCosine: %w", err)
	}
	out := make([]float64, len(a))
	for i := range a {
		var dot, na, nb float64
		for k, x := range a[i] {
			y := float64(b[i][k])
			dot += float64(x) * y
			na += float64(x) * float64(x)
			nb += y * y
		}
		if na == 0 || nb == 0 {
			continue
		}
		out[i] = dot / math.Sqrt(na*nb)
	}
	return out, nil
}

// CosineDistances returns the cosine distance 1 − cos(a[i], b[i]) of every row pair (the paper's "cosine
// distance"), in [0, 2] (rounding is clamped). A zero vector has cosine 0, hence distance 1, with anything;
// otherwise a row with NaN or infinite components gives NaN. Errors are those of [RowwiseCosine].
func CosineDistances(a, b [][]float32) ([]float64, error) {
	cos, err := RowwiseCosine(a, b)
	if err != nil {
		return nil, err
	}
	for i, c := range cos {
		if math.IsNaN(c) || math.IsInf(c, 0) {
			cos[i] = math.NaN()
			continue
		}
		cos[i] = min(max(1-c, 0), 2)
	}
	return cos, nil
}

// CommonDim checks that all rows of all matrices have the same length and returns it (0 when there are no rows
// at all). The error names the first row that differs: "row i of input m has dimension d, want D".
func CommonDim(ms ...[][]float32) (int, error) {
	dim := -1
	for mi, m := range ms {
		for i, row := range m {
			if dim < 0 {
				dim = len(row)
				continue
			}
			if len(row) != dim {
				return 0, fmt.Errorf("row %d of input %d has dimension %d, want %d", i, mi, len(row), dim)
			}
		}
	}
	return max(dim, 0), nil
}
