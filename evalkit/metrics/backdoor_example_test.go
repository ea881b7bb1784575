package metrics_test

import (
	"fmt"

	"github.com/mmpoison/mmpoison/evalkit/metrics"
)

func ExampleBackdoorZeroShot() {
	// Zero-shot prompts of three classes; class 2 is the backdoor's target.
	classes := [][]float32{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}
	// Image embeddings of two class-0 and two class-1 test images, with and without the trigger.
	triggered := [][]float32{{0.2, 0, 1}, {1, 0.1, 0.5}, {0, 0.3, 0.9}, {0, 1, 0.2}}
	clean := [][]float32{{1, 0, 0.1}, {1, 0.1, 0}, {0, 1, 0}, {0.1, 1, 0}}
	res, err := metrics.BackdoorZeroShot(triggered, clean, classes, 2)
	if err != nil {
		panic(err)
	}
	fmt.Println("predicted:", res.Triggered.Predicted)
	fmt.Printf("success %.2f, baseline %.2f, gain %.2f\n", res.Triggered.Rate, res.Clean.Rate, res.Gain())
	// Output:
	// predicted: [2 0 2 1]
	// success 0.50, baseline 0.00, gain 0.50
}

func ExampleBackdoorRetrieval() {
	// A gallery of four captions; captions 2 and 3 describe target-class images.
	captions := [][]float32{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {0.1, 0, 1}}
	triggered := [][]float32{{0.1, 0, 1}, {1, 0.5, 0.2}}
	res, err := metrics.BackdoorRetrieval(triggered, nil, captions, []int{2, 3}, []int{1, 3})
	if err != nil {
		panic(err)
	}
	hit1, _ := res.Triggered.HitAt(1)
	hit3, _ := res.Triggered.HitAt(3)
	fmt.Printf("target caption in top 1: %.2f, in top 3: %.2f\n", hit1, hit3)
	// Output:
	// target caption in top 1: 0.50, in top 3: 1.00
}

func ExampleTowerDistances() {
	// The same two images and two captions embedded by a clean and a poisoned model: the image tower was
	// frozen, the text tower moved.
	images := [][]float32{{1, 0}, {0, 1}}
	cleanText := [][]float32{{1, 0}, {1, 1}}
	poisonedText := [][]float32{{0, 1}, {1, 1}}
	shift, err := metrics.TowerDistances(images, images, cleanText, poisonedText)
	if err != nil {
		panic(err)
	}
	fmt.Printf("image tower: mean cosine distance %.2f\n", shift.Image.Mean)
	fmt.Printf("text tower:  mean cosine distance %.2f, per caption %.2f\n", shift.Text.Mean, shift.Text.Distances)
	// Output:
	// image tower: mean cosine distance 0.00
	// text tower:  mean cosine distance 0.50, per caption [1.00 0.00]
}
