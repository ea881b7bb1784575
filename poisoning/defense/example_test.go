package defense_test

import (
	"fmt"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/defense"
)

func Example() {
	// Four training pairs; the last one is poisoned (a caption re-paired with another class's image).
	ps := &dataset.PairSet{
		Name:   "toy",
		Images: []dataset.Example{{ID: "cat"}, {ID: "dog"}},
		Pairs: []dataset.Pair{
			{Image: 0, Caption: "a cat"},
			{Image: 1, Caption: "a dog", CaptionOf: 1},
			{Image: 0, Caption: "a sleeping cat"},
			{Image: 1, Caption: "a cat on a sofa", Poisoned: true},
		},
	}
	// Embeddings of each pair's image and caption by an independent clean model (here, by hand).
	imageEmb := [][]float32{{1, 0.2}, {0.1, 1}, {1, 0.1}, {0.1, 1}}
	textEmb := [][]float32{{1, 0.3}, {0.2, 1}, {1, 0.4}, {1, 0}}

	dist, err := defense.PairDistances(imageEmb, textEmb)
	if err != nil {
		panic(err)
	}
	gamma, err := defense.ChooseGamma(dist, defense.Threshold{Kind: defense.KindFixed, Value: 0.8}, nil)
	if err != nil {
		panic(err)
	}
	filtered, report := defense.Filter(ps, dist, gamma)
	fmt.Printf("distances %.3f\n", dist)
	fmt.Println("kept", len(filtered.Pairs), "of", len(ps.Pairs), "- dropped", report.DroppedIndices)
	fmt.Printf("precision %.2f, recall %.2f\n", *report.Precision, *report.Recall)
	// Output:
	// distances [0.004 0.005 0.039 0.900]
	// kept 3 of 4 - dropped [3]
	// precision 1.00, recall 1.00
}
