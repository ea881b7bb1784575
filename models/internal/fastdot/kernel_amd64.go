package fastdot

import "golang.org/x/sys/cpu"

// asmAvailable says whether the CPU has AVX2 and FMA, which the assembly micro-kernel needs.
var asmAvailable = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// useAsm selects the assembly micro-kernel; tests switch it off to check the portable one.
var useAsm = asmAvailable

// kernelAVX2 is kernelGo in AVX2/FMA assembly (kernel_amd64.s); kc ≥ 1, with a, b and c valid for the tile.
//
//go:noescape
func kernelAVX2(kc int, a *float32, rs, cs int, b, c *float32, ldc int, acc bool)

// kernel computes one mr×nr tile (see kernelGo).
func kernel(kc int, a []float32, rs, cs int, b, c []float32, ldc int, acc bool) {
	if useAsm {
		_, _, _ = a[(mr-1)*rs+(kc-1)*cs], b[kc*nr-1], c[(mr-1)*ldc+nr-1] // bounds the assembly relies on.
		kernelAVX2(kc, &a[0], rs, cs, &b[0], &c[0], ldc, acc)
		return
	}
	kernelGo(kc, a, rs, cs, b, c, ldc, acc)
}
