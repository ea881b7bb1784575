package turbojpeg

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/testskip"
)

func TestMain(m *testing.M) { os.Exit(testskip.Run(m)) }

// needLibrary skips the test where libjpeg-turbo's TurboJPEG library cannot be loaded.
func needLibrary(t *testing.T) {
	t.Helper()
	if err := Load(); err != nil {
		testskip.Skip(t, "libjpeg-turbo's TurboJPEG library (Debian: apt-get install libturbojpeg0): "+err.Error())
	}
}

// pattern returns w×h pixels of c channels: a gradient with a sharp spot.
func pattern(w, h, c int) []byte {
	pix := make([]byte, w*h*c)
	for i := range pix {
		p := i / c
		pix[i] = byte(2*(p%w) + 2*(p/w) + 30*(i%c))
		if p%w == w/2 && p/w == h/2 {
			pix[i] = 255
		}
	}
	return pix
}

// TestRoundTrip encodes with each subsampling, baseline and progressive, decodes, and checks the pixels stay
// close to the source (quality 100), the sizes and colour spaces Decode accepts and refuses, and that a
// truncated file is an error (the library's warning stops the decode).
func TestRoundTrip(t *testing.T) {
	needLibrary(t)
	if Library() == "" {
		t.Fatal("Library() is empty after a successful Load")
	}
	const w, h = 37, 23
	for _, s := range []Subsampling{S444, S422, S420, S440, S411, SGray} {
		for _, progressive := range []bool{false, true} {
			gray := s == SGray
			c := 3
			if gray {
				c = 1
			}
			src := pattern(w, h, c)
			data, err := Encode(src, w, h, gray, s, 100, progressive)
			if err != nil {
				t.Fatalf("%v progressive=%v: %v", s, progressive, err)
			}
			dst := make([]byte, len(src))
			err = Decode(data, dst, w, h, gray)
			if s == S411 { // Not one of the subsamplings Decode takes.
				if !errors.Is(err, ErrUnsupported) {
					t.Errorf("%v: Decode returned %v, want ErrUnsupported", s, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%v progressive=%v: %v", s, progressive, err)
			}
			worst := 0
			for i := range src {
				worst = max(worst, int(src[i])-int(dst[i]), int(dst[i])-int(src[i]))
			}
			if worst > 40 { // Chroma subsampling blurs the spot; a broken decode is off everywhere.
				t.Errorf("%v progressive=%v: decoded pixels differ by up to %d levels", s, progressive, worst)
			}
			if err := Decode(data, make([]byte, w*h*(4-c)), w, h, !gray); !errors.Is(err, ErrUnsupported) {
				t.Errorf("%v: decoding with the other colour space returned %v, want ErrUnsupported", s, err)
			}
			if err := Decode(data, make([]byte, (w+1)*h*c), w+1, h, gray); !errors.Is(err, ErrUnsupported) {
				t.Errorf("%v: decoding at another size returned %v, want ErrUnsupported", s, err)
			}
			if err := Decode(data[:len(data)*2/3], dst, w, h, gray); err == nil || errors.Is(err, ErrUnsupported) {
				t.Errorf("%v progressive=%v: a truncated file decoded (err %v)", s, progressive, err)
			}
		}
	}
}

// TestDecodeErrors: bad arguments and data that is not a JPEG are errors, not crashes.
func TestDecodeErrors(t *testing.T) {
	needLibrary(t)
	if err := Decode(nil, make([]byte, 3), 1, 1, false); err == nil || !strings.Contains(err.Error(), "from 0 bytes") {
		t.Errorf("empty data: %v", err)
	}
	if err := Decode([]byte("\xff\xd8"), make([]byte, 2), 1, 1, false); err == nil || !strings.Contains(err.Error(), "3 channels") {
		t.Errorf("short pixel buffer: %v", err)
	}
	if err := Decode([]byte("\xff\xd8\xff\xe0 not a JPEG"), make([]byte, 3), 1, 1, false); err == nil {
		t.Errorf("garbage: %v", err)
	}
}

// TestLoadMissing: a library that is not there, or lacks TurboJPEG's functions, is an error naming it.
func TestLoadMissing(t *testing.T) {
	if Load() != nil {
		t.Skip("the library cannot be loaded here: Load's error is the missing case")
	}
	for _, name := range []string{"libmmpoison-no-such-library.so.0", "libc.so.6"} {
		if err := load(name); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("load(%q) = %v, want an error naming it", name, err)
		}
	}
	data, err := Encode(pattern(8, 8, 3), 8, 8, false, S420, 90, false)
	if err != nil || Decode(data, make([]byte, 8*8*3), 8, 8, false) != nil {
		t.Errorf("the library no longer works after failed loads: %v", err)
	}
}
