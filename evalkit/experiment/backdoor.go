package experiment

import (
	"fmt"

	"github.com/mmpoison/mmpoison/evalkit/metrics"
	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/tokenizer"
	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// BackdoorEval is how a model responds to the backdoor's trigger on test images of every class but the target.
type BackdoorEval struct {
	// ZeroShot: the share of triggered images whose top-1 zero-shot class (prompts "a photo of a ...") is the
	// target, and the same for the images without the trigger (the baseline).
	ZeroShot *metrics.BackdoorZeroShotResult `json:"zero_shot"`
	// Retrieval: the share of triggered (and untriggered) images with a target-class caption among their top K
	// test captions (Hit@K), and the rank of the best one.
	Retrieval *metrics.BackdoorRetrievalResult `json:"retrieval"`
}

// evaluateBackdoor stamps the spec's trigger on the non-target test images and measures zero-shot
// classification and image-to-text retrieval with and without it. te holds the model's test caption embeddings.
func evaluateBackdoor(d *Data, emb *clip.Embedder, cfg clip.Config, te *testEmbeddings) (*BackdoorEval, error) {
	_, m, err := Poison(d)
	if err != nil {
		return nil, err
	}
	triggered, clean, err := attack.TriggerTestSet(d.Splits.Test, m)
	if err != nil {
		return nil, err
	}
	embed := func(ds *dataset.Dataset) ([][]float32, error) {
		imgs := make([][]float32, len(ds.Examples))
		for i, ex := range ds.Examples {
			if imgs[i], err = clip.Preprocess(cfg, ex.Image); err != nil {
				return nil, fmt.Errorf("image %s: %w", ex.ID, err)
			}
		}
		return emb.Images(imgs)
	}
	trigEmb, err := embed(triggered)
	if err != nil {
		return nil, err
	}
	cleanEmb, err := embed(clean)
	if err != nil {
		return nil, err
	}
	classEmb, err := emb.Texts(tokenizer.EncodeAll(d.Tokenizer, d.ClassPrompts()))
	if err != nil {
		return nil, err
	}
	be := &BackdoorEval{}
	if be.ZeroShot, err = metrics.BackdoorZeroShot(trigEmb, cleanEmb, classEmb, d.Target); err != nil {
		return nil, err
	}
	var targets []int
	j := 0
	for _, ex := range d.Splits.Test.Examples {
		for range ex.Captions {
			if ex.Label == d.Target {
				targets = append(targets, j)
			}
			j++
		}
	}
	if be.Retrieval, err = metrics.BackdoorRetrieval(trigEmb, cleanEmb, te.texts, targets, metrics.DefaultKs); err != nil {
		return nil, err
	}
	return be, nil
}

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
