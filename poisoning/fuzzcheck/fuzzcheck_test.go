package fuzzcheck

import "testing"

var sink []byte

// TestPeakHeap: a buffer held while more is allocated counts in full; garbage dropped as it is made does not.
func TestPeakHeap(t *testing.T) {
	held := PeakHeap(func() {
		buf := make([]byte, 32<<20)
		for i := range buf {
			buf[i] = byte(i)
		}
		for range 64 {
			sink = make([]byte, 1<<20) // allocations after buf, so collections run while it is held
		}
		sink = buf[:1]
	})
	sink = nil
	if held < 30<<20 {
		t.Errorf("a 32 MiB buffer held across collections: PeakHeap %d, want ≥ 30 MiB", held)
	}
	garbage := PeakHeap(func() {
		for range 1600 {
			sink = make([]byte, 64<<10) // 100 MiB in all, 64 KiB at a time, each dropped by the next
		}
	})
	sink = nil
	if garbage > 8<<20 {
		t.Errorf("100 MiB of 64 KiB garbage: PeakHeap %d, want ≤ 8 MiB", garbage)
	}
}
