package metrics

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestEmbeddingDistance(t *testing.T) {
	// Distances: same direction 0, orthogonal 1, opposite 2, same direction scaled 0.
	// Sorted [0 0 1 2]: mean 0.75, std √(2.75/4), Q1 (h = 0.75) 0, median 0.5, Q3 (h = 2.25) 1.25.
	clean := [][]float32{{1, 0}, {1, 0}, {0, 1}, {1, 1}}
	poisoned := [][]float32{{1, 0}, {0, 1}, {0, -1}, {2, 2}}
	s, err := EmbeddingDistance(clean, poisoned)
	if err != nil {
		t.Fatal(err)
	}
	want := EmbeddingShift{N: 4, Mean: 0.75, Std: math.Sqrt(2.75 / 4), Min: 0, Q1: 0, Median: 0.5, Q3: 1.25, Max: 2,
		Distances: []float64{0, 1, 2, 0}}
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"mean", s.Mean, want.Mean}, {"std", s.Std, want.Std}, {"min", s.Min, want.Min}, {"q1", s.Q1, want.Q1},
		{"median", s.Median, want.Median}, {"q3", s.Q3, want.Q3}, {"max", s.Max, want.Max}} {
		if !near(c.got, c.want, 1e-12) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if s.N != 4 || len(s.Distances) != 4 {
		t.Fatalf("N %d, %d distances", s.N, len(s.Distances))
	}
	for i, d := range s.Distances {
		if !near(d, want.Distances[i], 1e-7) {
			t.Errorf("distance %d = %v, want %v", i, d, want.Distances[i])
		}
	}
	if str := s.String(); !strings.Contains(str, "n=4 mean=0.7500") {
		t.Errorf("String = %q", str)
	}
}

// TestEmbeddingDistanceProperties: identical embeddings (a frozen tower) are exactly 0 apart, scaling does not
// move an embedding, and a random rotation-free perturbation gives the distance computed by hand.
func TestEmbeddingDistanceProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	a := randMatrix(rng, 200, 16)
	frozen, err := EmbeddingDistance(a, a)
	if err != nil {
		t.Fatal(err)
	}
	if frozen.Max != 0 || frozen.Mean != 0 || frozen.Std != 0 {
		t.Errorf("identical embeddings: %v", frozen)
	}
	scaled := make([][]float32, len(a))
	noisy := make([][]float32, len(a))
	for i, row := range a {
		scaled[i] = make([]float32, len(row))
		noisy[i] = make([]float32, len(row))
		for k, x := range row {
			scaled[i][k] = 3 * x
			noisy[i][k] = x + float32(0.3*rng.NormFloat64())
		}
	}
	s, _ := EmbeddingDistance(a, scaled)
	if s.Max > 1e-6 || s.Min < 0 {
		t.Errorf("scaled embeddings: %v", s)
	}
	n, _ := EmbeddingDistance(a, noisy)
	var sum float64
	for i := range a {
		var dot, na, nb float64
		for k := range a[i] {
			dot += float64(a[i][k]) * float64(noisy[i][k])
			na += float64(a[i][k]) * float64(a[i][k])
			nb += float64(noisy[i][k]) * float64(noisy[i][k])
		}
		d := 1 - dot/math.Sqrt(na*nb)
		if !near(n.Distances[i], d, 1e-9) {
			t.Fatalf("row %d: distance %v, want %v", i, n.Distances[i], d)
		}
		sum += d
	}
	if !near(n.Mean, sum/200, 1e-12) || n.Mean <= 0 || n.Mean > 0.2 || !(n.Min <= n.Q1 && n.Q1 <= n.Median && n.Median <= n.Q3 && n.Q3 <= n.Max) {
		t.Errorf("noisy embeddings: %v", n)
	}
}

func TestTowerDistances(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	img, txt := randMatrix(rng, 30, 8), randMatrix(rng, 50, 8)
	moved := randMatrix(rng, 50, 8)
	ts, err := TowerDistances(img, img, txt, moved)
	if err != nil {
		t.Fatal(err)
	}
	if ts.Image.N != 30 || ts.Text.N != 50 || ts.Image.Mean != 0 || !(ts.Text.Mean > 0.5 && ts.Text.Mean < 1.5) {
		t.Errorf("image %v, text %v", ts.Image, ts.Text)
	}
	nanRow := randMatrix(rng, 50, 8)
	nanRow[17][3] = float32(math.NaN())
	for _, tc := range []struct {
		name                string
		ci, pi, ct, pt      [][]float32
		wantErr, wantErrToo string
	}{
		{"image rows differ", img, img[:29], txt, moved, "image tower", "30 rows vs 29 rows"},
		{"text rows differ", img, img, txt, moved[:3], "text tower", "50 rows vs 3 rows"},
		{"no images", nil, nil, txt, moved, "image tower", "no embeddings"},
		{"text dimension", img, img, txt, randMatrix(rng, 50, 4), "text tower", "dimension 4, want 8"},
		{"NaN", img, img, txt, nanRow, "text tower", "row 17 has a NaN cosine"},
	} {
		_, err := TowerDistances(tc.ci, tc.pi, tc.ct, tc.pt)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.wantErrToo) {
			t.Errorf("%s: error %v, want %q and %q", tc.name, err, tc.wantErr, tc.wantErrToo)
		}
	}
}

func TestSummarizeDistancesAndJSON(t *testing.T) {
	d := []float64{0.4, 0.1, 0.3, 0.2}
	s := SummarizeDistances(d)
	if !near(s.Mean, 0.25, 1e-12) || !near(s.Median, 0.25, 1e-12) || s.Min != 0.1 || s.Max != 0.4 ||
		!near(s.Q1, 0.175, 1e-12) || !near(s.Q3, 0.325, 1e-12) || !slices.Equal(s.Distances, d) {
		t.Errorf("SummarizeDistances(%v) = %+v", d, s)
	}
	d[0] = 9
	if s.Distances[0] != 0.4 {
		t.Error("SummarizeDistances kept the caller's slice")
	}
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back EmbeddingShift
	if err := json.Unmarshal(data, &back); err != nil || back.N != 4 || back.Mean != s.Mean || !slices.Equal(back.Distances, s.Distances) {
		t.Errorf("round trip %s → %+v, %v", data, back, err)
	}
	// An empty summary marshals its undefined statistics as null and reads them back as NaN; no distances key.
	empty := SummarizeDistances(nil)
	empty.Distances = nil
	data, err = json.Marshal(empty)
	if err != nil || !strings.Contains(string(data), `"mean":null`) || strings.Contains(string(data), "distances") {
		t.Fatalf("empty summary JSON %s, %v", data, err)
	}
	if err := json.Unmarshal(data, &back); err != nil || back.N != 0 || !math.IsNaN(back.Mean) || !math.IsNaN(back.Max) {
		t.Errorf("empty round trip: %+v, %v", back, err)
	}
	// Inside a TowerShift the custom encoding is used too.
	data, _ = json.Marshal(TowerShift{Image: &empty, Text: &s})
	if !strings.Contains(string(data), `"image":{"n":0,"mean":null`) || !strings.Contains(string(data), `"distances":[0.4,0.1,0.3,0.2]`) {
		t.Errorf("TowerShift JSON %s", data)
	}
}
