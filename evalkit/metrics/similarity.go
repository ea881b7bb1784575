package metrics

import (
	"fmt"
	"math"
	"runtime"
	"sync"
)

// parallelThreshold is the number of multiply-adds (queries × gallery × dim)
// from which CosineSimilarity splits the work over several goroutines.
const parallelThreshold = 1 << 18

// maxWorkers bounds the number of goroutines used by CosineSimilarity.
const maxWorkers = 8

// CosineSimilarity returns the matrix S of cosine similarities, with
// S[i][j] = cos(queries[i], gallery[j]), shape len(queries) × len(gallery).
//
// Rows are L2-normalised (in float64, then stored as float32) before the dot
// products, so the inputs need not be normalised and are not modified.
// A zero vector (norm 0) has similarity 0 with every vector, including
// another zero vector; NaN components propagate to NaN similarities (which
// [MinRank] ranks last). All rows of both inputs must have the same length;
// CosineSimilarity panics otherwise, since that is a programming error.
// Functions that take user data, such as [EvaluateAttack] and [Recall],
// validate it and return an error instead.
//
// For large inputs the rows of S are computed by a few goroutines (at most
// GOMAXPROCS, and at most 8). The result does not depend on the number of
// goroutines: each entry is always computed by the same sequence of
// operations. The returned rows share one backing array.
func CosineSimilarity(queries, gallery [][]float32) [][]float32 {
	dim, err := commonDim(queries, gallery)
	if err != nil {
		panic("metrics.CosineSimilarity: " + err.Error())
	}
	nq, ng := len(queries), len(gallery)
	out := make([][]float32, nq)
	flat := make([]float32, nq*ng)
	for i := range out {
		out[i] = flat[i*ng : (i+1)*ng : (i+1)*ng]
	}
	if nq == 0 || ng == 0 {
		return out
	}
	qn := normalizeRows(queries, dim)
	gn := normalizeRows(gallery, dim)

	workers := 1
	if nq*ng*max(dim, 1) >= parallelThreshold {
		workers = min(runtime.GOMAXPROCS(0), maxWorkers, nq)
	}
	if workers <= 1 {
		simRows(out, qn, gn, dim, 0, nq)
		return out
	}
	var wg sync.WaitGroup
	chunk := (nq + workers - 1) / workers
	for start := 0; start < nq; start += chunk {
		end := min(start+chunk, nq)
		wg.Add(1)
		go func() {
			defer wg.Done()
			simRows(out, qn, gn, dim, start, end)
		}()
	}
	wg.Wait()
	return out
}

// RowwiseCosine returns cos(a[i], b[i]) for every i: for instance the cosine
// similarity between the clean and the poisoned embedding of the same test
// sample (the paper reports 1 − cos as "cosine distance"). Zero vectors give
// 0. It returns an error when the inputs have different numbers of rows or
// rows of different lengths.
func RowwiseCosine(a, b [][]float32) ([]float64, error) {
	if len(a) != len(b) {
		return nil, fmt.Errorf("metrics.RowwiseCosine: %d rows vs %d rows", len(a), len(b))
	}
	if _, err := commonDim(a, b); err != nil {
		return nil, fmt.Errorf("metrics.RowwiseCosine: %w", err)
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

// commonDim checks that all rows of all matrices have the same length and
// returns it (0 when there are no rows at all).
func commonDim(ms ...[][]float32) (int, error) {
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

// normalizeRows returns a flat, row-major copy of m with every row scaled to
// unit L2 norm (zero rows stay zero).
func normalizeRows(m [][]float32, dim int) []float32 {
	flat := make([]float32, len(m)*dim)
	for i, row := range m {
		var ss float64
		for _, x := range row {
			ss += float64(x) * float64(x)
		}
		dst := flat[i*dim : (i+1)*dim]
		if ss == 0 {
			continue
		}
		inv := 1 / math.Sqrt(ss)
		for k, x := range row {
			dst[k] = float32(float64(x) * inv)
		}
	}
	return flat
}

// simRows fills out[start:end] with the dot products of the normalised query
// rows with the normalised gallery rows.
func simRows(out [][]float32, qn, gn []float32, dim, start, end int) {
	ng := len(out[0])
	for i := start; i < end; i++ {
		q := qn[i*dim : (i+1)*dim : (i+1)*dim]
		row := out[i]
		for j := 0; j < ng; j++ {
			row[j] = dot32(q, gn[j*dim:(j+1)*dim:(j+1)*dim])
		}
	}
}

// dot32 is a float32 dot product with four independent accumulators.
// len(b) must be at least len(a).
func dot32(a, b []float32) float32 {
	var s0, s1, s2, s3 float32
	n := len(a)
	b = b[:n]
	k := 0
	for ; k+4 <= n; k += 4 {
		s0 += a[k] * b[k]
		s1 += a[k+1] * b[k+1]
		s2 += a[k+2] * b[k+2]
		s3 += a[k+3] * b[k+3]
	}
	for ; k < n; k++ {
		s0 += a[k] * b[k]
	}
	return (s0 + s1) + (s2 + s3)
}
