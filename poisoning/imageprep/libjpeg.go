package imageprep

import (
	"image"
	"image/color"
	"os"
	"sync"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/imageprep/internal/jpeg"
	"github.com/mmpoison/mmpoison/poisoning/imageprep/internal/turbojpeg"
)

// LibJPEGEnv is the environment variable that, set to 0, keeps JPEG decoding in pure Go.
const LibJPEGEnv = "MMPOISON_LIBJPEG"

// useLibJPEG reports whether JPEGs go to libjpeg-turbo in this process (libJPEGWanted, asked once). Tests
// replace it to run both decoders.
var useLibJPEG = sync.OnceValue(libJPEGWanted)

// libJPEGWanted reports whether JPEGs should go to libjpeg-turbo: LibJPEGEnv is not 0 and the library loads.
func libJPEGWanted() bool { return os.Getenv(LibJPEGEnv) != "0" && turbojpeg.Load() == nil }

// JPEGDecoder describes the decoder that turns JPEGs into pixels in this process: libjpeg-turbo (the library
// file loaded) or the pure-Go decoder, and why.
func JPEGDecoder() string {
	switch {
	case useLibJPEG():
		return "libjpeg-turbo (" + turbojpeg.Library() + ")"
	case os.Getenv(LibJPEGEnv) == "0":
		return "pure Go (" + LibJPEGEnv + "=0)"
	case turbojpeg.Load() != nil:
		return "pure Go (" + turbojpeg.Load().Error() + ")"
	}
	return "pure Go"
}

// pixels is a decoded image: the 8-bit gray or RGB pixels libjpeg-turbo decoded (pix.Channels 1 or 3), or,
// when img is not nil, the image a Go decoder returned.
type pixels struct {
	img image.Image
	pix dataset.Image
}

// decodePixels decodes data as DecodeBytes does (the same checks and errors), JPEGs with libjpeg-turbo where
// it reads them as internal/jpeg does. With scratch, libjpeg-turbo's pixels are in a buffer of scratchPool,
// which the caller gives back with putScratch once done with them.
func (d Decoder) decodePixels(data []byte, name string, scratch bool) (pixels, error) {
	h, err := d.header(data, name)
	if err != nil {
		return pixels{}, err
	}
	if h.isJPEG && useLibJPEG() {
		if pix, ok := libDecode(data, h.cfg, scratch); ok {
			return pixels{pix: pix}, nil
		}
	}
	img, err := h.decode(data, name)
	return pixels{img: img}, err
}

// libDecode decodes a grayscale or YCbCr JPEG whose markers pass jpeg.LibjpegAgrees with libjpeg-turbo,
// into a buffer of scratchPool if scratch; ok is false for other files and when the library fails or warns.
func libDecode(data []byte, cfg image.Config, scratch bool) (dataset.Image, bool) {
	channels := 3
	switch cfg.ColorModel {
	case color.GrayModel:
		channels = 1
	case color.YCbCrModel:
	default:
		return dataset.Image{}, false
	}
	if !jpeg.LibjpegAgrees(data) {
		return dataset.Image{}, false
	}
	n := cfg.Width * cfg.Height * channels
	out := dataset.Image{Height: cfg.Height, Width: cfg.Width, Channels: channels}
	if scratch {
		out.Pix = getScratch(n)
	} else {
		out.Pix = make([]uint8, n)
	}
	if turbojpeg.Decode(data, out.Pix, cfg.Width, cfg.Height, channels == 1) != nil {
		if scratch {
			putScratch(out.Pix)
		}
		return dataset.Image{}, false
	}
	return out, true
}

// LoadBytes decodes an encoded JPEG or PNG image as DecodeBytes does (name identifies it in errors) and
// converts it to RGB as ToDataset does; JPEGs may be decoded by libjpeg-turbo, to the same pixels.
func (d Decoder) LoadBytes(data []byte, name string) (dataset.Image, error) {
	p, err := d.decodePixels(data, name, false)
	switch {
	case err != nil:
		return dataset.Image{}, err
	case p.img != nil:
		return ToDataset(p.img), nil
	case p.pix.Channels == 1:
		return grayToRGB(p.pix), nil
	}
	return p.pix, nil
}

// LoadFile reads the image file at path and decodes it with LoadBytes. Errors name the file.
func (d Decoder) LoadFile(path string) (dataset.Image, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return dataset.Image{}, readError(path, err)
	}
	return d.LoadBytes(data, path)
}

// CLIPBytes is the package's CLIPBytes with this decoder's limits.
func (d Decoder) CLIPBytes(data []byte, name string, n int) (dataset.Image, error) {
	return clipBytes(d, data, name, n)
}
