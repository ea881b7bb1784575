package experiment

import (
	"github.com/mmpoison/mmpoison/evalkit/metrics"
)

// EmbeddingShift is the paper's clean-vs-poisoned embedding distance: 1 − cos between the clean and the
// poisoned model's embeddings of the same test inputs, per tower, for the inputs the attack is about and for
// the rest.
type EmbeddingShift struct {
	// Images and Texts: every test image (the gallery) and every test caption.
	Images *metrics.EmbeddingShift `json:"images"`
	Texts  *metrics.EmbeddingShift `json:"texts"`
	// SourceTexts: the class-A test captions (the queries); TargetImages: the class-B test images; OtherTexts
	// and OtherImages: those of classes no goal involves.
	SourceTexts  *metrics.EmbeddingShift `json:"source_texts,omitempty"`
	TargetImages *metrics.EmbeddingShift `json:"target_images,omitempty"`
	OtherTexts   *metrics.EmbeddingShift `json:"other_texts,omitempty"`
	OtherImages  *metrics.EmbeddingShift `json:"other_images,omitempty"`
}

// embeddingShift compares the clean and the poisoned model's test embeddings.
func embeddingShift(d *Data, clean, pois *testEmbeddings) (*EmbeddingShift, error) {
	test := d.Splits.Test
	involved := map[int]bool{}
	for _, g := range d.Goals {
		involved[g[0]], involved[g[1]] = true, true
	}
	var srcT, othT, tgtI, othI []int
	j := 0
	for i, ex := range test.Examples {
		switch {
		case ex.Label == d.Target:
			tgtI = append(tgtI, i)
		case !involved[ex.Label]:
			othI = append(othI, i)
		}
		for range ex.Captions {
			switch {
			case ex.Label == d.Source:
				srcT = append(srcT, j)
			case !involved[ex.Label]:
				othT = append(othT, j)
			}
			j++
		}
	}
	pick := func(m [][]float32, idx []int) [][]float32 {
		out := make([][]float32, len(idx))
		for k, i := range idx {
			out[k] = m[i]
		}
		return out
	}
	dist := func(a, b [][]float32, idx []int) (*metrics.EmbeddingShift, error) {
		if idx != nil && len(idx) == 0 {
			return nil, nil
		}
		if idx != nil {
			a, b = pick(a, idx), pick(b, idx)
		}
		return metrics.EmbeddingDistance(a, b)
	}
	es := &EmbeddingShift{}
	var err error
	n := len(test.Examples) // The gallery may hold x* after the test images; compare the test images only.
	if es.Images, err = dist(clean.images[:n], pois.images[:n], nil); err != nil {
		return nil, err
	}
	if es.Texts, err = dist(clean.texts, pois.texts, nil); err != nil {
		return nil, err
	}
	for _, c := range []struct {
		out    **metrics.EmbeddingShift
		cl, po [][]float32
		idx    []int
	}{{&es.SourceTexts, clean.texts, pois.texts, srcT}, {&es.OtherTexts, clean.texts, pois.texts, othT},
		{&es.TargetImages, clean.images, pois.images, tgtI}, {&es.OtherImages, clean.images, pois.images, othI}} {
		if *c.out, err = dist(c.cl, c.po, c.idx); err != nil {
			return nil, err
		}
	}
	return es, nil
}
