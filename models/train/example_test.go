package train_test

import (
	"fmt"

	"github.com/mmpoison/mmpoison/models/train"
)

// The learning rate warms up linearly, then follows a cosine down to the minimum.
func ExampleCosineLR() {
	for _, step := range []int{0, 9, 55, 100} {
		fmt.Printf("%.3f ", train.CosineLR(step, 10, 100, 1e-3, 0))
	}
	fmt.Println()
	// Output: 0.000 0.001 0.001 0.000
}
