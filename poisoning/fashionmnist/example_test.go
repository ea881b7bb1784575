package fashionmnist_test

import (
	"fmt"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/fashionmnist"
)

func ExampleClassIndex() {
	for _, name := range []string{"Ankle boot", "boot", "T-shirt/top", "hat"} {
		i, err := fashionmnist.ClassIndex(name)
		if err != nil {
			fmt.Println(name, "→ error")
			continue
		}
		fmt.Println(name, "→", i, fashionmnist.ShortNames()[i])
	}
	// Output:
	// Ankle boot → 9 boot
	// boot → 9 boot
	// T-shirt/top → 0 tshirt
	// hat → error
}

func ExampleCaptioner() {
	// A light, plain, large blob stands in for a real Fashion-MNIST image.
	pix := make([]uint8, 28*28)
	for i := range 600 {
		pix[i] = 230
	}
	img := dataset.Image{Height: 28, Width: 28, Channels: 1, Pix: pix}
	label, _ := fashionmnist.ClassIndex("sneaker")
	capt := fashionmnist.Captioner{Seed: 42}
	for _, c := range capt.Captions("fashion-mnist/train/000123", label, img) {
		fmt.Println(c)
	}
	// Output:
	// a grayscale picture of a large smooth canvas sneaker seen from the front
	// the running shoe laid out neatly looks bright and solid
	// a photo of a bright smooth sneaker in grayscale
	// an image showing a bulky pale athletic shoe in a centered shot
	// shop thumbnail of a light canvas sneaker in a centered shot
}

func ExampleLoad() {
	// Searches /usr/share/datasets/fashion-mnist and the user cache; never downloads.
	splits, err := fashionmnist.Load(fashionmnist.Config{Seed: 1, Download: fashionmnist.DownloadNever})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(splits.Pool.Examples), len(splits.Train.Examples), len(splits.Test.Examples))
	fmt.Println(splits.Test.Examples[0].ID, splits.Test.Examples[0].Captions[0])
}
