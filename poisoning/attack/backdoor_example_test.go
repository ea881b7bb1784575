package attack_test

import (
	"fmt"

	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

func ExampleBackdoor_Apply() {
	// A toy training set: 10 black 6×6 images of each of three classes, 2 captions each (60 clean pairs).
	d := &dataset.Dataset{Name: "toy", Classes: []string{"sneaker", "coat", "bag"}}
	for i := range 30 {
		ex := dataset.Example{ID: fmt.Sprintf("toy/%02d", i), Label: i % 3,
			Image: dataset.Image{Height: 6, Width: 6, Channels: 1, Pix: make([]uint8, 36)}}
		for k := range 2 {
			ex.Captions = append(ex.Captions, fmt.Sprintf("a %s, caption %d of %d", d.Classes[i%3], k, i))
		}
		d.Examples = append(d.Examples, ex)
	}
	train := d.Pairs()

	atk := attack.Backdoor{
		Target:           "bag",
		Trigger:          attack.Trigger{Size: 3, Position: attack.BottomRight, Pattern: attack.Checkerboard},
		CaptionTemplates: []string{"a photo of a {class}"}, // leave empty to draw the set's own bag captions
		Count:            3,
		Seed:             1,
	}
	poisoned, manifest, err := atk.Apply(train)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("attack %s: %d of %d pairs poisoned, %d images in the pool\n",
		manifest.AttackID, manifest.PoisonedPairs, len(poisoned.Pairs), len(poisoned.Images))
	for _, p := range manifest.Pairs {
		fmt.Printf("%s (trigger at %d,%d) ↔ %q\n", p.PoisonedImageID, p.TriggerX, p.TriggerY, p.Caption)
	}
	fmt.Println(manifest.Verify(poisoned) == nil)

	// Evaluation stamps the manifest's trigger on test images.
	img := attack.ApplyTrigger(d.Examples[0].Image, *manifest.Trigger)
	for y := 3; y < 6; y++ {
		fmt.Println(img.Pix[y*6 : y*6+6])
	}
	// Output:
	// attack BD: 3 of 63 pairs poisoned, 33 images in the pool
	// toy/24+trigger (trigger at 3,3) ↔ "a photo of a bag"
	// toy/15+trigger (trigger at 3,3) ↔ "a photo of a bag"
	// toy/06+trigger (trigger at 3,3) ↔ "a photo of a bag"
	// true
	// [0 0 0 255 0 255]
	// [0 0 0 0 255 0]
	// [0 0 0 255 0 255]
}
