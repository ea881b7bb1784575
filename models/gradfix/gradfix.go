// Package gradfix replaces two reverse-mode gradients of GoMLX v0.26.0 that make CLIP training slow or impossible
// on the pure-Go backend:
//
//   - DotGeneral: v0.26.0 computes the gradient as a broadcast multiply plus a reduction, which materialises a
//     [batch, M, N, K] tensor (most of a training step's time and memory). Here each operand's gradient is one
//     DotGeneral followed by a transpose, as newer GoMLX releases do.
//   - Slice: v0.26.0 pads the incoming gradient with Pad, which the pure-Go backend does not implement. Here the
//     gradient of a unit-stride slice is built by concatenating zero blocks, which every backend implements.
//
// Install registers both in graph.VJPRegistration; Uninstall restores the stock functions (tests compare the two).
// The package is meant to be deleted when GoMLX is upgraded to a release with these fixes.
package gradfix

import (
	"fmt"
	"reflect"
	"slices"
	"sync"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX graph-building style.
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

var (
	mu                 sync.Mutex
	stockDotGeneralVJP VJP
	stockSliceVJP      VJP
	installed          bool
)

// Install replaces the DotGeneral and Slice gradients with the fixed ones. It is idempotent and safe to call
// from several goroutines; graphs built before the call keep the gradients they were built with.
func Install() {
	mu.Lock()
	defer mu.Unlock()
	if installed {
		return
	}
	stockDotGeneralVJP = VJPRegistration[NodeTypeDotGeneral]
	stockSliceVJP = VJPRegistration[NodeTypeSlice]
	VJPRegistration[NodeTypeDotGeneral] = singleOutput(dotGeneralVJP)
	VJPRegistration[NodeTypeSlice] = singleOutput(sliceVJP)
	installed = true
}

// Uninstall restores GoMLX's stock gradients. It is meant for tests that compare both.
func Uninstall() {
	mu.Lock()
	defer mu.Unlock()
	if !installed {
		return
	}
	VJPRegistration[NodeTypeDotGeneral] = stockDotGeneralVJP
	VJPRegistration[NodeTypeSlice] = stockSliceVJP
	installed = false
}

// Installed reports whether the fixed gradients are in use.
func Installed() bool {
	mu.Lock()
	defer mu.Unlock()
	return installed
}

func singleOutput(fn func(node, v *Node) []*Node) VJP {
	return func(node *Node, vjpOutputs []*Node, _ shapes.Shape) []*Node { return fn(node, vjpOutputs[0]) }
}

// nodeParams reads the static parameters GoMLX keeps in an unexported field of the node (its "inputs" struct).
// It returns the named int-slice fields. Reflection only reads; nothing is modified.
func nodeParams(node *Node, fields ...string) [][]int {
	inputs := reflect.ValueOf(node).Elem().FieldByName("inputs")
	if !inputs.IsValid() {
		panic(fmt.Sprintf("gradfix: GoMLX's Node has no field \"inputs\" any more: remove package gradfix (node %s)", node))
	}
	st := inputs.Elem().Elem() // interface -> pointer -> struct
	out := make([][]int, len(fields))
	for i, name := range fields {
		f := st.FieldByName(name)
		if !f.IsValid() || f.Kind() != reflect.Slice {
			panic(fmt.Sprintf("gradfix: GoMLX node parameters changed (no int slice %q in %s): remove package gradfix",
				name, st.Type()))
		}
		vals := make([]int, f.Len())
		for j := range vals {
			vals[j] = int(f.Index(j).Int())
		}
		out[i] = vals
	}
	return out
}

// crossAxes returns the axes of an operand of the given rank that are neither contracting nor batch, in order.
func crossAxes(rank int, contracting, batch []int) []int {
	var cross []int
	for axis := range rank {
		if !slices.Contains(contracting, axis) && !slices.Contains(batch, axis) {
			cross = append(cross, axis)
		}
	}
	return cross
}

// dotGeneralVJP returns the gradients of out = DotGeneral(lhs, rhs). The output's axes are
// [batch..., lhsCross..., rhsCross...]; each operand's gradient contracts v with the other operand over the other
// operand's cross axes, then transposes the result into the operand's own axis order.
func dotGeneralVJP(node, v *Node) []*Node {
	p := nodeParams(node, "lhsContractingAxes", "lhsBatchAxes", "rhsContractingAxes", "rhsBatchAxes")
	lhsContract, lhsBatch, rhsContract, rhsBatch := p[0], p[1], p[2], p[3]
	inputs := node.Inputs()
	lhs, rhs := inputs[0], inputs[1]
	lhsCross := crossAxes(lhs.Rank(), lhsContract, lhsBatch)
	rhsCross := crossAxes(rhs.Rank(), rhsContract, rhsBatch)
	numBatch := len(lhsBatch)
	vBatch := iota(0, numBatch)
	vLhsCross := iota(numBatch, len(lhsCross))
	vRhsCross := iota(numBatch+len(lhsCross), len(rhsCross))
	gradLhs := operandGradient(v, vBatch, vRhsCross, rhs, rhsBatch, rhsCross, rhsContract,
		lhs.Rank(), lhsBatch, lhsCross, lhsContract)
	gradRhs := operandGradient(v, vBatch, vLhsCross, lhs, lhsBatch, lhsCross, lhsContract,
		rhs.Rank(), rhsBatch, rhsCross, rhsContract)
	return []*Node{gradLhs, gradRhs}
}

// operandGradient computes the gradient for "this" operand: DotGeneral(v, other) contracting v's axes that came
// from other's cross axes, with batch axes aligned. The result's axes are [batch..., thisCross...,
// other's contracting axes in other's axis order]; the last group maps to this operand's contracting axes
// through the pairing of thisContract[i] with otherContract[i].
func operandGradient(v *Node, vBatch, vOtherCross []int, other *Node, otherBatch, otherCross, otherContract []int,
	thisRank int, thisBatch, thisCross, thisContract []int) *Node {
	grad := DotGeneral(v, vOtherCross, vBatch, other, otherCross, otherBatch)
	// Which axis of "this" does each axis of grad stand for?
	meaning := make([]int, 0, thisRank)
	meaning = append(meaning, thisBatch...)
	meaning = append(meaning, thisCross...)
	remaining := crossAxes(other.Rank(), otherCross, otherBatch) // other's contracting axes, ascending.
	for _, otherAxis := range remaining {
		meaning = append(meaning, thisContract[slices.Index(otherContract, otherAxis)])
	}
	permutation := make([]int, thisRank)
	identity := true
	for gradAxis, thisAxis := range meaning {
		permutation[thisAxis] = gradAxis
		if thisAxis != gradAxis {
			identity = false
		}
	}
	if identity {
		return grad
	}
	return TransposeAllAxes(grad, permutation...)
}

func iota(start, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = start + i
	}
	return out
}

// sliceVJP returns the gradient of a slice: v placed where the slice came from, zeros elsewhere. Unit strides
// are built with Concatenate; other strides fall back to GoMLX's stock gradient (which needs Pad).
func sliceVJP(node, v *Node) []*Node {
	p := nodeParams(node, "starts", "limits", "strides")
	starts, limits, strides := p[0], p[1], p[2]
	for _, s := range strides {
		if s > 1 {
			return stockSliceVJP(node, []*Node{v}, v.Shape())
		}
	}
	x := node.Inputs()[0]
	grad := v
	dims := slices.Clone(v.Shape().Dimensions)
	for axis := range x.Rank() {
		before, after := starts[axis], x.Shape().Dimensions[axis]-limits[axis]
		if before == 0 && after == 0 {
			continue
		}
		parts := make([]*Node, 0, 3)
		if before > 0 {
			parts = append(parts, zerosWithAxis(grad, dims, axis, before))
		}
		parts = append(parts, grad)
		if after > 0 {
			parts = append(parts, zerosWithAxis(grad, dims, axis, after))
		}
		grad = Concatenate(parts, axis)
		dims[axis] = x.Shape().Dimensions[axis]
	}
	return []*Node{grad}
}

func zerosWithAxis(like *Node, dims []int, axis, size int) *Node {
	d := slices.Clone(dims)
	d[axis] = size
	return Zeros(like.Graph(), shapes.Make(like.DType(), d...))
}
