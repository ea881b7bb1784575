package fastdot

import (
	"runtime"
	"sync"
)

// Blocking of the matrix multiplication (float32 elements). A micro-kernel call multiplies an mr×kc panel of
// the left operand by a kc×nr panel of the right one; kc bounds the panels so that both stay in L1, and the
// packed kc×nc block of the right operand stays in L2.
const (
	mr    = 6
	nr    = 16
	kcMax = 256
	ncMax = 512 // a multiple of nr.
)

// parallelMinFlops is the work (2·batch·M·N·K) from which one DotGeneral is split across GOMAXPROCS goroutines.
// Below it, goroutine start-up costs more than it saves; simplego already runs independent ops in parallel.
var parallelMinFlops = 1 << 22

// scratch holds one goroutine's packed panels.
type scratch struct {
	a    []float32 // kc×mr, k-major.
	b    []float32 // nc/nr panels of kc×nr, k-major.
	tile [mr * nr]float32
}

var scratchPool = sync.Pool{New: func() any {
	return &scratch{a: make([]float32, kcMax*mr), b: make([]float32, kcMax*ncMax)}
}}

// gemm computes c[b, i, j] = Σ_k a(b, i, k)·b(b, j, k) for the operands described by A and B, into the row-major
// [batch, A.cross, B.cross] array c, overwriting it. Each element's sum runs in the same order however the
// work is split (k in blocks of kcMax, sequential within a block), so results are reproducible bit for bit.
func gemm(a, b, c []float32, A, B *operand) {
	batch, m, n, k := A.batch, A.cross, B.cross, A.contract
	units := batch * ((m + mr - 1) / mr) // row panels of all batch elements.
	workers := 1
	if 2*batch*m*n*k >= parallelMinFlops {
		workers = min(runtime.GOMAXPROCS(0), units)
	}
	if workers <= 1 {
		gemmRange(a, b, c, A, B, 0, units)
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := units*w/workers, units*(w+1)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			gemmRange(a, b, c, A, B, lo, hi)
		}()
	}
	wg.Wait()
}

// gemmRange computes the row panels [lo, hi) of gemm, numbered batch-major.
func gemmRange(a, b, c []float32, A, B *operand, lo, hi int) {
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	m, n, k := A.cross, B.cross, A.contract
	panels := (m + mr - 1) / mr
	for u := lo; u < hi; {
		bi, irLo := u/panels, u%panels
		irHi := min(panels, irLo+hi-u)
		u += irHi - irLo
		aBase, bBase := A.batchOff[bi], B.batchOff[bi]
		cb := c[bi*m*n : (bi+1)*m*n]
		for jc := 0; jc < n; jc += ncMax {
			nc := min(ncMax, n-jc)
			for pc := 0; pc < k; pc += kcMax {
				kc := min(kcMax, k-pc)
				acc := pc > 0
				packB(s.b, b, B, bBase, jc, nc, pc, kc)
				for ir := irLo; ir < irHi; ir++ {
					i0 := ir * mr
					rows := min(mr, m-i0)
					// Full panels of an operand with contiguous contraction and evenly spaced rows are read in
					// place; others are packed.
					ap, rs, cs := s.a, 1, mr
					if direct := rows == mr && A.kStride == 1 && A.crossStride > 0; direct {
						off := aBase + A.crossOff[i0] + A.kOff[pc]
						ap, rs, cs = a[off:off+(mr-1)*A.crossStride+kc], A.crossStride, 1
					} else {
						packA(s.a[:kc*mr], a, A, aBase, i0, rows, pc, kc)
					}
					for j0 := jc; j0 < jc+nc; j0 += nr {
						cols := min(nr, n-j0)
						bp := s.b[(j0-jc)*kc : (j0-jc+nr)*kc]
						if rows == mr && cols == nr {
							kernel(kc, ap, rs, cs, bp, cb[i0*n+j0:], n, acc)
							continue
						}
						kernel(kc, ap, rs, cs, bp, s.tile[:], nr, false)
						for r := range rows {
							row, t := cb[(i0+r)*n+j0:(i0+r)*n+j0+cols], s.tile[r*nr:r*nr+cols]
							if acc {
								for j, v := range t {
									row[j] += v
								}
							} else {
								copy(row, t)
							}
						}
					}
				}
			}
		}
	}
}

// packB packs columns [jc, jc+nc) and contraction indices [pc, pc+kc) of batch element base of the right
// operand into panels of nr columns: dst[(panel·kc + k)·nr + j]. Columns past the end are zeros.
func packB(dst, b []float32, B *operand, base, jc, nc, pc, kc int) {
	n := B.cross
	for p := 0; p*nr < nc; p++ {
		j0 := jc + p*nr
		cols := min(nr, n-j0)
		panel := dst[p*kc*nr : (p+1)*kc*nr]
		switch {
		case B.crossStride == 1 && cols == nr:
			for k := range kc {
				src := base + B.kOff[pc+k] + B.crossOff[j0]
				copy(panel[k*nr:k*nr+nr], b[src:src+nr])
			}
		case B.kStride == 1:
			if cols < nr {
				clear(panel)
			}
			for j := range cols {
				src := base + B.crossOff[j0+j] + B.kOff[pc]
				for k, v := range b[src : src+kc] {
					panel[k*nr+j] = v
				}
			}
		default:
			for k := range kc {
				row := base + B.kOff[pc+k]
				d := panel[k*nr : k*nr+nr]
				for j := range d {
					if j < cols {
						d[j] = b[row+B.crossOff[j0+j]]
					} else {
						d[j] = 0
					}
				}
			}
		}
	}
}

// packA packs rows [i0, i0+rows) and contraction indices [pc, pc+kc) of batch element base of the left operand
// as dst[k·mr + i]. Rows past the end are zeros.
func packA(dst, a []float32, A *operand, base, i0, rows, pc, kc int) {
	if rows < mr {
		clear(dst)
	}
	switch {
	case A.kStride == 1:
		for i := range rows {
			src := base + A.crossOff[i0+i] + A.kOff[pc]
			for k, v := range a[src : src+kc] {
				dst[k*mr+i] = v
			}
		}
	case A.crossStride == 1 && rows == mr:
		for k := range kc {
			src := base + A.kOff[pc+k] + A.crossOff[i0]
			d, s := dst[k*mr:k*mr+mr], a[src:src+mr]
			d[0], d[1], d[2], d[3], d[4], d[5] = s[0], s[1], s[2], s[3], s[4], s[5]
		}
	case A.crossStride == 1:
		for k := range kc {
			src := base + A.kOff[pc+k] + A.crossOff[i0]
			copy(dst[k*mr:k*mr+rows], a[src:src+rows])
		}
	default:
		for i := range rows {
			row := base + A.crossOff[i0+i]
			for k := range kc {
				dst[k*mr+i] = a[row+A.kOff[pc+k]]
			}
		}
	}
}

// kernelGo is the portable micro-kernel: c[i·ldc + j] (+)= Σ_k a[i·rs + k·cs]·b[k·nr + j] for an mr×nr tile,
// adding to c when acc is set and overwriting it otherwise. A packed panel of a has rs = 1, cs = mr; rows of a
// row-major operand have rs = its row stride, cs = 1.
func kernelGo(kc int, a []float32, rs, cs int, b, c []float32, ldc int, acc bool) {
	var t [mr * nr]float32
	for k := range kc {
		bk := b[k*nr : k*nr+nr]
		for i := range mr {
			av := a[i*rs+k*cs]
			row := t[i*nr : i*nr+nr]
			for j, bv := range bk {
				row[j] += av * bv
			}
		}
	}
	for i := range mr {
		row := c[i*ldc : i*ldc+nr]
		if acc {
			for j := range row {
				row[j] += t[i*nr+j]
			}
		} else {
			copy(row, t[i*nr:i*nr+nr])
		}
	}
}
