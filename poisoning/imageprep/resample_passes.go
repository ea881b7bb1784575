package imageprep

import (
	"encoding/binary"
	"sync"
)

// The two passes of the 8-bit resize, written for speed: the same sums as PIL's ImagingResampleHorizontal_8bpc
// and ImagingResampleVertical_8bpc (2^21 plus weight × sample over the taps, then clip8), in the same order of
// the passes, so the same values. Sums fit in 32 bits, as in PIL: at most 255 times the sum of the positive
// weights, about 1.1·2^22, plus 2^21.

const half = 1 << (precisionBits - 1)

// horizontalPass resamples rows of src (each stride bytes, ch channels a pixel) into dst, whose rows are
// len(c.start)·ch bytes: as many rows as dst holds. RGB rows go two at a time (horizontal3x2).
func horizontalPass(src []uint8, stride int, dst []uint8, c coeffs, ch int) {
	outLen := len(c.start) * ch
	rows, y := len(dst)/outLen, 0
	if ch == 3 {
		packed := make([]int64, stride)
		for ; y+1 < rows; y += 2 {
			horizontal3x2(src[y*stride:(y+2)*stride], stride, dst[y*outLen:(y+2)*outLen], c, packed)
		}
	}
	for ; y < rows; y++ {
		in := src[y*stride : (y+1)*stride]
		out := dst[y*outLen : (y+1)*outLen]
		switch ch {
		case 3:
			horizontal3(in, out, c)
		case 1:
			horizontal1(in, out, c)
		default:
			horizontalN(in, out, c, ch)
		}
	}
}

// horizontal3x2 resamples two rows of RGB pixels (in, rows of stride bytes) into out: each sample of the first
// row is packed with the same sample of the second into one int64 of packed (low and high 32 bits), so one
// multiplication serves both rows; as in addPacked, each half of a sum stays exact.
func horizontal3x2(in []uint8, stride int, out []uint8, c coeffs, packed []int64) {
	last := len(c.start) - 1
	lo, hi := 3*c.start[0], 3*(c.start[last]+len(c.weights[last])) // the samples the window reads
	row0, row1, pk := in[lo:hi], in[stride+lo:stride+hi], packed[lo:hi]
	row1 = row1[:len(row0)]
	pk = pk[:len(row0)]
	for i, v := range row0 {
		pk[i] = int64(v) | int64(row1[i])<<32
	}
	outLen := 3 * len(c.start)
	out0, out1 := out[:outLen], out[outLen:2*outLen]
	for xx, x0 := range c.start {
		ws := c.weights[xx]
		s0, s1, s2 := dot3x2(packed[3*x0:3*(x0+len(ws))], ws)
		o0, o1 := out0[3*xx:3*xx+3:3*xx+3], out1[3*xx:3*xx+3:3*xx+3]
		o0[0], o1[0] = unpack2(s0)
		o0[1], o1[1] = unpack2(s1)
		o0[2], o1[2] = unpack2(s2)
	}
}

// unpack2 returns the clipped sums in the low and high halves of s.
func unpack2(s int64) (uint8, uint8) {
	l := int32(s)
	return clip8(l), clip8(int32((s - int64(l)) >> 32))
}

// dot3x2 is dot3 on samples packed two to an int64.
//
//go:noinline
func dot3x2(p []int64, ws []int32) (s0, s1, s2 int64) {
	const start = half | half<<32
	s0, s1, s2 = start, start, start
	for len(ws) >= 2 && len(p) >= 6 {
		w0, w1 := int64(ws[0]), int64(ws[1])
		s0 += p[0]*w0 + p[3]*w1
		s1 += p[1]*w0 + p[4]*w1
		s2 += p[2]*w0 + p[5]*w1
		p, ws = p[6:], ws[2:]
	}
	if len(ws) == 1 && len(p) >= 3 {
		w := int64(ws[0])
		s0 += p[0] * w
		s1 += p[1] * w
		s2 += p[2] * w
	}
	return s0, s1, s2
}

// horizontal3 resamples one row of RGB pixels.
func horizontal3(in, out []uint8, c coeffs) {
	for xx, x0 := range c.start {
		ws := c.weights[xx]
		s0, s1, s2 := dot3(in[3*x0:3*(x0+len(ws))], ws)
		o := out[3*xx : 3*xx+3 : 3*xx+3]
		o[0], o[1], o[2] = clip8(s0), clip8(s1), clip8(s2)
	}
}

// dot3 returns 2^21 plus the sums of the weights times the samples of each channel of the RGB pixels p.
//
//go:noinline
func dot3(p []uint8, ws []int32) (s0, s1, s2 int32) {
	s0, s1, s2 = half, half, half
	for len(ws) >= 2 && len(p) >= 6 { // Two taps at a time (the sums are exact in any order).
		w0, w1 := ws[0], ws[1]
		s0 += int32(p[0])*w0 + int32(p[3])*w1
		s1 += int32(p[1])*w0 + int32(p[4])*w1
		s2 += int32(p[2])*w0 + int32(p[5])*w1
		p, ws = p[6:], ws[2:]
	}
	if len(ws) == 1 && len(p) >= 3 {
		s0 += int32(p[0]) * ws[0]
		s1 += int32(p[1]) * ws[0]
		s2 += int32(p[2]) * ws[0]
	}
	return s0, s1, s2
}

// horizontal1 resamples one row of gray pixels.
func horizontal1(in, out []uint8, c coeffs) {
	for xx, x0 := range c.start {
		ws := c.weights[xx]
		p := in[x0 : x0+len(ws)]
		p = p[:len(ws)]
		s := int32(half)
		for k, w := range ws {
			s += int32(p[k]) * w
		}
		out[xx] = clip8(s)
	}
}

// horizontalN resamples one row of pixels of ch channels.
func horizontalN(in, out []uint8, c coeffs, ch int) {
	for xx, x0 := range c.start {
		ws := c.weights[xx]
		for k := range ch {
			s := int32(half)
			for x, w := range ws {
				s += int32(in[(x0+x)*ch+k]) * w
			}
			out[xx*ch+k] = clip8(s)
		}
	}
}

// verticalPass resamples columns into dst, whose rows are rowLen bytes, one row per output position of c: output
// row yy sums the rows from c.start[yy] − yFirst of src (rows of stride bytes; the columns start at byte off
// of each), one row at a time into a row of sums. The sums of the first rowLen &^ 7 columns are kept two to an
// int64 (addPacked), the others one to an int32.
func verticalPass(src []uint8, stride, off, yFirst int, c coeffs, dst []uint8, rowLen int) {
	packed := rowLen &^ 7
	acc, tail := make([]int64, packed/2), make([]int32, rowLen-packed)
	for yy, y0 := range c.start {
		for i := range acc {
			acc[i] = half | half<<32
		}
		for i := range tail {
			tail[i] = half
		}
		for k, w := range c.weights[yy] {
			o := (y0-yFirst+k)*stride + off
			row := src[o : o+rowLen]
			addPacked(acc, row[:packed], int64(w))
			for i, v := range row[packed:] {
				tail[i] += int32(v) * w
			}
		}
		out := dst[yy*rowLen : (yy+1)*rowLen]
		unpack(acc, out[:packed])
		for i, s := range tail {
			out[packed+i] = clip8(s)
		}
	}
}

// lanes spreads bytes 0 and 4 of a little-endian word into the low and high 32 bits.
const lanes = 0x000000ff_000000ff

// addPacked adds w times the bytes of row (len(acc)·2 of them) to acc: acc[4j+m] holds in its low 32 bits the
// sum of byte 8j+m and in its high 32 bits that of byte 8j+m+4, so one multiplication serves two columns. Each
// sum stays within 32 bits, so the low half is exact and the high one is exact once the low is taken off
// (unpack).
func addPacked(acc []int64, row []uint8, w int64) {
	for len(row) >= 8 && len(acc) >= 4 {
		x := binary.LittleEndian.Uint64(row)
		a := acc[:4:4]
		a[0] += int64(x&lanes) * w
		a[1] += int64(x>>8&lanes) * w
		a[2] += int64(x>>16&lanes) * w
		a[3] += int64(x>>24&lanes) * w
		row, acc = row[8:], acc[4:]
	}
}

// unpack writes the clipped sums addPacked kept in acc to out, in column order.
func unpack(acc []int64, out []uint8) {
	for len(acc) >= 4 && len(out) >= 8 {
		for m, s := range acc[:4] {
			out[m], out[m+4] = unpack2(s)
		}
		acc, out = acc[4:], out[8:]
	}
}

// scratchPool holds byte buffers of at most maxScratch bytes that are used and given back within a call:
// decoded pixels and the horizontal pass of a resize.
var scratchPool sync.Pool

const maxScratch = 16 << 20

// getScratch returns a buffer of n bytes, of undefined content, from scratchPool when it has one large enough.
func getScratch(n int) []uint8 {
	if b, ok := scratchPool.Get().(*[]uint8); ok && cap(*b) >= n {
		return (*b)[:n]
	}
	return make([]uint8, n)
}

// putScratch gives b back to scratchPool (unless it is too large to keep).
func putScratch(b []uint8) {
	if cap(b) <= maxScratch {
		scratchPool.Put(&b)
	}
}
