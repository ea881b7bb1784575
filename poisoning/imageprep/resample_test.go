package imageprep

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// plainResizeWindow is resizeWindow written as plainly as PIL's ImagingResampleHorizontal_8bpc and
// ImagingResampleVertical_8bpc: every output value is a sum over its taps, 2^21 plus weight × sample, clipped
// with clip8. The optimised passes must give its values.
func plainResizeWindow(img dataset.Image, width, height int, f Filter, win window) dataset.Image {
	ch := img.Channels
	vert := precomputeWindow(img.Height, height, f, win.top, win.h)
	src, stride, off, yFirst := img.Pix, img.Width*ch, win.left*ch, 0
	if width != img.Width {
		horiz := precomputeWindow(img.Width, width, f, win.left, win.w)
		yFirst = vert.start[0]
		yLast := vert.start[win.h-1] + len(vert.weights[win.h-1])
		if height == img.Height {
			yFirst, yLast = win.top, win.top+win.h
		}
		src, stride, off = make([]uint8, (yLast-yFirst)*win.w*ch), win.w*ch, 0
		for y := range yLast - yFirst {
			for xx := range win.w {
				for c := range ch {
					ss := 1 << (precisionBits - 1)
					for x, w := range horiz.weights[xx] {
						ss += int(img.Pix[(y+yFirst)*img.Width*ch+(horiz.start[xx]+x)*ch+c]) * int(w)
					}
					src[(y*win.w+xx)*ch+c] = clip8(int32(ss))
				}
			}
		}
		if height == img.Height {
			return dataset.Image{Height: win.h, Width: win.w, Channels: ch, Pix: src}
		}
	}
	out := dataset.Image{Height: win.h, Width: win.w, Channels: ch, Pix: make([]uint8, win.h*win.w*ch)}
	for yy := range win.h {
		for i := range win.w * ch {
			ss := 1 << (precisionBits - 1)
			for y, w := range vert.weights[yy] {
				ss += int(src[(vert.start[yy]-yFirst+y)*stride+off+i]) * int(w)
			}
			out.Pix[yy*win.w*ch+i] = clip8(int32(ss))
		}
	}
	return out
}

// TestResizePasses compares resizeWindow with plainResizeWindow on noisy images with extreme values, for every
// channel count the package resizes (gray, RGB, RGBA and CMYK), both filters, down- and upscaling, one
// dimension or both, whole outputs and CLIP's centre windows.
func TestResizePasses(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 4))
	cases := []struct{ w, h, rw, rh int }{
		{640, 480, 298, 224}, {480, 640, 224, 298}, {640, 427, 335, 224}, {50, 37, 32, 24}, {37, 50, 37, 24},
		{50, 37, 24, 37}, {19, 19, 24, 24}, {3, 50, 24, 400}, {200, 150, 32, 24}, {1, 1, 5, 7}, {9, 2, 4, 1},
	}
	for _, tc := range cases {
		for _, ch := range []int{1, 3, 4} {
			for _, f := range []Filter{Bicubic, Bilinear} {
				img := dataset.Image{Height: tc.h, Width: tc.w, Channels: ch, Pix: make([]uint8, tc.w*tc.h*ch)}
				for i := range img.Pix {
					img.Pix[i] = uint8(rng.IntN(256))
					if rng.IntN(4) == 0 {
						img.Pix[i] = 255 * uint8(rng.IntN(2)) // Extremes: overshoot, clipping.
					}
				}
				n := min(tc.rw, tc.rh)
				for _, win := range []window{{0, 0, tc.rh, tc.rw}, centre(tc.rw, tc.rh, n)} {
					name := fmt.Sprintf("%dx%dx%d-to-%dx%d-%v-window%v", tc.w, tc.h, ch, tc.rw, tc.rh, f, win)
					got, want := resizeWindow(img, tc.rw, tc.rh, f, win), plainResizeWindow(img, tc.rw, tc.rh, f, win)
					if got.Width != want.Width || got.Height != want.Height || !bytes.Equal(got.Pix, want.Pix) {
						t.Errorf("%s: the optimised resize differs from the plain one", name)
					}
				}
			}
		}
	}
}

// BenchmarkCLIPResize measures CLIP's resize of a 640×480 RGB image to its 224×224 centre.
func BenchmarkCLIPResize(b *testing.B) {
	img := dataset.Image{Height: 480, Width: 640, Channels: 3, Pix: make([]uint8, 640*480*3)}
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7 % 251)
	}
	for b.Loop() {
		CLIP(img, 224)
	}
}
