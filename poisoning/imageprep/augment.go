package imageprep

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// CLIPScale and CLIPRatio are the RandomResizedCrop ranges of the training augmentation: the crop covers 90
// to 100% of the image area, with an aspect ratio (width/height) between 3/4 and 4/3.
var (
	CLIPScale = [2]float64{0.9, 1.0}
	CLIPRatio = [2]float64{3.0 / 4.0, 4.0 / 3.0}
)

// RandomResizedCropParams is torchvision's RandomResizedCrop.get_params for an image of height×width pixels:
// up to 10 attempts draw an area fraction uniformly in scale and a log-uniform aspect ratio in ratio, and the
// first crop that fits is placed uniformly at random; if none fits, the fallback is the centre crop of the
// whole image clamped to the ratio range. It returns the crop's top-left corner and size.
//
// The random numbers come from rng, so a seed reproduces the crop; they are not torch's generator, so the
// crops differ from PyTorch's for the same seed while following the same distribution.
func RandomResizedCropParams(height, width int, scale, ratio [2]float64, rng *rand.Rand) (top, left, h, w int) {
	area := float64(height * width)
	logLo, logHi := math.Log(ratio[0]), math.Log(ratio[1])
	for range 10 {
		targetArea := area * (scale[0] + (scale[1]-scale[0])*rng.Float64())
		aspect := math.Exp(logLo + (logHi-logLo)*rng.Float64())
		w := int(math.RoundToEven(math.Sqrt(targetArea * aspect)))
		h := int(math.RoundToEven(math.Sqrt(targetArea / aspect)))
		if 0 < w && w <= width && 0 < h && h <= height {
			top := rng.IntN(height - h + 1)
			left := rng.IntN(width - w + 1)
			return top, left, h, w
		}
	}
	inRatio := float64(width) / float64(height)
	lo, hi := min(ratio[0], ratio[1]), max(ratio[0], ratio[1])
	switch {
	case inRatio < lo:
		w = width
		h = int(math.RoundToEven(float64(w) / lo))
	case inRatio > hi:
		h = height
		w = int(math.RoundToEven(float64(h) * hi))
	default:
		w, h = width, height
	}
	return (height - h) / 2, (width - w) / 2, h, w
}

// RandomResizedCrop is torchvision's RandomResizedCrop(n, scale=(0.9, 1.0), ratio=(3/4, 4/3)) with its
// default bilinear interpolation: a random crop chosen by RandomResizedCropParams with CLIPScale and
// CLIPRatio, resized to n×n with PIL's bilinear filter. The result keeps the channels of img.
func RandomResizedCrop(img dataset.Image, n int, rng *rand.Rand) dataset.Image {
	return RandomResizedCropWith(img, n, CLIPScale, CLIPRatio, Bilinear, rng)
}

// RandomResizedCropWith is RandomResizedCrop with explicit scale and ratio ranges and filter.
func RandomResizedCropWith(img dataset.Image, n int, scale, ratio [2]float64, f Filter, rng *rand.Rand) dataset.Image {
	if n <= 0 || n > MaxSide {
		panic(fmt.Sprintf("imageprep.RandomResizedCrop: invalid size %d: crops are squares of 1 to %d pixels", n, MaxSide))
	}
	top, left, h, w := RandomResizedCropParams(img.Height, img.Width, scale, ratio, rng)
	return Resize(Crop(img, top, left, h, w), n, n, f)
}
