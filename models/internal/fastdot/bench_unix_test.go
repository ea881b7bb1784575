//go:build unix

package fastdot

import (
	"math"
	"math/rand/v2"
	"syscall"
	"testing"
)

// cpuSeconds returns the user and system CPU time of the process so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

// BenchmarkGemm reports the kernel's speed on the DotGenerals of a CLIP training step at batch 64: with the
// assembly micro-kernel (splitting large products across GOMAXPROCS goroutines, and on one goroutine) and with
// the portable one. GFLOP/s is per second of wall time, GFLOP/s-cpu per second of this process's CPU time
// (the kernel's own speed when other processes share the cores).
func BenchmarkGemm(b *testing.B) {
	defer func(saved bool) { useAsm = saved }(useAsm)
	defer func(saved int) { parallelMinFlops = saved }(parallelMinFlops)
	for _, variant := range []string{"asm", "asm-serial", "go"} {
		useAsm = variant != "go" && asmAvailable
		parallelMinFlops = 1 << 22
		if variant == "asm-serial" {
			parallelMinFlops = math.MaxInt
		}
		for _, c := range benchCases {
			b.Run(variant+"/"+c.name, func(b *testing.B) {
				r := rand.New(rand.NewPCG(1, 2))
				lhs, rhs := randomData(r, c.lhsDims), randomData(r, c.rhsDims)
				A, _ := newOperand(c.lhsDims, c.lhsBatch, c.lhsContract, len(lhs))
				B, _ := newOperand(c.rhsDims, c.rhsBatch, c.rhsContract, len(rhs))
				out := make([]float32, A.batch*A.cross*B.cross)
				cpu0 := cpuSeconds()
				for b.Loop() {
					gemm(lhs, rhs, out, &A, &B)
				}
				flops := 2 * float64(A.batch*A.cross*B.cross*A.contract) * float64(b.N)
				b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				b.ReportMetric(flops/(cpuSeconds()-cpu0)/1e9, "GFLOP/s-cpu")
			})
		}
	}
}

// benchCases are the main DotGeneral shapes of the tiny (width 64) and small (width 128) presets at batch 64.
var benchCases = []dotCase{
	{"tiny/x·W_qkv", []int{64 * 17, 64}, nil, []int{1}, []int{64, 192}, nil, []int{0}},
	{"tiny/dx=dy·Wᵀ", []int{64 * 17, 256}, nil, []int{1}, []int{64, 256}, nil, []int{1}},
	{"tiny/dW=xᵀ·dy", []int{64 * 17, 64}, nil, []int{0}, []int{64 * 17, 256}, nil, []int{0}},
	{"tiny/q·kᵀ", []int{64, 2, 17, 32}, []int{0, 1}, []int{3}, []int{64, 2, 17, 32}, []int{0, 1}, []int{3}},
	{"small/x·W_mlp", []int{64 * 50, 128}, nil, []int{1}, []int{128, 512}, nil, []int{0}},
	{"small/q·kᵀ", []int{64, 4, 50, 32}, []int{0, 1}, []int{3}, []int{64, 4, 50, 32}, []int{0, 1}, []int{3}},
}
