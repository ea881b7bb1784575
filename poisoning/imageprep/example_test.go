package imageprep_test

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"

	"github.com/mmpoison/mmpoison/poisoning/imageprep"
)

// A 64×48 PNG goes through CLIP's preprocessing for a 32-pixel model: decoded (with the pixel-limit guard),
// converted to RGB, its shorter side resized to 32 (bicubic), then centre-cropped to 32×32. The training
// augmentation crops 90-100% of the area at random and resizes it to 32×32.
func Example() {
	src := image.NewNRGBA(image.Rect(0, 0, 64, 48))
	for y := range 48 {
		for x := range 64 {
			src.SetNRGBA(x, y, color.NRGBA{uint8(4 * x), uint8(5 * y), 128, 255})
		}
	}
	var encoded bytes.Buffer
	_ = png.Encode(&encoded, src)

	decoded, err := imageprep.Decoder{MaxPixels: imageprep.DefaultMaxPixels}.DecodeBytes(encoded.Bytes(), "example.png")
	if err != nil {
		fmt.Println(err)
		return
	}
	img := imageprep.ToDataset(decoded)
	resized := imageprep.ResizeShort(img, 32, imageprep.Bicubic)
	clipInput := imageprep.CLIP(img, 32)
	augmented := imageprep.RandomResizedCrop(img, 32, rand.New(rand.NewPCG(1, 2)))
	fmt.Printf("decoded %d×%d×%d\n", img.Height, img.Width, img.Channels)
	fmt.Printf("resized %d×%d, CLIP input %d×%d, augmented %d×%d\n",
		resized.Height, resized.Width, clipInput.Height, clipInput.Width, augmented.Height, augmented.Width)
	// Output:
	// decoded 48×64×3
	// resized 32×42, CLIP input 32×32, augmented 32×32
}
