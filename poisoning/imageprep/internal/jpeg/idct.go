// Copyright 2026 The mmpoison Authors. Written for this package (not part of Go's image/jpeg); the rest of
// the package is Go's, under the BSD-style license in the LICENSE file.

package jpeg

// This file replaces image/jpeg's dct.go (whose encoder half this package does not need) with the inverse DCT
// libjpeg and libjpeg-turbo use by default, JDCT_ISLOW: the 1-D algorithm of Loeffler, Ligtenberg and
// Moschytz ("Practical fast 1-D DCT algorithms with 11 multiplications", ICASSP 1989) with its 12
// multiplications by 13-bit fixed-point constants, applied first down the columns of the dequantised
// coefficients (results kept with PASS1_BITS extra fraction bits) and then along the rows, each pass ending
// with a rounding right shift. The output of the second pass still lacks the +128 level shift; libjpeg adds
// it, and limits the value to [0, 255], by indexing its range-limit table, which rangeLimit reproduces.
//
// Only integer additions, multiplications and shifts are involved, in the order libjpeg performs them, so
// the samples are bit-identical to libjpeg-turbo's (its SIMD versions of this transform are exact too).

// A block holds 8×8 coefficients (in natural, not zigzag, order) or samples.
type block [blockSize]int32

const blockSize = 8 * 8

const (
	constBits = 13 // fraction bits of the fixed-point constants
	pass1Bits = 2  // extra fraction bits kept between the two passes

	fix0_298631336 = 2446  // round(0.298631336 · 2^13)
	fix0_390180644 = 3196  // round(0.390180644 · 2^13)
	fix0_541196100 = 4433  // round(0.541196100 · 2^13)
	fix0_765366865 = 6270  // round(0.765366865 · 2^13)
	fix0_899976223 = 7373  // round(0.899976223 · 2^13)
	fix1_175875602 = 9633  // round(1.175875602 · 2^13)
	fix1_501321110 = 12299 // round(1.501321110 · 2^13)
	fix1_847759065 = 15137 // round(1.847759065 · 2^13)
	fix1_961570560 = 16069 // round(1.961570560 · 2^13)
	fix2_053119869 = 16819 // round(2.053119869 · 2^13)
	fix2_562915447 = 20995 // round(2.562915447 · 2^13)
	fix3_072711026 = 25172 // round(3.072711026 · 2^13)
)

// descale divides x by 2^n, rounding halves up (libjpeg's DESCALE, an arithmetic shift).
func descale(x, n int) int { return (x + 1<<(n-1)) >> n }

// idct1D is the LL&M 1-D inverse DCT of the 8 inputs in[0], in[s], …, in[7s], without the final descaling:
// it returns the 8 outputs scaled by 2^constBits (and by √8 relative to a true IDCT), in order.
func idct1D(i0, i1, i2, i3, i4, i5, i6, i7 int) (o0, o1, o2, o3, o4, o5, o6, o7 int) {
	// Even part: inputs 0, 2, 4, 6; the rotation of 2 and 6 is by √2·c6.
	z1 := (i2 + i6) * fix0_541196100
	t2 := z1 - i6*fix1_847759065
	t3 := z1 + i2*fix0_765366865
	t0 := (i0 + i4) << constBits
	t1 := (i0 - i4) << constBits
	t10, t13 := t0+t3, t0-t3
	t11, t12 := t1+t2, t1-t2

	// Odd part: inputs 7, 5, 3, 1.
	a0, a1, a2, a3 := i7, i5, i3, i1
	z1 = a0 + a3
	z2 := a1 + a2
	z3 := a0 + a2
	z4 := a1 + a3
	z5 := (z3 + z4) * fix1_175875602
	a0 *= fix0_298631336
	a1 *= fix2_053119869
	a2 *= fix3_072711026
	a3 *= fix1_501321110
	z1 *= -fix0_899976223
	z2 *= -fix2_562915447
	z3 = z3*-fix1_961570560 + z5
	z4 = z4*-fix0_390180644 + z5
	a0 += z1 + z3
	a1 += z2 + z4
	a2 += z2 + z3
	a3 += z1 + z4

	return t10 + a3, t11 + a2, t12 + a1, t13 + a0, t13 - a0, t12 - a1, t11 - a2, t10 - a3
}

// idct replaces the dequantised coefficients in b by the inverse DCT's samples before the level shift:
// rangeLimit(b[i]) is then the decoded sample, exactly as libjpeg's jpeg_idct_islow computes it.
func idct(b *block) {
	var ws [blockSize]int // between the passes, as libjpeg's workspace (column-major like its layout)

	// Pass 1: columns. A column whose AC terms are all zero has every output equal to its DC term (this
	// shortcut, libjpeg's too, gives exactly what the full computation would).
	for x := 0; x < 8; x++ {
		if b[8+x] == 0 && b[16+x] == 0 && b[24+x] == 0 && b[32+x] == 0 && b[40+x] == 0 && b[48+x] == 0 && b[56+x] == 0 {
			dc := int(b[x]) << pass1Bits
			for y := 0; y < 8; y++ {
				ws[8*y+x] = dc
			}
			continue
		}
		o0, o1, o2, o3, o4, o5, o6, o7 := idct1D(int(b[x]), int(b[8+x]), int(b[16+x]), int(b[24+x]),
			int(b[32+x]), int(b[40+x]), int(b[48+x]), int(b[56+x]))
		const n = constBits - pass1Bits
		// libjpeg stores these in an int workspace.
		ws[x] = int(int32(descale(o0, n)))
		ws[8+x] = int(int32(descale(o1, n)))
		ws[16+x] = int(int32(descale(o2, n)))
		ws[24+x] = int(int32(descale(o3, n)))
		ws[32+x] = int(int32(descale(o4, n)))
		ws[40+x] = int(int32(descale(o5, n)))
		ws[48+x] = int(int32(descale(o6, n)))
		ws[56+x] = int(int32(descale(o7, n)))
	}

	// Pass 2: rows, removing the PASS1_BITS scaling and the factor 8 (2^3) of the two passes.
	for y := 0; y < 8; y++ {
		r := ws[8*y : 8*y+8 : 8*y+8]
		if r[1] == 0 && r[2] == 0 && r[3] == 0 && r[4] == 0 && r[5] == 0 && r[6] == 0 && r[7] == 0 {
			v := int32(descale(r[0], pass1Bits+3))
			for x := 0; x < 8; x++ {
				b[8*y+x] = v
			}
			continue
		}
		o0, o1, o2, o3, o4, o5, o6, o7 := idct1D(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7])
		const n = constBits + pass1Bits + 3
		// libjpeg casts to int before masking with RANGE_MASK; only the low bits matter to rangeLimit.
		b[8*y] = int32(descale(o0, n))
		b[8*y+1] = int32(descale(o1, n))
		b[8*y+2] = int32(descale(o2, n))
		b[8*y+3] = int32(descale(o3, n))
		b[8*y+4] = int32(descale(o4, n))
		b[8*y+5] = int32(descale(o5, n))
		b[8*y+6] = int32(descale(o6, n))
		b[8*y+7] = int32(descale(o7, n))
	}
}

// rangeLimitTable is libjpeg's post-IDCT range-limit table (prepare_range_limit_table in jdmaster.c, read
// from sample_range_limit + CENTERJSAMPLE and indexed with RANGE_MASK = 1023): for an IDCT output v, the
// sample is rangeLimitTable[v&1023]. v in [-128, 127] gives v+128; v in [128, 511] gives 255 and v in
// [-512, -129] gives 0. Larger magnitudes, which only corrupt data produce, wrap around as in libjpeg.
var rangeLimitTable = func() (t [1024]uint8) {
	for i := range t {
		switch {
		case i < 128:
			t[i] = uint8(i + 128)
		case i < 512:
			t[i] = 255
		case i < 1024-128:
			t[i] = 0
		default:
			t[i] = uint8(i - (1024 - 128))
		}
	}
	return t
}()
