package fastdot

import (
	"reflect"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/shapes"
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
	wasInstalled := Installed()
	Uninstall()
	defer func() {
		verify()
		if wasInstalled {
			Install()
		}
	}()
	verify()
	if !verified || stock == nil {
		t.Fatalf("verify rejected the stock simplego: %s", Reason())
	}
	if v := gomlxVersion(stock); v != VerifiedGoMLXVersion {
		t.Errorf("gomlxVersion = %q, want %q", v, VerifiedGoMLXVersion)
	}
	original := nodeExecutors[backends.OpTypeDotGeneral]
	defer func() { nodeExecutors[backends.OpTypeDotGeneral] = original }()
	nodeExecutors[backends.OpTypeDotGeneral] = execDotGeneral
	verify()
	if verified || !strings.Contains(Reason(), "DotGeneral executor is") {
		t.Errorf("verify accepted a foreign executor: verified=%v, reason %q", verified, Reason())
	}
}
