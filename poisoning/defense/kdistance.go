package defense

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Score kinds of [KDistanceScores].
const (
	// ScoreNeighbourContrast (the default) is ScoreNeighbourCaptions calibrated by the pair's own image: pair
	// i's neighbour-caption score minus the lowest neighbour-caption score among the other pairs of the same
	// image (minus the median score of all pairs when its image has no other pair).
	ScoreNeighbourContrast = "neighbour-contrast"
	// ScoreNeighbourCaptions scores pair i by how badly its caption agrees with the captions of the images that
	// look like its image. Take the K nearest other images of pair i's image (by image-image cosine
	// similarity; its own image excluded); for each, the median cosine similarity between caption i and the
	// captions paired with that image; the score is 1 − the median of these K values.
	ScoreNeighbourCaptions = "neighbour-captions"
	// ScoreJointKDistance is the classic k-distance outlier score: the Euclidean distance from pair i's joint
	// embedding [x̂ᵢ; t̂ᵢ]/√2 (normalised image and caption embeddings, concatenated, unit length) to its K-th
	// nearest other pair's.
	ScoreJointKDistance = "joint-kdistance"
	// ScoreJointLOF is the local outlier factor (Breunig et al., 2000) of the joint embeddings with K
	// neighbours: the mean local reachability density of the pair's K nearest pairs over its own (≈1 inside a
	// cluster, larger for outliers).
	ScoreJointLOF = "joint-lof"
)

// DefaultK is the number of neighbours when KDistanceOptions.K is 0.
const DefaultK = 10

// KDistanceOptions configure [KDistanceScores].
type KDistanceOptions struct {
	// Kind is ScoreNeighbourContrast (the default when empty), ScoreNeighbourCaptions, ScoreJointKDistance or
	// ScoreJointLOF.
	Kind string `json:"kind,omitempty"`
	// K is the number of neighbours (0: DefaultK): images for the neighbour scores, pairs for the joint scores.
	// It is lowered to what the data has (distinct other images, other pairs).
	K int `json:"k,omitempty"`
	// ImageOf[i] identifies pair i's image: pairs with equal values share an image (for example
	// dataset.Pair.Image). Nil: pairs whose image embeddings are equal bit for bit share an image. The joint
	// scores do not use it.
	ImageOf []int `json:"-"`
}

// KDistanceScores is the embedding-space poison detector: it scores every training pair from the image and
// caption embeddings of an independent clean model (the inputs of [PairDistances]: row i embeds pair i's image
// and caption), higher meaning more suspicious, so that [ChooseGamma] and [Filter] (and [ReportFromManifest])
// turn the scores into a threshold, a filtered set and a precision/recall report exactly as for the paper's
// filter. A pair with a non-finite embedding gets a NaN score (dropped as unscored by Filter).
//
// Why this detector, and why this score. The paper's filter judges each pair alone, by the absolute cosine
// distance between its image and its caption: it needs a checker whose two towers are well aligned and one
// global γ for all classes. Outlier scores in the embedding space judge a pair against its neighbours instead.
// The obvious one, the k-distance or LOF of the joint embedding (ScoreJointKDistance, ScoreJointLOF), fails
// against these attacks: the poisoned pairs of a goal A→B all sit at (B image, A caption), a tight cluster of
// φ·N points that is dense, not outlying, as soon as it holds more than K pairs. What does separate them is that
// the attacker controls captions but not the other pairs of the B images: every B image, and every image that
// looks like one, keeps its clean B captions.
//
// ScoreNeighbourCaptions therefore asks whether a pair's caption agrees with the captions of the K most
// similar other images. The poisoned pairs' A captions disagree with the clean B captions around them. The two
// medians make the score ignore the poison among the neighbours, whatever the size of the poisoned cluster, as
// long as fewer than half of the neighbour images carry mostly poison: the inner one per image (so a few
// poisoned captions on an image do not move it), the outer one over images (so one image carrying many
// poisoned pairs, Attack I's x*, weighs as one image in its neighbours' scores). Excluding the pair's own image
// keeps Attack I itself detectable. It uses each tower only within its modality (image-image and
// caption-caption similarities), so it does not rely on the checker's cross-modal alignment.
//
// Its false alarms are atypical clean images (a shirt that looks like a pullover): all the captions of such an
// image disagree with its neighbourhood. A poisoned pair differs: its own image keeps at least one clean caption
// that agrees with the neighbourhood. ScoreNeighbourContrast subtracts the lowest score among the other pairs of
// the same image, which cancels the atypical image's offset and keeps the poisoned pair's; the minimum, not the
// median, keeps Attack I's x* (many poisoned pairs, few clean ones) detectable. On the QuickSpec Attack II
// training sets of seeds 42, 43 and 44 (1% poison), the recall among the top 1% of scores is 0.94, 0.88 and 0.98
// for the contrast, 0.80, 0.90 and 0.90 without it, 0.76, 0.94 and 0.90 for the paper's distance and 0.48, 0.26
// and 0.30 for the joint k-distance (evalkit/experiment's TestBeyondDefensesAttackII logs seed 42).
//
// It is a data-side detector that runs before training, complementary to the training-side repair of
// models/train's SelfSupervised objective (CleanCLIP).
//
// It returns an error when the inputs have different numbers of rows or rows of different lengths, when K is
// negative, the kind unknown, ImageOf of the wrong length, or there are fewer than two distinct images (or
// pairs) with finite embeddings.
func KDistanceScores(imageEmb, textEmb [][]float32, o KDistanceOptions) ([]float64, error) {
	if len(imageEmb) != len(textEmb) {
		return nil, fmt.Errorf("defense.KDistanceScores: %d image embeddings vs %d text embeddings", len(imageEmb), len(textEmb))
	}
	if o.K < 0 {
		return nil, fmt.Errorf("defense.KDistanceScores: K = %d is negative", o.K)
	}
	k := o.K
	if k == 0 {
		k = DefaultK
	}
	if o.ImageOf != nil && len(o.ImageOf) != len(imageEmb) {
		return nil, fmt.Errorf("defense.KDistanceScores: ImageOf has %d entries for %d pairs", len(o.ImageOf), len(imageEmb))
	}
	img, err := normalizeRows(imageEmb)
	if err != nil {
		return nil, fmt.Errorf("defense.KDistanceScores: image embeddings: %w", err)
	}
	txt, err := normalizeRows(textEmb)
	if err != nil {
		return nil, fmt.Errorf("defense.KDistanceScores: text embeddings: %w", err)
	}
	switch o.Kind {
	case "", ScoreNeighbourContrast, ScoreNeighbourCaptions:
		scores, groupOf, err := neighbourCaptionScores(imageEmb, img, txt, o.ImageOf, k)
		if err != nil || o.Kind == ScoreNeighbourCaptions {
			return scores, err
		}
		return siblingContrast(scores, groupOf), nil
	case ScoreJointKDistance, ScoreJointLOF:
		joint := make([][]float64, len(img))
		for i := range img {
			if img[i] == nil || txt[i] == nil {
				continue
			}
			joint[i] = make([]float64, 0, len(img[i])+len(txt[i]))
			for _, v := range img[i] {
				joint[i] = append(joint[i], v/math.Sqrt2)
			}
			for _, v := range txt[i] {
				joint[i] = append(joint[i], v/math.Sqrt2)
			}
		}
		nn, err := nearestNeighbours(joint, k)
		if err != nil {
			return nil, fmt.Errorf("defense.KDistanceScores: %w", err)
		}
		if o.Kind == ScoreJointKDistance {
			return kDistances(nn), nil
		}
		return localOutlierFactors(nn), nil
	default:
		return nil, fmt.Errorf("defense.KDistanceScores: unknown score kind %q: want %q, %q, %q or %q",
			o.Kind, ScoreNeighbourContrast, ScoreNeighbourCaptions, ScoreJointKDistance, ScoreJointLOF)
	}
}

// normalizeRows returns the rows scaled to unit length (float64), a zero row as zeros (cosine 0 with
// everything, as vecmath.RowwiseCosine) and a row with a non-finite component as nil. Rows must have equal
// lengths.
func normalizeRows(rows [][]float32) ([][]float64, error) {
	out := make([][]float64, len(rows))
	for i, r := range rows {
		if len(r) != len(rows[0]) {
			return nil, fmt.Errorf("row %d has %d components, row 0 has %d", i, len(r), len(rows[0]))
		}
		var ss float64
		finite := true
		for _, v := range r {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				finite = false
				break
			}
			ss += float64(v) * float64(v)
		}
		if !finite {
			continue
		}
		out[i] = make([]float64, len(r))
		if ss == 0 {
			continue
		}
		norm := math.Sqrt(ss)
		for j, v := range r {
			out[i][j] = float64(v) / norm
		}
	}
	return out, nil
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// neighbourCaptionScores implements ScoreNeighbourCaptions and returns the image group of every pair too. raw
// are the image rows as given (for grouping by bit-equal embeddings when imageOf is nil).
func neighbourCaptionScores(raw [][]float32, img, txt [][]float64, imageOf []int, k int) ([]float64, []int, error) {
	// Group the pairs by image, in order of first appearance.
	groupOf := make([]int, len(img))
	var members [][]int
	var rep []int // a pair of each group, whose image row stands for the group
	byID := map[int]int{}
	byRow := map[string]int{}
	for i := range img {
		var g int
		var ok bool
		if imageOf != nil {
			g, ok = byID[imageOf[i]]
		} else {
			g, ok = byRow[rowKey(raw[i])]
		}
		if !ok {
			g = len(members)
			members = append(members, nil)
			rep = append(rep, i)
			if imageOf != nil {
				byID[imageOf[i]] = g
			} else {
				byRow[rowKey(raw[i])] = g
			}
		}
		groupOf[i] = g
		members[g] = append(members[g], i)
	}
	var finite []int // groups with a finite image embedding
	for g, i := range rep {
		if img[i] != nil {
			finite = append(finite, g)
		}
	}
	if len(finite) < 2 {
		return nil, nil, fmt.Errorf("defense.KDistanceScores: %d distinct images with finite embeddings, need at least 2", len(finite))
	}
	k = min(k, len(finite)-1)
	scores := make([]float64, len(img))
	for i := range scores {
		scores[i] = math.NaN()
	}
	type cand struct {
		g   int
		sim float64
	}
	cands := make([]cand, 0, len(finite))
	var sims, perImage []float64
	for _, g := range finite {
		cands = cands[:0]
		for _, h := range finite {
			if h != g {
				cands = append(cands, cand{h, dot(img[rep[g]], img[rep[h]])})
			}
		}
		// Most similar first; ties go to the image seen first, so the result does not depend on sort internals.
		slices.SortFunc(cands, func(a, b cand) int {
			if c := cmp.Compare(b.sim, a.sim); c != 0 {
				return c
			}
			return cmp.Compare(a.g, b.g)
		})
		for _, i := range members[g] {
			if txt[i] == nil {
				continue
			}
			perImage = perImage[:0]
			for _, c := range cands[:k] {
				sims = sims[:0]
				for _, j := range members[c.g] {
					if txt[j] != nil {
						sims = append(sims, dot(txt[i], txt[j]))
					}
				}
				if len(sims) > 0 {
					perImage = append(perImage, median(sims))
				}
			}
			if len(perImage) > 0 {
				scores[i] = 1 - median(perImage)
			}
		}
	}
	return scores, groupOf, nil
}

// siblingContrast implements ScoreNeighbourContrast from the neighbour-caption scores and the pairs' image
// groups: each score minus the lowest score of the other pairs of its image, or minus the median of all scores
// for a pair alone on its image. NaN scores stay NaN and are not used as references.
func siblingContrast(scores []float64, groupOf []int) []float64 {
	lowest := map[int][2]float64{} // group → its two lowest finite scores
	var all []float64
	for i, s := range scores {
		if math.IsNaN(s) {
			continue
		}
		all = append(all, s)
		lo, ok := lowest[groupOf[i]]
		switch {
		case !ok:
			lo = [2]float64{s, math.Inf(1)}
		case s < lo[0]:
			lo = [2]float64{s, lo[0]}
		case s < lo[1]:
			lo[1] = s
		}
		lowest[groupOf[i]] = lo
	}
	var global float64
	if len(all) > 0 {
		global = median(all)
	}
	out := make([]float64, len(scores))
	for i, s := range scores {
		if math.IsNaN(s) {
			out[i] = s
			continue
		}
		// The lowest score of the others: the group's second lowest when s itself is the lowest.
		lo := lowest[groupOf[i]]
		ref := lo[0]
		if s == lo[0] {
			ref = lo[1]
		}
		if math.IsInf(ref, 1) {
			ref = global
		}
		out[i] = s - ref
	}
	return out
}

// rowKey is a map key equal for bit-identical rows.
func rowKey(r []float32) string {
	b := make([]byte, 0, 4*len(r))
	for _, v := range r {
		u := math.Float32bits(v)
		b = append(b, byte(u), byte(u>>8), byte(u>>16), byte(u>>24))
	}
	return string(b)
}

// median returns the median of xs (the mean of the two middle values for an even count); it sorts xs.
func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// neighbours holds each point's K nearest other points (nearest first) and their Euclidean distances; a nil
// point (non-finite embedding) has none.
type neighbours struct {
	idx  [][]int
	dist [][]float64
}

// nearestNeighbours finds the k nearest other points of every non-nil unit-length point by Euclidean distance
// (√(2 − 2·cos)), ties broken by index. k is lowered to the number of other points.
func nearestNeighbours(pts [][]float64, k int) (*neighbours, error) {
	var valid []int
	for i, p := range pts {
		if p != nil {
			valid = append(valid, i)
		}
	}
	if len(valid) < 2 {
		return nil, errors.New("fewer than 2 pairs with finite embeddings")
	}
	k = min(k, len(valid)-1)
	nn := &neighbours{idx: make([][]int, len(pts)), dist: make([][]float64, len(pts))}
	type cand struct {
		j int
		d float64
	}
	less := func(a, b cand) bool { return a.d < b.d || (a.d == b.d && a.j < b.j) }
	// best[i] is a sorted list of at most k candidates; inserting costs O(k), fine for the small K used here.
	best := make([][]cand, len(pts))
	insert := func(i int, c cand) {
		b := best[i]
		if len(b) == k && !less(c, b[k-1]) {
			return
		}
		pos, _ := slices.BinarySearchFunc(b, c, func(x, y cand) int {
			if less(x, y) {
				return -1
			}
			if less(y, x) {
				return 1
			}
			return 0
		})
		if len(b) < k {
			b = append(b, cand{})
		}
		copy(b[pos+1:], b[pos:len(b)-1])
		b[pos] = c
		best[i] = b
	}
	for a, i := range valid {
		for _, j := range valid[a+1:] {
			d := math.Sqrt(max(2-2*dot(pts[i], pts[j]), 0))
			insert(i, cand{j, d})
			insert(j, cand{i, d})
		}
	}
	for _, i := range valid {
		for _, c := range best[i] {
			nn.idx[i] = append(nn.idx[i], c.j)
			nn.dist[i] = append(nn.dist[i], c.d)
		}
	}
	return nn, nil
}

// kDistances returns each point's distance to its K-th nearest neighbour (NaN for a point without neighbours).
func kDistances(nn *neighbours) []float64 {
	out := make([]float64, len(nn.idx))
	for i, d := range nn.dist {
		out[i] = math.NaN()
		if len(d) > 0 {
			out[i] = d[len(d)-1]
		}
	}
	return out
}

// lofEps keeps the local reachability density finite for duplicated points (as scikit-learn does).
const lofEps = 1e-10

// localOutlierFactors returns each point's LOF from its neighbour lists (NaN for a point without neighbours).
func localOutlierFactors(nn *neighbours) []float64 {
	kd := kDistances(nn)
	lrd := make([]float64, len(nn.idx))
	for i, idx := range nn.idx {
		if len(idx) == 0 {
			continue
		}
		var reach float64
		for m, j := range idx {
			reach += max(kd[j], nn.dist[i][m])
		}
		lrd[i] = 1 / (reach/float64(len(idx)) + lofEps)
	}
	out := make([]float64, len(nn.idx))
	for i, idx := range nn.idx {
		out[i] = math.NaN()
		if len(idx) == 0 {
			continue
		}
		var s float64
		for _, j := range idx {
			s += lrd[j]
		}
		out[i] = s / float64(len(idx)) / lrd[i]
	}
	return out
}
