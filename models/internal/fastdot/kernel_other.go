//go:build !amd64

package fastdot

// Only amd64 has an assembly micro-kernel.
var asmAvailable, useAsm = false, false

// kernel computes one mr×nr tile (see kernelGo).
func kernel(kc int, a []float32, rs, cs int, b, c []float32, ldc int, acc bool) {
	kernelGo(kc, a, rs, cs, b, c, ldc, acc)
}
