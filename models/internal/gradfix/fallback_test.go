package gradfix

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

func funcPointer(f VJP) uintptr { return reflect.ValueOf(f).Pointer() }

// TestInstallChecksVersion: with any GoMLX version but the verified one, install refuses, says why, and leaves
// GoMLX's own gradients registered.
func TestInstallChecksVersion(t *testing.T) {
	Uninstall()
	defer mustInstall(t)
	stockDot, stockSlice := funcPointer(VJPRegistration[NodeTypeDotGeneral]), funcPointer(VJPRegistration[NodeTypeSlice])
	cases := []struct {
		version string
		wantErr string
	}{
		{VerifiedGoMLXVersion, ""},
		{"v0.27.0", "GoMLX v0.27.0 is not " + VerifiedGoMLXVersion},
		{"v0.26.1-0.20250101000000-abcdef123456", "is not " + VerifiedGoMLXVersion},
		{"", "GoMLX of unknown version is not " + VerifiedGoMLXVersion},
	}
	for _, c := range cases {
		t.Run(c.version, func(t *testing.T) {
			Uninstall()
			var notices []string
			err := install(c.version, func(msg string) { notices = append(notices, msg) })
			if c.wantErr == "" {
				if err != nil || !Installed() || funcPointer(VJPRegistration[NodeTypeDotGeneral]) == stockDot {
					t.Fatalf("install(%q) = %v, installed %v: want the fixed gradients", c.version, err, Installed())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) || !strings.HasPrefix(err.Error(), "gradfix") {
				t.Errorf("install(%q) error = %v, want one starting with gradfix and containing %q", c.version, err, c.wantErr)
			}
			if Installed() || !strings.Contains(Reason(), c.wantErr) {
				t.Errorf("after install(%q): installed %v, reason %q", c.version, Installed(), Reason())
			}
			if funcPointer(VJPRegistration[NodeTypeDotGeneral]) != stockDot || funcPointer(VJPRegistration[NodeTypeSlice]) != stockSlice {
				t.Error("a refused install replaced GoMLX's gradients")
			}
			if len(notices) != 0 {
				t.Errorf("install sent notices %q; its error is the only report", notices)
			}
		})
	}
}

// TestFallbackNotice: when a node's parameters cannot be read, every such gradient is GoMLX's own (the values
// match the stock gradients exactly) and one line says so, however many nodes fell back.
func TestFallbackNotice(t *testing.T) {
	Uninstall()
	var notices []string
	if err := install(VerifiedGoMLXVersion, func(msg string) { notices = append(notices, msg) }); err != nil {
		t.Fatal(err)
	}
	defer func() {
		readParams = nodeParams
		Uninstall()
		mustInstall(t)
	}()
	readParams = func(*Node, ...string) ([][]int, error) { return nil, errors.New("fake layout") }
	build := func(l, r *Node) []*Node {
		a := DotGeneral(l, []int{1}, nil, r, []int{0}, nil) // [3, 5]
		b := DotGeneral(a, []int{1}, nil, r, []int{1}, nil) // [3, 4]
		return Gradient(ReduceAllSum(Mul(b, b)), l, r)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	lhs, rhs := randomTensor(rng, 3, 4), randomTensor(rng, 4, 5)
	run := func() [][]float32 {
		outs, err := MustNewExec(testBackend(t), build).Exec(lhs, rhs)
		if err != nil {
			t.Fatal(err)
		}
		res := make([][]float32, len(outs))
		for i, o := range outs {
			res[i] = tensors.MustCopyFlatData[float32](o)
		}
		return res
	}
	fellBack := run()
	if len(notices) != 1 || !strings.Contains(notices[0], "fake layout") || strings.Contains(notices[0], "\n") {
		t.Errorf("notices = %q, want exactly one line naming the cause", notices)
	}
	if Installed() || !strings.Contains(Reason(), "fake layout") {
		t.Errorf("after the fallback: installed %v, reason %q", Installed(), Reason())
	}
	readParams = nodeParams
	Uninstall()
	stock := run()
	for i := range stock {
		for j := range stock[i] {
			if fellBack[i][j] != stock[i][j] {
				t.Fatalf("operand %d element %d: %v after the fallback, %v with GoMLX's gradient", i, j, fellBack[i][j], stock[i][j])
			}
		}
	}
}

// TestIntFields reads node parameters from structs shaped like GoMLX's and refuses others.
func TestIntFields(t *testing.T) {
	type sliceInputs struct {
		x              *Node
		starts, limits []int
		strides        []int32
	}
	st := reflect.ValueOf(&sliceInputs{starts: []int{1, 2}, limits: []int{3, 4}, strides: []int32{1, 1}}).Elem()
	cases := []struct {
		fields  []string
		want    [][]int
		wantErr string
	}{
		{[]string{"starts", "limits"}, [][]int{{1, 2}, {3, 4}}, ""},
		{[]string{"starts", "strides"}, nil, "strides has type []int32, not []int"},
		{[]string{"lhsBatchAxes"}, nil, `no field "lhsBatchAxes"`},
	}
	for _, c := range cases {
		got, err := intFields(st, c.fields...)
		if c.wantErr == "" && (err != nil || !reflect.DeepEqual(got, c.want)) ||
			c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("intFields(%v) = %v, %v; want %v, error %q", c.fields, got, err, c.want, c.wantErr)
		}
	}
}

// TestNodeParams reads the axes of real DotGeneral and Slice nodes.
func TestNodeParams(t *testing.T) {
	mustInstall(t)
	g := NewGraph(testBackend(t), "params")
	defer g.Finalize()
	x := Parameter(g, "x", shapes.Make(dtypes.Float32, 2, 3, 4))
	dot := DotGeneral(x, []int{2}, []int{0}, x, []int{2}, []int{0})
	slice := Slice(x, AxisRange(), AxisRange(1, 3), AxisRange(0, 4).Stride(2))
	for _, c := range []struct {
		node   *Node
		fields []string
		want   [][]int
	}{
		{dot, []string{"lhsContractingAxes", "lhsBatchAxes", "rhsContractingAxes", "rhsBatchAxes"}, [][]int{{2}, {0}, {2}, {0}}},
		{slice, []string{"starts", "limits", "strides"}, [][]int{{0, 1, 0}, {2, 3, 4}, {1, 1, 2}}},
	} {
		got, err := nodeParams(c.node, c.fields...)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: nodeParams = %v, %v; want %v", c.node.Type(), got, err, c.want)
		}
	}
	if _, err := nodeParams(x, "starts"); err == nil {
		t.Error("nodeParams read slice parameters from a Parameter node")
	}
}
