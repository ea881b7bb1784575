// Package fuzzcheck holds what the fuzz targets and hostile-input tests of the parsers share: measuring how many
// bytes a call allocates, so a test can assert a parser's stated memory bound.
//
// It is test support: only _test.go files import it.
package fuzzcheck

import (
	"runtime"
	"testing"
)

// Allocated returns the bytes allocated on the heap while f ran: the growth of runtime.MemStats.TotalAlloc,
// which counts every allocation (freed or not) of every goroutine. It is therefore an upper bound of f's peak
// heap, good for asserting limits, not for exact counts.
func Allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Slack is added to every limit checked by Within: the small allocations of a call (error messages, readers,
// maps) and those of the test framework's own goroutines while the call runs.
const Slack = 1 << 20

// Within runs f and fails t when it allocated more than limit+Slack bytes; what names the call in the message.
func Within(t testing.TB, what string, limit uint64, f func()) {
	t.Helper()
	if got := Allocated(f); got > limit+Slack {
		t.Errorf("%s allocated %d bytes, above its bound of %d (+%d slack)", what, got, limit, Slack)
	}
}
