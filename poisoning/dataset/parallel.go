package dataset

import (
	"runtime"
	"sync"
)

// Parallel calls f(0), …, f(n−1) on workers goroutines (0 or less: GOMAXPROCS), as the readers and decoders of
// a dataset's examples do, and returns the error of the lowest i that failed (nil when none did). f must be
// safe for concurrent use; each call writes only its own results.
func Parallel(n, workers int, f func(i int) error) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
