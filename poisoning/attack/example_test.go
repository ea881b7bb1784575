package attack_test

import (
	"fmt"

	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

func ExampleSingleLabel_Apply() {
	// A toy training set: 20 images of each class, 5 captions each (200 clean pairs).
	d := &dataset.Dataset{Name: "toy", Classes: []string{"sneaker", "boot"}}
	for i := range 40 {
		ex := dataset.Example{ID: fmt.Sprintf("toy/%02d", i), Label: i % 2}
		for k := range 5 {
			ex.Captions = append(ex.Captions, fmt.Sprintf("%s %d caption %d", d.Classes[i%2], i, k))
		}
		d.Examples = append(d.Examples, ex)
	}
	train := d.Pairs()

	poisoned, manifest, err := attack.SingleLabel{Source: "sneaker", Target: "boot", Rate: 0.02, Seed: 1}.Apply(train)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d clean pairs → %d pairs, %d poisoned, φ = %.4f\n",
		len(train.Pairs), len(poisoned.Pairs), manifest.PoisonedPairs, manifest.Rate)
	fmt.Println(manifest.Verify(poisoned) == nil, manifest.Verify(train) == nil)
	// Output:
	// 200 clean pairs → 204 pairs, 4 poisoned, φ = 0.0196
	// true false
}
