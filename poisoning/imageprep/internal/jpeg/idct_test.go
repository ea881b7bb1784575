// Copyright 2026 The mmpoison Authors. Written for this package (not part of Go's image/jpeg).

package jpeg

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestRangeLimitTable(t *testing.T) {
	for v, want := range map[int32]uint8{
		-128: 0, -1: 127, 0: 128, 127: 255, 128: 255, 511: 255, 512: 0, -129: 0, -512: 0,
		-513:     255, // wraps around, as libjpeg's table does for values only corrupt data produce
		1024 + 5: 133,
	} {
		if got := rangeLimitTable[v&1023]; got != want {
			t.Errorf("rangeLimitTable[%d & 1023] = %d, want %d", v, got, want)
		}
	}
}

// TestIDCTAccuracy checks idct against a floating-point inverse DCT: libjpeg's ISLOW is within one level of
// the rounded exact result (IEEE 1180 accuracy), and the all-zero-AC shortcuts agree with the full path.
func TestIDCTAccuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 2000 {
		var b block
		nz := 1 + trial%64 // number of non-zero coefficients, from DC only to all
		for i := range nz {
			b[i] = int32(rng.IntN(601) - 300)
		}
		if trial%3 == 0 { // only the first row/column: exercises the shortcuts
			for i := range b {
				if i >= 8 && i%8 != 0 {
					b[i] = 0
				}
			}
		}
		in := b
		idct(&b)
		for y := range 8 {
			for x := range 8 {
				s := 0.0
				for v := range 8 {
					for u := range 8 {
						cu, cv := 1.0, 1.0
						if u == 0 {
							cu = 1 / math.Sqrt2
						}
						if v == 0 {
							cv = 1 / math.Sqrt2
						}
						s += cu * cv * float64(in[8*v+u]) *
							math.Cos(float64(2*x+1)*float64(u)*math.Pi/16) * math.Cos(float64(2*y+1)*float64(v)*math.Pi/16)
					}
				}
				if math.Abs(s/4) > 500 {
					continue // beyond the table's clamping range (it wraps around there, as libjpeg's does)
				}
				want := math.Round(s / 4)
				want = math.Max(-128, math.Min(127, want))
				got := float64(rangeLimitTable[b[8*y+x]&1023]) - 128
				if math.Abs(got-want) > 1 {
					t.Fatalf("trial %d: sample (%d,%d) = %v, exact IDCT %v", trial, x, y, got, want)
				}
			}
		}
	}
}
