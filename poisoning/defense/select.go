package defense

import (
	"math"
)

// orderedBits maps a float64 to a uint64 with the same order (−∞ < … < −0 < +0 < … < +∞).
func orderedBits(x float64) uint64 {
	b := math.Float64bits(x)
	if b>>63 == 1 {
		return ^b
	}
	return b | 1<<63
}

// kthSmallest returns the k-th smallest (1-based) of the values of dist that are not NaN, 1 ≤ k ≤ their
// number: the value sorting them would put at position k−1, found without a sorted copy (a radix selection
// over the values' ordered bits, 16 bits a pass, four passes over dist), so a filter over millions of pairs
// needs no second array of distances.
func kthSmallest(dist []float64, k int) float64 {
	var prefix, mask uint64
	var counts [1 << 16]int
	for shift := 48; shift >= 0; shift -= 16 {
		clear(counts[:])
		for _, d := range dist {
			if u := orderedBits(d); !math.IsNaN(d) && u&mask == prefix {
				counts[(u>>shift)&0xffff]++
			}
		}
		for digit, c := range counts {
			if k <= c {
				prefix |= uint64(digit) << shift
				break
			}
			k -= c
		}
		mask |= 0xffff << shift
	}
	for _, d := range dist {
		if !math.IsNaN(d) && orderedBits(d) == prefix {
			return d
		}
	}
	panic("defense: kthSmallest: k out of range")
}
