package metrics_test

import (
	"encoding/json"
	"fmt"

	"github.com/mmpoison/mmpoison/evalkit/metrics"
)

func ExampleEvaluateAttack() {
	// Two query captions and a gallery of four images; images 2 and 3 are
	// the attack targets (class B).
	queries := [][]float32{
		{1, 0, 0, 0.9}, // close to image 0, then image 3
		{0, 0, 1, 0},   // exactly image 2
	}
	gallery := [][]float32{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}
	res, err := metrics.EvaluateAttack(queries, gallery, []int{2, 3}, []int{1, 5})
	if err != nil {
		panic(err)
	}
	fmt.Println("minranks:", res.MinRanks)
	hit1, _ := res.HitAt(1)
	fmt.Printf("Hit@1 = %.2f, MinRank = %.2f\n", hit1, res.MinRank.Mean)
	b, _ := json.Marshal(res.Hits)
	fmt.Println(string(b))
	// Output:
	// minranks: [1 0]
	// Hit@1 = 0.50, MinRank = 0.50
	// [{"k":1,"hit":0.5},{"k":5,"hit":1}]
}

func ExampleMinRank() {
	scores := []float32{0.9, 0.5, 0.5, 0.1}
	// Target 2 ties with non-target 1: conservatively ranked after it.
	fmt.Println(metrics.MinRank(scores, []int{2}))
	fmt.Println(metrics.MinRank(scores, []int{3, 2}))
	// Output:
	// 2
	// 2
}

func ExampleRecall() {
	images := [][]float32{{1, 0}, {0, 1}}
	captions := [][]float32{{1, 0.1}, {0.9, 0}, {0.2, 1}}
	owner := []int{0, 0, 1}
	res, err := metrics.Recall(images, captions, owner, []int{1})
	if err != nil {
		panic(err)
	}
	fmt.Printf("TR@1 %.2f IR@1 %.2f\n", res.TR(1), res.IR(1))
	// Output:
	// TR@1 1.00 IR@1 1.00
}
