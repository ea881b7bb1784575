package defense

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// TestNeighbourCaptionsKnownAnswer: scores computed by hand on 2-D embeddings.
func TestNeighbourCaptionsKnownAnswer(t *testing.T) {
	// Images: 0 and 1 look alike (direction x), 2 and 3 look alike (direction y). Captions along x describe
	// images 0/1, along y images 2/3. Pair 4 puts a y caption on image 0 (poison); pair 5 a caption at 60°.
	imageOf := []int{0, 1, 2, 3, 0, 0}
	rows := [][]float32{{1, 0}, {0.96, 0.28}, {0, 1}, {0.28, 0.96}}
	img := make([][]float32, len(imageOf))
	for i, g := range imageOf {
		img[i] = rows[g]
	}
	txt := [][]float32{{2, 0}, {1, 0}, {0, 3}, {0, 1}, {0, 1}, {0.5, float32(math.Sqrt(3) / 2)}}
	cases := []struct {
		name    string
		kind    string
		k       int
		imageOf []int
		want    []float64
	}{
		// K = 1: the nearest other image of 0 is 1 (captions {x}), of 1 is 0 (captions {x, y, 60°}: median of
		// cos 1, 0, 0.5 = 0.5), of 2 is 3 and of 3 is 2.
		{"K=1", ScoreNeighbourCaptions, 1, imageOf, []float64{0, 0.5, 0, 0, 1, 0.5}},
		// Same without ImageOf: pairs 0, 4 and 5 have bit-equal image rows, so they share an image.
		{"K=1 grouped by rows", ScoreNeighbourCaptions, 1, nil, []float64{0, 0.5, 0, 0, 1, 0.5}},
		// K = 2: image 0's neighbours are images 1 (cos 0.96) and 3 (cos 0.28), with captions x and y: the median
		// of two per-image values is their mean. Image 1's are 0 and 3: for pair 1, image 0 gives the median of
		// 1, 0, 0.5 and image 3 gives 0, so the score is 1 − (0.5 + 0)/2.
		{"K=2", ScoreNeighbourCaptions, 2, imageOf, []float64{0.5, 0.75, 0.5, 0.5, 0.5, 1 - (0.5+math.Sqrt(3)/2)/2}},
		// The contrast (the default kind) of the K=1 scores: pairs 0, 4 and 5 share image 0 and subtract the
		// lowest of the other two (0.5, 0, 0); pairs 1-3 are alone on their images and subtract the median of
		// all six scores, 0.25.
		{"contrast K=1", "", 1, imageOf, []float64{-0.5, 0.25, -0.25, -0.25, 1, 0.5}},
		{"contrast K=1 by name", ScoreNeighbourContrast, 1, nil, []float64{-0.5, 0.25, -0.25, -0.25, 1, 0.5}},
	}
	for _, c := range cases {
		got, err := KDistanceScores(img, txt, KDistanceOptions{Kind: c.kind, K: c.k, ImageOf: c.imageOf})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for i := range got {
			if math.Abs(got[i]-c.want[i]) > 1e-6 {
				t.Errorf("%s: scores %.4f, want %.4f", c.name, got, c.want)
				break
			}
		}
	}
}

// plantedSet builds synthetic embeddings of a pair set: classes images per class with captionsPer captions
// each, image and caption embeddings around per-class directions (separate for the two modalities) with noise;
// then poison pairs carry captions of class 0 on class-1 images (round-robin), appended at the end. It returns
// the embeddings, the image index of every pair, and the poisoned pair indices.
func plantedSet(seed uint64, classes, images, captionsPer, poison int, noise float64) (img, txt [][]float32, imageOf, poisoned []int) {
	rng := rand.New(rand.NewPCG(seed, 1))
	const dim = 16
	unit := func() []float64 {
		v := make([]float64, dim)
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		n := math.Sqrt(dot(v, v))
		for i := range v {
			v[i] /= n
		}
		return v
	}
	around := func(c []float64) []float32 {
		out := make([]float32, dim)
		for i := range out {
			out[i] = float32(c[i] + noise*rng.NormFloat64()/math.Sqrt(dim))
		}
		return out
	}
	imgC := make([][]float64, classes)
	txtC := make([][]float64, classes)
	for c := range classes {
		imgC[c], txtC[c] = unit(), unit()
	}
	var imgRows [][]float32
	var classOf []int
	for c := range classes {
		for range images {
			imgRows = append(imgRows, around(imgC[c]))
			classOf = append(classOf, c)
		}
	}
	for g, row := range imgRows {
		for range captionsPer {
			img = append(img, row)
			txt = append(txt, around(txtC[classOf[g]]))
			imageOf = append(imageOf, g)
		}
	}
	for p := range poison {
		g := images + p%images // the class-1 images
		poisoned = append(poisoned, len(img))
		img = append(img, imgRows[g])
		txt = append(txt, around(txtC[0]))
		imageOf = append(imageOf, g)
	}
	return img, txt, imageOf, poisoned
}

// topRecall drops the len(poisoned) highest scores and returns the report scored against a manifest listing the
// poisoned pairs, through the same machinery as the paper's filter.
func topRecall(t *testing.T, scores []float64, poisoned []int) *FilterReport {
	t.Helper()
	n := len(scores)
	gamma, err := ChooseGamma(scores, Threshold{Kind: KindQuantile, Value: 1 - float64(len(poisoned))/float64(n)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ps := &dataset.PairSet{Name: "planted", Pairs: make([]dataset.Pair, n)}
	for _, i := range poisoned {
		ps.Pairs[i].Poisoned = true
	}
	_, r := Filter(ps, scores, gamma)
	m := &attack.Manifest{TotalPairs: n}
	for _, i := range poisoned {
		m.Pairs = append(m.Pairs, attack.PoisonedPair{Index: i})
	}
	mr, err := ReportFromManifest(m, r.DroppedIndices, n)
	if err != nil {
		t.Fatal(err)
	}
	if *mr.Recall != *r.Recall || mr.TruePositives != r.TruePositives {
		t.Fatalf("manifest report %+v disagrees with the flag report %+v", mr, r)
	}
	return mr
}

// TestKDistancePlantedCluster: 40 poisoned pairs (class-0 captions on class-1 images) form a cluster larger than
// K. The neighbour-caption score puts every one of them above every clean pair (precision and recall 1 at the
// right quantile), while the joint k-distance and LOF, which look for sparse points, miss most of them. A
// single planted pair, by contrast, is an outlier the joint scores do find.
func TestKDistancePlantedCluster(t *testing.T) {
	img, txt, imageOf, poisoned := plantedSet(7, 6, 20, 5, 40, 0.6)
	for _, kind := range []string{ScoreNeighbourContrast, ScoreNeighbourCaptions} {
		nc, err := KDistanceScores(img, txt, KDistanceOptions{Kind: kind, K: 10, ImageOf: imageOf})
		if err != nil {
			t.Fatal(err)
		}
		minPoison, maxClean := math.Inf(1), math.Inf(-1)
		for i, s := range nc {
			if slices.Contains(poisoned, i) {
				minPoison = min(minPoison, s)
			} else {
				maxClean = max(maxClean, s)
			}
		}
		if !(minPoison > maxClean) {
			t.Errorf("%s: lowest poisoned score %.3f ≤ highest clean score %.3f", kind, minPoison, maxClean)
		}
		r := topRecall(t, nc, poisoned)
		if *r.Recall != 1 || *r.Precision != 1 {
			t.Errorf("%s: recall %v precision %v, want 1 and 1", kind, *r.Recall, *r.Precision)
		}
	}
	for _, kind := range []string{ScoreJointKDistance, ScoreJointLOF} {
		s, err := KDistanceScores(img, txt, KDistanceOptions{Kind: kind, K: 10})
		if err != nil {
			t.Fatal(err)
		}
		if r := topRecall(t, s, poisoned); *r.Recall > 0.5 {
			t.Errorf("%s with K=10 < cluster size caught %.2f of a 40-pair cluster; the test's premise is wrong", kind, *r.Recall)
		}
	}
	// One planted pair only: an outlier for the joint scores too.
	img1, txt1, imageOf1, poisoned1 := plantedSet(7, 6, 20, 5, 1, 0.6)
	for _, kind := range []string{ScoreNeighbourContrast, ScoreNeighbourCaptions, ScoreJointKDistance, ScoreJointLOF} {
		s, err := KDistanceScores(img1, txt1, KDistanceOptions{Kind: kind, K: 10, ImageOf: imageOf1})
		if err != nil {
			t.Fatal(err)
		}
		if top := argmax(s); top != poisoned1[0] {
			t.Errorf("%s: the single planted pair %d is not the top score (top %d)", kind, poisoned1[0], top)
		}
	}
}

// TestKDistanceAttackIShape: all poison on one image (Attack I) is still found, because the pair's own image,
// which carries the poison, is excluded from its neighbourhood.
func TestKDistanceAttackIShape(t *testing.T) {
	img, txt, imageOf, _ := plantedSet(3, 5, 20, 5, 0, 0.4)
	target := 25 // a class-1 image
	_, txtP, _, _ := plantedSet(3, 5, 20, 5, 30, 0.4)
	var poisoned []int
	for p := range 30 {
		poisoned = append(poisoned, len(img))
		img = append(img, img[target*5])
		txt = append(txt, txtP[len(txtP)-30+p])
		imageOf = append(imageOf, target)
	}
	for _, kind := range []string{ScoreNeighbourContrast, ScoreNeighbourCaptions} {
		s, err := KDistanceScores(img, txt, KDistanceOptions{Kind: kind, K: 5}) // grouped by bit-equal rows
		if err != nil {
			t.Fatal(err)
		}
		if r := topRecall(t, s, poisoned); *r.Recall < 0.95 {
			t.Errorf("%s, Attack I shape: recall %.2f, want ≥ 0.95", kind, *r.Recall)
		}
	}
}

// TestKDistanceAtypicalImage: a clean image that looks like another class (its embedding sits among the class-3
// images, its five captions describe class 2) is a false alarm for the neighbour-caption score, all five
// captions disagreeing with its neighbourhood; the contrast with the image's own other captions cancels it and
// keeps the planted poison on top.
func TestKDistanceAtypicalImage(t *testing.T) {
	img, txt, imageOf, poisoned := plantedSet(1, 6, 20, 5, 20, 0.4)
	atypical := 2 * 20 // the first class-2 image; its pairs are 200-204
	for p := atypical * 5; p < atypical*5+5; p++ {
		img[p] = img[3*20*5] // the first class-3 image's row
	}
	count := func(kind string) (atypicalFlagged int, recall float64) {
		s, err := KDistanceScores(img, txt, KDistanceOptions{Kind: kind, K: 10, ImageOf: imageOf})
		if err != nil {
			t.Fatal(err)
		}
		r := topRecall(t, s, poisoned)
		for _, i := range r.DroppedIndices {
			if imageOf[i] == atypical {
				atypicalFlagged++
			}
		}
		return atypicalFlagged, *r.Recall
	}
	if n, _ := count(ScoreNeighbourCaptions); n < 3 {
		t.Errorf("neighbour-captions flagged %d of the atypical image's 5 clean pairs; the test's premise is wrong", n)
	}
	if n, recall := count(ScoreNeighbourContrast); n != 0 || recall != 1 {
		t.Errorf("neighbour-contrast flagged %d atypical clean pairs with recall %.2f, want 0 and 1", n, recall)
	}
}

func argmax(xs []float64) int {
	best := 0
	for i, x := range xs {
		if x > xs[best] {
			best = i
		}
	}
	return best
}

// TestKDistanceJointKnownAnswer: k-distance and LOF on four points by hand.
func TestKDistanceJointKnownAnswer(t *testing.T) {
	// Joint embeddings of pairs 0-2 coincide; pair 3 is orthogonal in both halves: joint distance √2.
	img := [][]float32{{1, 0}, {1, 0}, {1, 0}, {0, 1}}
	txt := [][]float32{{1, 0}, {1, 0}, {1, 0}, {0, 1}}
	kd, err := KDistanceScores(img, txt, KDistanceOptions{Kind: ScoreJointKDistance, K: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{0, 0, 0, math.Sqrt2}
	for i := range kd {
		if math.Abs(kd[i]-want[i]) > 1e-7 {
			t.Fatalf("k-distances %v, want %v", kd, want)
		}
	}
	lof, err := KDistanceScores(img, txt, KDistanceOptions{Kind: ScoreJointLOF, K: 2})
	if err != nil {
		t.Fatal(err)
	}
	// The three duplicates have LOF 1; the far point's density is 1/√2 against their 1/ε: a huge ratio.
	if math.Abs(lof[0]-1) > 1e-9 || math.Abs(lof[1]-1) > 1e-9 || !(lof[3] > 1e6) {
		t.Errorf("LOF %v, want [1 1 1 huge]", lof)
	}
}

func TestKDistanceScoresEdgeCases(t *testing.T) {
	img := [][]float32{{1, 0}, {0, 1}, {1, 1}}
	txt := [][]float32{{1, 0}, {0, 1}, {1, 1}}
	errCases := []struct {
		name     string
		img, txt [][]float32
		o        KDistanceOptions
		want     string
	}{
		{"rows", img, txt[:2], KDistanceOptions{}, "3 image embeddings vs 2"},
		{"negative K", img, txt, KDistanceOptions{K: -1}, "K = -1"},
		{"kind", img, txt, KDistanceOptions{Kind: "lof"}, `unknown score kind "lof"`},
		{"ImageOf", img, txt, KDistanceOptions{ImageOf: []int{0}}, "ImageOf has 1 entries for 3 pairs"},
		{"one image", [][]float32{{1, 0}, {1, 0}}, [][]float32{{1, 0}, {0, 1}}, KDistanceOptions{}, "1 distinct images"},
		{"ragged", [][]float32{{1, 0}, {1}, {0, 1}}, txt, KDistanceOptions{}, "row 1 has 1 components"},
		{"one pair", [][]float32{{1, 0}}, [][]float32{{1, 0}}, KDistanceOptions{Kind: ScoreJointKDistance}, "fewer than 2 pairs"},
	}
	for _, c := range errCases {
		_, err := KDistanceScores(c.img, c.txt, c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	// A non-finite embedding gives a NaN score (unscored, dropped by Filter); the others stay finite, and the
	// inputs are not modified.
	nan := float32(math.NaN())
	imgN := [][]float32{{1, 0}, {0.9, 0.1}, {0, 1}, {0.1, 0.9}, {nan, 0}}
	txtN := [][]float32{{1, 0}, {1, 0}, {0, 1}, {0, 1}, {1, 0}}
	for _, kind := range []string{ScoreNeighbourContrast, ScoreNeighbourCaptions, ScoreJointKDistance, ScoreJointLOF} {
		s, err := KDistanceScores(imgN, txtN, KDistanceOptions{Kind: kind, K: 1})
		if err != nil {
			t.Fatal(err)
		}
		if !math.IsNaN(s[4]) || slices.ContainsFunc(s[:4], math.IsNaN) {
			t.Errorf("%s: scores %v, want NaN only for the last pair", kind, s)
		}
	}
	if !math.IsNaN(float64(imgN[4][0])) || imgN[1][0] != 0.9 {
		t.Error("KDistanceScores modified its input")
	}
}
