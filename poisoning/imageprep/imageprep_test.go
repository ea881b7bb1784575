package imageprep

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// gradient returns a w×h RGB image with distinct, smoothly varying channels.
func gradient(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, color.NRGBA{uint8(x * 255 / max(w-1, 1)), uint8(y * 255 / max(h-1, 1)), uint8((x + y) % 256), 255})
		}
	}
	return img
}

func writeFile(t *testing.T, name string, encode func(*bytes.Buffer) error) string {
	t.Helper()
	var buf bytes.Buffer
	if err := encode(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func writePNG(t *testing.T, img image.Image) string {
	return writeFile(t, "img.png", func(b *bytes.Buffer) error { return png.Encode(b, img) })
}

func writeJPEG(t *testing.T, img image.Image) string {
	return writeFile(t, "img.jpg", func(b *bytes.Buffer) error { return jpeg.Encode(b, img, &jpeg.Options{Quality: 95}) })
}

func TestCLIPSizes(t *testing.T) {
	tests := []struct {
		name       string
		w, h, n    int
		resizedW   int
		resizedH   int
		passThough bool
	}{
		{"landscape", 64, 48, 32, 42, 32, false}, // int(32·64/48) = 42
		{"portrait", 30, 50, 20, 20, 33, false},  // int(20·50/30) = 33
		{"square down", 40, 40, 32, 32, 32, false},
		{"square up", 10, 10, 16, 16, 16, false},
		{"upscale landscape", 12, 8, 16, 24, 16, false},
		{"already n×n", 32, 32, 32, 32, 32, true},
		{"short side already n", 50, 32, 32, 50, 32, false},
		{"1×1", 1, 1, 8, 8, 8, false},
		{"thin", 3, 1, 4, 12, 4, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := ToDataset(gradient(tc.w, tc.h))
			r := ResizeShort(img, tc.n, Bicubic)
			if r.Width != tc.resizedW || r.Height != tc.resizedH {
				t.Fatalf("ResizeShort: %d×%d (w×h), want %d×%d", r.Width, r.Height, tc.resizedW, tc.resizedH)
			}
			out := CLIP(img, tc.n)
			if out.Width != tc.n || out.Height != tc.n || out.Channels != 3 || len(out.Pix) != tc.n*tc.n*3 {
				t.Fatalf("CLIP: %d×%d×%d (%d bytes), want %d×%d×3", out.Height, out.Width, out.Channels, len(out.Pix), tc.n, tc.n)
			}
			if tc.passThough && !bytes.Equal(out.Pix, img.Pix) {
				t.Fatal("an n×n image was resampled")
			}
		})
	}
}

func TestCenterCropOffsets(t *testing.T) {
	// Offsets round half to even like Python's round: (h-n)/2 = 0.5 → 0, 1.5 → 2, 2.5 → 2.
	tests := []struct{ size, n, offset int }{{5, 4, 0}, {7, 4, 2}, {9, 4, 2}, {8, 4, 2}}
	for _, tc := range tests {
		img := dataset.Image{Height: tc.size, Width: 4, Channels: 1, Pix: make([]uint8, tc.size*4)}
		for y := range tc.size {
			for x := range 4 {
				img.Pix[y*4+x] = uint8(y)
			}
		}
		out := CenterCrop(img, tc.n)
		if got := int(out.Pix[0]); got != tc.offset {
			t.Errorf("height %d → %d: top offset %d, want %d", tc.size, tc.n, got, tc.offset)
		}
	}
}

// TestResizeValues checks PIL's arithmetic on values worked out by hand: a 2× bilinear downscale widens the
// triangle to support 2, so the taps of output 0 (centre 1) are inputs 0, 1, 2 with weights 3/7, 3/7, 1/7
// and those of output 1 (centre 3) inputs 1, 2, 3 with 1/7, 3/7, 3/7.
func TestResizeValues(t *testing.T) {
	img := dataset.Image{Height: 1, Width: 4, Channels: 1, Pix: []uint8{0, 80, 160, 240}}
	out := Resize(img, 2, 1, Bilinear)
	if want := []uint8{57, 183}; !bytes.Equal(out.Pix, want) { // 400/7 = 57.1, 1280/7 = 182.9
		t.Fatalf("bilinear 4→2: %v, want %v", out.Pix, want)
	}
	// A constant image stays constant under any resampling, and bicubic overshoot is clipped to [0, 255].
	c := dataset.Image{Height: 7, Width: 9, Channels: 3, Pix: bytes.Repeat([]uint8{200, 0, 255}, 63)}
	for _, f := range []Filter{Bicubic, Bilinear} {
		for _, size := range [][2]int{{4, 3}, {20, 30}, {9, 2}, {1, 1}} {
			r := Resize(c, size[0], size[1], f)
			if r.Width != size[0] || r.Height != size[1] || !bytes.Equal(r.Pix, bytes.Repeat([]uint8{200, 0, 255}, size[0]*size[1])) {
				t.Fatalf("%v resize of a constant image to %v changed it: %v", f, size, r.Pix[:6])
			}
		}
	}
	step := dataset.Image{Height: 1, Width: 4, Channels: 1, Pix: []uint8{0, 0, 255, 255}}
	up := Resize(step, 8, 1, Bicubic)
	for _, v := range up.Pix[:3] {
		if v != 0 {
			t.Fatalf("bicubic undershoot not clipped to 0: %v", up.Pix)
		}
	}
}

func TestDecodeInputs(t *testing.T) {
	gray := image.NewGray(image.Rect(0, 0, 6, 4))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i * 10)
	}
	pal := image.NewPaletted(image.Rect(0, 0, 2, 1), color.Palette{color.NRGBA{10, 20, 30, 255}, color.NRGBA{200, 100, 50, 0}})
	pal.SetColorIndex(1, 0, 1)
	transparent := image.NewNRGBA(image.Rect(0, 0, 1, 1))
	transparent.SetNRGBA(0, 0, color.NRGBA{90, 80, 70, 0})

	tests := []struct {
		name  string
		path  func(t *testing.T) string
		w, h  int
		check func(t *testing.T, img dataset.Image)
	}{
		{"rgb png", func(t *testing.T) string { return writePNG(t, gradient(7, 5)) }, 7, 5, func(t *testing.T, img dataset.Image) {
			if !bytes.Equal(img.Pix, ToDataset(gradient(7, 5)).Pix) {
				t.Error("PNG pixels differ from the encoded ones")
			}
		}},
		{"rgb jpeg", func(t *testing.T) string { return writeJPEG(t, gradient(16, 8)) }, 16, 8, nil},
		{"gray png", func(t *testing.T) string { return writePNG(t, gray) }, 6, 4, func(t *testing.T, img dataset.Image) {
			for i, v := range gray.Pix {
				if p := img.Pix[3*i : 3*i+3]; p[0] != v || p[1] != v || p[2] != v {
					t.Fatalf("pixel %d: %v, want gray %d repeated", i, p, v)
				}
			}
		}},
		{"gray jpeg", func(t *testing.T) string { return writeJPEG(t, gray) }, 6, 4, func(t *testing.T, img dataset.Image) {
			for i := 0; i < len(img.Pix); i += 3 {
				if img.Pix[i] != img.Pix[i+1] || img.Pix[i] != img.Pix[i+2] {
					t.Fatalf("gray JPEG pixel %d is not gray: %v", i/3, img.Pix[i:i+3])
				}
			}
		}},
		{"paletted png with transparency", func(t *testing.T) string { return writePNG(t, pal) }, 2, 1, func(t *testing.T, img dataset.Image) {
			if want := []uint8{10, 20, 30, 200, 100, 50}; !bytes.Equal(img.Pix, want) {
				t.Fatalf("got %v, want %v (alpha dropped)", img.Pix, want)
			}
		}},
		{"transparent nrgba png", func(t *testing.T) string { return writePNG(t, transparent) }, 1, 1, func(t *testing.T, img dataset.Image) {
			if want := []uint8{90, 80, 70}; !bytes.Equal(img.Pix, want) {
				t.Fatalf("got %v, want %v (alpha dropped)", img.Pix, want)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img, err := LoadFile(tc.path(t))
			if err != nil {
				t.Fatal(err)
			}
			if img.Width != tc.w || img.Height != tc.h || img.Channels != 3 || len(img.Pix) != tc.w*tc.h*3 {
				t.Fatalf("decoded %d×%d×%d, want %d×%d×3", img.Height, img.Width, img.Channels, tc.h, tc.w)
			}
			if tc.check != nil {
				tc.check(t, img)
			}
		})
	}
}

func TestToDatasetFastPaths(t *testing.T) {
	// The fast paths agree with the generic conversion (color.NRGBAModel).
	rgba := image.NewRGBA(image.Rect(0, 0, 256, 3))
	for x := range 256 {
		rgba.SetRGBA(x, 0, color.RGBA{uint8(x / 2), uint8(x / 3), uint8(x), uint8(x)})
		rgba.SetRGBA(x, 1, color.RGBA{uint8(x), 0, 255 - uint8(x), 255})
		rgba.SetRGBA(x, 2, color.RGBA{uint8(x / 4), uint8(x / 5), uint8(x / 6), uint8(x/2 + 100)})
	}
	gray := image.NewGray(image.Rect(0, 0, 16, 16))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i)
	}
	nrgba := image.NewNRGBA(image.Rect(0, 0, 16, 16))
	for i := range nrgba.Pix {
		nrgba.Pix[i] = uint8(i * 31)
	}
	for _, img := range []image.Image{rgba, gray, gray.SubImage(image.Rect(2, 3, 9, 9)), nrgba} {
		fast := ToDataset(img)
		slow := ToDataset(struct{ image.Image }{img}) // Hides the concrete type.
		if !bytes.Equal(fast.Pix, slow.Pix) {
			t.Fatalf("the %T fast path differs from the generic conversion", img)
		}
	}
}

func TestToDatasetYCbCr(t *testing.T) {
	// libjpeg's colour conversion is within a level of Go's.
	for y := 0; y < 256; y += 5 {
		for cb := 0; cb < 256; cb += 3 {
			for cr := 0; cr < 256; cr += 7 {
				r, g, b := jpegRGB(uint8(y), uint8(cb), uint8(cr))
				r2, g2, b2 := color.YCbCrToRGB(uint8(y), uint8(cb), uint8(cr))
				for _, d := range []int{int(r) - int(r2), int(g) - int(g2), int(b) - int(b2)} {
					if d < -1 || d > 1 {
						t.Fatalf("YCbCr(%d, %d, %d): libjpeg %v, Go %v", y, cb, cr, []uint8{r, g, b}, []uint8{r2, g2, b2})
					}
				}
			}
		}
	}
	// Fancy upsampling of a constant chroma plane is the constant; of a ramp, in between its samples. A
	// sub-image (chroma repeated) gives the same pixels when the chroma is constant.
	for _, ratio := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420} {
		ycc := image.NewYCbCr(image.Rect(0, 0, 13, 9), ratio)
		for i := range ycc.Y {
			ycc.Y[i] = uint8(i * 7)
		}
		for i := range ycc.Cb {
			ycc.Cb[i], ycc.Cr[i] = 90, 200
		}
		whole := ToDataset(ycc)
		for y := range 9 {
			for x := range 13 {
				r, g, b := jpegRGB(ycc.Y[ycc.YOffset(x, y)], 90, 200)
				if p := whole.Pix[3*(13*y+x):]; p[0] != r || p[1] != g || p[2] != b {
					t.Fatalf("%v pixel (%d, %d): %v, want %v", ratio, x, y, p[:3], []uint8{r, g, b})
				}
			}
		}
		sub := ToDataset(ycc.SubImage(image.Rect(1, 1, 13, 9)))
		for y := range 8 {
			if !bytes.Equal(sub.Pix[3*12*y:3*12*(y+1)], whole.Pix[3*(13*(y+1)+1):3*(13*(y+2))]) {
				t.Fatalf("%v sub-image row %d differs", ratio, y)
			}
		}
	}
	row := []uint8{0, 40, 80, 120}
	out := make([]uint8, 8)
	fancyH2V1(row, out)
	if want := []uint8{0, 10, 30, 50, 70, 90, 110, 120}; !bytes.Equal(out, want) {
		t.Fatalf("h2v1 upsampling of %v: %v, want %v", row, out, want)
	}
}

func TestToDatasetCMYK(t *testing.T) {
	cmyk := image.NewCMYK(image.Rect(0, 0, 3, 2))
	colors := []color.CMYK{{0, 0, 0, 0}, {255, 0, 0, 0}, {0, 255, 0, 0}, {0, 0, 255, 0}, {0, 0, 0, 255}, {40, 80, 120, 30}}
	for i, c := range colors {
		cmyk.SetCMYK(i%3, i/3, c)
	}
	img := ToDataset(cmyk)
	want := []uint8{255, 255, 255, 0, 255, 255, 255, 0, 255, 255, 255, 0, 0, 0, 0}
	if !bytes.Equal(img.Pix[:15], want) {
		t.Fatalf("CMYK primaries: %v, want %v", img.Pix[:15], want)
	}
	// PIL's cmyk2rgb: (255 − k) − MULDIV255(c, 255 − k) per channel (testdata/pillowref checks it on a JPEG).
	if p, want := img.Pix[15:18], []uint8{190, 154, 119}; !bytes.Equal(p, want) {
		t.Fatalf("CMYK pixel: %v, want %v (PIL)", p, want)
	}
	// A sub-image keeps its own origin.
	sub := ToDataset(cmyk.SubImage(image.Rect(1, 1, 3, 2)))
	if sub.Width != 2 || sub.Height != 1 || !bytes.Equal(sub.Pix[:3], img.Pix[12:15]) {
		t.Fatalf("sub-image: %d×%d %v", sub.Height, sub.Width, sub.Pix)
	}
}

func TestDecodeErrors(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.png")
	good := mustPNG(t, gradient(8, 8))
	if err := os.WriteFile(corrupt, good[:len(good)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	text := filepath.Join(dir, "notes.jpg")
	if err := os.WriteFile(text, []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	bomb := filepath.Join(dir, "bomb.png")
	if err := os.WriteFile(bomb, pngHeader(100000, 100000), 0o644); err != nil {
		t.Fatal(err)
	}
	small := filepath.Join(dir, "small.png")
	if err := os.WriteFile(small, good, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		dec     Decoder
		path    string
		wantErr []string
		bomb    bool
	}{
		{"truncated png", Decoder{}, corrupt, []string{corrupt, "corrupt"}, false},
		{"not an image", Decoder{}, text, []string{text, "not a JPEG or PNG"}, false},
		{"missing", Decoder{}, filepath.Join(dir, "missing.png"), []string{"missing.png"}, false},
		{"bomb", Decoder{}, bomb, []string{bomb, "100000×100000", "89478485"}, true},
		{"custom limit", Decoder{MaxPixels: 63}, small, []string{small, "above the limit of 63"}, true},
		{"byte limit", Decoder{MaxPixels: -1}, bomb, []string{bomb, "needs about 80001600002 bytes", "Decoder.MaxBytes"}, true},
		// Without the limits the bomb header is decoded, and fails for lack of data: the guards are what refused it.
		{"no limit", Decoder{MaxPixels: -1, MaxBytes: -1}, bomb, []string{bomb, "corrupt"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.dec.DecodeFile(tc.path)
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range tc.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if errors.Is(err, ErrTooManyPixels) != tc.bomb {
				t.Errorf("errors.Is(err, ErrTooManyPixels) = %v, want %v (%v)", !tc.bomb, tc.bomb, err)
			}
		})
	}
	if _, err := (Decoder{MaxPixels: 64}).DecodeFile(small); err != nil {
		t.Fatalf("an image at the limit was refused: %v", err)
	}
}

func mustPNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pngHeader returns a PNG signature and a valid IHDR chunk (8-bit RGB, CRC included) declaring w×h pixels, and
// no image data.
func pngHeader(w, h uint32) []byte {
	var buf bytes.Buffer
	buf.WriteString("\x89PNG\r\n\x1a\n")
	chunk := make([]byte, 0, 17)
	chunk = append(chunk, "IHDR"...)
	chunk = binary.BigEndian.AppendUint32(chunk, w)
	chunk = binary.BigEndian.AppendUint32(chunk, h)
	chunk = append(chunk, 8, 2, 0, 0, 0) // Bit depth 8, truecolour, deflate, adaptive filtering, no interlace.
	_ = binary.Write(&buf, binary.BigEndian, uint32(13))
	buf.Write(chunk)
	_ = binary.Write(&buf, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return buf.Bytes()
}

func TestRandomResizedCrop(t *testing.T) {
	img := ToDataset(gradient(40, 30))
	tests := []struct {
		name string
		img  dataset.Image
		n    int
	}{
		{"landscape", img, 16},
		{"upscale", ToDataset(gradient(10, 12)), 24},
		{"gray", dataset.Image{Height: 20, Width: 20, Channels: 1, Pix: make([]uint8, 400)}, 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := RandomResizedCrop(tc.img, tc.n, rand.New(rand.NewPCG(7, 1)))
			b := RandomResizedCrop(tc.img, tc.n, rand.New(rand.NewPCG(7, 1)))
			if a.Width != tc.n || a.Height != tc.n || a.Channels != tc.img.Channels || len(a.Pix) != tc.n*tc.n*tc.img.Channels {
				t.Fatalf("got %d×%d×%d, want %d×%d×%d", a.Height, a.Width, a.Channels, tc.n, tc.n, tc.img.Channels)
			}
			if !bytes.Equal(a.Pix, b.Pix) {
				t.Fatal("the same seed gave different crops")
			}
		})
	}
	// Different seeds give different crops, all within the scale and ratio ranges.
	seen := map[[4]int]bool{}
	for seed := range uint64(50) {
		top, left, h, w := RandomResizedCropParams(30, 40, CLIPScale, CLIPRatio, rand.New(rand.NewPCG(seed, 1)))
		if top < 0 || left < 0 || top+h > 30 || left+w > 40 {
			t.Fatalf("seed %d: crop %d×%d at (%d, %d) outside the image", seed, h, w, top, left)
		}
		if area := float64(h*w) / 1200; area < 0.85 || area > 1 {
			t.Fatalf("seed %d: crop area fraction %.3f", seed, area)
		}
		seen[[4]int{top, left, h, w}] = true
	}
	if len(seen) < 5 {
		t.Fatalf("only %d distinct crops in 50 seeds", len(seen))
	}
	// No attempt fits a very elongated image: the fallback is the centred crop clamped to the ratio range.
	top, left, h, w := RandomResizedCropParams(10, 100, CLIPScale, CLIPRatio, rand.New(rand.NewPCG(1, 1)))
	if top != 0 || h != 10 || w != 13 || left != 43 { // w = round(10·4/3) = 13, left = (100-13)//2 = 43.
		t.Fatalf("fallback crop %d×%d at (%d, %d), want 10×13 at (0, 43)", h, w, top, left)
	}
}

// TestRGBRow: the table conversion gives jpegRGB's values for every Y, Cb and Cr.
func TestRGBRow(t *testing.T) {
	y, cb, cr, out := make([]uint8, 256), make([]uint8, 256), make([]uint8, 256), make([]uint8, 3*256)
	for i := range y {
		y[i] = uint8(i)
	}
	for b := range 256 {
		for r := range 256 {
			for i := range cb {
				cb[i], cr[i] = uint8(b), uint8(r)
			}
			rgbRow(y, cb, cr, out)
			for i := range y {
				if r0, g0, b0 := jpegRGB(y[i], cb[i], cr[i]); out[3*i] != r0 || out[3*i+1] != g0 || out[3*i+2] != b0 {
					t.Fatalf("YCbCr(%d, %d, %d): %v, want %v", i, b, r, out[3*i:3*i+3], []uint8{r0, g0, b0})
				}
			}
		}
	}
}
