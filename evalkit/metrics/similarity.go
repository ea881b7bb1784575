package metrics

import (
	"math"
	"runtime"
	"sync"

	"github.com/mmpoison/mmpoison/poisoning/vecmath"
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
	dim, err := vecmath.CommonDim(queries, gallery)
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
