package defense_test

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/mmpoison/mmpoison/models/tokenizer"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/defense"
)

// The embedding-space detector on six pairs: images 0 and 1 show dogs, images 2 and 3 cats; the last pair puts
// a cat caption on dog image 0 (poison). Each caption is compared with the captions of the most similar other
// image (K = 1), and the result with the other captions of its own image: the poisoned one disagrees with both.
// The scores go through the same threshold and filter as the paper's distances.
func ExampleKDistanceScores() {
	ps := &dataset.PairSet{
		Name:   "toy",
		Images: make([]dataset.Example, 4),
		Pairs: []dataset.Pair{
			{Image: 0, Caption: "a dog"}, {Image: 1, Caption: "a puppy", CaptionOf: 1},
			{Image: 2, Caption: "a cat", CaptionOf: 2}, {Image: 3, Caption: "a kitten", CaptionOf: 3},
			{Image: 0, Caption: "a dog on grass"}, {Image: 0, Caption: "a cat on a sofa", CaptionOf: 2, Poisoned: true},
		},
	}
	imageRow := [][]float32{{1, 0.1}, {0.9, 0.2}, {0.1, 1}, {0.2, 0.9}}
	imageEmb := make([][]float32, len(ps.Pairs))
	imageOf := make([]int, len(ps.Pairs))
	for i, p := range ps.Pairs {
		imageEmb[i], imageOf[i] = imageRow[p.Image], p.Image
	}
	textEmb := [][]float32{{1, 0}, {0.9, 0.1}, {0, 1}, {0.1, 0.9}, {1, 0.2}, {0.1, 1}}

	scores, err := defense.KDistanceScores(imageEmb, textEmb, defense.KDistanceOptions{K: 1, ImageOf: imageOf})
	if err != nil {
		panic(err)
	}
	gamma, _ := defense.ChooseGamma(scores, defense.Threshold{Kind: defense.KindFixed, Value: 0.5}, nil)
	_, report := defense.Filter(ps, scores, gamma)
	fmt.Printf("poisoned pair %.2f, highest clean pair %.2f\n", scores[5], slices.Max(scores[:5]))
	fmt.Println("dropped", report.DroppedIndices, "recall", *report.Recall, "precision", *report.Precision)
	// Output:
	// poisoned pair 0.79, highest clean pair 0.00
	// dropped [5] recall 1 precision 1
}

// EDA makes the caption views of CleanCLIP's in-modality loss; on token ids (what training data holds) it gives
// the ids of the augmented caption.
func ExampleTokenEDA() {
	e := defense.EDA{SynonymRate: 0.2} // synonym replacement only, from the built-in table
	fmt.Println(e.Caption("a photo of a large dark dress", rand.New(rand.NewPCG(1, 2))))

	tok, _ := tokenizer.NewWordLevel([]string{"a photo picture image of large big dark dim dress gown"}, 12)
	te, err := defense.NewTokenEDA(e, tok)
	if err != nil {
		panic(err)
	}
	ids := tok.Encode("a photo of a large dark dress")
	fmt.Println(ids)
	fmt.Println(te.Augment(ids, rand.New(rand.NewPCG(1, 2))))
	// Output:
	// a photo of a big dark dress
	// [13 2 11 10 2 9 4 6 14 0 0 0]
	// [13 2 11 10 2 3 4 6 14 0 0 0]
}
