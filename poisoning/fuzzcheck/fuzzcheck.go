// Package fuzzcheck holds what the fuzz targets and hostile-input tests of the parsers share: measuring how much
// memory a call takes, so a test can assert a parser's stated memory bound.
//
// It is test support: only _test.go files import it.
package fuzzcheck

import (
	"bytes"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"
	"time"
)

// Allocated returns the bytes allocated on the heap while f ran: the growth of runtime.MemStats.TotalAlloc,
// which counts every allocation (freed or not) of every goroutine. It is therefore an upper bound of f's peak
// heap, cheap enough for every run of a fuzz target, but it also counts short-lived garbage.
func Allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// liveMetric is the runtime metric of the heap bytes the last collection found live (garbage excluded).
const liveMetric = "/gc/heap/live:bytes"

// PeakHeap returns the largest growth of the live heap seen while f ran, after a collection before it. The
// collector runs with GOGC=5 meanwhile, so a collection follows whenever f's allocations grow the heap by 5%: a
// buffer f holds across such a point (a whole file read into memory, a table it builds) is counted, while
// short-lived garbage, whose amount depends on how busy the machine keeps the collector, is not. The live heap
// is sampled every 100 µs and once after f returns.
func PeakHeap(f func()) uint64 {
	defer debug.SetGCPercent(debug.SetGCPercent(5))
	runtime.GC()
	read := func() uint64 {
		s := []metrics.Sample{{Name: liveMetric}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	base := read()
	var mu sync.Mutex
	peak := base
	note := func() {
		v := read()
		mu.Lock()
		peak = max(peak, v)
		mu.Unlock()
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			case <-time.After(100 * time.Microsecond):
				note()
			}
		}
	}()
	f()
	note()
	close(done)
	<-stopped
	return peak - base
}

// Slack is added to every limit checked by Within and PeakWithin: the small allocations of a call (error
// messages, readers, maps) and those of the test framework's own goroutines while the call runs.
const Slack = 1 << 20

// Within runs f and fails t when it allocated more than limit+Slack bytes in all (see Allocated); what names the
// call in the message.
func Within(t testing.TB, what string, limit uint64, f func()) {
	t.Helper()
	if got := Allocated(f); got > limit+Slack {
		t.Errorf("%s allocated %d bytes, above its bound of %d (+%d slack)", what, got, limit, Slack)
	}
}

// PeakWithin runs f and fails t when its heap grew by more than limit+Slack bytes at some point (see PeakHeap).
func PeakWithin(t testing.TB, what string, limit uint64, f func()) {
	t.Helper()
	if got := PeakHeap(f); got > limit+Slack {
		t.Errorf("%s held up to %d bytes of heap, above its bound of %d (+%d slack)", what, got, limit, Slack)
	}
}

// WithoutChecksum returns a copy of a safetensors file written by models/safetensors.WriteFile with its checksum
// (the metadata key "mmpoison.sha256") renamed to another key of the same length, so that the file still parses
// but is no longer verified: seeds of fuzz targets that read checkpoints, whose mutations should reach the
// parsers behind the checksum instead of all failing it.
func WithoutChecksum(file []byte) []byte {
	return bytes.Replace(file, []byte(`"mmpoison.sha256":`), []byte(`"unchecked.sha25":`), 1)
}
