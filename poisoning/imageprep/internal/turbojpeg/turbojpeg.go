// Package turbojpeg decodes JPEGs with libjpeg-turbo's TurboJPEG API, the library Pillow decodes with, loaded
// at run time with dlopen: nothing of it (no header, no library) is needed to build, and a machine without it
// gets an error from Load, on which the caller decodes in Go.
//
// Decoding uses libjpeg's defaults, which Pillow keeps: the accurate integer inverse DCT (ISLOW) and "fancy"
// (interpolating) chroma upsampling. Any warning from the library (a truncated or corrupt file, extraneous
// bytes) stops the decode with an error, so a successful decode is one the library made without complaint.
package turbojpeg

import (
	"errors"
	"fmt"
)

// Names are the file names Load tries, in order: the TurboJPEG library of libjpeg-turbo 2 and 3 on Linux
// (Debian's libturbojpeg0) and macOS.
var Names = []string{"libturbojpeg.so.0", "libturbojpeg.0.dylib"}

// ErrUnsupported is returned by Decode for a file the library reads differently from what was asked: another
// size, colour space or chroma subsampling (see Decode).
var ErrUnsupported = errors.New("turbojpeg: the JPEG's header differs from what the caller expects")

// Subsampling is TurboJPEG's chroma subsampling option (TJSAMP).
type Subsampling int

// The subsamplings Encode writes (TurboJPEG's TJSAMP values).
const (
	S444  Subsampling = 0
	S422  Subsampling = 1
	S420  Subsampling = 2
	SGray Subsampling = 3
	S440  Subsampling = 4
	S411  Subsampling = 5
)

// String returns the subsampling's usual name.
func (s Subsampling) String() string {
	switch s {
	case S444:
		return "4:4:4"
	case S422:
		return "4:2:2"
	case S420:
		return "4:2:0"
	case SGray:
		return "gray"
	case S440:
		return "4:4:0"
	case S411:
		return "4:1:1"
	}
	return fmt.Sprintf("Subsampling(%d)", int(s))
}

// checkDecode checks Decode's arguments.
func checkDecode(data, dst []byte, width, height int, gray bool) error {
	channels := 3
	if gray {
		channels = 1
	}
	if width <= 0 || height <= 0 || len(dst) != width*height*channels || len(data) == 0 {
		return fmt.Errorf("turbojpeg: %d bytes of pixels for a %d×%d image with %d channels, from %d bytes",
			len(dst), width, height, channels, len(data))
	}
	return nil
}
