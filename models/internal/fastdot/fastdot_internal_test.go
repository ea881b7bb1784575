package fastdot

import (
	"reflect"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/shapes"

	"github.com/mmpoison/mmpoison/models/internal/gomlxcheck"
)

// dotGeneralNodeData has the name and fields of simplego's node data, but lives in another package.
type dotGeneralNodeData struct {
	lhsContractingAxes, lhsBatchAxes                       []int
	rhsContractingAxes, rhsBatchAxes                       []int
	batchSize, lhsCrossSize, rhsCrossSize, contractingSize int
}

func TestCheckDataLayout(t *testing.T) {
	cases := []struct {
		name    string
		t       reflect.Type
		wantErr string
	}{
		{"nil", nil, "not *simplego.dotGeneralNodeData"},
		{"not a pointer", reflect.TypeFor[dotGeneralNodeData](), "not *simplego.dotGeneralNodeData"},
		{"same name, other package", reflect.TypeFor[*dotGeneralNodeData](), "not *simplego.dotGeneralNodeData"},
		{"other struct", reflect.TypeFor[*shapes.Shape](), "not *simplego.dotGeneralNodeData"},
	}
	for _, c := range cases {
		l, err := checkDataLayout(c.t)
		if err == nil || l != nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%s: checkDataLayout(%v) = %v, %v; want error %q", c.name, c.t, l, err, c.wantErr)
		}
	}
}

func TestFieldOffset(t *testing.T) {
	type s struct {
		a int
		b []int
	}
	cases := []struct {
		name    string
		want    reflect.Type
		wantOff uintptr
		wantErr string
	}{
		{"a", reflect.TypeFor[int](), 0, ""},
		{"b", reflect.TypeFor[[]int](), reflect.TypeFor[s]().Field(1).Offset, ""},
		{"b", reflect.TypeFor[int](), 0, "has type []int, not int"},
		{"c", reflect.TypeFor[int](), 0, `no field "c"`},
	}
	for _, c := range cases {
		off, err := fieldOffset(reflect.TypeFor[s](), c.name, c.want)
		if c.wantErr == "" && (err != nil || off != c.wantOff) || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("fieldOffset(s, %q, %v) = %d, %v; want %d, error %q", c.name, c.want, off, err, c.wantOff, c.wantErr)
		}
	}
}

// TestVerify checks that verify accepts the linked GoMLX (the stock executor, its version, the fields) where
// the kernel can run, and rejects a table entry that is not simplego's own DotGeneral executor.
func TestVerify(t *testing.T) {
	if !asmAvailable {
		t.Skip("no AVX2/FMA: verify refuses before looking at simplego")
	}
	defer restore(t)()
	if v := gomlxcheck.Version(); v != VerifiedGoMLXVersion {
		t.Fatalf("gomlxcheck.Version() = %q, want %q", v, VerifiedGoMLXVersion)
	}
	verify(VerifiedGoMLXVersion)
	if !verified || stock == nil {
		t.Fatalf("verify rejected the stock simplego: %s", Reason())
	}
	original := nodeExecutors[backends.OpTypeDotGeneral]
	defer func() { nodeExecutors[backends.OpTypeDotGeneral] = original }()
	nodeExecutors[backends.OpTypeDotGeneral] = execDotGeneral
	verify(VerifiedGoMLXVersion)
	if verified || !strings.Contains(Reason(), "DotGeneral executor is") {
		t.Errorf("verify accepted a foreign executor: verified=%v, reason %q", verified, Reason())
	}
}

// restore uninstalls the kernel and returns a function that puts it back as it was.
func restore(t *testing.T) func() {
	wasInstalled := Installed()
	Uninstall()
	return func() {
		if wasInstalled {
			if err := install(VerifiedGoMLXVersion, nil); err != nil || !Installed() {
				t.Errorf("reinstalling: %v (%s)", err, Reason())
			}
		}
	}
}

// TestInstallChecksVersion: with any GoMLX version but the verified one, install refuses, says why, and leaves
// simplego's own executor in its table.
func TestInstallChecksVersion(t *testing.T) {
	if !asmAvailable {
		t.Skip("no AVX2/FMA: the kernel is never installed")
	}
	defer restore(t)()
	for _, version := range []string{"v0.27.0", "v0.25.1", ""} {
		Uninstall()
		var notices []string
		err := install(version, func(msg string) { notices = append(notices, msg) })
		if err == nil || !strings.HasPrefix(err.Error(), "fastdot") || !strings.Contains(err.Error(), "is not "+VerifiedGoMLXVersion) {
			t.Errorf("install(%q) error = %v, want one naming fastdot and %s", version, err, VerifiedGoMLXVersion)
		}
		if Installed() || funcName(nodeExecutors[backends.OpTypeDotGeneral]) != stockExecutorName {
			t.Errorf("install(%q) replaced simplego's executor", version)
		}
		if len(notices) != 0 {
			t.Errorf("install(%q) sent notices %q; its error is the only report", version, notices)
		}
	}
}

// TestNodeDataFallback: node data of another type than simplego's makes every DotGeneral use the stock kernel,
// with one notice however many nodes are seen.
func TestNodeDataFallback(t *testing.T) {
	if !asmAvailable {
		t.Skip("no AVX2/FMA: the kernel is never installed")
	}
	defer restore(t)()
	var notices []string
	if err := install(VerifiedGoMLXVersion, func(msg string) { notices = append(notices, msg) }); err != nil {
		t.Fatal(err)
	}
	defer func() {
		mu.Lock()
		paramsOnce, paramsType, paramsLayout, paramsErr = sync.Once{}, nil, nil, nil
		mu.Unlock()
	}()
	mu.Lock()
	paramsOnce, paramsType, paramsLayout, paramsErr = sync.Once{}, nil, nil, nil
	mu.Unlock()
	node := &simplego.Node{}
	*field[any](unsafe.Pointer(node), nodeDataOff) = &dotGeneralNodeData{lhsContractingAxes: []int{1}}
	for range 3 {
		if _, ok := readParams(node); ok {
			t.Fatal("readParams accepted node data of a foreign type")
		}
	}
	if len(notices) != 1 || !strings.Contains(notices[0], "not *simplego.dotGeneralNodeData") {
		t.Errorf("notices = %q, want one naming the node data", notices)
	}
	if Installed() || !strings.Contains(Reason(), "dotGeneralNodeData") {
		t.Errorf("installed %v, reason %q after foreign node data", Installed(), Reason())
	}
}
