package imageprep

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/fuzzcheck"
	"github.com/mmpoison/mmpoison/poisoning/imageprep/internal/jpeg"
)

// pillowrefImages returns the encoded JPEG and PNG files of testdata/pillowref.
func pillowrefImages(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	for _, pattern := range []string{"*.jpg", "*.png"} {
		paths, _ := filepath.Glob(filepath.Join("testdata", "pillowref", pattern))
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			out[filepath.Base(p)] = data
		}
	}
	if len(out) == 0 {
		t.Fatal("no images in testdata/pillowref")
	}
	return out
}

// withSize returns a copy of a JPEG whose frame header (SOF0 or SOF2) declares w×h, or of a PNG whose IHDR does
// (its CRC fixed), so that a small file claims a large image.
func withSize(t testing.TB, data []byte, w, h uint16) []byte {
	out := bytes.Clone(data)
	if bytes.HasPrefix(out, []byte("\x89PNG")) {
		binary.BigEndian.PutUint32(out[16:], uint32(w))
		binary.BigEndian.PutUint32(out[20:], uint32(h))
		binary.BigEndian.PutUint32(out[29:], crc32.ChecksumIEEE(out[12:29]))
		return out
	}
	for _, sof := range [][]byte{{0xff, 0xc0}, {0xff, 0xc2}} {
		if i := bytes.Index(out, sof); i >= 0 {
			binary.BigEndian.PutUint16(out[i+5:], h)
			binary.BigEndian.PutUint16(out[i+7:], w)
			return out
		}
	}
	t.Fatal("no frame header")
	return nil
}

// fuzzDecoder is the decoder of FuzzDecode: limits small enough to keep every run fast.
var fuzzDecoder = Decoder{MaxPixels: 1 << 20, MaxBytes: 16 << 20}

// FuzzDecode feeds arbitrary bytes to the project's decoder (internal/jpeg for JPEGs, image/png) and to CLIP's
// preprocessing. Properties: no panic; errors name the image; a decode allocates no more than the byte limit
// checked from the header (and, for a JPEG, no more than internal/jpeg's estimate); a decoded image converts to
// w·h·3 RGB bytes and preprocesses to n×n×3.
func FuzzDecode(f *testing.F) {
	for _, data := range pillowrefImages(f) {
		f.Add(data, uint8(7))
	}
	f.Add(withSize(f, pillowrefImages(f)["jpegprog_101x63.jpg"], 2000, 2000), uint8(200))
	f.Add(withSize(f, pillowrefImages(f)["rgba_50x37.png"], 3000, 3000), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, side uint8) {
		const name = "fuzz.img"
		var img image.Image
		var err error
		fuzzcheck.Within(t, "DecodeBytes", uint64(fuzzDecoder.MaxBytes), func() { img, err = fuzzDecoder.DecodeBytes(data, name) })
		if err != nil {
			if !strings.Contains(err.Error(), name) {
				t.Fatalf("error %q does not name the image", err)
			}
			return
		}
		if bytes.HasPrefix(data, []byte("\xff\xd8")) {
			h, err := jpeg.DecodeHeader(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("decoded a JPEG whose header does not parse: %v", err)
			}
			fuzzcheck.Within(t, "jpeg.Decode", uint64(h.Bytes), func() { _, _ = jpeg.Decode(bytes.NewReader(data)) })
		}
		b := img.Bounds()
		if rgb := ToDataset(img); rgb.Width != b.Dx() || rgb.Height != b.Dy() || len(rgb.Pix) != 3*b.Dx()*b.Dy() {
			t.Fatalf("ToDataset of a %v image: %d×%d, %d bytes", b, rgb.Width, rgb.Height, len(rgb.Pix))
		}
		n := int(side%64) + 1
		out, err := clipBytes(fuzzDecoder, data, name, n)
		if CheckCLIPSize(b.Dx(), b.Dy(), n) != nil {
			if err == nil {
				t.Fatalf("a %v image preprocessed to %d although CheckCLIPSize refuses it", b, n)
			}
			return
		}
		if err != nil || out.Width != n || out.Height != n || len(out.Pix) != 3*n*n {
			t.Fatalf("CLIP of a %v image to %d: %d×%d, %v", b, n, out.Width, out.Height, err)
		}
	})
}

// FuzzCLIP checks CLIP's size limits on small images of any aspect: CLIP panics exactly when CheckCLIPSize
// refuses, and otherwise returns n×n pixels in memory for the output, the input and the input rows the crop
// reads (whatever the aspect ratio, the resized image is never built whole).
func FuzzCLIP(f *testing.F) {
	f.Add(uint16(50), uint16(37), uint16(24))
	f.Add(uint16(1), uint16(4000), uint16(224))
	f.Add(uint16(3), uint16(3), uint16(9000))
	f.Add(uint16(16), uint16(4000), uint16(177)) // built the whole 177×44250 resized image before the crop

	f.Fuzz(func(t *testing.T, w, h, n uint16) {
		if int(w)*int(h) > 1<<16 || n > 1024 && n <= MaxSide { // Large valid outputs only make runs slow.
			return
		}
		img := dataset.Image{Height: int(h), Width: int(w), Channels: 3, Pix: make([]uint8, 3*int(w)*int(h))}
		want := CheckCLIPSize(int(w), int(h), int(n))
		var out dataset.Image
		var panicked any
		fuzzcheck.Within(t, "CLIP", 8*uint64(int(n)*int(n)+(int(h)+int(w)+8)*int(n)+int(w)*int(h)), func() {
			defer func() { panicked = recover() }()
			out = CLIP(img, int(n))
		})
		switch {
		case want != nil && panicked == nil:
			t.Fatalf("CLIP(%d×%d, %d) ran although CheckCLIPSize says %v", w, h, n, want)
		case want == nil && panicked != nil:
			t.Fatalf("CLIP(%d×%d, %d) panicked: %v", w, h, n, panicked)
		case want == nil && (out.Width != int(n) || out.Height != int(n)):
			t.Fatalf("CLIP(%d×%d, %d) = %d×%d", w, h, n, out.Width, out.Height)
		}
	})
}

// FuzzResizeWindow: computing only a window of a resize (what CLIP does) gives exactly the pixels of the full
// resize cropped to it, for the 8-bit, nearest-neighbour and 16-bit ("I") resamplers, and the 8-bit passes give
// those of their plain transcription (plainResizeWindow).
func FuzzResizeWindow(f *testing.F) {
	f.Add(uint8(50), uint8(37), uint16(24), uint16(17), uint8(3), uint16(4), uint64(1))
	f.Add(uint8(3), uint8(40), uint16(7), uint16(200), uint8(1), uint16(90), uint64(2))
	f.Add(uint8(9), uint8(9), uint16(9), uint16(30), uint8(4), uint16(0), uint64(3))
	f.Fuzz(func(t *testing.T, w, h uint8, rw, rh uint16, ch uint8, at uint16, seed uint64) {
		if w == 0 || h == 0 || rw == 0 || rh == 0 || int(rw)*int(rh) > 1<<16 || ch == 0 || ch > 4 {
			return
		}
		img := dataset.Image{Height: int(h), Width: int(w), Channels: int(ch), Pix: make([]uint8, int(w)*int(h)*int(ch))}
		v := make([]int32, int(w)*int(h))
		for i := range img.Pix {
			seed = seed*6364136223846793005 + 1442695040888963407
			img.Pix[i] = uint8(seed >> 56)
			if i < len(v) {
				v[i] = int32(seed>>40) & 0xffff
			}
		}
		full := window{0, 0, int(rh), int(rw)}
		win := window{int(at) % int(rh), int(at/3) % int(rw), 0, 0}
		win.h, win.w = 1+int(at/7)%(int(rh)-win.top), 1+int(at/11)%(int(rw)-win.left)
		crop := func(x dataset.Image) dataset.Image { return Crop(x, win.top, win.left, win.h, win.w) }
		if int(rw) != img.Width || int(rh) != img.Height {
			for _, filter := range []Filter{Bicubic, Bilinear} {
				if got, want := resizeWindow(img, int(rw), int(rh), filter, win), crop(resizeWindow(img, int(rw), int(rh), filter, full)); !bytes.Equal(got.Pix, want.Pix) {
					t.Fatalf("%v window %+v of %dx%d → %dx%d differs from the cropped resize", filter, win, w, h, rw, rh)
				} else if plain := plainResizeWindow(img, int(rw), int(rh), filter, win); !bytes.Equal(got.Pix, plain.Pix) {
					t.Fatalf("%v window %+v of %dx%d → %dx%d differs from the plain passes", filter, win, w, h, rw, rh)
				}
			}
			got, all := resizeInt32(v, int(w), int(h), int(rw), int(rh), win), resizeInt32(v, int(w), int(h), int(rw), int(rh), full)
			for y := range win.h {
				for x := range win.w {
					if got[y*win.w+x] != all[(win.top+y)*int(rw)+win.left+x] {
						t.Fatalf("int32 window %+v of %dx%d → %dx%d differs at (%d, %d)", win, w, h, rw, rh, x, y)
					}
				}
			}
		}
		if got, want := resizeNearest(img, int(rw), int(rh), win), crop(resizeNearest(img, int(rw), int(rh), full)); !bytes.Equal(got.Pix, want.Pix) {
			t.Fatalf("nearest window %+v of %dx%d → %dx%d differs from the cropped resize", win, w, h, rw, rh)
		}
	})
}

// TestHostileImages: headers of small files claiming images whose decoding would take gigabytes are refused from
// the header, in little memory, naming the file; absurd target sizes are refused before any allocation.
func TestHostileImages(t *testing.T) {
	refs := pillowrefImages(t)
	rgba16 := pngHeader(8000, 8000)
	rgba16[24], rgba16[25] = 16, 6 // 16-bit RGBA
	binary.BigEndian.PutUint32(rgba16[29:], crc32.ChecksumIEEE(rgba16[12:29]))
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"progressive 4:4:4 JPEG of 9000×9000", withSize(t, refs["jpeg444prog_23x17.jpg"], 9000, 9000), "needs about"},
		{"progressive CMYK JPEG of 6000×6000", withSize(t, refs["jpegcmykprog_19x13.jpg"], 6000, 6000), "needs about"},
		{"16-bit RGBA PNG of 8000×8000", rgba16, "needs about"},
		{"RGB PNG of 100000×100000", pngHeader(100000, 100000), "above the limit of 89478485"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			fuzzcheck.Within(t, "CLIPBytes", 1<<20, func() { _, err = CLIPBytes(tc.data, tc.name, 224) })
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.name) {
				t.Errorf("error %v, want one naming the image and containing %q", err, tc.want)
			}
		})
	}
	// A baseline 4:2:0 photo of 81 megapixels stays within the default byte limit.
	h, err := jpeg.DecodeHeader(bytes.NewReader(withSize(t, refs["jpeg420_200x150.jpg"], 9000, 9000)))
	if err != nil {
		t.Fatal(err)
	}
	if need := h.Bytes + 4*9000*9000; need > DefaultMaxBytes {
		t.Errorf("a baseline 4:2:0 JPEG of 9000×9000 needs %d bytes, above DefaultMaxBytes", need)
	}

	small := dataset.Image{Height: 10, Width: 10, Channels: 3, Pix: make([]uint8, 300)}
	thin := dataset.Image{Height: 8000, Width: 1, Channels: 3, Pix: make([]uint8, 24000)}
	panics := []struct {
		name string
		call func()
		want string
	}{
		{"Resize to 100000×100000", func() { Resize(small, 100000, 100000, Bicubic) }, "above the limit"},
		{"CLIP to 100000", func() { CLIP(small, 100000) }, "invalid size 100000"},
		{"CLIP of a 1×8000 image to 224", func() { CLIP(thin, 224) }, "224×1792000"},
		{"RandomResizedCrop to 10000", func() { RandomResizedCrop(small, 10000, nil) }, "invalid size 10000"},
	}
	for _, tc := range panics {
		var got any
		fuzzcheck.Within(t, tc.name, 1<<20, func() {
			defer func() { got = recover() }()
			tc.call()
		})
		if msg, _ := got.(string); !strings.Contains(msg, tc.want) {
			t.Errorf("%s: panic %v, want one containing %q", tc.name, got, tc.want)
		}
	}
	if err := CheckCLIPSize(1, 8000, 224); err == nil || !strings.Contains(err.Error(), "1×8000") {
		t.Errorf("CheckCLIPSize(1, 8000, 224) = %v", err)
	}
}

// TestJPEGEstimate: internal/jpeg's memory estimate bounds what decoding the reference files allocates, and is
// not far above it.
func TestJPEGEstimate(t *testing.T) {
	for name, data := range pillowrefImages(t) {
		if !strings.HasSuffix(name, ".jpg") {
			continue
		}
		h, err := jpeg.DecodeHeader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(name, err)
		}
		got := fuzzcheck.Allocated(func() { _, _ = jpeg.Decode(bytes.NewReader(data)) })
		if got > uint64(h.Bytes)+64<<10 || uint64(h.Bytes) > 3*got {
			t.Errorf("%s (progressive %v): decoding allocated %d bytes, estimate %d", name, h.Progressive, got, h.Bytes)
		}
	}
}

// TestPNGEstimate: the PNG estimate bounds what image/png allocates for the reference files and for interlaced
// and transparent ones.
func TestPNGEstimate(t *testing.T) {
	files := pillowrefImages(t)
	for name, data := range files {
		if !strings.HasSuffix(name, ".png") {
			continue
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			t.Fatal(name, err)
		}
		est := pngBytes(data, int64(cfg.Width)*int64(cfg.Height))
		got := fuzzcheck.Allocated(func() { _, _ = png.Decode(bytes.NewReader(data)) })
		if got > uint64(est)+64<<10 {
			t.Errorf("%s: decoding allocated %d bytes, estimate %d", name, got, est)
		}
	}
}
