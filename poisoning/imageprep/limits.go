package imageprep

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
)

// Size limits of the resampling functions. Past them Resize, CLIP, CLIPImage and RandomResizedCrop panic with a
// message naming the sizes (as they do for sizes below 1), and CLIPBytes and CLIPFile return an error, instead of
// allocating what the sizes imply (CLIP at 100,000 pixels would take 30 GB). Callers that get sizes from outside
// input (a checkpoint's configuration, a flag) check them first with CheckCLIPSize.
const (
	// MaxSide is the largest side CLIP's preprocessing and the crops produce: 8192 pixels (CLIP models read 224
	// to 448).
	MaxSide = 8192
	// maxResizeSide and maxResizePixels bound the image Resize produces: each side at most 65536 pixels and at
	// most DefaultMaxPixels pixels in all, so the resized copy takes at most as much as the largest image the
	// decoder accepts. CLIP's preprocessing computes only the n×n centre of its resized image (shorter side n,
	// longer side in proportion), so its memory is that of the input, the output and the input rows the centre
	// reads; the resized image it stands for must still fit these bounds, which only an extreme aspect ratio
	// (about 1 : 1800 at n = 224) exceeds.
	maxResizeSide   = 1 << 16
	maxResizePixels = DefaultMaxPixels
)

// checkResize reports an output size Resize refuses.
func checkResize(width, height int) error {
	if width <= 0 || height <= 0 {
		return fmt.Errorf("invalid size %d×%d", width, height)
	}
	if width > maxResizeSide || height > maxResizeSide || int64(width)*int64(height) > maxResizePixels {
		return fmt.Errorf("size %d×%d is above the limit of %d pixels a side and %d pixels in all", width, height,
			maxResizeSide, maxResizePixels)
	}
	return nil
}

// CheckCLIPSize reports whether CLIP's preprocessing (CLIP, CLIPImage, CLIPBytes) can take a width×height image
// to n×n: n must lie in [1, MaxSide] and the resized image before the crop within Resize's limits.
func CheckCLIPSize(width, height, n int) error {
	if n <= 0 || n > MaxSide {
		return fmt.Errorf("invalid size %d: CLIP's preprocessing makes squares of 1 to %d pixels", n, MaxSide)
	}
	if width <= 0 || height <= 0 {
		return fmt.Errorf("invalid image size %d×%d", width, height)
	}
	rw, rh := resizeShortSize(width, height, n)
	if err := checkResize(rw, rh); err != nil {
		return fmt.Errorf("resizing the %d×%d image to a shorter side of %d pixels: %w", width, height, n, err)
	}
	return nil
}

// DefaultMaxBytes is the default memory limit of one decode (Decoder.MaxBytes): 512 MiB.
const DefaultMaxBytes = 512 << 20

// decodeBytes returns an upper bound of the memory decoding data takes, from its header: the decoder's image and
// working memory (for a JPEG, internal/jpeg's estimate; for a PNG, the image Go's decoder returns, twice for an
// interlaced file, whose passes are decoded apart), plus one copy at 4 bytes a pixel (ToDataset's RGB, or the
// RGBA or CMYK pixels CLIPBytes resizes).
func decodeBytes(data []byte, cfg image.Config, jpegBytes int64) int64 {
	pixels := int64(cfg.Width) * int64(cfg.Height)
	switch {
	case jpegBytes > 0:
		return jpegBytes + 4*pixels
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return pngBytes(data, pixels) + 4*pixels
	}
	return 8*pixels + 4*pixels // Another registered format: at most 16-bit RGBA.
}

// pngBytes returns the memory Go's PNG decoder takes for an image of the given pixels: the bytes per pixel of
// the image type it returns (1 for gray and paletted, 2 for 16-bit gray, 4 for 8-bit colour and for gray with a
// transparent colour, 8 for 16-bit colour), twice for interlaced files, plus two rows.
func pngBytes(data []byte, pixels int64) int64 {
	if len(data) < 29 {
		return 8 * pixels
	}
	depth, ct, interlaced := int64(data[24]), data[25], data[28] != 0
	var bpp int64
	switch ct {
	case 0, 3: // gray, paletted
		bpp = 1
		if ct == 0 && depth == 16 {
			bpp = 2
		}
		if ct == 0 && pngHasTRNS(data) {
			bpp = 4 * max(1, depth/8) // NRGBA or NRGBA64
		}
	case 2, 4, 6: // RGB, gray + alpha, RGBA
		bpp = 4 * max(1, depth/8)
	default:
		bpp = 8
	}
	n := bpp * pixels
	if interlaced {
		n *= 2
	}
	width := int64(binary.BigEndian.Uint32(data[16:20]))
	return n + 2*(8*width+1)
}

// pngHasTRNS reports whether a tRNS chunk comes before the first IDAT chunk of a PNG.
func pngHasTRNS(data []byte) bool {
	for i := 8; i+8 <= len(data); {
		length := int64(binary.BigEndian.Uint32(data[i:]))
		switch string(data[i+4 : i+8]) {
		case "tRNS":
			return true
		case "IDAT":
			return false
		}
		if length > int64(len(data)) {
			return false
		}
		i += 12 + int(length)
	}
	return false
}
