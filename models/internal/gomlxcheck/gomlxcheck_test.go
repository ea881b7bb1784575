package gomlxcheck

import (
	"reflect"
	"strings"
	"testing"
)

func TestVersionFromPath(t *testing.T) {
	cases := []struct{ file, want string }{
		{"/root/go/pkg/mod/github.com/gomlx/gomlx@v0.26.0/pkg/core/graph/graph.go", "v0.26.0"},
		{"github.com/gomlx/gomlx@v0.27.1/pkg/core/graph/graph.go", "v0.27.1"}, // -trimpath
		{"/src/vendor/github.com/gomlx/gomlx/pkg/core/graph/graph.go", ""},
		{"/home/me/gomlx/pkg/core/graph/graph.go", ""}, // a replace directive to a local copy
		{"/x/notgithub.com/gomlx/gomlx@v0.26.0/graph.go", ""},
		{"", ""},
	}
	for _, c := range cases {
		if got := versionFromPath(c.file); got != c.want {
			t.Errorf("versionFromPath(%q) = %q, want %q", c.file, got, c.want)
		}
	}
}

// TestVersion: the test binary links the GoMLX of go.mod (read from the source path: test binaries have no
// dependency list).
func TestVersion(t *testing.T) {
	if v := Version(); !strings.HasPrefix(v, "v0.") {
		t.Errorf("Version() = %q, want GoMLX's v0.x release", v)
	}
}

func TestCheckVersion(t *testing.T) {
	cases := []struct{ version, wantErr string }{
		{"v0.26.0", ""},
		{"v0.26.1", "GoMLX v0.26.1 is not v0.26.0"},
		{"", "GoMLX of unknown version is not v0.26.0"},
	}
	for _, c := range cases {
		err := CheckVersion(c.version, "v0.26.0")
		if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("CheckVersion(%q) = %v, want error %q", c.version, err, c.wantErr)
		}
	}
}

func TestField(t *testing.T) {
	type inner struct{ a int }
	type s struct {
		inner
		b []int
		c any
	}
	cases := []struct {
		t       reflect.Type
		name    string
		want    reflect.Type
		wantErr string
	}{
		{reflect.TypeFor[s](), "b", reflect.TypeFor[[]int](), ""},
		{reflect.TypeFor[s](), "c", reflect.TypeFor[any](), ""},
		{reflect.TypeFor[s](), "b", reflect.TypeFor[[]int32](), "has type []int, not []int32"},
		{reflect.TypeFor[s](), "d", reflect.TypeFor[int](), `no field "d"`},
		{reflect.TypeFor[s](), "a", reflect.TypeFor[int](), `no field "a"`}, // promoted, not direct
		{reflect.TypeFor[*s](), "b", reflect.TypeFor[[]int](), "is not a struct"},
		{nil, "b", reflect.TypeFor[[]int](), "is not a struct"},
	}
	for _, c := range cases {
		f, err := Field(c.t, c.name, c.want)
		if c.wantErr == "" && (err != nil || f.Name != c.name) || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("Field(%v, %q, %v) = %v, %v; want error %q", c.t, c.name, c.want, f.Name, err, c.wantErr)
		}
	}
}
