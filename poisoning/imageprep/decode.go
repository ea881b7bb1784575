// Package imageprep turns image files into the pixels CLIP models read: decoding with a decompression-bomb
// guard, conversion to 8-bit RGB, torchvision's CLIP preprocessing (Resize with bicubic interpolation, then
// CenterCrop) and its RandomResizedCrop training augmentation.
//
// Resampling re-implements Pillow's (PIL's) antialiased resize for 8-bit images: the same filters (bicubic
// with a = -0.5, bilinear as a triangle), the same support scaled by the downscaling factor, the same 22-bit
// fixed-point coefficients and rounding, horizontal pass first and then vertical. torchvision's transforms
// call exactly that on PIL images, so a decoded image that matches PIL's gives the same pixels.
//
// JPEGs are decoded bit-exactly as PIL decodes them (libjpeg-turbo with its defaults): internal/jpeg is Go's
// image/jpeg with libjpeg's ISLOW inverse DCT and range limiting, and ToDataset upsamples chroma (4:2:0,
// 4:2:2, 4:4:0) and converts colour as libjpeg does; testdata/pillowref checks baseline, progressive,
// grayscale and CMYK files. Known exceptions, all rare: RGB-coded JPEGs (Adobe transform 0) with subsampled
// components (chroma repeated, not interpolated), truncated progressive files (libjpeg smooths blocks whose
// coefficients are incomplete) and arithmetic-coded files (unsupported, an error). Decoding otherwise differs
// from PIL in a few places, documented on ToDataset and Decoder; EXIF orientation is ignored (as by PIL's
// Image.open and OpenAI's preprocessing).
//
// The functions that return pixels (LoadFile, CLIPFile, CLIPBytes, Decoder.LoadBytes, Decoder.CLIPBytes) decode
// JPEGs with libjpeg-turbo itself where its TurboJPEG library can be loaded at run time (Debian's
// libturbojpeg0; MMPOISON_LIBJPEG=0 turns it off; JPEGDecoder says which decoder is in use), faster, to the
// same pixels: only files both decoders read alike go there (grayscale and YCbCr 4:4:4, 4:2:2,
// 4:2:0, 4:4:0, baseline or progressive, with complete scans and defined Huffman tables), and a file on which
// the library stops or warns is decoded by internal/jpeg, so the pixels and errors do not depend on the library,
// with one exception: corrupt entropy-coded data that libjpeg-turbo decodes without a warning gives its pixels
// (PIL's) with the library and internal/jpeg's without. DecodeBytes, which returns Go images, always uses
// internal/jpeg.
//
// CLIPFile reproduces OpenAI's preprocessing for every PNG and JPEG kind: it resizes in the mode PIL opens
// the file in (premultiplied RGBA, palette with nearest neighbour, CMYK, 16-bit grayscale), which
// CLIP(LoadFile(path), n) does only for RGB and grayscale files.
//
// The pixel normalisation (mean and standard deviation) is not done here: clip.Preprocess does it on the
// dataset.Image this package produces.
package imageprep

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // Register Go's JPEG decoder for image.Decode users; this package decodes JPEGs with internal/jpeg.
	_ "image/png"  // Register the PNG decoder.
	"io"
	"os"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/imageprep/internal/jpeg"
)

// DefaultMaxPixels is the default decompression-bomb limit: PIL's Image.MAX_IMAGE_PIXELS
// (1024·1024·1024 / 4 / 3 pixels).
const DefaultMaxPixels = 89_478_485

// ErrTooManyPixels is returned (wrapped, with the file name and the sizes) for an image whose header declares
// more pixels than the limit. The image data is then never decoded.
var ErrTooManyPixels = errors.New("image exceeds the pixel limit (possible decompression bomb)")

// Decoder decodes JPEG and PNG images after checking their declared size against a pixel limit and the memory
// decoding them takes against a byte limit, both from the header, before any pixel is decoded.
//
// Unlike PIL, which only warns between MAX_IMAGE_PIXELS and twice that, an image above MaxPixels is refused.
// Memory: one decode holds at most MaxBytes (512 MiB by default); decoding in parallel (loaders' Options.Workers)
// holds that much per image in flight. Resizing for CLIP then adds the resized copies, bounded by the image and
// by Resize's limits.
type Decoder struct {
	// MaxPixels is the largest width·height accepted. 0 means DefaultMaxPixels; a negative value disables the
	// check.
	MaxPixels int64
	// MaxBytes bounds the memory a decode may take, estimated from the header: the decoded image and the
	// decoder's working memory (a progressive JPEG keeps 256 bytes of coefficients per 8×8 block of every
	// component, an interlaced PNG decodes its passes apart) plus a copy at 4 bytes a pixel (ToDataset's RGB,
	// or the pixels CLIPBytes resizes). 0 means DefaultMaxBytes; a negative value disables the check. Past it
	// the image is refused with ErrTooManyPixels.
	MaxBytes int64
}

// orDefault returns the effective value of a limit field: def for 0, -1 (no limit) for a negative value.
func orDefault(v, def int64) int64 {
	switch {
	case v == 0:
		return def
	case v < 0:
		return -1
	}
	return v
}

// limit returns the effective pixel limit, or -1 for none.
func (d Decoder) limit() int64 { return orDefault(d.MaxPixels, DefaultMaxPixels) }

// byteLimit returns the effective memory limit, or -1 for none.
func (d Decoder) byteLimit() int64 { return orDefault(d.MaxBytes, DefaultMaxBytes) }

// DecodeFile reads and decodes the image file at path. Errors name the file.
func (d Decoder) DecodeFile(path string) (image.Image, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, readError(path, err)
	}
	return d.DecodeBytes(data, path)
}

func readError(name string, err error) error {
	return fmt.Errorf("imageprep: reading %s: %w", name, err)
}

// Decode reads all of r and decodes it; name identifies the image in errors.
func (d Decoder) Decode(r io.Reader, name string) (image.Image, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, readError(name, err)
	}
	return d.DecodeBytes(data, name)
}

// DecodeBytes decodes an encoded JPEG or PNG image; name identifies it in errors. The header is read first
// (image.DecodeConfig, or internal/jpeg's DecodeHeader for JPEGs) and an image declaring more than the pixel
// limit, or needing more than the byte limit to decode, is refused with ErrTooManyPixels before any pixel data
// is decoded.
//
// JPEGs (data starting with the SOI marker FF D8) are decoded by internal/jpeg, whose samples are
// libjpeg-turbo's; like image/jpeg it returns *image.Gray, *image.YCbCr (chroma at its stored resolution),
// *image.CMYK, or *image.RGBA for RGB-coded files.
func (d Decoder) DecodeBytes(data []byte, name string) (image.Image, error) {
	h, err := d.header(data, name)
	if err != nil {
		return nil, err
	}
	return h.decode(data, name)
}

// header is what DecodeBytes reads of an image before decoding it.
type header struct {
	cfg    image.Config
	isJPEG bool // decoded by internal/jpeg
}

// header reads the header of data and checks it against d's limits.
func (d Decoder) header(data []byte, name string) (header, error) {
	// JPEGs go to internal/jpeg, whose samples are libjpeg-turbo's (and so PIL's); everything else to the
	// decoders registered with the image package.
	h := header{isJPEG: bytes.HasPrefix(data, []byte("\xff\xd8"))}
	var jpegBytes int64 // internal/jpeg's estimate of its memory
	decodeConfig := image.DecodeConfig
	if h.isJPEG {
		decodeConfig = func(r io.Reader) (image.Config, string, error) {
			jh, err := jpeg.DecodeHeader(r)
			jpegBytes = jh.Bytes
			return jh.Config, "jpeg", err
		}
	}
	cfg, format, err := decodeConfig(bytes.NewReader(data))
	if err != nil {
		return header{}, decodeError(name, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return header{}, fmt.Errorf("imageprep: %s: %s image has invalid size %d×%d", name, format, cfg.Width, cfg.Height)
	}
	if limit := d.limit(); limit >= 0 && int64(cfg.Width)*int64(cfg.Height) > limit {
		return header{}, fmt.Errorf("imageprep: %s: %s image is %d×%d = %d pixels, above the limit of %d: %w",
			name, format, cfg.Width, cfg.Height, int64(cfg.Width)*int64(cfg.Height), limit, ErrTooManyPixels)
	}
	if limit, need := d.byteLimit(), decodeBytes(data, cfg, jpegBytes); limit >= 0 && need > limit {
		return header{}, fmt.Errorf("imageprep: %s: the %d×%d %s image needs about %d bytes to decode, above the limit of %d (Decoder.MaxBytes): %w",
			name, cfg.Width, cfg.Height, format, need, limit, ErrTooManyPixels)
	}
	h.cfg = cfg
	return h, nil
}

// decode decodes data, whose header h is, with internal/jpeg or the image package's decoders.
func (h header) decode(data []byte, name string) (image.Image, error) {
	var img image.Image
	var err error
	if h.isJPEG {
		img, err = jpeg.Decode(bytes.NewReader(data))
	} else {
		img, _, err = image.Decode(bytes.NewReader(data))
	}
	if err != nil {
		return nil, decodeError(name, err)
	}
	return img, nil
}

func decodeError(name string, err error) error {
	if errors.Is(err, image.ErrFormat) {
		return fmt.Errorf("imageprep: %s is not a JPEG or PNG image (or is corrupt): %w", name, err)
	}
	return fmt.Errorf("imageprep: %s is corrupt or unreadable: %w", name, err)
}

// DecodeFile decodes the image at path with the default pixel limit.
func DecodeFile(path string) (image.Image, error) { return Decoder{}.DecodeFile(path) }

// LoadFile decodes the image at path with the default limits and converts it to RGB as ToDataset does
// (Decoder.LoadFile).
func LoadFile(path string) (dataset.Image, error) { return Decoder{}.LoadFile(path) }

// ToDataset converts any image to 8-bit RGB in HWC layout (3 channels): grayscale is repeated over the three
// channels, CMYK uses PIL's conversion, YCbCr libjpeg's (with libjpeg's "fancy" interpolation of 4:2:0,
// 4:2:2 and 4:4:0 chroma for images whose bounds start at the origin, as decoded JPEGs do; other layouts, as
// in libjpeg, and sub-images repeat each chroma sample), paletted images their palette colours.
// Alpha is dropped, not composited: each pixel keeps its un-premultiplied colour, as PIL's convert("RGB")
// does (which OpenAI's CLIP preprocessing calls); pixels of fully transparent premultiplied images
// (image.RGBA, image.RGBA64) have lost their colour and come out black.
func ToDataset(img image.Image) dataset.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := dataset.Image{Height: h, Width: w, Channels: 3, Pix: make([]uint8, w*h*3)}
	p := out.Pix
	switch src := img.(type) {
	case *image.Gray:
		for y := range h {
			o := src.PixOffset(b.Min.X, b.Min.Y+y)
			row := src.Pix[o : o+w]
			for x, v := range row {
				i := (y*w + x) * 3
				p[i], p[i+1], p[i+2] = v, v, v
			}
		}
	case *image.NRGBA:
		for y := range h {
			o := src.PixOffset(b.Min.X, b.Min.Y+y)
			row := src.Pix[o : o+4*w]
			for x := range w {
				i := (y*w + x) * 3
				p[i], p[i+1], p[i+2] = row[4*x], row[4*x+1], row[4*x+2]
			}
		}
	case *image.RGBA:
		for y := range h {
			o := src.PixOffset(b.Min.X, b.Min.Y+y)
			row := src.Pix[o : o+4*w]
			for x := range w {
				i := (y*w + x) * 3
				r, g, bb, a := row[4*x], row[4*x+1], row[4*x+2], row[4*x+3]
				switch a {
				case 255:
					p[i], p[i+1], p[i+2] = r, g, bb
				case 0: // Colour lost with premultiplication: black.
				default: // Un-premultiply as color.NRGBAModel does.
					p[i] = uint8((uint32(r) * 0xffff / uint32(a)) >> 8)
					p[i+1] = uint8((uint32(g) * 0xffff / uint32(a)) >> 8)
					p[i+2] = uint8((uint32(bb) * 0xffff / uint32(a)) >> 8)
				}
			}
		}
	case *image.CMYK:
		cmykToDataset(src, p)
	case *image.YCbCr:
		if ycbcrToRGB(src, p) {
			break
		}
		for y := range h {
			for x := range w {
				yi := src.YOffset(b.Min.X+x, b.Min.Y+y)
				ci := src.COffset(b.Min.X+x, b.Min.Y+y)
				r, g, bb := jpegRGB(src.Y[yi], src.Cb[ci], src.Cr[ci])
				i := (y*w + x) * 3
				p[i], p[i+1], p[i+2] = r, g, bb
			}
		}
	default:
		for y := range h {
			for x := range w {
				c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				i := (y*w + x) * 3
				p[i], p[i+1], p[i+2] = c.R, c.G, c.B
			}
		}
	}
	return out
}
