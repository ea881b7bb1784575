package metrics

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// Three classes along the axes of R^3; class 2 is the backdoor's target.
//
//	triggered[0] = [0 0 1]: only the target scores          → 2, hit
//	triggered[1] = [1 0 2]: target 2/√5 beats class 0 1/√5  → 2, hit
//	triggered[2] = [1 0 1]: target ties class 0             → 0 (conservative), no hit
//	triggered[3] = [0 3 1]: class 1 3/√10 beats 1/√10       → 1
//	clean[0] = [1 0 0] → 0; clean[1] = [0 1 0] → 1; clean[2] = [0 0 0]: all tie → 0
var (
	bdClasses   = [][]float32{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}
	bdTriggered = [][]float32{{0, 0, 1}, {1, 0, 2}, {1, 0, 1}, {0, 3, 1}}
	bdClean     = [][]float32{{1, 0, 0}, {0, 1, 0}, {0, 0, 0}}
)

func TestBackdoorZeroShot(t *testing.T) {
	res, err := BackdoorZeroShot(bdTriggered, bdClean, bdClasses, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := &BackdoorZeroShotResult{
		Target: 2, NumClasses: 3,
		Triggered: ZeroShotRate{N: 4, Hits: 2, Rate: 0.5, Predicted: []int{2, 2, 0, 1}, ClassCounts: []int{1, 1, 2}},
		Clean:     &ZeroShotRate{N: 3, Hits: 0, Rate: 0, Predicted: []int{0, 1, 0}, ClassCounts: []int{2, 1, 0}},
	}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("got %+v\nwant %+v", res, want)
	}
	if g := res.Gain(); g != 0.5 {
		t.Errorf("Gain = %v", g)
	}
	if s := res.String(); !strings.Contains(s, "triggered 2/4 = 0.500") || !strings.Contains(s, "clean 0/3 = 0.000") {
		t.Errorf("String = %q", s)
	}
	// The same images seen from class 0 as target: the tie of triggered[2] now goes to class 2.
	res0, _ := BackdoorZeroShot(bdTriggered, nil, bdClasses, 0)
	if !slices.Equal(res0.Triggered.Predicted, []int{2, 2, 2, 1}) || res0.Triggered.Hits != 0 || res0.Clean != nil || res0.Gain() != 0 {
		t.Errorf("target 0: %+v", res0)
	}
	data, err := json.Marshal(res0)
	if err != nil || strings.Contains(string(data), "clean") || !strings.Contains(string(data), `"rate":0`) {
		t.Errorf("JSON %s, %v", data, err)
	}
}

func TestZeroShotClassify(t *testing.T) {
	nan := float32(math.NaN())
	got, err := ZeroShotClassify([][]float32{{0, 0, 1}, {1, 0, 1}, {0, 1, 1}, {-1, -1, -1}, {nan, 0, 0}, {0, 0, 0}}, bdClasses)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{2, 0, 1, 0, 0, 0}; !slices.Equal(got, want) {
		t.Errorf("ZeroShotClassify = %v, want %v", got, want)
	}
	// NaN similarities rank last.
	got, _ = ZeroShotClassify([][]float32{{1, 1}}, [][]float32{{nan, 0}, {0, 1}})
	if !slices.Equal(got, []int{1}) {
		t.Errorf("NaN class won: %v", got)
	}
}

// TestBackdoorZeroShotMatchesMinRank: on random embeddings, an image is a hit exactly when the target's MinRank
// among the classes is 0, and the predicted class is the most similar one.
func TestBackdoorZeroShotMatchesMinRank(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	images, classes := randMatrix(rng, 300, 8), randMatrix(rng, 10, 8)
	// Near ties with the target: images halfway between the target and another class.
	for i := range 20 {
		for k := range images[i] {
			images[i][k] = classes[4][k]/norm(classes[4]) + classes[i%4][k]/norm(classes[i%4])
		}
	}
	res, err := BackdoorZeroShot(images, images, classes, 4)
	if err != nil {
		t.Fatal(err)
	}
	sim := CosineSimilarity(images, classes)
	plain, _ := ZeroShotClassify(images, classes)
	hits := 0
	for i, row := range sim {
		hit := MinRank(row, []int{4}) == 0
		if hit {
			hits++
		}
		if (res.Triggered.Predicted[i] == 4) != hit {
			t.Errorf("image %d: predicted %d, target minrank %d", i, res.Triggered.Predicted[i], MinRank(row, []int{4}))
		}
		best := slices.IndexFunc(row, func(s float32) bool { return s == slices.Max(row) })
		if plain[i] != best {
			t.Errorf("image %d: ZeroShotClassify %d, argmax %d", i, plain[i], best)
		}
	}
	if res.Triggered.Hits != hits || res.Clean.Hits != hits || res.Triggered.Rate != float64(hits)/300 || hits == 0 {
		t.Errorf("%d hits, want %d", res.Triggered.Hits, hits)
	}
	sum := 0
	for _, c := range res.Triggered.ClassCounts {
		sum += c
	}
	if sum != 300 {
		t.Errorf("class counts sum to %d", sum)
	}
}

func norm(v []float32) float32 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return float32(math.Sqrt(s))
}

func TestBackdoorRetrieval(t *testing.T) {
	// Captions along the axes of R^5; captions 3 and 4 are of the target class.
	captions := identity(5)
	triggered := [][]float32{
		{0, 0, 0, 1, 0},           // a target caption first → 0
		{1, 0, 0, 0.5, 0},         // caption 0 ahead of caption 3 → 1
		{0.9, 0.8, 0.7, 0.1, 0.2}, // best target 0.2 behind three others → 3
	}
	clean := [][]float32{{1, 0, 0, 0, 0}} // targets score 0, tied with captions 1 and 2 → 3
	res, err := BackdoorRetrieval(triggered, clean, captions, []int{3, 4, 4}, []int{1, 2, 5})
	if err != nil {
		t.Fatal(err)
	}
	if res.NumGallery != 5 || res.NumTargets != 2 || !slices.Equal(res.Triggered.MinRanks, []int{0, 1, 3}) ||
		!slices.Equal(res.Clean.MinRanks, []int{3}) {
		t.Fatalf("result %+v, triggered %v, clean %v", res, res.Triggered.MinRanks, res.Clean.MinRanks)
	}
	for _, c := range []struct {
		r    *AttackResult
		k    int
		want float64
	}{{res.Triggered, 1, 1.0 / 3}, {res.Triggered, 2, 2.0 / 3}, {res.Triggered, 5, 1}, {res.Clean, 2, 0}, {res.Clean, 5, 1}} {
		if got, ok := c.r.HitAt(c.k); !ok || !near(got, c.want, 1e-12) {
			t.Errorf("Hit@%d = %v, want %v", c.k, got, c.want)
		}
	}
	// Without a baseline, and with the default cut-offs.
	res, err = BackdoorRetrieval(triggered, nil, captions, []int{3}, nil)
	if err != nil || res.Clean != nil || len(res.Triggered.Hits) != len(DefaultKs) {
		t.Fatalf("no baseline: %+v, %v", res, err)
	}
	data, _ := json.Marshal(res)
	if strings.Contains(string(data), `"clean"`) {
		t.Errorf("JSON has a clean result: %s", data)
	}
}

func TestBackdoorMetricErrors(t *testing.T) {
	tests := []struct {
		name    string
		run     func() error
		wantErr string
	}{
		{"zero-shot: no triggered images", func() error { _, err := BackdoorZeroShot(nil, bdClean, bdClasses, 0); return err }, "no triggered images"},
		{"zero-shot: one class", func() error { _, err := BackdoorZeroShot(bdTriggered, nil, bdClasses[:1], 0); return err }, "1 class embeddings, need at least 2"},
		{"zero-shot: target out of range", func() error { _, err := BackdoorZeroShot(bdTriggered, nil, bdClasses, 3); return err }, "target class 3 out of range [0, 3)"},
		{"zero-shot: negative target", func() error { _, err := BackdoorZeroShot(bdTriggered, nil, bdClasses, -1); return err }, "target class -1"},
		{"zero-shot: clean dimension", func() error {
			_, err := BackdoorZeroShot(bdTriggered, [][]float32{{1, 0}}, bdClasses, 2)
			return err
		}, "row 0 of input 1 has dimension 2, want 3"},
		{"classify: no images", func() error { _, err := ZeroShotClassify(nil, bdClasses); return err }, "no images"},
		{"classify: no classes", func() error { _, err := ZeroShotClassify(bdClean, nil); return err }, "no class embeddings"},
		{"classify: dimension", func() error { _, err := ZeroShotClassify(bdClean, [][]float32{{1, 2}}); return err }, "has dimension 2, want 3"},
		{"retrieval: no triggered images", func() error { _, err := BackdoorRetrieval(nil, nil, identity(3), []int{1}, nil); return err }, "no triggered images"},
		{"retrieval: empty gallery", func() error { _, err := BackdoorRetrieval(bdTriggered, nil, nil, []int{1}, nil); return err }, "empty gallery"},
		{"retrieval: no targets", func() error { _, err := BackdoorRetrieval(bdTriggered, nil, identity(3), nil, nil); return err }, "no target indices"},
		{"retrieval: target out of range", func() error {
			_, err := BackdoorRetrieval(bdTriggered, bdClean, identity(3), []int{3}, nil)
			return err
		}, "target index 3 out of range [0, 3)"},
		{"retrieval: dimension", func() error { _, err := BackdoorRetrieval(bdTriggered, nil, identity(4), []int{1}, nil); return err }, "dimension 4, want 3"},
	}
	for _, tc := range tests {
		err := tc.run()
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "metrics.") {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.wantErr)
		}
	}
}
