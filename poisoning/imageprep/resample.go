package imageprep

import (
	"fmt"
	"math"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// Filter is a resampling filter, as PIL's Image.Resampling.
type Filter int

const (
	// Bicubic is PIL's BICUBIC: the cubic convolution kernel with a = -0.5 (Catmull-Rom), support 2.
	// torchvision's Resize in CLIP's preprocessing uses it.
	Bicubic Filter = iota
	// Bilinear is PIL's BILINEAR: the triangle kernel, support 1. torchvision's RandomResizedCrop uses it by
	// default.
	Bilinear
)

// String returns the filter's name.
func (f Filter) String() string {
	switch f {
	case Bicubic:
		return "bicubic"
	case Bilinear:
		return "bilinear"
	}
	return fmt.Sprintf("Filter(%d)", int(f))
}

func (f Filter) support() float64 {
	if f == Bilinear {
		return 1
	}
	return 2
}

func (f Filter) eval(x float64) float64 {
	if x < 0 {
		x = -x
	}
	if f == Bilinear {
		if x < 1 {
			return 1 - x
		}
		return 0
	}
	const a = -0.5
	if x < 1 {
		return ((a+2)*x-(a+3))*x*x + 1
	}
	if x < 2 {
		return (((x-5)*x+8)*x - 4) * a
	}
	return 0
}

// precisionBits is PIL's PRECISION_BITS for 8-bit images: coefficients are fixed point with 22 fraction bits.
const precisionBits = 32 - 8 - 2

// coeffs holds, for every output position of a window (the first of which is first), the first input index
// and the fixed-point weights of the inputs from there on (PIL's precompute_coeffs followed by
// normalize_coeffs_8bpc). Each position's coefficients depend on the position and the scale alone, so those of
// a window are those of the whole output.
type coeffs struct {
	start    []int
	weights  [][]int32
	fweights [][]float64 // the normalised weights before rounding, used for 32-bit ("I") images
}

// precomputeWindow returns the coefficients of the count output positions from first on.
func precomputeWindow(inSize, outSize int, f Filter, first, count int) coeffs {
	scale := float64(inSize) / float64(outSize)
	filterScale := max(scale, 1)
	support := f.support() * filterScale
	ksize := int(math.Ceil(support))*2 + 1
	c := coeffs{start: make([]int, count), weights: make([][]int32, count), fweights: make([][]float64, count)}
	k := make([]float64, ksize)
	ws, fs := make([]int32, count*ksize), make([]float64, count*ksize) // backing arrays, ksize a position
	for i := range count {
		xx := first + i
		center := (float64(xx) + 0.5) * scale
		ss := 1 / filterScale
		xmin := max(int(center-support+0.5), 0)
		xmax := min(int(center+support+0.5), inSize) - xmin
		var ww float64
		for x := range xmax {
			w := f.eval((float64(x+xmin) - center + 0.5) * ss)
			k[x] = w
			ww += w
		}
		n := max(xmax, 0)
		c.start[i] = xmin
		c.weights[i] = ws[i*ksize : i*ksize+n : i*ksize+n]
		c.fweights[i] = fs[i*ksize : i*ksize+n : i*ksize+n]
		for x := range n {
			v := k[x]
			if ww != 0 {
				v /= ww
			}
			c.fweights[i][x] = v
			if v < 0 {
				c.weights[i][x] = int32(-0.5 + v*(1<<precisionBits))
			} else {
				c.weights[i][x] = int32(0.5 + v*(1<<precisionBits))
			}
		}
	}
	return c
}

func clip8(v int32) uint8 {
	if v >= 1<<precisionBits<<8 {
		return 255
	}
	if v <= 0 {
		return 0
	}
	return uint8(v >> precisionBits)
}

// Resize resamples img to width×height pixels like PIL's Image.resize(( width, height), filter) on an 8-bit
// image: antialiased (the filter is widened by the downscaling factor), separable, horizontal pass first,
// with PIL's fixed-point arithmetic. An image already of that size is returned as is (not copied).
// It works for any number of channels. It panics for a size below 1 or beyond its limits (each side at most
// 65536 pixels, at most DefaultMaxPixels pixels in all).
func Resize(img dataset.Image, width, height int, f Filter) dataset.Image {
	if err := checkResize(width, height); err != nil {
		panic("imageprep.Resize: " + err.Error())
	}
	if width == img.Width && height == img.Height {
		return img
	}
	return resizeWindow(img, width, height, f, window{0, 0, height, width})
}

// window is a rectangle of an image: its top-left pixel and its size.
type window struct{ top, left, h, w int }

// centre returns the n×n window at the centre of a width×height image, placed as CenterCrop places it.
func centre(width, height, n int) window {
	top := int(math.RoundToEven(float64(height-n) / 2))
	left := int(math.RoundToEven(float64(width-n) / 2))
	return window{top, left, n, n}
}

// resizeWindow returns the window win of Resize(img, width, height, f), computing only its pixels, each with
// the same arithmetic as Resize: the same values, in memory for the window and the input rows it reads. The
// size must differ from img's.
func resizeWindow(img dataset.Image, width, height int, f Filter, win window) dataset.Image {
	ch := img.Channels
	out := dataset.Image{Height: win.h, Width: win.w, Channels: ch, Pix: make([]uint8, win.h*win.w*ch)}
	if width == img.Width { // Only the height changes: the vertical pass reads the window's columns.
		vert := precomputeWindow(img.Height, height, f, win.top, win.h)
		verticalPass(img.Pix, img.Width*ch, win.left*ch, 0, vert, out.Pix, win.w*ch)
		return out
	}
	horiz := precomputeWindow(img.Width, width, f, win.left, win.w)
	if height == img.Height { // Only the width changes: the horizontal pass gives the window's rows.
		horizontalPass(img.Pix[win.top*img.Width*ch:], img.Width*ch, out.Pix, horiz, ch)
		return out
	}
	vert := precomputeWindow(img.Height, height, f, win.top, win.h)
	// The rows of the input the vertical pass reads, resampled horizontally.
	yFirst := vert.start[0]
	yLast := vert.start[win.h-1] + len(vert.weights[win.h-1])
	tmp := getScratch((yLast - yFirst) * win.w * ch)
	horizontalPass(img.Pix[yFirst*img.Width*ch:], img.Width*ch, tmp, horiz, ch)
	verticalPass(tmp, win.w*ch, 0, yFirst, vert, out.Pix, win.w*ch)
	putScratch(tmp)
	return out
}

// Crop returns the h×w region of img whose top-left pixel is (top, left), as a copy. The region must lie
// inside the image.
func Crop(img dataset.Image, top, left, h, w int) dataset.Image {
	if top < 0 || left < 0 || h <= 0 || w <= 0 || top+h > img.Height || left+w > img.Width {
		panic(fmt.Sprintf("imageprep.Crop: region %d×%d at (%d, %d) is outside the %d×%d image", h, w, top, left, img.Height, img.Width))
	}
	ch := img.Channels
	out := dataset.Image{Height: h, Width: w, Channels: ch, Pix: make([]uint8, h*w*ch)}
	for y := range h {
		copy(out.Pix[y*w*ch:(y+1)*w*ch], img.Pix[((top+y)*img.Width+left)*ch:])
	}
	return out
}

// ResizeShort is torchvision's Resize(n, interpolation) for an int size: the shorter side becomes n and the
// longer int(n·long/short), keeping the aspect ratio. An image whose shorter side is already n is returned
// as is.
func ResizeShort(img dataset.Image, n int, f Filter) dataset.Image {
	w, h := img.Width, img.Height
	short, long := w, h
	if w > h {
		short, long = h, w
	}
	if short == n {
		return img
	}
	newLong := int(float64(n) * float64(long) / float64(short))
	if w <= h {
		return Resize(img, n, newLong, f)
	}
	return Resize(img, newLong, n, f)
}

// CenterCrop is torchvision's CenterCrop(n) for an image at least n pixels in both sides: the offsets are
// int(round((h-n)/2.0)) and int(round((w-n)/2.0)), Python's round (half to even). An n×n image is returned
// as is.
func CenterCrop(img dataset.Image, n int) dataset.Image {
	if img.Height == n && img.Width == n {
		return img
	}
	if img.Height < n || img.Width < n {
		panic(fmt.Sprintf("imageprep.CenterCrop: the %d×%d image is smaller than %d×%d", img.Height, img.Width, n, n))
	}
	c := centre(img.Width, img.Height, n)
	return Crop(img, c.top, c.left, n, n)
}

// resizeCentre is CenterCrop(Resize(img, width, height, f), n), computing only the n×n pixels kept (Resize is
// skipped when the size does not change, as torchvision skips it). Its memory is that of the crop and of the
// input rows it reads, however elongated the resized image.
func resizeCentre(img dataset.Image, width, height, n int, f Filter) dataset.Image {
	if width == img.Width && height == img.Height {
		return CenterCrop(img, n)
	}
	return resizeWindow(img, width, height, f, centre(width, height, n))
}

// CLIP is the geometric part of CLIP's preprocessing, torchvision's Compose([Resize(n, interpolation=BICUBIC),
// CenterCrop(n)]): the shorter side is resized to n with PIL's bicubic filter, then the centre n×n square is
// kept. An image already n×n is returned unchanged (it is not resampled). The result keeps the channels of
// img; normalising its pixels is clip.Preprocess's job.
//
// PIL resizes an image in the mode it was opened in, before converting it to RGB: for RGB and grayscale
// files CLIP(LoadFile(path), n) gives PIL's pixels, but for RGBA, palette, CMYK and 16-bit grayscale files
// use CLIPFile, which follows PIL's mode. It panics unless the sizes pass CheckCLIPSize.
func CLIP(img dataset.Image, n int) dataset.Image {
	if err := CheckCLIPSize(img.Width, img.Height, n); err != nil {
		panic("imageprep.CLIP: " + err.Error())
	}
	if min(img.Width, img.Height) == n { // ResizeShort keeps such an image
		return CenterCrop(img, n)
	}
	rw, rh := resizeShortSize(img.Width, img.Height, n)
	return resizeCentre(img, rw, rh, n, Bicubic)
}
