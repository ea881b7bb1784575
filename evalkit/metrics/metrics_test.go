package metrics

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// handQueries are four query vectors in R^6. With the one-hot gallery
// handGallery (the identity), cos(q, e_j) = q_j/|q|: the ranking of the
// gallery for a query is the ranking of its components.
//
// Targets are gallery items 4 and 5 (think: the class-B images).
//
//	q0 = [0.9 0.1 0.2 0.3 0.8 0.05]: best target 0.8 (item 4); only 0.9 is
//	     higher                                        → minrank 1
//	q1 = [0.1 0.2 0.3 0.4 0.5 0.6]:  best target 0.6 is the top score → 0
//	q2 = [0.7 0.6 0.5 0.4 0.3 0.2]:  best target 0.3; 0.7 0.6 0.5 0.4 higher → 4
//	q3 = [0.5 0.5 0.1 0.2 0.1 0.5]:  best target 0.5 (item 5) ties with the
//	     non-targets 0 and 1; conservative tie rule puts it after them → 2
//
// minranks = [1 0 4 2], sorted [0 1 2 4]:
//
//	Hit@1 = 1/4, Hit@2 = 2/4, Hit@3 = 3/4, Hit@5 = 4/4
//	mean = 7/4 = 1.75, median = (1+2)/2 = 1.5
//	std (population) = sqrt((1.75² + 0.75² + 0.25² + 2.25²)/4) = sqrt(2.1875)
//	Q1 at h = 0.75: 0 + 0.75·(1−0) = 0.75; Q3 at h = 2.25: 2 + 0.25·(4−2) = 2.5
//	counts = [1 1 1 0 1]
var handQueries = [][]float32{
	{0.9, 0.1, 0.2, 0.3, 0.8, 0.05},
	{0.1, 0.2, 0.3, 0.4, 0.5, 0.6},
	{0.7, 0.6, 0.5, 0.4, 0.3, 0.2},
	{0.5, 0.5, 0.1, 0.2, 0.1, 0.5},
}

var handTargets = []int{4, 5}

var handRanks = []int{1, 0, 4, 2}

func identity(n int) [][]float32 {
	m := make([][]float32, n)
	for i := range m {
		m[i] = make([]float32, n)
		m[i][i] = 1
	}
	return m
}

func randMatrix(rng *rand.Rand, n, dim int) [][]float32 {
	m := make([][]float32, n)
	for i := range m {
		m[i] = make([]float32, dim)
		for k := range m[i] {
			m[i][k] = float32(rng.NormFloat64())
		}
	}
	return m
}

func near(a, b, tol float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= tol
}

func TestCosineSimilarity(t *testing.T) {
	tests := []struct {
		name    string
		q, g    [][]float32
		want    [][]float32
		wantTol float64
	}{
		{"orthogonal", [][]float32{{1, 0}}, [][]float32{{0, 3}}, [][]float32{{0}}, 1e-7},
		{"scaled identical", [][]float32{{2, 0}}, [][]float32{{5, 0}}, [][]float32{{1}}, 1e-7},
		{"opposite", [][]float32{{1, 1}}, [][]float32{{-2, -2}}, [][]float32{{-1}}, 1e-6},
		{"45 degrees", [][]float32{{1, 0}}, [][]float32{{1, 1}}, [][]float32{{float32(math.Sqrt2 / 2)}}, 1e-6},
		{"zero query gives 0", [][]float32{{0, 0}}, [][]float32{{1, 0}, {0, 0}}, [][]float32{{0, 0}}, 0},
		{"3x2", [][]float32{{1, 0}, {0, 1}, {3, 4}}, [][]float32{{1, 0}, {0, 2}},
			[][]float32{{1, 0}, {0, 1}, {0.6, 0.8}}, 1e-6},
		{"empty queries", [][]float32{}, [][]float32{{1}}, [][]float32{}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := CosineSimilarity(tc.q, tc.g)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d rows, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if len(got[i]) != len(tc.want[i]) {
					t.Fatalf("row %d: got %d cols, want %d", i, len(got[i]), len(tc.want[i]))
				}
				for j := range got[i] {
					if !near(float64(got[i][j]), float64(tc.want[i][j]), tc.wantTol) {
						t.Errorf("S[%d][%d] = %v, want %v", i, j, got[i][j], tc.want[i][j])
					}
				}
			}
		})
	}
}

func TestCosineSimilarityDimMismatchPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("expected a panic for mismatched dimensions")
		}
	}()
	CosineSimilarity([][]float32{{1, 2}}, [][]float32{{1, 2, 3}})
}

// The parallel path must give exactly the serial result.
func TestCosineSimilarityParallelMatchesSerial(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	q := randMatrix(rng, 300, 32)
	g := randMatrix(rng, 200, 32)
	if 300*200*32 < parallelThreshold {
		t.Fatal("test does not exercise the parallel path")
	}
	prev := runtime.GOMAXPROCS(4)
	par := CosineSimilarity(q, g)
	runtime.GOMAXPROCS(1)
	ser := CosineSimilarity(q, g)
	runtime.GOMAXPROCS(prev)
	for i := range par {
		for j := range par[i] {
			if par[i][j] != ser[i][j] {
				t.Fatalf("S[%d][%d]: parallel %v != serial %v", i, j, par[i][j], ser[i][j])
			}
		}
	}
	// Spot-check against a float64 reference.
	for _, ij := range [][2]int{{0, 0}, {17, 123}, {299, 199}} {
		i, j := ij[0], ij[1]
		var dot, nq, ng float64
		for k := range q[i] {
			dot += float64(q[i][k]) * float64(g[j][k])
			nq += float64(q[i][k]) * float64(q[i][k])
			ng += float64(g[j][k]) * float64(g[j][k])
		}
		if want := dot / math.Sqrt(nq*ng); !near(float64(par[i][j]), want, 1e-5) {
			t.Errorf("S[%d][%d] = %v, want %v", i, j, par[i][j], want)
		}
	}
}

func TestMinRank(t *testing.T) {
	nan := float32(math.NaN())
	tests := []struct {
		name    string
		scores  []float32
		targets []int
		want    int
	}{
		{"hand q0", handQueries[0], handTargets, 1},
		{"hand q1", handQueries[1], handTargets, 0},
		{"hand q2", handQueries[2], handTargets, 4},
		{"hand q3 tie with two non-targets", handQueries[3], handTargets, 2},
		{"single target top", []float32{0.1, 0.9, 0.5}, []int{1}, 0},
		{"single target last", []float32{0.1, 0.9, 0.5}, []int{0}, 2},
		{"all equal: after every non-target", []float32{1, 1, 1, 1}, []int{2}, 3},
		{"targets tied with each other only", []float32{0.9, 0.9, 0.1}, []int{0, 1}, 0},
		{"targets tied with each other and a non-target", []float32{0.9, 0.9, 0.9, 0.1}, []int{0, 1}, 1},
		{"duplicate targets", []float32{0.5, 0.9, 0.5}, []int{2, 2, 0}, 1},
		{"negative scores", []float32{-0.3, -0.1, -0.2}, []int{0}, 2},
		{"NaN non-target never outranks", []float32{nan, 0.1, 0.2}, []int{1}, 1},
		{"NaN target ranks last", []float32{nan, 0.1, 0.2}, []int{0}, 2},
		{"NaN target with a better target", []float32{nan, 0.1, 0.2}, []int{0, 1}, 1},
		{"single item", []float32{0.3}, []int{0}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := MinRank(tc.scores, tc.targets); got != tc.want {
				t.Errorf("MinRank(%v, %v) = %d, want %d", tc.scores, tc.targets, got, tc.want)
			}
		})
	}
}

// MinRank must agree with a brute-force definition: stable sort by score
// descending with non-targets first among ties.
func TestMinRankMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for trial := 0; trial < 500; trial++ {
		n := 1 + rng.IntN(30)
		scores := make([]float32, n)
		for i := range scores {
			scores[i] = float32(rng.IntN(5)) / 4 // many ties
		}
		nt := 1 + rng.IntN(n)
		targets := make([]int, nt)
		isTarget := make([]bool, n)
		for i := range targets {
			targets[i] = rng.IntN(n)
			isTarget[targets[i]] = true
		}
		want := n
		for _, tt := range targets {
			r := 0
			for j := range scores {
				if j == tt {
					continue
				}
				if scores[j] > scores[tt] || (scores[j] == scores[tt] && !isTarget[j]) {
					r++
				}
			}
			// Other targets above tt do not matter: the best target is counted.
			better := false
			for _, u := range targets {
				if scores[u] > scores[tt] {
					better = true
				}
			}
			if !better && r < want {
				want = r
			}
		}
		if got := MinRank(scores, targets); got != want {
			t.Fatalf("trial %d: MinRank(%v, %v) = %d, want %d", trial, scores, targets, got, want)
		}
	}
}

func TestMinRankPanics(t *testing.T) {
	for _, tc := range []struct {
		name    string
		targets []int
	}{{"empty", nil}, {"negative", []int{-1}}, {"too large", []int{3}}} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("expected a panic")
				}
			}()
			MinRank([]float32{1, 2, 3}, tc.targets)
		})
	}
}

func TestHitAtK(t *testing.T) {
	tests := []struct {
		ranks []int
		k     int
		want  float64
	}{
		{handRanks, 0, 0},
		{handRanks, 1, 0.25},
		{handRanks, 2, 0.5},
		{handRanks, 3, 0.75},
		{handRanks, 4, 0.75},
		{handRanks, 5, 1},
		{handRanks, 50, 1},
		{[]int{10, 20}, 10, 0},
		{[]int{}, 1, math.NaN()},
	}
	for _, tc := range tests {
		if got := HitAtK(tc.ranks, tc.k); !near(got, tc.want, 1e-12) {
			t.Errorf("HitAtK(%v, %d) = %v, want %v", tc.ranks, tc.k, got, tc.want)
		}
	}
}

func TestChance(t *testing.T) {
	tests := []struct {
		n, m, k int
		want    float64
	}{
		{10, 1, 1, 0.1},
		{10, 1, 5, 0.5},
		{10, 2, 1, 0.2},
		{10, 2, 2, 1 - (8.0/10)*(7.0/9)},
		{10, 2, 9, 1},
		{10, 10, 1, 1},
		{10, 3, 0, 0},
		{10, 0, 1, math.NaN()},
		{10, 11, 1, math.NaN()},
	}
	for _, tc := range tests {
		if got := ChanceHitAtK(tc.n, tc.m, tc.k); !near(got, tc.want, 1e-12) {
			t.Errorf("ChanceHitAtK(%d, %d, %d) = %v, want %v", tc.n, tc.m, tc.k, got, tc.want)
		}
	}
	if got := ChanceMinRank(100, 1); got != 49.5 {
		t.Errorf("ChanceMinRank(100, 1) = %v, want 49.5", got)
	}
	if got := ChanceMinRank(10, 4); got != 6.0/5 {
		t.Errorf("ChanceMinRank(10, 4) = %v, want 1.2", got)
	}
	// Cross-check ChanceMinRank against the mean of the chance distribution:
	// E[minrank] = sum_{k>=1} P(minrank >= k) = sum_k (1 - ChanceHitAtK(k)).
	n, m := 40, 3
	var e float64
	for k := 1; k <= n; k++ {
		e += 1 - ChanceHitAtK(n, m, k)
	}
	if !near(e, ChanceMinRank(n, m), 1e-9) {
		t.Errorf("sum of tail probabilities %v != ChanceMinRank %v", e, ChanceMinRank(n, m))
	}
}

func TestSummarizeRanks(t *testing.T) {
	tests := []struct {
		name  string
		ranks []int
		want  RankStats
	}{
		{"hand", handRanks, RankStats{N: 4, Mean: 1.75, Std: math.Sqrt(2.1875), Min: 0, Q1: 0.75,
			Median: 1.5, Q3: 2.5, Max: 4, Counts: []int{1, 1, 1, 0, 1}}},
		{"single", []int{7}, RankStats{N: 1, Mean: 7, Std: 0, Min: 7, Q1: 7, Median: 7, Q3: 7, Max: 7,
			Counts: []int{0, 0, 0, 0, 0, 0, 0, 1}}},
		{"odd", []int{3, 1, 2}, RankStats{N: 3, Mean: 2, Std: math.Sqrt(2.0 / 3), Min: 1, Q1: 1.5,
			Median: 2, Q3: 2.5, Max: 3, Counts: []int{0, 1, 1, 1}}},
		{"empty", nil, RankStats{N: 0, Mean: math.NaN(), Std: math.NaN(), Q1: math.NaN(),
			Median: math.NaN(), Q3: math.NaN(), Counts: []int{}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := SummarizeRanks(tc.ranks)
			w := tc.want
			if got.N != w.N || got.Min != w.Min || got.Max != w.Max ||
				!near(got.Mean, w.Mean, 1e-12) || !near(got.Std, w.Std, 1e-12) ||
				!near(got.Q1, w.Q1, 1e-12) || !near(got.Median, w.Median, 1e-12) || !near(got.Q3, w.Q3, 1e-12) {
				t.Errorf("got %v\nwant %v", got, w)
			}
			if len(got.Counts) != len(w.Counts) {
				t.Fatalf("counts %v, want %v", got.Counts, w.Counts)
			}
			for i := range w.Counts {
				if got.Counts[i] != w.Counts[i] {
					t.Fatalf("counts %v, want %v", got.Counts, w.Counts)
				}
			}
		})
	}
	in := []int{3, 1, 2}
	SummarizeRanks(in)
	if in[0] != 3 || in[1] != 1 {
		t.Error("SummarizeRanks modified its input")
	}
	if q := Quantile([]int{0, 10}, 0.3); !near(q, 3, 1e-12) {
		t.Errorf("Quantile = %v, want 3", q)
	}
	if q := Quantile([]int{1}, 1.5); !math.IsNaN(q) {
		t.Errorf("Quantile(p=1.5) = %v, want NaN", q)
	}
}

func TestEvaluateAttackHand(t *testing.T) {
	res, err := EvaluateAttack(handQueries, identity(6), handTargets, []int{1, 2, 3, 5})
	if err != nil {
		t.Fatal(err)
	}
	if res.NumQueries != 4 || res.NumGallery != 6 || res.NumTargets != 2 {
		t.Errorf("counts: %+v", res)
	}
	for i, r := range handRanks {
		if res.MinRanks[i] != r {
			t.Fatalf("minranks %v, want %v", res.MinRanks, handRanks)
		}
	}
	wantHits := map[int]float64{1: 0.25, 2: 0.5, 3: 0.75, 5: 1}
	for k, want := range wantHits {
		if got, ok := res.HitAt(k); !ok || got != want {
			t.Errorf("Hit@%d = %v (%v), want %v", k, got, ok, want)
		}
	}
	if _, ok := res.HitAt(10); ok {
		t.Error("Hit@10 was not requested but found")
	}
	if res.MinRank.Mean != 1.75 || res.MinRank.Median != 1.5 {
		t.Errorf("MinRank stats %v", res.MinRank)
	}
	// Default Ks.
	res, err = EvaluateAttack(handQueries, identity(6), handTargets, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) != len(DefaultKs) || res.Hits[0].K != 1 || res.Hits[5].K != 50 {
		t.Errorf("default hits %+v", res.Hits)
	}
	// Attack I: one target image (item 0).
	res, err = EvaluateAttack(handQueries, identity(6), []int{0}, []int{1})
	if err != nil {
		t.Fatal(err)
	}
	// q0: 0.9 top → 0; q1: 0.1 last → 5; q2: 0.7 top → 0; q3: 0.5 ties with items 1, 5 → 2.
	if want := []int{0, 5, 0, 2}; !equalInts(res.MinRanks, want) {
		t.Errorf("Attack I minranks %v, want %v", res.MinRanks, want)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestEvaluateAttackErrors(t *testing.T) {
	g := identity(3)
	tests := []struct {
		name    string
		q, g    [][]float32
		targets []int
	}{
		{"no queries", nil, g, []int{0}},
		{"empty gallery", [][]float32{{1, 0, 0}}, nil, []int{0}},
		{"no targets", [][]float32{{1, 0, 0}}, g, nil},
		{"target out of range", [][]float32{{1, 0, 0}}, g, []int{3}},
		{"dim mismatch", [][]float32{{1, 0}}, g, []int{0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := EvaluateAttack(tc.q, tc.g, tc.targets, nil); err == nil {
				t.Error("expected an error")
			}
		})
	}
	if _, err := EvaluateAttackScores([][]float32{{1, 2}, {1}}, []int{0}, nil); err == nil {
		t.Error("expected an error for ragged scores")
	}
}

func TestAttackResultJSON(t *testing.T) {
	res, err := EvaluateAttack(handQueries, identity(6), handTargets, []int{1, 5})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{`"num_queries":4`, `"hits":[{"k":1,"hit":0.25},{"k":5,"hit":1}]`,
		`"min_rank":{"n":4,"mean":1.75`, `"median":1.5`, `"counts":[1,1,1,0,1]`, `"min_ranks":[1,0,4,2]`} {
		if !strings.Contains(s, want) {
			t.Errorf("JSON %s\ndoes not contain %s", s, want)
		}
	}
	var back AttackResult
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.MinRank.Mean != 1.75 || back.Hits[0].Hit != 0.25 || !equalInts(back.MinRanks, handRanks) {
		t.Errorf("round trip: %+v", back)
	}

	// No queries: NaN everywhere must become null, and back NaN.
	empty := AttackResultFromRanks(nil, []int{1})
	b, err = json.Marshal(empty)
	if err != nil {
		t.Fatal(err)
	}
	s = string(b)
	if strings.Contains(s, "NaN") || !strings.Contains(s, `"hit":null`) || !strings.Contains(s, `"mean":null`) {
		t.Errorf("empty result JSON %s", s)
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(back.Hits[0].Hit) || !math.IsNaN(back.MinRank.Median) {
		t.Errorf("null did not come back as NaN: %+v", back)
	}
}

func TestRecall(t *testing.T) {
	// Three images on the axes of R^3; five captions.
	//   caption 0 (image 0) = [1, 0, 0]      → image 0 first          IR rank 0
	//   caption 1 (image 0) = [0, 1, 0.1]    → img1 .995, img2 .0995, img0 0 → rank 2
	//   caption 2 (image 1) = [0.5, 1, 0]    → img1 .894, img0 .447 → rank 0
	//   caption 3 (image 2) = [1, 0, 0.9]    → img0 .743, img2 .669 → rank 1
	//   caption 4 (image 2) = [0, 0, 1]      → img2 first             rank 0
	// IR ranks [0 2 0 1 0]: R@1 = 3/5, R@2 = 4/5, R@3 = 1.
	//
	// TR, rows of the image × caption similarity (cos = component / |caption|):
	//   image 0: c0 1, c1 0, c2 .447, c3 .743, c4 0. Own {c0, c1}: c0 top → 0
	//   image 1: c0 0, c1 .995, c2 .894, c3 0, c4 0.  Own {c2}: c1 higher → 1
	//   image 2: c0 0, c1 .0995, c2 0, c3 .669, c4 1. Own {c3, c4}: c4 top → 0
	// TR ranks [0 1 0]: R@1 = 2/3, R@2 = 1, R@3 = 1.
	images := identity(3)
	captions := [][]float32{{1, 0, 0}, {0, 1, 0.1}, {0.5, 1, 0}, {1, 0, 0.9}, {0, 0, 1}}
	owner := []int{0, 0, 1, 2, 2}
	res, err := Recall(images, captions, owner, []int{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	wantTR := []float64{2.0 / 3, 1, 1}
	wantIR := []float64{3.0 / 5, 4.0 / 5, 1}
	for i, k := range []int{1, 2, 3} {
		if got := res.TR(k); !near(got, wantTR[i], 1e-12) {
			t.Errorf("TR@%d = %v, want %v", k, got, wantTR[i])
		}
		if got := res.IR(k); !near(got, wantIR[i], 1e-12) {
			t.Errorf("IR@%d = %v, want %v", k, got, wantIR[i])
		}
	}
	if res.NumImages != 3 || res.NumCaptions != 5 {
		t.Errorf("counts %d images, %d captions", res.NumImages, res.NumCaptions)
	}
	if !math.IsNaN(res.TR(10)) {
		t.Error("TR(10) was not evaluated and should be NaN")
	}
}

func TestRecallIdentityIsPerfect(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	images := randMatrix(rng, 50, 16)
	// Five captions per image, each exactly its image's embedding (scaled).
	var captions [][]float32
	var owner []int
	for i, img := range images {
		for c := 0; c < 5; c++ {
			cap := make([]float32, len(img))
			for k, x := range img {
				cap[k] = x * float32(c+1)
			}
			captions = append(captions, cap)
			owner = append(owner, i)
		}
	}
	res, err := Recall(images, captions, owner, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Ks) != 3 {
		t.Fatalf("default Ks %v", res.Ks)
	}
	for i, k := range res.Ks {
		if res.ImageToText[i] != 1 || res.TextToImage[i] != 1 {
			t.Errorf("Recall@%d: TR %v IR %v, want 1", k, res.ImageToText[i], res.TextToImage[i])
		}
	}
	// Shuffling the owners must break it.
	bad := append([]int(nil), owner...)
	for c := range bad {
		bad[c] = (bad[c] + 1) % len(images)
	}
	res, err = Recall(images, captions, bad, []int{1})
	if err != nil {
		t.Fatal(err)
	}
	if res.TR(1) > 0.2 || res.IR(1) > 0.2 {
		t.Errorf("wrong owners still give TR %v IR %v", res.TR(1), res.IR(1))
	}
}

func TestRecallErrorsAndJSON(t *testing.T) {
	img := identity(2)
	if _, err := Recall(img, [][]float32{{1, 0}}, []int{0, 1}, nil); err == nil {
		t.Error("expected an error for owner length mismatch")
	}
	if _, err := Recall(img, [][]float32{{1, 0}}, []int{2}, nil); err == nil {
		t.Error("expected an error for owner out of range")
	}
	if _, err := Recall(img, [][]float32{{1, 0, 0}}, []int{0}, nil); err == nil {
		t.Error("expected an error for dimension mismatch")
	}
	if _, err := Recall(nil, [][]float32{{1, 0}}, []int{0}, nil); err == nil {
		t.Error("expected an error for no images")
	}
	// Image 1 has no caption: left out of TR.
	res, err := Recall(img, [][]float32{{1, 0}}, []int{0}, []int{1})
	if err != nil {
		t.Fatal(err)
	}
	if res.NumImages != 1 || res.TR(1) != 1 {
		t.Errorf("TR over captioned images only: %+v", res)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"ks":[1],"image_to_text":[1],"text_to_image":[1],"num_images":1,"num_captions":1}`; string(b) != want {
		t.Errorf("JSON %s, want %s", b, want)
	}
	nanRes := RecallResult{Ks: []int{1}, ImageToText: []float64{math.NaN()}, TextToImage: []float64{0.5}}
	b, err = json.Marshal(nanRes)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"image_to_text":[null]`) {
		t.Errorf("NaN not written as null: %s", b)
	}
	var back RecallResult
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(back.ImageToText[0]) || back.TextToImage[0] != 0.5 {
		t.Errorf("round trip %+v", back)
	}
}

func BenchmarkCosineAndRanks(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	q := randMatrix(rng, 1000, 64)
	g := randMatrix(rng, 1000, 64)
	targets := make([]int, 50)
	for i := range targets {
		targets[i] = i * 20
	}
	b.ResetTimer()
	for b.Loop() {
		s := CosineSimilarity(q, g)
		ranks := MinRanks(s, targets)
		_ = SummarizeRanks(ranks)
	}
}

func TestTopK(t *testing.T) {
	nan := float32(math.NaN())
	tests := []struct {
		name   string
		scores []float32
		k      int
		want   []int
	}{
		{"best first", []float32{0.1, 0.9, 0.5}, 2, []int{1, 2}},
		{"ties keep index order", []float32{0.5, 0.7, 0.5, 0.7}, 3, []int{1, 3, 0}},
		{"NaN last", []float32{nan, 0.2, -1}, 3, []int{1, 2, 0}},
		{"k above length", []float32{1, 2}, 5, []int{1, 0}},
		{"k zero", []float32{1, 2}, 0, []int{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := TopK(tc.scores, tc.k); !slices.Equal(got, tc.want) {
				t.Errorf("TopK(%v, %d) = %v, want %v", tc.scores, tc.k, got, tc.want)
			}
		})
	}
}
