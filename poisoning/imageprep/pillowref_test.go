package imageprep

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// readNpyUint8 reads a C-ordered uint8 .npy file (format 1.0), returning its shape and data.
func readNpyUint8(t *testing.T, path string) ([]int, []uint8) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 10 || !bytes.HasPrefix(b, []byte("\x93NUMPY\x01")) {
		t.Fatalf("%s: not a version 1 .npy file", path)
	}
	hl := int(binary.LittleEndian.Uint16(b[8:10]))
	h := string(b[10 : 10+hl])
	if !strings.Contains(h, "'descr': '|u1'") || !strings.Contains(h, "'fortran_order': False") {
		t.Fatalf("%s: header %q is not C-ordered uint8", path, h)
	}
	m := regexp.MustCompile(`'shape': \(([0-9, ]*)\)`).FindStringSubmatch(h)
	if m == nil {
		t.Fatalf("%s: no shape in %q", path, h)
	}
	var shape []int
	size := 1
	for _, s := range strings.Split(m[1], ",") {
		if s = strings.TrimSpace(s); s != "" {
			v, err := strconv.Atoi(s)
			if err != nil {
				t.Fatal(err)
			}
			shape = append(shape, v)
			size *= v
		}
	}
	data := b[10+hl:]
	if len(data) != size {
		t.Fatalf("%s: %d data bytes for shape %v", path, len(data), shape)
	}
	return shape, data
}

// TestPillowReference compares CLIPFile with the pixels OpenAI's preprocessing (torchvision 0.14.1 on Pillow
// 9.4.0 with libjpeg-turbo 2.1.5) gives for the images in testdata/pillowref, just before ToTensor: see its
// README.md.
//
// PNG and JPEG images must match exactly, with JPEGs decoded by libjpeg-turbo (where it can be loaded) and by
// internal/jpeg: internal/jpeg's inverse DCT is libjpeg's ISLOW, and chroma upsampling and colour conversion
// are libjpeg's. (With Go's image/jpeg, the JPEG files here differed by up
// to 2 levels, 3 on whole decoded images, 29 on the 4:4:0 one.) The references cover baseline, progressive
// (with successive approximation) and optimised-Huffman JPEGs in 4:4:4, 4:2:2, 4:2:0, 4:4:0, grayscale and
// Adobe CMYK.
func TestPillowReference(t *testing.T) {
	refs, err := filepath.Glob(filepath.Join("testdata", "pillowref", "*.n*.npy"))
	if err != nil || len(refs) < 27 {
		t.Fatalf("reference files: %v (%d found)", err, len(refs))
	}
	re := regexp.MustCompile(`^(.*)\.n([0-9]+)\.npy$`)
	bothDecoders(t, func(t *testing.T) { pillowReference(t, refs, re) })
}

// pillowReference is TestPillowReference with the JPEG decoder the test set.
func pillowReference(t *testing.T, refs []string, re *regexp.Regexp) {
	for _, ref := range refs {
		m := re.FindStringSubmatch(filepath.Base(ref))
		base := m[1]
		n, _ := strconv.Atoi(m[2])
		t.Run(fmt.Sprintf("%s/n%d", base, n), func(t *testing.T) {
			matches, _ := filepath.Glob(filepath.Join("testdata", "pillowref", base+".*g"))
			if len(matches) != 1 {
				t.Fatalf("image for %s: %v", base, matches)
			}
			path := matches[0]
			shape, want := readNpyUint8(t, ref)
			if len(shape) != 3 || shape[0] != n || shape[1] != n || shape[2] != 3 {
				t.Fatalf("reference shape %v, want [%d %d 3]", shape, n, n)
			}
			got, err := CLIPFile(path, n)
			if err != nil {
				t.Fatal(err)
			}
			if got.Height != n || got.Width != n || got.Channels != 3 {
				t.Fatalf("CLIPFile gave %d×%d×%d", got.Height, got.Width, got.Channels)
			}
			maxDiff, sum, count := 0, 0, 0
			for i := range want {
				d := int(got.Pix[i]) - int(want[i])
				d = max(d, -d)
				maxDiff = max(maxDiff, d)
				sum += d
				if d != 0 {
					count++
				}
			}
			mean := float64(sum) / float64(len(want))
			t.Logf("max |diff| %d levels, %d of %d values differ, mean %.4f levels", maxDiff, count, len(want), mean)
			if maxDiff != 0 {
				t.Fatalf("result differs from Pillow's: max %d levels, %d values", maxDiff, count)
			}

			// For RGB and grayscale files, converting to RGB first (LoadFile, then CLIP) gives the same pixels.
			if strings.HasPrefix(base, "rgb_") || strings.HasPrefix(base, "gray_") || strings.HasPrefix(base, "jpeg4") ||
				strings.HasPrefix(base, "jpegprog") || strings.HasPrefix(base, "jpeggray") {
				img, err := LoadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if alt := CLIP(img, n); !bytes.Equal(alt.Pix, got.Pix) {
					t.Error("CLIP(LoadFile(path)) differs from CLIPFile(path) for an RGB or grayscale file")
				}
			}
		})
	}
}

// TestPillowDecodeReference compares whole decoded JPEGs (LoadFile) with Pillow's Image.open(path).convert("RGB")
// for the files in testdata/pillowref that have a NAME.decoded.npy: they must be identical, with either decoder.
func TestPillowDecodeReference(t *testing.T) {
	refs, err := filepath.Glob(filepath.Join("testdata", "pillowref", "*.decoded.npy"))
	if err != nil || len(refs) < 8 {
		t.Fatalf("reference files: %v (%d found)", err, len(refs))
	}
	bothDecoders(t, func(t *testing.T) { pillowDecodeReference(t, refs) })
}

// pillowDecodeReference is TestPillowDecodeReference with the JPEG decoder the test set.
func pillowDecodeReference(t *testing.T, refs []string) {
	for _, ref := range refs {
		base := strings.TrimSuffix(filepath.Base(ref), ".decoded.npy")
		t.Run(base, func(t *testing.T) {
			path := filepath.Join("testdata", "pillowref", base+".jpg")
			shape, want := readNpyUint8(t, ref)
			got, err := LoadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(shape) != 3 || shape[0] != got.Height || shape[1] != got.Width || shape[2] != 3 || got.Channels != 3 {
				t.Fatalf("reference shape %v, LoadFile gave %d×%d×%d", shape, got.Height, got.Width, got.Channels)
			}
			maxDiff, count := 0, 0
			for i := range want {
				d := int(got.Pix[i]) - int(want[i])
				d = max(d, -d)
				maxDiff = max(maxDiff, d)
				if d != 0 {
					count++
				}
			}
			if maxDiff != 0 {
				t.Fatalf("decoded pixels differ from Pillow's: max %d levels, %d of %d values", maxDiff, count, len(want))
			}
		})
	}
}
