package fastdot

import "fmt"

// operand describes where the elements of one DotGeneral operand lie in its row-major flat data, seen as the
// normalized [batch, cross, contract] array simplego's DotGeneral works on: element (b, i, k) is at
// batchOff[b] + crossOff[i] + kOff[k]. Batch and contracting axes are flattened in the order the node lists
// them (which pairs them with the other operand's), cross axes in increasing axis order (the order of the
// output's axes).
type operand struct {
	batch, cross, contract   int
	batchOff, crossOff, kOff []int
	crossStride, kStride     int // the common step of crossOff / kOff, or -1 when they have none.
}

// newOperand builds the offset tables of an operand with the given dimensions and axes; flatLen is the length
// of its flat data, checked against the dimensions.
func newOperand(dims, batchAxes, contractAxes []int, flatLen int) (operand, error) {
	rank := len(dims)
	kind := make([]byte, rank) // 0: cross, 1: contracting, 2: batch.
	strides := make([]int, rank)
	size := 1
	for axis := rank - 1; axis >= 0; axis-- {
		if dims[axis] <= 0 {
			return operand{}, fmt.Errorf("fastdot: operand dimensions %v: axis %d is not positive", dims, axis)
		}
		strides[axis] = size
		size *= dims[axis]
	}
	if size != flatLen {
		return operand{}, fmt.Errorf("fastdot: operand dimensions %v have %d elements, its data %d", dims, size, flatLen)
	}
	for _, list := range []struct {
		axes []int
		k    byte
	}{{contractAxes, 1}, {batchAxes, 2}} {
		for _, axis := range list.axes {
			if axis < 0 || axis >= rank || kind[axis] != 0 {
				return operand{}, fmt.Errorf("fastdot: operand dimensions %v: bad or repeated axis %d in %v",
					dims, axis, list.axes)
			}
			kind[axis] = list.k
		}
	}
	var crossAxes []int
	for axis, k := range kind {
		if k == 0 {
			crossAxes = append(crossAxes, axis)
		}
	}
	var op operand
	op.batchOff = offsets(dims, strides, batchAxes)
	op.crossOff = offsets(dims, strides, crossAxes)
	op.kOff = offsets(dims, strides, contractAxes)
	op.batch, op.cross, op.contract = len(op.batchOff), len(op.crossOff), len(op.kOff)
	op.crossStride, op.kStride = commonStep(op.crossOff), commonStep(op.kOff)
	return op, nil
}

// offsets lists, in row-major order over axes, the flat offset of every combination of their indices.
func offsets(dims, strides, axes []int) []int {
	n := 1
	for _, axis := range axes {
		n *= dims[axis]
	}
	out := make([]int, n)
	idx := make([]int, len(axes))
	off := 0
	for i := range out {
		out[i] = off
		for j := len(axes) - 1; j >= 0; j-- {
			axis := axes[j]
			idx[j]++
			off += strides[axis]
			if idx[j] < dims[axis] {
				break
			}
			off -= strides[axis] * dims[axis]
			idx[j] = 0
		}
	}
	return out
}

// commonStep returns s when offs[i] == i*s for every i, else -1.
func commonStep(offs []int) int {
	if len(offs) < 2 {
		return 1
	}
	s := offs[1] - offs[0]
	for i, o := range offs {
		if o != i*s {
			return -1
		}
	}
	return s
}
