package imageprep

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/imageprep/internal/turbojpeg"
	"github.com/mmpoison/mmpoison/poisoning/testskip"
)

func TestMain(m *testing.M) { os.Exit(testskip.Run(m)) }

const needLibJPEG = "libjpeg-turbo's TurboJPEG library (Debian: apt-get install libturbojpeg0)"

// setLibJPEG makes JPEGs go to libjpeg-turbo (on) or to internal/jpeg until the test ends.
func setLibJPEG(t testing.TB, on bool) {
	old := useLibJPEG
	useLibJPEG = func() bool { return on }
	t.Cleanup(func() { useLibJPEG = old })
}

// bothDecoders runs f as two subtests: "libjpeg", JPEGs decoded by libjpeg-turbo (skipped where it cannot be
// loaded), and "go", decoded by internal/jpeg.
func bothDecoders(t *testing.T, f func(t *testing.T)) {
	for _, lib := range []bool{true, false} {
		name := map[bool]string{true: "libjpeg", false: "go"}[lib]
		t.Run(name, func(t *testing.T) {
			if lib && turbojpeg.Load() != nil {
				testskip.Skip(t, needLibJPEG)
			}
			setLibJPEG(t, lib)
			f(t)
		})
	}
}

// outcome is what LoadBytes and CLIPBytes (at 24 pixels) make of a file with one decoder: the pixels or the
// error, as text.
func outcome(t *testing.T, d Decoder, data []byte, lib bool) string {
	setLibJPEG(t, lib)
	var b strings.Builder
	if img, err := d.LoadBytes(data, "f.jpg"); err != nil {
		fmt.Fprintf(&b, "load error: %v\n", err)
	} else {
		fmt.Fprintf(&b, "load %dx%dx%d %x\n", img.Width, img.Height, img.Channels, img.Pix)
	}
	if img, err := d.CLIPBytes(data, "f.jpg", 24); err != nil {
		fmt.Fprintf(&b, "clip error: %v\n", err)
	} else {
		fmt.Fprintf(&b, "clip %dx%dx%d %x\n", img.Width, img.Height, img.Channels, img.Pix)
	}
	return b.String()
}

// Where checkSame expects a file to be decoded.
const (
	viaLib    = "libjpeg-turbo"
	viaGo     = "internal/jpeg"
	viaEither = ""
)

// checkSame fails unless both decoders give the same outcome for data, and unless the file is decoded where via
// says (libjpeg-turbo: libDecode succeeds).
func checkSame(t *testing.T, name string, data []byte, via string) {
	t.Helper()
	if lib, goOut := outcome(t, Decoder{}, data, true), outcome(t, Decoder{}, data, false); lib != goOut {
		t.Errorf("%s: libjpeg-turbo and internal/jpeg differ:\n  libjpeg %.300s\n  go      %.300s", name, lib, goOut)
	}
	h, err := (Decoder{}).header(data, name)
	_, ok := libDecode(data, h.cfg, false)
	got := map[bool]string{true: viaLib, false: viaGo}[ok && err == nil]
	if via != viaEither && got != via {
		t.Errorf("%s: decoded by %s, want %s", name, got, via)
	}
}

// noisy returns w×h pixels of c channels: smooth waves, noise and pixels at 0 and 255 (clipping in the DCT
// and the colour conversion).
func noisy(w, h, c int, rng *rand.Rand) []byte {
	pix := make([]byte, w*h*c)
	for i := range pix {
		x, y, k := i/c%w, i/c/w, i%c
		v := 128 + 90*math.Sin(float64(x)/(2+float64(k))+float64(y)/3) + 30*(rng.Float64()-0.5)
		switch {
		case x%5 == 1 && y%3 == 0:
			v = 255
		case x%7 == 2 && y%5 == 1:
			v = 0
		}
		pix[i] = byte(max(0, min(255, v)))
	}
	return pix
}

// TestDecodersAgree encodes files of every chroma subsampling, baseline and progressive, of odd and tiny sizes
// and low and high qualities, and checks that libjpeg-turbo and internal/jpeg give the same pixels, libjpeg-turbo
// decoding all but the 4:1:1 files (which internal/jpeg decodes on both paths). The JPEGs of testdata/pillowref
// go to libjpeg-turbo too, but for the CMYK ones.
func TestDecodersAgree(t *testing.T) {
	if turbojpeg.Load() != nil {
		testskip.Skip(t, needLibJPEG)
	}
	for name, data := range pillowrefImages(t) {
		if strings.HasSuffix(name, ".jpg") {
			via := viaLib
			if strings.Contains(name, "cmyk") {
				via = viaGo
			}
			checkSame(t, name, data, via)
		}
	}
	rng := rand.New(rand.NewPCG(14, 4))
	sizes := [][2]int{{1, 1}, {2, 2}, {3, 50}, {50, 3}, {5, 7}, {17, 23}, {33, 21}, {64, 64}, {101, 63}}
	kinds := []turbojpeg.Subsampling{turbojpeg.S444, turbojpeg.S422, turbojpeg.S420, turbojpeg.S440,
		turbojpeg.SGray, turbojpeg.S411}
	for _, s := range kinds {
		for _, progressive := range []bool{false, true} {
			for _, q := range []int{60, 100} {
				for _, sz := range sizes {
					gray := s == turbojpeg.SGray
					c := 3
					if gray {
						c = 1
					}
					data, err := turbojpeg.Encode(noisy(sz[0], sz[1], c, rng), sz[0], sz[1], gray, s, q, progressive)
					if err != nil {
						t.Fatal(err)
					}
					name := fmt.Sprintf("%v-progressive=%v-q%d-%dx%d", s, progressive, q, sz[0], sz[1])
					via := viaLib
					if s == turbojpeg.S411 {
						via = viaGo
					}
					checkSame(t, name, data, via)
				}
			}
		}
	}
}

// TestDecodersAgreeGoFiles runs Go's own JPEG test files (GOROOT/src/image/testdata) through both decoders:
// the same pixels or the same error for every one; restart markers, separate DC scans and 4:2:2 with 2×2 luma
// through libjpeg-turbo; the truncated progressive file (scans missing, which libjpeg would smooth), CMYK,
// RGB-coded, 4:1:1 and 4:1:0 files through internal/jpeg.
func TestDecodersAgreeGoFiles(t *testing.T) {
	if turbojpeg.Load() != nil {
		testskip.Skip(t, needLibJPEG)
	}
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		testskip.Skip(t, "the go command (for GOROOT's image/testdata): "+err.Error())
	}
	files, _ := filepath.Glob(filepath.Join(strings.TrimSpace(string(out)), "src", "image", "testdata", "video-00*.jpeg"))
	if len(files) < 20 {
		t.Fatalf("%d JPEG files in GOROOT/src/image/testdata", len(files))
	}
	goFiles := []string{"progressive.truncated", "cmyk", "rgb", "411", "410"}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		via := viaLib
		for _, s := range goFiles {
			if strings.Contains(filepath.Base(f), "."+s+".") {
				via = viaGo
			}
		}
		checkSame(t, filepath.Base(f), data, via)
	}
}

// TestDecodersAgreeDamaged: truncated files, and files with damaged scan data or stray bytes, give the same
// result on both paths: the library's warning (and Pillow's grey or corrupt image) hands the file to
// internal/jpeg, whose error or pixels are today's.
func TestDecodersAgreeDamaged(t *testing.T) {
	if turbojpeg.Load() != nil {
		testskip.Skip(t, needLibJPEG)
	}
	rng := rand.New(rand.NewPCG(14, 5))
	for _, progressive := range []bool{false, true} {
		data, err := turbojpeg.Encode(noisy(64, 48, 3, rng), 64, 48, false, turbojpeg.S420, 90, progressive)
		if err != nil {
			t.Fatal(err)
		}
		sos := bytes.Index(data, []byte{0xff, 0xda})
		damaged := map[string][]byte{
			"no EOI":      data[:len(data)-2],
			"cut at 90%":  data[:len(data)*9/10],
			"cut at 60%":  data[:len(data)*6/10],
			"cut in scan": data[:sos+40],
		}
		flipped := bytes.Clone(data)
		flipped[sos+60] ^= 0x5a
		damaged["flipped scan byte"] = flipped
		stray := append(bytes.Clone(data[:len(data)-2]), 0x12, 0x34, 0xff, 0xd9)
		damaged["stray bytes before EOI"] = stray
		for name, d := range damaged {
			checkSame(t, fmt.Sprintf("progressive=%v %s", progressive, name), d, viaEither)
		}
	}
}

// TestEXIFOrientationIgnored: an EXIF orientation (6: rotate 90°) changes nothing on either path, as Pillow's
// Image.open(...).convert("RGB") ignores it.
func TestEXIFOrientationIgnored(t *testing.T) {
	data := pillowrefImages(t)["jpeg420_63x100.jpg"]
	// APP1 "Exif": a little-endian TIFF header and one IFD entry, Orientation (0x0112), SHORT, 1 value: 6.
	exif := []byte("\xff\xe1\x00\x22Exif\x00\x00II*\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x01\x00\x00\x00\x06\x00\x00\x00\x00\x00\x00\x00")
	rotated := append(append(bytes.Clone(data[:2]), exif...), data[2:]...)
	bothDecoders(t, func(t *testing.T) {
		for _, n := range []int{24, 100} {
			want, err := CLIPBytes(data, "plain.jpg", n)
			if err != nil {
				t.Fatal(err)
			}
			got, err := CLIPBytes(rotated, "exif.jpg", n)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Pix, want.Pix) {
				t.Errorf("n=%d: the EXIF orientation changed the pixels", n)
			}
		}
	})
}

// TestLibJPEGSwitch: MMPOISON_LIBJPEG=0 keeps JPEGs in pure Go; JPEGDecoder names the decoder in use.
func TestLibJPEGSwitch(t *testing.T) {
	t.Setenv(LibJPEGEnv, "0")
	if libJPEGWanted() {
		t.Errorf("%s=0 still asks for libjpeg-turbo", LibJPEGEnv)
	}
	setLibJPEG(t, false)
	if d := JPEGDecoder(); !strings.Contains(d, "pure Go ("+LibJPEGEnv+"=0)") {
		t.Errorf("JPEGDecoder() = %q with %s=0", d, LibJPEGEnv)
	}
	t.Setenv(LibJPEGEnv, "")
	if err := turbojpeg.Load(); err != nil {
		if libJPEGWanted() {
			t.Error("libjpeg-turbo asked for although it cannot be loaded")
		}
		if d := JPEGDecoder(); d != "pure Go ("+err.Error()+")" {
			t.Errorf("JPEGDecoder() = %q without the library", d)
		}
		return
	}
	if !libJPEGWanted() {
		t.Error("libjpeg-turbo not used although it loads")
	}
	setLibJPEG(t, true)
	if d := JPEGDecoder(); !strings.Contains(d, "libjpeg-turbo (libturbojpeg") {
		t.Errorf("JPEGDecoder() = %q with the library", d)
	}
}

// FuzzJPEGDecoders encodes an image of any size, chroma subsampling, quality and progression with libjpeg-turbo
// (its pixels drawn from seed, smooth or noisy) and decodes it on both paths: libjpeg-turbo and internal/jpeg
// must give the same pixels, libjpeg-turbo decoding all but the 4:1:1 files. (Arbitrary bytes go through both
// decoders in FuzzDecode, which checks they are safe; on corrupt entropy-coded data that libjpeg-turbo decodes
// without a warning the two may differ, see the package documentation.)
func FuzzJPEGDecoders(f *testing.F) {
	if turbojpeg.Load() != nil {
		f.Skip(needLibJPEG)
	}
	f.Add(uint8(19), uint8(11), uint8(1), uint8(80), true, false, uint64(1))
	f.Add(uint8(3), uint8(200), uint8(4), uint8(100), false, true, uint64(2))
	f.Add(uint8(255), uint8(1), uint8(2), uint8(5), true, true, uint64(3))
	f.Fuzz(func(t *testing.T, w, h, kind, quality uint8, progressive, smooth bool, seed uint64) {
		width, height := max(int(w), 1), max(int(h), 1)
		s := turbojpeg.Subsampling(kind % 6)
		gray := s == turbojpeg.SGray
		c := map[bool]int{true: 1, false: 3}[gray]
		pix := noisy(width, height, c, rand.New(rand.NewPCG(seed, 7)))
		if smooth {
			for i := range pix {
				pix[i] = byte(i/c%width*int(seed%7) + i/c/width*int(seed%5) + 50*(i%c))
			}
		}
		data, err := turbojpeg.Encode(pix, width, height, gray, s, max(int(quality)%101, 1), progressive)
		if err != nil {
			t.Fatal(err)
		}
		via := map[bool]string{true: viaGo, false: viaLib}[s == turbojpeg.S411]
		checkSame(t, fmt.Sprintf("%v %dx%d", s, width, height), data, via)
	})
}

// TestBenchDigests compares, on both decoders, CLIPFile at 224 pixels with Pillow + torchvision on the
// benchmark's files: $MMPOISON_JPEG_BENCH_DIR/pillow-sha256.txt, written by .ci/yardstick/pillow_pipeline.py
// --digests, holds the SHA-256 of each file's 224×224×3 pixels. It runs only when that file exists
// (.ci/yardstick/jpeg-pipeline makes it).
func TestBenchDigests(t *testing.T) {
	list := filepath.Join(os.Getenv("MMPOISON_JPEG_BENCH_DIR"), "pillow-sha256.txt")
	text, err := os.ReadFile(list)
	if os.Getenv("MMPOISON_JPEG_BENCH_DIR") == "" || err != nil {
		t.Skip("no Pillow digests of the benchmark's files ($MMPOISON_JPEG_BENCH_DIR/pillow-sha256.txt)")
	}
	lines := strings.Fields(string(text))
	if len(lines) < 2 || len(lines)%2 != 0 {
		t.Fatalf("%s: %d fields, want NAME SHA256 pairs", list, len(lines))
	}
	bothDecoders(t, func(t *testing.T) {
		for i := 0; i < len(lines); i += 2 {
			img, err := CLIPFile(filepath.Join(filepath.Dir(list), lines[i]), 224)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%x", sha256.Sum256(img.Pix)); got != lines[i+1] {
				t.Errorf("%s: the pixels differ from Pillow's (SHA-256 %s, Pillow's %s)", lines[i], got, lines[i+1])
			}
		}
		t.Logf("%d files match Pillow's pixels", len(lines)/2)
	})
}
