package imageprep

import (
	"bytes"
	"image"
	stdjpeg "image/jpeg"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/imageprep/internal/jpeg"
)

// benchJPEG encodes a 1024×768 synthetic photo-like image (smooth gradients plus texture) with Go's encoder
// (baseline, 4:2:0, quality 90).
func benchJPEG(b *testing.B) []byte {
	b.Helper()
	const w, h = 1024, 768
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			i := img.PixOffset(x, y)
			for c := range 3 {
				v := 128 + 90*math.Sin(float64(x)/(17+float64(c))+float64(y)/29)*math.Cos(float64(y)/(13+float64(c))) +
					20*math.Sin(float64(x*y)/(50+float64(c)))
				img.Pix[i+c] = uint8(max(0, min(255, v)))
			}
			img.Pix[i+3] = 255
		}
	}
	var buf bytes.Buffer
	if err := stdjpeg.Encode(&buf, img, &stdjpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkDecodeJPEG compares this package's libjpeg-exact JPEG decoder (internal/jpeg) with Go's
// image/jpeg, on a 1024×768 baseline 4:2:0 image and on the progressive 4:2:0 reference file.
func BenchmarkDecodeJPEG(b *testing.B) {
	prog, err := os.ReadFile(filepath.Join("testdata", "pillowref", "jpegprog_101x63.jpg"))
	if err != nil {
		b.Fatal(err)
	}
	inputs := []struct {
		name string
		data []byte
	}{{"baseline1024x768", benchJPEG(b)}, {"progressive101x63", prog}}
	decoders := []struct {
		name   string
		decode func([]byte) (image.Image, error)
	}{
		{"libjpeg-exact", func(d []byte) (image.Image, error) { return jpeg.Decode(bytes.NewReader(d)) }},
		{"image-jpeg", func(d []byte) (image.Image, error) { return stdjpeg.Decode(bytes.NewReader(d)) }},
	}
	for _, in := range inputs {
		for _, dec := range decoders {
			b.Run(in.name+"/"+dec.name, func(b *testing.B) {
				b.SetBytes(int64(len(in.data)))
				for b.Loop() {
					if _, err := dec.decode(in.data); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
