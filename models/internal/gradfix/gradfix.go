// Package gradfix replaces two reverse-mode gradients of GoMLX v0.26.0 that make CLIP training slow or impossible
// on the pure-Go backend:
//
//   - DotGeneral: v0.26.0 computes the gradient as a broadcast multiply plus a reduction, which materialises a
//     [batch, M, N, K] tensor. Here each operand's gradient is one DotGeneral followed by a transpose, as newer
//     GoMLX releases do.
//   - Slice: v0.26.0 pads the incoming gradient with Pad, which the pure-Go backend does not implement. Here the
//     gradient of a unit-stride slice is built by concatenating zero blocks, which every backend implements.
//
// models/backend installs the package (Install registers both gradients in graph.VJPRegistration). The fixed
// gradients read the axes of DotGeneral and Slice nodes from an unexported field of graph.Node, so Install first
// checks that GoMLX is VerifiedGoMLXVersion and that the field exists with its type; each gradient then checks
// the node's parameters before reading them. When any check fails, GoMLX's stock gradients are used and the
// notice function given to Install says so once; nothing panics.
//
// The package is meant to be deleted when GoMLX is upgraded to a release with these fixes.
package gradfix

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX graph-building style.
	"github.com/gomlx/gomlx/pkg/core/shapes"

	"github.com/mmpoison/mmpoison/models/internal/gomlxcheck"
)

// VerifiedGoMLXVersion is the GoMLX release whose internals the package was written and tested against. With
// any other version the stock gradients are kept.
const VerifiedGoMLXVersion = "v0.26.0"

var (
	mu                 sync.Mutex
	stockDotGeneralVJP VJP
	stockSliceVJP      VJP
	installed          bool
	reason             string       // why the fixed gradients are not (or no longer all) in use; "" while they are.
	notice             func(string) // set by Install; receives one line on the first fallback after it.
	noticed            bool
	inputsIndex        []int // index of graph.Node's "inputs" field, found by install.

	// readParams reads a node's parameters; tests replace it to exercise the fallback.
	readParams = nodeParams
)

// Install replaces the DotGeneral and Slice gradients with the fixed ones. It returns an error, and keeps GoMLX's
// stock gradients, when GoMLX is not VerifiedGoMLXVersion or its Node type differs from what the package reads.
// notice, when not nil, receives one line if a graph built later has nodes whose parameters differ (their
// gradients are then GoMLX's). Install is idempotent and safe for concurrent use; graphs built before the call
// keep the gradients they were built with.
func Install(notice func(msg string)) error { return install(gomlxcheck.Version(), notice) }

// install is Install with the GoMLX version given (tests pass others).
func install(version string, notify func(string)) error {
	mu.Lock()
	defer mu.Unlock()
	if installed {
		return nil
	}
	if err := check(version); err != nil {
		reason = err.Error()
		return fmt.Errorf("gradfix (DotGeneral and Slice gradients): %w", err)
	}
	stockDotGeneralVJP = VJPRegistration[NodeTypeDotGeneral]
	stockSliceVJP = VJPRegistration[NodeTypeSlice]
	VJPRegistration[NodeTypeDotGeneral] = singleOutput(dotGeneralVJP)
	VJPRegistration[NodeTypeSlice] = singleOutput(sliceVJP)
	installed, reason, notice, noticed = true, "", notify, false
	return nil
}

// check verifies the version and graph.Node's "inputs" field, recording the field's index.
func check(version string) error {
	if err := gomlxcheck.CheckVersion(version, VerifiedGoMLXVersion); err != nil {
		return err
	}
	f, err := gomlxcheck.Field(reflect.TypeFor[Node](), "inputs", reflect.TypeFor[NodeInputs]())
	if err != nil {
		return err
	}
	inputsIndex = f.Index
	return nil
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
	installed, reason = false, "uninstalled"
}

// Installed reports whether the fixed gradients are registered and no node has made them fall back.
func Installed() bool {
	mu.Lock()
	defer mu.Unlock()
	return installed && reason == ""
}

// Reason says why the fixed gradients are not in use, or why one fell back; "" while they are in use.
func Reason() string {
	mu.Lock()
	defer mu.Unlock()
	return reason
}

func singleOutput(fn func(node, v *Node) []*Node) VJP {
	return func(node *Node, vjpOutputs []*Node, _ shapes.Shape) []*Node { return fn(node, vjpOutputs[0]) }
}

// fallBack records err, sends the one notice, and returns the stock gradient of node.
func fallBack(stock VJP, node, v *Node, err error) []*Node {
	mu.Lock()
	if reason == "" {
		reason = err.Error()
	}
	send := notice != nil && !noticed
	noticed = true
	notify := notice
	mu.Unlock()
	if send {
		notify(fmt.Sprintf("gradfix: %v: using GoMLX's stock gradients for such nodes", err))
	}
	return stock(node, []*Node{v}, v.Shape())
}

var intsType = reflect.TypeFor[[]int]()

// nodeParams reads the static parameters GoMLX keeps in the node's unexported "inputs" field (a pointer to a
// struct per op type): the named []int fields. Reflection only reads; nothing is modified.
func nodeParams(node *Node, fields ...string) ([][]int, error) {
	if inputsIndex == nil {
		return nil, errors.New("GoMLX's Node was not checked")
	}
	inputs := reflect.ValueOf(node).Elem().FieldByIndex(inputsIndex)
	if inputs.IsNil() || inputs.Elem().Kind() != reflect.Pointer || inputs.Elem().Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("GoMLX's %s node parameters are not a pointer to a struct", node.Type())
	}
	return intFields(inputs.Elem().Elem(), fields...)
}

// intFields returns the named []int fields of struct value st.
func intFields(st reflect.Value, fields ...string) ([][]int, error) {
	out := make([][]int, len(fields))
	for i, name := range fields {
		f, err := gomlxcheck.Field(st.Type(), name, intsType)
		if err != nil {
			return nil, fmt.Errorf("GoMLX's node parameters changed: %w", err)
		}
		v := st.FieldByIndex(f.Index)
		out[i] = make([]int, v.Len())
		for j := range out[i] {
			out[i][j] = int(v.Index(j).Int())
		}
	}
	return out, nil
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
	p, err := readParams(node, "lhsContractingAxes", "lhsBatchAxes", "rhsContractingAxes", "rhsBatchAxes")
	if err != nil {
		return fallBack(stockDotGeneralVJP, node, v, err)
	}
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
	p, err := readParams(node, "starts", "limits", "strides")
	if err != nil {
		return fallBack(stockSliceVJP, node, v, err)
	}
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
