package imageprep

import "image"

// JPEG colour, as libjpeg-turbo (which PIL uses) produces it.
//
// internal/jpeg (like Go's image/jpeg) returns the Y, Cb and Cr planes at their stored resolution, with
// libjpeg's samples; image.YCbCr.At then repeats each chroma sample over the pixels it covers. libjpeg instead
// interpolates subsampled chroma ("fancy upsampling", on by default and left on by PIL), and converts to RGB
// with its own rounding. ycbcrToRGB re-implements both for the 4:2:0, 4:2:2 and 4:4:0 layouts (libjpeg
// replicates the others too), so a decoded JPEG's RGB pixels are PIL's.

// libjpeg's jdcolor.c fixed-point constants (SCALEBITS = 16).
const (
	jpegCrR  = 91881  // FIX(1.40200)
	jpegCbB  = 116130 // FIX(1.77200)
	jpegCrG  = 46802  // FIX(0.71414)
	jpegCbG  = 22554  // FIX(0.34414)
	jpegHalf = 1 << 15
)

// jpegRGB converts one pixel as libjpeg's ycc_rgb_convert does.
func jpegRGB(y, cb, cr uint8) (uint8, uint8, uint8) {
	yy := int32(y)
	cb1, cr1 := int32(cb)-128, int32(cr)-128
	r := yy + (jpegCrR*cr1+jpegHalf)>>16
	g := yy + (-jpegCbG*cb1-jpegCrG*cr1+jpegHalf)>>16
	b := yy + (jpegCbB*cb1+jpegHalf)>>16
	return clamp8(r), clamp8(g), clamp8(b)
}

// yccTables holds libjpeg's colour conversion by table, as its ycc_rgb_convert does: the terms of jpegRGB's
// sums for each Cb and Cr value, and clamp8 for each sum from −256 on.
type yccTables struct {
	crR, cbB, crG, cbG [256]int32
	clamp              [1024]uint8 // clamp[v+256] = clamp8(v); only [0, 768) is used
}

var ycc = func() *yccTables {
	t := &yccTables{}
	for v := range 256 {
		c := int32(v) - 128
		t.crR[v] = (jpegCrR*c + jpegHalf) >> 16
		t.cbB[v] = (jpegCbB*c + jpegHalf) >> 16
		t.crG[v] = -jpegCrG * c
		t.cbG[v] = -jpegCbG*c + jpegHalf
	}
	for i := range t.clamp {
		t.clamp[i] = clamp8(int32(i) - 256)
	}
	return t
}()

// rgbRow converts a row of Y, Cb and Cr samples (cb and cr at least as long as y) to RGB in out, with jpegRGB's
// values.
func rgbRow(y, cb, cr, out []uint8) {
	t := ycc
	cb, cr, out = cb[:len(y)], cr[:len(y)], out[:3*len(y)]
	for x, yv := range y {
		v, b, r := int32(yv)+256, cb[x], cr[x]
		o := out[3*x : 3*x+3 : 3*x+3]
		o[0] = t.clamp[(v+t.crR[r])&1023]
		o[1] = t.clamp[(v+(t.cbG[b]+t.crG[r])>>16)&1023]
		o[2] = t.clamp[(v+t.cbB[b])&1023]
	}
}

func clamp8(v int32) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// ycbcrToRGB converts a decoded JPEG's planes (src.Rect must start at the origin, as image/jpeg returns
// it) to RGB into p, upsampling 4:2:0, 4:2:2 and 4:4:0 chroma with libjpeg's triangle filter. It reports false,
// leaving p alone, for layouts it does not handle, which the caller converts pixel by pixel.
func ycbcrToRGB(src *image.YCbCr, p []uint8) bool {
	b := src.Rect
	if b.Min != (image.Point{}) {
		return false
	}
	w, h := b.Dx(), b.Dy()
	cw := (w + 1) / 2 // libjpeg's downsampled_width for a 2× horizontal factor
	var cbRow, crRow []uint8
	switch src.SubsampleRatio {
	case image.YCbCrSubsampleRatio444:
		for y := range h {
			yo, co := y*src.YStride, y*src.CStride
			rgbRow(src.Y[yo:yo+w], src.Cb[co:co+w], src.Cr[co:co+w], p[3*w*y:])
		}
		return true
	case image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420:
		if cw <= 2 {
			return false // libjpeg replicates (no fancy upsampling) when the chroma is 1 or 2 samples wide.
		}
		cbRow, crRow = make([]uint8, 2*cw), make([]uint8, 2*cw)
	case image.YCbCrSubsampleRatio440:
		fancyH1V2(src, w, h, p)
		return true
	default:
		return false // 4:1:1 and 4:1:0: libjpeg replicates too (int_upsample), as the caller does.
	}
	ch := (h + 1) / 2
	colSum := make([][2]int, cw) // Per chroma column, 3·nearer row + further row (4:2:0), for Cb and Cr.
	for y := range h {
		if src.SubsampleRatio == image.YCbCrSubsampleRatio422 {
			o := y * src.CStride
			fancyH2V1(src.Cb[o:o+cw], cbRow)
			fancyH2V1(src.Cr[o:o+cw], crRow)
		} else {
			near := y / 2
			far := near - 1 // the row above for the upper output row, below for the lower one
			if y%2 == 1 {
				far = near + 1
			}
			far = min(max(far, 0), ch-1) // libjpeg repeats the first and last rows
			n, f := near*src.CStride, far*src.CStride
			for x := range cw {
				colSum[x] = [2]int{3*int(src.Cb[n+x]) + int(src.Cb[f+x]), 3*int(src.Cr[n+x]) + int(src.Cr[f+x])}
			}
			fancyH2V2(colSum, 0, cbRow)
			fancyH2V2(colSum, 1, crRow)
		}
		yo := y * src.YStride
		rgbRow(src.Y[yo:yo+w], cbRow, crRow, p[3*w*y:])
	}
	return true
}

// fancyH1V2 converts a 4:4:0 image (chroma subsampled vertically only) into p with libjpeg's
// h1v2_fancy_upsample: output row 2i is (3·row i + row i−1 + 1) >> 2, row 2i+1 is (3·row i + row i+1 + 2) >> 2,
// the first and last chroma rows repeated beyond the edges.
func fancyH1V2(src *image.YCbCr, w, h int, p []uint8) {
	ch := (h + 1) / 2 // libjpeg's downsampled_height
	cb, cr := make([]uint8, w), make([]uint8, w)
	for y := range h {
		near, far, bias := y/2, y/2-1, 1
		if y%2 == 1 {
			far, bias = near+1, 2
		}
		far = min(max(far, 0), ch-1)
		n, f, yo := near*src.CStride, far*src.CStride, y*src.YStride
		for x := range w {
			cb[x] = uint8((3*int(src.Cb[n+x]) + int(src.Cb[f+x]) + bias) >> 2)
			cr[x] = uint8((3*int(src.Cr[n+x]) + int(src.Cr[f+x]) + bias) >> 2)
		}
		rgbRow(src.Y[yo:yo+w], cb, cr, p[3*w*y:])
	}
}

// fancyH2V1 is libjpeg's h2v1_fancy_upsample: out[2i] = (3·in[i] + in[i-1] + 1) >> 2 and out[2i+1] =
// (3·in[i] + in[i+1] + 2) >> 2, the end samples copied. len(in) must be at least 3.
func fancyH2V1(in, out []uint8) {
	n := len(in)
	out[0] = in[0]
	out[1] = uint8((3*int(in[0]) + int(in[1]) + 2) >> 2)
	for i := 1; i < n-1; i++ {
		v := 3 * int(in[i])
		out[2*i] = uint8((v + int(in[i-1]) + 1) >> 2)
		out[2*i+1] = uint8((v + int(in[i+1]) + 2) >> 2)
	}
	out[2*n-2] = uint8((3*int(in[n-1]) + int(in[n-2]) + 1) >> 2)
	out[2*n-1] = in[n-1]
}

// fancyH2V2 is the horizontal half of libjpeg's h2v2_fancy_upsample, on the column sums of the two rows.
func fancyH2V2(sums [][2]int, c int, out []uint8) {
	n := len(sums)
	this, next := sums[0][c], sums[1][c]
	out[0] = uint8((this*4 + 8) >> 4)
	out[1] = uint8((this*3 + next + 7) >> 4)
	last := this
	for i := 1; i < n-1; i++ {
		this, next = sums[i][c], sums[i+1][c]
		out[2*i] = uint8((this*3 + last + 8) >> 4)
		out[2*i+1] = uint8((this*3 + next + 7) >> 4)
		last = this
	}
	this = sums[n-1][c]
	out[2*n-2] = uint8((this*3 + last + 8) >> 4)
	out[2*n-1] = uint8((this*4 + 7) >> 4)
}

// pilCMYKToRGB is PIL's cmyk2rgb: each channel is (255 − k) − (255 − k)·c/255 with PIL's rounded division.
func pilCMYKToRGB(c, m, y, k uint8) (uint8, uint8, uint8) {
	nk := 255 - int(k)
	f := func(v uint8) uint8 {
		t := int(v)*nk + 128
		return uint8(nk - ((t>>8)+t)>>8)
	}
	return f(c), f(m), f(y)
}

// cmykToDataset converts an image.CMYK to RGB with PIL's formula.
func cmykToDataset(src *image.CMYK, p []uint8) {
	b := src.Rect
	w := b.Dx()
	for y := range b.Dy() {
		o := src.PixOffset(b.Min.X, b.Min.Y+y)
		row := src.Pix[o : o+4*w]
		for x := range w {
			i := (y*w + x) * 3
			p[i], p[i+1], p[i+2] = pilCMYKToRGB(row[4*x], row[4*x+1], row[4*x+2], row[4*x+3])
		}
	}
}
