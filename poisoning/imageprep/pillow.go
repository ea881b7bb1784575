package imageprep

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"os"
	"slices"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// pilMode is the PIL image mode a decoded file has in OpenAI's preprocessing. torchvision resizes the image
// in that mode and only then (after CenterCrop) converts it to RGB, so the mode changes the pixels:
// PIL resizes "P" (palette) and "1" (bilevel) images with nearest neighbour whatever filter is asked,
// "RGBA" and "LA" images premultiplied by alpha, "I" (16-bit grayscale PNG) images in 32-bit integers, and
// "CMYK" images before the (non-linear) conversion to RGB.
type pilMode int

const (
	modeRGB pilMode = iota
	modeL
	modeRGBA // also "LA", whose gray Go expands to equal R, G and B
	modeP    // also "1"
	modeI
	modeCMYK
)

// pngMode returns PIL's mode for a PNG file from its IHDR chunk (bit depth and colour type), and false for
// data that is not a PNG.
func pngMode(data []byte) (pilMode, bool) {
	if len(data) < 26 || !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) || string(data[12:16]) != "IHDR" {
		return 0, false
	}
	depth, ct := data[24], data[25]
	switch ct {
	case 0: // grayscale (a tRNS colour does not change PIL's mode)
		switch depth {
		case 1:
			return modeP, true // "1"
		case 16:
			return modeI, true
		}
		return modeL, true
	case 2: // RGB, 8 or 16 bits (PIL keeps the high byte; a tRNS colour does not change the mode)
		return modeRGB, true
	case 3:
		return modeP, true
	case 4, 6: // LA, RGBA
		return modeRGBA, true
	}
	return 0, false
}

// goMode guesses PIL's mode from the type Go's decoders return.
func goMode(img image.Image) pilMode {
	switch src := img.(type) {
	case *image.Gray:
		return modeL
	case *image.Gray16:
		return modeI
	case *image.Paletted:
		return modeP
	case *image.CMYK:
		return modeCMYK
	case *image.NRGBA, *image.NRGBA64:
		return modeRGBA
	case *image.RGBA:
		if src.Opaque() {
			return modeRGB
		}
		return modeRGBA
	case *image.RGBA64:
		if src.Opaque() {
			return modeRGB
		}
		return modeRGBA
	}
	return modeRGB
}

// CLIPFile decodes the image file at path (with the default pixel limit) and applies CLIP's geometric
// preprocessing as OpenAI's clip.load preprocess does on the PIL image: see CLIPBytes.
func CLIPFile(path string, n int) (dataset.Image, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return dataset.Image{}, readError(path, err)
	}
	return CLIPBytes(data, path, n)
}

// CLIPBytes decodes an encoded JPEG or PNG image (with the default pixel limit; name identifies it in
// errors) and returns the n×n RGB pixels of torchvision's Compose([Resize(n, BICUBIC), CenterCrop(n),
// convert("RGB")]) on the image PIL opens, ready for clip.Preprocess.
//
// Unlike CLIP(LoadFile(...)), which converts to RGB before resizing, it resizes in PIL's mode for the file:
// identical for RGB and grayscale images, but different (by up to the full range) for RGBA and gray+alpha
// PNGs (PIL resizes premultiplied colours), palette and 1-bit PNGs (PIL resizes them with nearest
// neighbour), 16-bit grayscale PNGs (PIL keeps the 16-bit values and convert("RGB") clips them to 255) and
// CMYK JPEGs (PIL resizes CMYK).
//
// n and the image's size must pass CheckCLIPSize; the error names the image.
func CLIPBytes(data []byte, name string, n int) (dataset.Image, error) {
	return clipBytes(Decoder{}, data, name, n)
}

// clipBytes is CLIPBytes with the decoder d.
func clipBytes(d Decoder, data []byte, name string, n int) (dataset.Image, error) {
	if n <= 0 || n > MaxSide {
		return dataset.Image{}, fmt.Errorf("imageprep: %s: %w", name, CheckCLIPSize(1, 1, n))
	}
	p, err := d.decodePixels(data, name, true)
	if err != nil {
		return dataset.Image{}, err
	}
	if p.img == nil { // libjpeg-turbo's gray ("L") or RGB pixels, in a scratch buffer
		defer putScratch(p.pix.Pix)
		if err := CheckCLIPSize(p.pix.Width, p.pix.Height, n); err != nil {
			return dataset.Image{}, fmt.Errorf("imageprep: %s: %w", name, err)
		}
		rw, rh := resizeShortSize(p.pix.Width, p.pix.Height, n)
		out := resizeCentre(p.pix, rw, rh, n, Bicubic)
		if p.pix.Channels == 1 {
			return grayToRGB(out), nil
		}
		if rw == n && rh == n && p.pix.Width == n && p.pix.Height == n { // out is p.pix, whose buffer goes back
			out.Pix = slices.Clone(out.Pix)
		}
		return out, nil
	}
	b := p.img.Bounds()
	if err := CheckCLIPSize(b.Dx(), b.Dy(), n); err != nil {
		return dataset.Image{}, fmt.Errorf("imageprep: %s: %w", name, err)
	}
	mode, ok := pngMode(data)
	if !ok {
		mode = goMode(p.img)
	}
	return clipMode(p.img, mode, n), nil
}

// CLIPImage is CLIPBytes for an already decoded image, PIL's mode guessed from its Go type: *image.Gray is
// "L", *image.Gray16 "I", *image.Paletted "P", *image.CMYK "CMYK", images with alpha (NRGBA, non-opaque
// RGBA) "RGBA", anything else "RGB". (A PNG with a tRNS colour key decodes to NRGBA in Go but is "RGB" or
// "L" in PIL; CLIPBytes reads the PNG header and gets those right.) It panics unless the sizes pass
// CheckCLIPSize.
func CLIPImage(img image.Image, n int) dataset.Image {
	return clipMode(img, goMode(img), n)
}

// clipMode is CLIP's preprocessing of img in PIL's mode: the shorter side resized to n, then the centre n×n
// square, of which only the pixels kept are computed (see resizeWindow).
func clipMode(img image.Image, mode pilMode, n int) dataset.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if err := CheckCLIPSize(w, h, n); err != nil {
		panic("imageprep.CLIP: " + err.Error())
	}
	rw, rh := resizeShortSize(w, h, n)
	resize := rw != w || rh != h // torchvision skips Image.resize when the size does not change
	win := centre(rw, rh, n)
	switch mode {
	case modeL:
		return grayToRGB(resizeCentre(channel0(ToDataset(img)), rw, rh, n, Bicubic))
	case modeRGBA:
		x := nrgbaPixels(img)
		if !resize {
			return dropAlpha(CenterCrop(x, n))
		}
		premultiply(x)
		x = resizeWindow(x, rw, rh, Bicubic, win)
		unpremultiply(x)
		return dropAlpha(x)
	case modeP:
		x := ToDataset(img)
		if !resize {
			return CenterCrop(x, n)
		}
		return resizeNearest(x, rw, rh, win)
	case modeI:
		return clipInt32(img, w, h, rw, rh, n)
	case modeCMYK:
		if src, ok := img.(*image.CMYK); ok {
			x := dataset.Image{Height: h, Width: w, Channels: 4, Pix: make([]uint8, 4*w*h)}
			for y := range h {
				o := src.PixOffset(b.Min.X, b.Min.Y+y)
				copy(x.Pix[4*w*y:4*w*(y+1)], src.Pix[o:o+4*w])
			}
			x = resizeCentre(x, rw, rh, n, Bicubic)
			out := dataset.Image{Height: n, Width: n, Channels: 3, Pix: make([]uint8, 3*n*n)}
			for i := range n * n {
				q := x.Pix[4*i : 4*i+4]
				out.Pix[3*i], out.Pix[3*i+1], out.Pix[3*i+2] = pilCMYKToRGB(q[0], q[1], q[2], q[3])
			}
			return out
		}
	}
	return resizeCentre(ToDataset(img), rw, rh, n, Bicubic)
}

// resizeShortSize is torchvision's output size for Resize(n) of a w×h image.
func resizeShortSize(w, h, n int) (int, int) {
	short, long := w, h
	if w > h {
		short, long = h, w
	}
	newLong := int(float64(n) * float64(long) / float64(short))
	if w <= h {
		return n, newLong
	}
	return newLong, n
}

func channel0(x dataset.Image) dataset.Image {
	g := dataset.Image{Height: x.Height, Width: x.Width, Channels: 1, Pix: make([]uint8, x.Height*x.Width)}
	for i := range g.Pix {
		g.Pix[i] = x.Pix[i*x.Channels]
	}
	return g
}

func grayToRGB(g dataset.Image) dataset.Image {
	out := dataset.Image{Height: g.Height, Width: g.Width, Channels: 3, Pix: make([]uint8, 3*len(g.Pix))}
	for i, v := range g.Pix {
		out.Pix[3*i], out.Pix[3*i+1], out.Pix[3*i+2] = v, v, v
	}
	return out
}

func dropAlpha(x dataset.Image) dataset.Image {
	out := dataset.Image{Height: x.Height, Width: x.Width, Channels: 3, Pix: make([]uint8, 3*x.Height*x.Width)}
	for i := range x.Height * x.Width {
		copy(out.Pix[3*i:3*i+3], x.Pix[4*i:4*i+3])
	}
	return out
}

// nrgbaPixels returns the un-premultiplied 8-bit RGBA pixels of img (16-bit samples keep their high byte, as
// PIL's "RGBA;16B" and "LA;16B" readers do).
func nrgbaPixels(img image.Image) dataset.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := dataset.Image{Height: h, Width: w, Channels: 4, Pix: make([]uint8, 4*w*h)}
	if src, ok := img.(*image.NRGBA); ok {
		for y := range h {
			o := src.PixOffset(b.Min.X, b.Min.Y+y)
			copy(out.Pix[4*w*y:4*w*(y+1)], src.Pix[o:o+4*w])
		}
		return out
	}
	for y := range h {
		for x := range w {
			c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			i := 4 * (y*w + x)
			out.Pix[i], out.Pix[i+1], out.Pix[i+2], out.Pix[i+3] = c.R, c.G, c.B, c.A
		}
	}
	return out
}

// premultiply is PIL's RGBA → RGBa conversion: each colour becomes MULDIV255(colour, alpha).
func premultiply(x dataset.Image) {
	for i := 0; i < len(x.Pix); i += 4 {
		a := uint32(x.Pix[i+3])
		for c := range 3 {
			t := uint32(x.Pix[i+c])*a + 128
			x.Pix[i+c] = uint8(((t >> 8) + t) >> 8)
		}
	}
}

// unpremultiply is PIL's RGBa → RGBA conversion: colour·255/alpha, truncated and clipped, for 0 < alpha < 255.
func unpremultiply(x dataset.Image) {
	for i := 0; i < len(x.Pix); i += 4 {
		a := uint32(x.Pix[i+3])
		if a == 0 || a == 255 {
			continue
		}
		for c := range 3 {
			x.Pix[i+c] = uint8(min(255*uint32(x.Pix[i+c])/a, 255))
		}
	}
}

// resizeNearest returns the window win of PIL's nearest-neighbour resize to width×height (ImagingScaleAffine):
// output pixel x reads input column int(x0 + 0.5·s + x·s), s = inWidth/outWidth, accumulated in float64 as PIL
// does (from the first column, so the window's columns are those of the whole output); rows likewise.
func resizeNearest(img dataset.Image, width, height int, win window) dataset.Image {
	index := func(in, out, first, count int) []int {
		idx := make([]int, count)
		s := float64(float32(in)) / float64(out)
		v := s * 0.5
		for range first {
			v += s
		}
		for i := range idx {
			idx[i] = min(int(v), in-1)
			v += s
		}
		return idx
	}
	xs, ys := index(img.Width, width, win.left, win.w), index(img.Height, height, win.top, win.h)
	ch := img.Channels
	out := dataset.Image{Height: win.h, Width: win.w, Channels: ch, Pix: make([]uint8, win.w*win.h*ch)}
	for y, sy := range ys {
		for x, sx := range xs {
			copy(out.Pix[(y*win.w+x)*ch:(y*win.w+x+1)*ch], img.Pix[(sy*img.Width+sx)*ch:])
		}
	}
	return out
}

// clipInt32 handles PIL's "I" mode (16-bit grayscale PNGs): the resize works on the 16-bit values with
// float64 weights, rounding each pass to an integer (ImagingResample*_32bpc), and convert("RGB") then
// clips the values to [0, 255], so most such images come out nearly white, as in OpenAI's preprocessing.
func clipInt32(img image.Image, w, h, rw, rh, n int) dataset.Image {
	b := img.Bounds()
	v := make([]int32, w*h)
	for y := range h {
		for x := range w {
			c := color.NRGBA64Model.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA64)
			v[y*w+x] = int32(c.R)
		}
	}
	win := centre(rw, rh, n)
	stride := w
	if rw != w || rh != h {
		v, stride, win = resizeInt32(v, w, h, rw, rh, win), n, window{0, 0, n, n}
	}
	out := dataset.Image{Height: n, Width: n, Channels: 3, Pix: make([]uint8, 3*n*n)}
	for y := range n {
		for x := range n {
			g := uint8(min(max(v[(win.top+y)*stride+win.left+x], 0), 255))
			i := 3 * (y*n + x)
			out.Pix[i], out.Pix[i+1], out.Pix[i+2] = g, g, g
		}
	}
	return out
}

func roundUp(f float64) int32 {
	if f >= 0 {
		return int32(f + 0.5)
	}
	return int32(f - 0.5)
}

// resizeInt32 returns the window win of PIL's bicubic resize of an "I" image: horizontal pass (if the width
// changes) on the rows the vertical pass reads, then vertical, each rounded half away from zero. Only the
// window's values are computed, as resizeWindow does for 8-bit images.
func resizeInt32(v []int32, w, h, rw, rh int, win window) []int32 {
	vert := precomputeWindow(h, rh, Bicubic, win.top, win.h)
	yFirst, yLast := 0, h
	src, sw, off := v, w, win.left
	if rw != w {
		yFirst = vert.start[0]
		yLast = vert.start[win.h-1] + len(vert.fweights[win.h-1])
		if rh == h {
			yFirst, yLast = win.top, win.top+win.h
		}
		horiz := precomputeWindow(w, rw, Bicubic, win.left, win.w)
		tmp := make([]int32, (yLast-yFirst)*win.w)
		for y := range yLast - yFirst {
			row := v[(y+yFirst)*w : (y+yFirst+1)*w]
			for xx := range win.w {
				var ss float64
				for x, k := range horiz.fweights[xx] {
					ss += float64(row[horiz.start[xx]+x]) * k
				}
				tmp[y*win.w+xx] = roundUp(ss)
			}
		}
		if rh == h {
			return tmp
		}
		src, sw, off = tmp, win.w, 0
	}
	out := make([]int32, win.w*win.h)
	for yy := range win.h {
		y0 := vert.start[yy] - yFirst
		for xx := range win.w {
			var ss float64
			for y, k := range vert.fweights[yy] {
				ss += float64(src[(y0+y)*sw+off+xx]) * k
			}
			out[yy*win.w+xx] = roundUp(ss)
		}
	}
	return out
}
