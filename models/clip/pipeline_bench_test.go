package clip

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/mmpoison/mmpoison/poisoning/imageprep"
)

// BenchmarkJPEGPipeline measures CLIP's input pipeline on photo-sized JPEGs, one pass over the set per
// operation: reading and decoding each file, Resize(224, bicubic) and CenterCrop(224) in Pillow's arithmetic
// (imageprep.CLIPFile), then the conversion to normalised floats (Preprocess). It reports images/s and images
// per second of the process's CPU time (images/cpu-s, steadier on a shared machine); run it with -cpu 1 for the
// rate of one core. .ci/yardstick/jpeg-pipeline runs it alternately with Pillow + torchvision on
// the same files.
//
// The files are those of $MMPOISON_JPEG_BENCH_DIR (written there first if it holds no JPEG), else a temporary
// set: see writeBenchJPEGs.
func BenchmarkJPEGPipeline(b *testing.B) {
	dir := os.Getenv("MMPOISON_JPEG_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.jpg"))
	if err != nil {
		b.Fatal(err)
	}
	if len(files) == 0 {
		if files, err = writeBenchJPEGs(dir, 200); err != nil {
			b.Fatal(err)
		}
	}
	slices.Sort(files)
	cfg, err := Preset("ViT-B/32")
	if err != nil {
		b.Fatal(err)
	}
	pass := func() {
		for _, f := range files {
			img, err := imageprep.CLIPFile(f, cfg.ImageSize)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := Preprocess(cfg, img); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Logf("%d files in %s, JPEG decoder: %s", len(files), dir, imageprep.JPEGDecoder())
	pass() // Warm-up: the page cache, the JPEG library.
	cpu0 := cpuSeconds(b)
	for b.Loop() {
		pass()
	}
	images := float64(b.N * len(files))
	b.ReportMetric(images/b.Elapsed().Seconds(), "images/s")
	b.ReportMetric(images/(cpuSeconds(b)-cpu0), "images/cpu-s")
}

// cpuSeconds returns the CPU time (user and system) the process has used.
func cpuSeconds(b *testing.B) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// writeBenchJPEGs writes n photo-like JPEGs of COCO's sizes (640×480, some 480×640 and 640×427) into dir, as
// bench-NNN.jpg: baseline, 4:2:0 (Go's encoder), qualities 75 to 95. Each is a scene of smooth gradients,
// hard-edged shapes, multi-scale texture and sensor noise, seeded by its index, so the set is the same
// everywhere.
func writeBenchJPEGs(dir string, n int) ([]string, error) {
	var files []string
	for i := range n {
		w, h := 640, 480
		switch {
		case i%4 == 3:
			w, h = 480, 640
		case i%8 == 5:
			w, h = 640, 427
		}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, benchScene(w, h, uint64(i)), &jpeg.Options{Quality: 75 + i*7%21}); err != nil {
			return nil, err
		}
		f := filepath.Join(dir, fmt.Sprintf("bench-%03d.jpg", i))
		if err := os.WriteFile(f, buf.Bytes(), 0o644); err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// benchScene draws a w×h scene from seed: a two-colour gradient, 20 to 59 ellipses and rectangles with shaded
// and partly striped fills, value noise over five octaves (the finest per channel) and Gaussian noise of σ 8,
// detailed enough that the files are about as large as COCO's.
func benchScene(w, h int, seed uint64) *image.RGBA {
	rng := rand.New(rand.NewPCG(seed, 0x6a706567))
	colour := func() [3]float64 { return [3]float64{rng.Float64() * 255, rng.Float64() * 255, rng.Float64() * 255} }
	top, bottom := colour(), colour()
	pix := make([][3]float64, w*h)
	for y := range h {
		t := float64(y) / float64(h)
		for x := range w {
			for c := range 3 {
				pix[y*w+x][c] = top[c]*(1-t) + bottom[c]*t
			}
		}
	}
	for range 20 + rng.IntN(40) {
		drawShape(pix, w, h, colour(), rng)
	}
	for octave, cell := range []int{64, 16, 4, 2, 1} {
		addValueNoise(pix, w, h, cell, 40/float64(octave+1)*(0.5+rng.Float64()/2), octave == 4, rng)
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i, p := range pix {
		for c := range 3 {
			img.Pix[4*i+c] = uint8(math.Round(max(0, min(255, p[c]+8*rng.NormFloat64()))))
		}
		img.Pix[4*i+3] = 255
	}
	return img
}

// drawShape fills a random ellipse or rectangle of pix with fill, shaded from top to bottom and, one time in
// two, striped.
func drawShape(pix [][3]float64, w, h int, fill [3]float64, rng *rand.Rand) {
	cx, cy := rng.Float64()*float64(w), rng.Float64()*float64(h)
	rx, ry := 5+rng.Float64()*float64(w)/5, 5+rng.Float64()*float64(h)/5
	shade, ellipse := 0.3+rng.Float64()*0.7, rng.IntN(2) == 0
	stripes, angle, period := rng.IntN(2) == 0, rng.Float64()*math.Pi, 2+rng.Float64()*10
	sin, cos := math.Sincos(angle)
	for y := max(0, int(cy-ry)); y < min(h, int(cy+ry)); y++ {
		for x := max(0, int(cx-rx)); x < min(w, int(cx+rx)); x++ {
			dx, dy := (float64(x)-cx)/rx, (float64(y)-cy)/ry
			if ellipse && dx*dx+dy*dy > 1 {
				continue
			}
			v := shade + (1-shade)*(1-dy)/2
			if stripes {
				v *= 0.8 + 0.2*math.Sin((float64(x)*cos+float64(y)*sin)*2*math.Pi/period)
			}
			for c := range 3 {
				pix[y*w+x][c] = fill[c] * v
			}
		}
	}
}

// addValueNoise adds to pix a bilinear interpolation of random values in [-amp, amp] on a grid of cell×cell
// pixels, the same to every channel or, if perChannel, drawn for each.
func addValueNoise(pix [][3]float64, w, h, cell int, amp float64, perChannel bool, rng *rand.Rand) {
	channels := 1
	if perChannel {
		channels = 3
	}
	gw, gh := w/cell+2, h/cell+2
	for c := range channels {
		grid := make([]float64, gw*gh)
		for i := range grid {
			grid[i] = (2*rng.Float64() - 1) * amp
		}
		for y := range h {
			gy, fy := y/cell, float64(y%cell)/float64(cell)
			for x := range w {
				gx, fx := x/cell, float64(x%cell)/float64(cell)
				g := grid[gy*gw+gx : (gy+1)*gw+gx+2]
				v := (g[0]*(1-fx)+g[1]*fx)*(1-fy) + (g[gw]*(1-fx)+g[gw+1]*fx)*fy
				if perChannel {
					pix[y*w+x][c] += v
					continue
				}
				for k := range 3 {
					pix[y*w+x][k] += v
				}
			}
		}
	}
}
