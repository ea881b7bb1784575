// Package fastdot replaces the float32 DotGeneral kernel of GoMLX v0.26.0's pure-Go backend (simplego) with a
// blocked matrix multiplication: operands are packed into panels (or read in place when their layout allows)
// and multiplied by a 6×16 AVX2/FMA micro-kernel written in Go assembly. The stock kernel is generic scalar Go
// and was most of a CLIP training step's time (BenchmarkGemm measures the kernel, BenchmarkTrainStep whole
// training steps). It is used on amd64 CPUs with AVX2 and FMA only: a portable Go micro-kernel exists for
// tests, but is no faster than the stock kernel.
//
// simplego has no public hook for kernels, so the package reaches into it: its executor table and its buffer
// pool are pulled with //go:linkname, and the fields of its Node, Buffer and DotGeneral node data are found with
// reflect. Every assumption is checked before use: the GoMLX version must be the one this was written against
// (VerifiedGoMLXVersion), the table entry must be simplego's own DotGeneral executor, and the fields must exist
// with the expected types. When any check fails the stock kernel stays in place, Reason says why and the notice
// function given to Install says so once; nothing panics. Other dtypes always run on the stock kernel.
//
// models/backend installs the kernel (Install), unless $MMPOISON_FASTDOT is "0". Results equal the stock
// kernel's within float32 rounding (the order of the sums differs) and are bit-for-bit reproducible: the order
// of the sums depends only on the shapes, never on the parallel split.
//
// The package is meant to be deleted when GoMLX is upgraded: newer releases have faster matmuls of their own.
package fastdot

import (
	"fmt"
	"os"
	"reflect"
	"runtime"
	"sync"
	"unsafe"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"

	"github.com/mmpoison/mmpoison/models/internal/gomlxcheck"
)

// EnvVar is the environment variable that disables the package when set to "0".
const EnvVar = "MMPOISON_FASTDOT"

// VerifiedGoMLXVersion is the GoMLX release whose internals the package was written and tested against. With
// any other version the stock kernel is kept.
const VerifiedGoMLXVersion = "v0.26.0"

// executorFn has the layout of simplego's unexported nodeExecutor type.
type executorFn = func(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer,
	inputsOwned []bool) (*simplego.Buffer, error)

// nodeExecutors is simplego's table of op executors, indexed by backends.OpType.
//
//go:linkname nodeExecutors github.com/gomlx/gomlx/backends/simplego.nodeExecutors
var nodeExecutors [backends.OpTypeLast]executorFn

// getBufferForShape is simplego's (*Backend).getBufferForShape: a buffer of the shape from the backend's pool.
//
//go:linkname getBufferForShape github.com/gomlx/gomlx/backends/simplego.(*Backend).getBufferForShape
func getBufferForShape(b *simplego.Backend, shape shapes.Shape) *simplego.Buffer

const stockExecutorName = "github.com/gomlx/gomlx/backends/simplego.execDotGeneral"

var (
	mu        sync.Mutex
	stock     executorFn // simplego's DotGeneral executor, set by verify.
	verified  bool       // verify passed: Install may replace the executor.
	installed bool
	reason    string       // why the kernel is not installed ("" when it is).
	notice    func(string) // set by Install; receives one line if the node data turns out to differ.

	// Offsets of simplego's unexported fields, found by verify.
	nodeShapeOff, nodeDataOff, bufShapeOff, bufFlatOff uintptr

	// params describes the DotGeneral node data, checked on its first use (its type is unexported, so no
	// value of it exists before a graph is built).
	paramsOnce   sync.Once
	paramsType   reflect.Type
	paramsLayout *dataLayout
	paramsErr    error
)

// verify checks everything that can be checked without a graph, for the given GoMLX version, and records the
// result in verified/reason.
func verify(version string) {
	mu.Lock()
	defer mu.Unlock()
	verified = false
	fail := func(format string, args ...any) { reason = fmt.Sprintf(format, args...) }
	if !asmAvailable {
		// The portable micro-kernel is no faster than simplego's own.
		fail("no assembly micro-kernel for this CPU (%s without AVX2 and FMA)", runtime.GOARCH)
		return
	}
	current := nodeExecutors[backends.OpTypeDotGeneral]
	if current == nil {
		fail("simplego has no DotGeneral executor in its table")
		return
	}
	if name := funcName(current); name != stockExecutorName {
		fail("simplego's DotGeneral executor is %q, not %q", name, stockExecutorName)
		return
	}
	if err := gomlxcheck.CheckVersion(version, VerifiedGoMLXVersion); err != nil {
		fail("%v", err)
		return
	}
	var err error
	nodeT, bufT := reflect.TypeFor[simplego.Node](), reflect.TypeFor[simplego.Buffer]()
	shapeT, anyT := reflect.TypeFor[shapes.Shape](), reflect.TypeFor[any]()
	for _, f := range []struct {
		t    reflect.Type
		name string
		want reflect.Type
		off  *uintptr
	}{
		{nodeT, "shape", shapeT, &nodeShapeOff},
		{nodeT, "data", anyT, &nodeDataOff},
		{bufT, "shape", shapeT, &bufShapeOff},
		{bufT, "flat", anyT, &bufFlatOff},
	} {
		if *f.off, err = fieldOffset(f.t, f.name, f.want); err != nil {
			fail("%v", err)
			return
		}
	}
	stock = current
	verified = true
}

func funcName(fn executorFn) string {
	f := runtime.FuncForPC(reflect.ValueOf(fn).Pointer())
	if f == nil {
		return ""
	}
	return f.Name()
}

// fieldOffset returns the offset of struct t's field name, which must have type want.
func fieldOffset(t reflect.Type, name string, want reflect.Type) (uintptr, error) {
	f, err := gomlxcheck.Field(t, name, want)
	return f.Offset, err
}

// Install makes simplego run float32 DotGeneral on this package's kernel. It returns an error, and keeps the
// stock kernel, when GoMLX differs from what the package was verified against (see the package
// documentation); it returns nil without installing where the kernel does not apply (no AVX2 and FMA, or
// $MMPOISON_FASTDOT=0; Reason says which). notice, when not nil, receives one line if the first DotGeneral
// executed shows node data that differ (every DotGeneral then runs on the stock kernel). Install is
// idempotent; call it before any graph executes: simplego reads its executor table without locks.
func Install(notice func(msg string)) error { return install(gomlxcheck.Version(), notice) }

// install is Install with the GoMLX version given (tests pass others).
func install(version string, notify func(string)) error {
	if os.Getenv(EnvVar) == "0" {
		mu.Lock()
		defer mu.Unlock()
		if !installed {
			reason = fmt.Sprintf("disabled by $%s=0", EnvVar)
		}
		return nil
	}
	mu.Lock()
	done := installed
	mu.Unlock()
	if done {
		return nil
	}
	verify(version)
	mu.Lock()
	defer mu.Unlock()
	if !verified {
		if !asmAvailable {
			return nil
		}
		return fmt.Errorf("fastdot (pure-Go DotGeneral kernel): %s", reason)
	}
	nodeExecutors[backends.OpTypeDotGeneral] = execDotGeneral
	installed, reason, notice = true, "", notify
	return nil
}

// Uninstall restores simplego's stock DotGeneral executor (tests use it to compare both). Like Install, it
// must not race with executing graphs.
func Uninstall() {
	mu.Lock()
	defer mu.Unlock()
	if !installed {
		return
	}
	nodeExecutors[backends.OpTypeDotGeneral] = stock
	installed, reason = false, "uninstalled"
}

// Installed reports whether the package's kernel is simplego's DotGeneral executor and has not found simplego's
// node data different from what it expects (then every DotGeneral runs on the stock kernel; see Reason).
func Installed() bool {
	mu.Lock()
	defer mu.Unlock()
	return installed && paramsErr == nil
}

// Reason says why the kernel is not installed, or why it stopped being used; "" while it is in use.
func Reason() string {
	mu.Lock()
	defer mu.Unlock()
	if installed && paramsErr != nil {
		return paramsErr.Error()
	}
	return reason
}

// dataLayout holds the offsets of the fields of simplego's dotGeneralNodeData.
type dataLayout struct {
	lhsContracting, lhsBatch, rhsContracting, rhsBatch uintptr
	batchSize, lhsCross, rhsCross, contracting         uintptr
}

// checkDataLayout verifies that t is a pointer to simplego's dotGeneralNodeData with the expected fields.
func checkDataLayout(t reflect.Type) (*dataLayout, error) {
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct ||
		t.Elem().Name() != "dotGeneralNodeData" || t.Elem().PkgPath() != reflect.TypeFor[simplego.Node]().PkgPath() {
		return nil, fmt.Errorf("simplego's DotGeneral node data is %v, not *simplego.dotGeneralNodeData", t)
	}
	s := t.Elem()
	intsT, intT := reflect.TypeFor[[]int](), reflect.TypeFor[int]()
	l := &dataLayout{}
	for _, f := range []struct {
		name string
		want reflect.Type
		off  *uintptr
	}{
		{"lhsContractingAxes", intsT, &l.lhsContracting}, {"lhsBatchAxes", intsT, &l.lhsBatch},
		{"rhsContractingAxes", intsT, &l.rhsContracting}, {"rhsBatchAxes", intsT, &l.rhsBatch},
		{"batchSize", intT, &l.batchSize}, {"lhsCrossSize", intT, &l.lhsCross},
		{"rhsCrossSize", intT, &l.rhsCross}, {"contractingSize", intT, &l.contracting},
	} {
		var err error
		if *f.off, err = fieldOffset(s, f.name, f.want); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// dotParams is the part of simplego's DotGeneral node data the kernel needs.
type dotParams struct {
	lhsContracting, lhsBatch, rhsContracting, rhsBatch []int
	batch, lhsCross, rhsCross, contracting             int
}

func field[T any](base unsafe.Pointer, off uintptr) *T { return (*T)(unsafe.Add(base, off)) }

// readParams extracts the DotGeneral parameters of node; ok is false when the node data does not look as
// verified (then the stock kernel runs).
func readParams(node *simplego.Node) (p dotParams, ok bool) {
	data := *field[any](unsafe.Pointer(node), nodeDataOff)
	dataType := reflect.TypeOf(data)
	paramsOnce.Do(func() {
		l, err := checkDataLayout(dataType)
		mu.Lock()
		paramsType, paramsLayout, paramsErr = dataType, l, err
		notify := notice
		mu.Unlock()
		if err != nil && notify != nil {
			notify(fmt.Sprintf("fastdot: %v: float32 DotGeneral runs on simplego's stock kernel", err))
		}
	})
	l := paramsLayout
	if l == nil || dataType != paramsType {
		return p, false
	}
	base := reflect.ValueOf(data).UnsafePointer()
	if base == nil {
		return p, false
	}
	p = dotParams{
		lhsContracting: *field[[]int](base, l.lhsContracting), lhsBatch: *field[[]int](base, l.lhsBatch),
		rhsContracting: *field[[]int](base, l.rhsContracting), rhsBatch: *field[[]int](base, l.rhsBatch),
		batch: *field[int](base, l.batchSize), lhsCross: *field[int](base, l.lhsCross),
		rhsCross: *field[int](base, l.rhsCross), contracting: *field[int](base, l.contracting),
	}
	return p, true
}

// execDotGeneral is the replacement executor: float32 on the blocked kernel, anything else on the stock one.
func execDotGeneral(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer,
	inputsOwned []bool) (*simplego.Buffer, error) {
	if len(inputs) != 2 {
		return stock(backend, node, inputs, inputsOwned)
	}
	outShape := *field[shapes.Shape](unsafe.Pointer(node), nodeShapeOff)
	lhsShape := *field[shapes.Shape](unsafe.Pointer(inputs[0]), bufShapeOff)
	rhsShape := *field[shapes.Shape](unsafe.Pointer(inputs[1]), bufShapeOff)
	if outShape.DType != dtypes.Float32 || lhsShape.DType != dtypes.Float32 || rhsShape.DType != dtypes.Float32 {
		return stock(backend, node, inputs, inputsOwned)
	}
	p, ok := readParams(node)
	if !ok {
		return stock(backend, node, inputs, inputsOwned)
	}
	lhsFlat, ok1 := (*field[any](unsafe.Pointer(inputs[0]), bufFlatOff)).([]float32)
	rhsFlat, ok2 := (*field[any](unsafe.Pointer(inputs[1]), bufFlatOff)).([]float32)
	lhsOp, err1 := newOperand(lhsShape.Dimensions, p.lhsBatch, p.lhsContracting, len(lhsFlat))
	rhsOp, err2 := newOperand(rhsShape.Dimensions, p.rhsBatch, p.rhsContracting, len(rhsFlat))
	if !ok1 || !ok2 || err1 != nil || err2 != nil || outShape.Rank() != 3 ||
		lhsOp.batch != p.batch || rhsOp.batch != p.batch || lhsOp.cross != p.lhsCross || rhsOp.cross != p.rhsCross ||
		lhsOp.contract != p.contracting || rhsOp.contract != p.contracting ||
		outShape.Dimensions[0] != p.batch || outShape.Dimensions[1] != p.lhsCross || outShape.Dimensions[2] != p.rhsCross {
		return stock(backend, node, inputs, inputsOwned)
	}
	out := getBufferForShape(backend, outShape)
	if out == nil {
		return nil, fmt.Errorf("fastdot: DotGeneral %s x %s: the backend is finalized", lhsShape, rhsShape)
	}
	outFlat, ok := (*field[any](unsafe.Pointer(out), bufFlatOff)).([]float32)
	if !ok || len(outFlat) != p.batch*p.lhsCross*p.rhsCross {
		return nil, fmt.Errorf("fastdot: DotGeneral %s x %s: output buffer for %s is not a []float32 of its size",
			lhsShape, rhsShape, outShape)
	}
	gemm(lhsFlat, rhsFlat, outFlat, &lhsOp, &rhsOp)
	return out, nil
}
