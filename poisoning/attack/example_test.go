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

// toyTrain returns a toy training set: 10 images of each class, 5 captions each.
func toyTrain(classes ...string) *dataset.PairSet {
	d := &dataset.Dataset{Name: "toy", Classes: classes}
	for i := range 10 * len(classes) {
		label := i % len(classes)
		ex := dataset.Example{ID: fmt.Sprintf("toy/%02d", i), Label: label}
		for k := range 5 {
			ex.Captions = append(ex.Captions, fmt.Sprintf("%s %d caption %d", classes[label], i, k))
		}
		d.Examples = append(d.Examples, ex)
	}
	return d.Pairs()
}

func ExampleSingleImage_Apply() {
	train := toyTrain("sneaker", "boot") // 100 clean pairs; boot images are toy/01, toy/03, …

	// x* given explicitly; leave TargetImageID empty to draw it from the boot images by the seed.
	atk := attack.SingleImage{Source: "sneaker", Target: "boot", TargetImageID: "toy/07", Count: 3, Seed: 1}
	poisoned, manifest, err := atk.Apply(train)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("attack %s: %d of %d pairs poisoned, all with %s\n",
		manifest.AttackID, manifest.PoisonedPairs, len(poisoned.Pairs), manifest.TargetImageID)
	for _, p := range manifest.Pairs {
		fmt.Printf("%q → %s\n", p.Caption, p.PoisonedImageID)
	}
	fmt.Println(manifest.Verify(poisoned) == nil)

	_, _, err = attack.SingleImage{Source: "sneaker", Target: "boot", TargetImageID: "toy/02", Count: 3}.Apply(train)
	fmt.Println(err)
	// Output:
	// attack I: 3 of 103 pairs poisoned, all with toy/07
	// "sneaker 0 caption 1" → toy/07
	// "sneaker 2 caption 2" → toy/07
	// "sneaker 6 caption 1" → toy/07
	// true
	// attack: target image "toy/02" has class "sneaker", not the target class "boot"
}

func ExampleMultiLabel_Apply() {
	train := toyTrain("sneaker", "boot", "coat", "bag") // 200 clean pairs

	var atk attack.Attack = attack.MultiLabel{
		Goals: []attack.Goal{{Source: "sneaker", Target: "boot"}, {Source: "coat", Target: "bag"}},
		Rate:  0.05, // φ over the whole poisoned set, split evenly across the goals
		Seed:  1,
	}
	poisoned, manifest, err := atk.Apply(train)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s (attack %s): %d of %d pairs poisoned, φ = %.4f\n",
		atk.Name(), manifest.AttackID, manifest.PoisonedPairs, len(poisoned.Pairs), manifest.Rate)
	for i, g := range manifest.Goals {
		fmt.Printf("goal %d: %s → %s, %d pairs\n", i, g.Source, g.Target, g.Pairs)
	}
	fmt.Println(manifest.Verify(poisoned) == nil)
	// Output:
	// multiple-target-labels (attack III): 11 of 211 pairs poisoned, φ = 0.0521
	// goal 0: sneaker → boot, 6 pairs
	// goal 1: coat → bag, 5 pairs
	// true
}
