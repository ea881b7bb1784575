package fastdot

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// dotCase is one DotGeneral: operand dimensions and axes as simplego's node data lists them.
type dotCase struct {
	name                           string
	lhsDims, lhsBatch, lhsContract []int
	rhsDims, rhsBatch, rhsContract []int
}

// dotCases covers the layouts CLIP uses (linear layers and their gradients, attention scores and values in
// both head layouts), odd sizes, contractions longer than kcMax, outputs wider than ncMax, several batch and
// contracting axes in either order.
var dotCases = []dotCase{
	{"1x1x1", []int{1, 1}, nil, []int{1}, []int{1, 1}, nil, []int{0}},
	{"vector·vector", []int{17}, nil, []int{0}, []int{17}, nil, []int{0}},
	{"matrix·vector", []int{5, 3}, nil, []int{1}, []int{3}, nil, []int{0}},
	{"odd 17x65·65x3", []int{17, 65}, nil, []int{1}, []int{65, 3}, nil, []int{0}},
	{"odd 3x1·1x17", []int{3, 1}, nil, []int{1}, []int{1, 17}, nil, []int{0}},
	{"tiny linear x·W", []int{64 * 17, 64}, nil, []int{1}, []int{64, 192}, nil, []int{0}},
	{"tiny linear dx=dy·Wᵀ", []int{64 * 17, 192}, nil, []int{1}, []int{64, 192}, nil, []int{1}},
	{"tiny linear dW=xᵀ·dy", []int{64 * 17, 64}, nil, []int{0}, []int{64 * 17, 192}, nil, []int{0}},
	{"rank-3 x·W", []int{8, 17, 64}, nil, []int{2}, []int{64, 256}, nil, []int{0}},
	{"rank-3 dW over batch and tokens", []int{8, 17, 64}, nil, []int{0, 1}, []int{8, 17, 33}, nil, []int{0, 1}},
	{"attention q·kᵀ [B,H,T,D]", []int{4, 2, 17, 32}, []int{0, 1}, []int{3}, []int{4, 2, 17, 32}, []int{0, 1}, []int{3}},
	{"attention q·kᵀ [B,T,H,D]", []int{4, 17, 2, 32}, []int{0, 2}, []int{3}, []int{4, 17, 2, 32}, []int{0, 2}, []int{3}},
	{"attention p·v", []int{4, 2, 17, 17}, []int{0, 1}, []int{3}, []int{4, 2, 17, 32}, []int{0, 1}, []int{2}},
	{"attention dv=pᵀ·dy", []int{4, 2, 17, 17}, []int{0, 1}, []int{2}, []int{4, 2, 17, 32}, []int{0, 1}, []int{2}},
	{"batch axes reversed", []int{3, 5, 7}, []int{1, 0}, []int{2}, []int{5, 7, 3, 4}, []int{0, 2}, []int{1}},
	{"batch axis last", []int{7, 9, 3}, []int{2}, []int{1}, []int{9, 3, 5}, []int{1}, []int{0}},
	{"two contracting axes reversed", []int{6, 4, 5}, nil, []int{2, 1}, []int{4, 7, 5}, nil, []int{2, 0}},
	{"cross axes split around contracting", []int{3, 20, 5}, nil, []int{1}, []int{4, 20, 2}, nil, []int{1}},
	{"long contraction K=600", []int{13, 600}, nil, []int{1}, []int{600, 19}, nil, []int{0}},
	{"wide output N=1100", []int{7, 33}, nil, []int{1}, []int{1100, 33}, nil, []int{1}},
	{"long and wide, batched", []int{2, 9, 513}, []int{0}, []int{2}, []int{2, 513, 530}, []int{0}, []int{1}},
}

func randomData(r *rand.Rand, dims []int) []float32 {
	n := 1
	for _, d := range dims {
		n *= d
	}
	data := make([]float32, n)
	for i := range data {
		data[i] = float32(r.NormFloat64())
	}
	return data
}

// tuples lists every index tuple of dims in row-major order.
func tuples(dims []int) [][]int {
	out := [][]int{{}}
	for _, d := range dims {
		var next [][]int
		for _, t := range out {
			for i := range d {
				next = append(next, append(slices.Clone(t), i))
			}
		}
		out = next
	}
	return out
}

func pick(dims, axes []int) []int {
	out := make([]int, len(axes))
	for i, a := range axes {
		out[i] = dims[a]
	}
	return out
}

func crossAxesOf(rank int, batch, contract []int) []int {
	var out []int
	for a := range rank {
		if !slices.Contains(batch, a) && !slices.Contains(contract, a) {
			out = append(out, a)
		}
	}
	return out
}

// flatIndex places the tuples' values on their axes and returns the row-major flat index.
func flatIndex(dims []int, parts ...[2][]int) int {
	idx := make([]int, len(dims))
	for _, p := range parts {
		for i, a := range p[0] {
			idx[a] = p[1][i]
		}
	}
	flat := 0
	for a, d := range dims {
		flat = flat*d + idx[a]
	}
	return flat
}

// naiveDot is the reference DotGeneral, straight from the definition, in float64. It returns the
// [batch, lhsCross, rhsCross] result and, per element, Σ|lhs·rhs| (the scale of its rounding error).
func naiveDot(c dotCase, lhs, rhs []float32) (out, scale []float64) {
	lhsCross := crossAxesOf(len(c.lhsDims), c.lhsBatch, c.lhsContract)
	rhsCross := crossAxesOf(len(c.rhsDims), c.rhsBatch, c.rhsContract)
	bt := tuples(pick(c.lhsDims, c.lhsBatch))
	it := tuples(pick(c.lhsDims, lhsCross))
	jt := tuples(pick(c.rhsDims, rhsCross))
	kt := tuples(pick(c.lhsDims, c.lhsContract))
	for _, b := range bt {
		for _, i := range it {
			for _, j := range jt {
				var sum, abs float64
				for _, k := range kt {
					l := float64(lhs[flatIndex(c.lhsDims, [2][]int{c.lhsBatch, b}, [2][]int{lhsCross, i}, [2][]int{c.lhsContract, k})])
					r := float64(rhs[flatIndex(c.rhsDims, [2][]int{c.rhsBatch, b}, [2][]int{rhsCross, j}, [2][]int{c.rhsContract, k})])
					sum += l * r
					abs += math.Abs(l * r)
				}
				out = append(out, sum)
				scale = append(scale, abs)
			}
		}
	}
	return out, scale
}

// runGemm runs the package's kernel on the case.
func runGemm(t testing.TB, c dotCase, lhs, rhs []float32) []float32 {
	t.Helper()
	A, err := newOperand(c.lhsDims, c.lhsBatch, c.lhsContract, len(lhs))
	if err != nil {
		t.Fatal(err)
	}
	B, err := newOperand(c.rhsDims, c.rhsBatch, c.rhsContract, len(rhs))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, A.batch*A.cross*B.cross)
	for i := range out {
		out[i] = float32(math.NaN()) // gemm must overwrite every element.
	}
	gemm(lhs, rhs, out, &A, &B)
	return out
}

// checkClose fails when some element differs from the reference by more than tol·Σ|lhs·rhs|.
func checkClose(t *testing.T, got []float32, want, scale []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d elements, want %d", len(got), len(want))
	}
	bad := 0
	for i, g := range got {
		if d := math.Abs(float64(g) - want[i]); !(d <= tol*scale[i]+1e-30) {
			if bad < 3 {
				t.Errorf("element %d: got %v, want %v (Σ|l·r| = %v)", i, g, want[i], scale[i])
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d elements differ", bad, len(got))
	}
}

func TestGemmMatchesNaive(t *testing.T) {
	savedAsm, savedPar := useAsm, parallelMinFlops
	defer func() { useAsm, parallelMinFlops = savedAsm, savedPar }()
	for ci, c := range dotCases {
		r := rand.New(rand.NewPCG(uint64(ci), 7))
		lhs, rhs := randomData(r, c.lhsDims), randomData(r, c.rhsDims)
		want, scale := naiveDot(c, lhs, rhs)
		for _, kernelName := range []string{"asm", "go"} {
			if kernelName == "asm" && !asmAvailable {
				continue // no AVX2/FMA here.
			}
			useAsm = kernelName == "asm"
			for _, par := range []int{math.MaxInt, 0} {
				parallelMinFlops = par
				t.Run(fmt.Sprintf("%s/%s/parallel=%v", c.name, kernelName, par == 0), func(t *testing.T) {
					checkClose(t, runGemm(t, c, lhs, rhs), want, scale, 1e-5)
				})
			}
		}
	}
}

// TestGemmReproducible checks that serial and parallel runs agree bit for bit.
func TestGemmReproducible(t *testing.T) {
	saved := parallelMinFlops
	defer func() { parallelMinFlops = saved }()
	for ci, c := range dotCases {
		r := rand.New(rand.NewPCG(uint64(ci), 8))
		lhs, rhs := randomData(r, c.lhsDims), randomData(r, c.rhsDims)
		parallelMinFlops = math.MaxInt
		serial := runGemm(t, c, lhs, rhs)
		parallelMinFlops = 0
		parallel := runGemm(t, c, lhs, rhs)
		for i := range serial {
			if math.Float32bits(serial[i]) != math.Float32bits(parallel[i]) {
				t.Errorf("%s: element %d is %v serially and %v in parallel", c.name, i, serial[i], parallel[i])
				break
			}
		}
	}
}

func TestNewOperand(t *testing.T) {
	cases := []struct {
		dims, batch, contract    []int
		flatLen                  int
		batchOff, crossOff, kOff []int
		crossStride, kStride     int
		wantErr                  bool
	}{
		{dims: []int{2, 3}, contract: []int{1}, flatLen: 6,
			batchOff: []int{0}, crossOff: []int{0, 3}, kOff: []int{0, 1, 2}, crossStride: 3, kStride: 1},
		{dims: []int{2, 3}, contract: []int{0}, flatLen: 6,
			batchOff: []int{0}, crossOff: []int{0, 1, 2}, kOff: []int{0, 3}, crossStride: 1, kStride: 3},
		{dims: []int{2, 3, 4}, batch: []int{1}, contract: []int{2, 0}, flatLen: 24,
			batchOff: []int{0, 4, 8}, crossOff: []int{0}, kOff: []int{0, 12, 1, 13, 2, 14, 3, 15},
			crossStride: 1, kStride: -1},
		{dims: []int{2, 3}, contract: []int{1}, flatLen: 5, wantErr: true},
		{dims: []int{2, 3}, contract: []int{1, 1}, flatLen: 6, wantErr: true},
		{dims: []int{2, 3}, contract: []int{2}, flatLen: 6, wantErr: true},
	}
	for _, c := range cases {
		op, err := newOperand(c.dims, c.batch, c.contract, c.flatLen)
		if c.wantErr {
			if err == nil {
				t.Errorf("newOperand(%v, %v, %v, %d): no error", c.dims, c.batch, c.contract, c.flatLen)
			}
			continue
		}
		if err != nil || !slices.Equal(op.batchOff, c.batchOff) || !slices.Equal(op.crossOff, c.crossOff) ||
			!slices.Equal(op.kOff, c.kOff) || op.crossStride != c.crossStride || op.kStride != c.kStride {
			t.Errorf("newOperand(%v, %v, %v) = %+v, %v", c.dims, c.batch, c.contract, op, err)
		}
	}
}
