package gradfix

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/backends"

	"github.com/gomlx/gomlx/backends/simplego"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

var backendOnce = sync.OnceValues(func() (backends.Backend, error) { return simplego.New("parallelism=-1") })

func testBackend(t *testing.T) backends.Backend {
	b, err := backendOnce()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustInstall(t *testing.T) {
	t.Helper()
	if err := Install(nil); err != nil {
		t.Fatal(err)
	}
}

func randomTensor(rng *rand.Rand, dims ...int) *tensors.Tensor {
	n := 1
	for _, d := range dims {
		n *= d
	}
	data := make([]float32, n)
	for i := range data {
		data[i] = float32(rng.NormFloat64())
	}
	return tensors.FromFlatDataAndDimensions(data, dims...)
}

// gradients returns d(sum(out*w))/dlhs and /drhs for out = DotGeneral(lhs, rhs) with a random weighting w, so
// every output element has its own adjoint.
func gradients(t *testing.T, fixed bool, lhs, rhs *tensors.Tensor, lc, lb, rc, rb []int, seed uint64) [][]float32 {
	t.Helper()
	if fixed {
		mustInstall(t)
	} else {
		Uninstall()
	}
	defer mustInstall(t)
	exec, err := NewExec(testBackend(t), func(l, r *Node) []*Node {
		out := DotGeneral(l, lc, lb, r, rc, rb)
		rng := rand.New(rand.NewPCG(seed, 1))
		w := make([]float32, out.Shape().Size())
		for i := range w {
			w[i] = float32(rng.NormFloat64())
		}
		weights := Const(l.Graph(), tensors.FromFlatDataAndDimensions(w, out.Shape().Dimensions...))
		loss := ReduceAllSum(Mul(out, weights))
		return Gradient(loss, l, r)
	})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := exec.Exec(lhs, rhs)
	if err != nil {
		t.Fatal(err)
	}
	res := make([][]float32, len(outs))
	for i, o := range outs {
		res[i], err = tensors.CopyFlatData[float32](o)
		if err != nil {
			t.Fatal(err)
		}
	}
	return res
}

// TestDotGeneralGradientMatchesStock compares the fixed gradient with GoMLX's stock one on every axis layout the
// project uses (dense layers in PyTorch [out, in] layout, attention scores and values, einsum with the class-token
// one-hot, contrastive logits) and several unusual orders of batch, contracting and cross axes.
func TestDotGeneralGradientMatchesStock(t *testing.T) {
	cases := []struct {
		name           string
		lhsDims        []int
		rhsDims        []int
		lc, lb, rc, rb []int
	}{
		{"matmul [M,K]x[K,N]", []int{5, 7}, []int{7, 3}, []int{1}, nil, []int{0}, nil},
		{"dense torch layout [B,L,in]x[out,in]", []int{2, 4, 6}, []int{5, 6}, []int{2}, nil, []int{1}, nil},
		{"fused qkv [B,L,W]x[3,H,D,W]", []int{2, 3, 8}, []int{3, 2, 4, 8}, []int{2}, nil, []int{3}, nil},
		{"scores [B,L,H,D]x[B,L,H,D] batch B,H", []int{2, 5, 3, 4}, []int{2, 6, 3, 4}, []int{3}, []int{0, 2}, []int{3}, []int{0, 2}},
		{"values [B,H,L,L]x[B,L,H,D]", []int{2, 3, 5, 6}, []int{2, 6, 3, 4}, []int{3}, []int{0, 1}, []int{1}, []int{0, 2}},
		{"logits [N,E]x[M,E]", []int{6, 4}, []int{5, 4}, []int{1}, nil, []int{1}, nil},
		{"one-hot pooling [B,L,W]x[B,L]", []int{3, 5, 4}, []int{3, 5}, []int{1}, []int{0}, []int{1}, []int{0}},
		{"two contracting axes, swapped order", []int{3, 4, 5}, []int{5, 2, 4}, []int{1, 2}, nil, []int{2, 0}, nil},
		{"batch axis last on lhs, first on rhs", []int{4, 3, 2}, []int{2, 3, 5}, []int{1}, []int{2}, []int{1}, []int{0}},
		{"batch in the middle, cross around", []int{3, 2, 4, 5}, []int{4, 2, 6}, []int{2}, []int{1}, []int{0}, []int{1}},
		{"no cross axes (batched dot)", []int{3, 4}, []int{3, 4}, []int{1}, []int{0}, []int{1}, []int{0}},
		{"outer product, no contraction", []int{3, 2}, []int{3, 4}, nil, []int{0}, nil, []int{0}},
	}
	rng := rand.New(rand.NewPCG(42, 7))
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lhs, rhs := randomTensor(rng, tc.lhsDims...), randomTensor(rng, tc.rhsDims...)
			stock := gradients(t, false, lhs, rhs, tc.lc, tc.lb, tc.rc, tc.rb, uint64(i))
			fixed := gradients(t, true, lhs, rhs, tc.lc, tc.lb, tc.rc, tc.rb, uint64(i))
			for operand := range stock {
				if len(stock[operand]) != len(fixed[operand]) {
					t.Fatalf("operand %d: gradient sizes differ: stock %d, fixed %d", operand, len(stock[operand]), len(fixed[operand]))
				}
				var maxDiff float64
				for j := range stock[operand] {
					maxDiff = math.Max(maxDiff, math.Abs(float64(stock[operand][j]-fixed[operand][j])))
				}
				if maxDiff > 1e-4 {
					t.Errorf("operand %d: max |stock - fixed| = %g > 1e-4", operand, maxDiff)
				}
			}
		})
	}
}

// TestSliceGradient checks the concatenation-based slice gradient against the analytic answer: ones where the
// slice came from, zeros elsewhere (the stock gradient needs Pad, which the pure-Go backend lacks).
func TestSliceGradient(t *testing.T) {
	mustInstall(t)
	exec, err := NewExec(testBackend(t), func(x *Node) *Node {
		s := Slice(x, AxisRange(1, 3), AxisRange(), AxisRange(2, 3))
		return Gradient(ReduceAllSum(MulScalar(s, 2)), x)[0]
	})
	if err != nil {
		t.Fatal(err)
	}
	x := randomTensor(rand.New(rand.NewPCG(1, 2)), 4, 2, 5)
	out, err := exec.Exec1(x)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := tensors.CopyFlatData[float32](out)
	for i := range 4 {
		for j := range 2 {
			for k := range 5 {
				want := float32(0)
				if i >= 1 && i < 3 && k == 2 {
					want = 2
				}
				if g := got[(i*2+j)*5+k]; g != want {
					t.Fatalf("grad[%d,%d,%d] = %g, want %g", i, j, k, g, want)
				}
			}
		}
	}
}

func ExampleInstall() {
	if err := Install(nil); err != nil {
		fmt.Println(err)
	}
	fmt.Println(Installed())
	// Output: true
}
