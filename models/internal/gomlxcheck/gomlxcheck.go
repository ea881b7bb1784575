// Package gomlxcheck holds the checks that the GoMLX patches of models/internal (gradfix and fastdot) run before
// they touch GoMLX's internals: which GoMLX release the program links, and whether a struct still has a field
// of the expected type. A patch that finds anything different keeps GoMLX's stock behaviour.
package gomlxcheck

import (
	"fmt"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/graph"
)

// Module is GoMLX's module path.
const Module = "github.com/gomlx/gomlx"

// Version returns the version of the GoMLX module linked into the program: the one in the build information,
// else (test binaries carry no dependency list) the one in the source path of a GoMLX function, which the
// module cache and -trimpath builds name "gomlx@<version>/"; "" when neither tells. A replaced module (a
// `replace` directive) has no version here.
func Version() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == Module {
				if dep.Replace != nil {
					return ""
				}
				return dep.Version
			}
		}
	}
	return versionFromPath(sourceFile(graph.NewGraph))
}

// sourceFile returns the source file of function fn, or "".
func sourceFile(fn any) string {
	f := runtime.FuncForPC(reflect.ValueOf(fn).Pointer())
	if f == nil {
		return ""
	}
	file, _ := f.FileLine(f.Entry())
	return file
}

// versionFromPath returns the version in a source path ".../github.com/gomlx/gomlx@<version>/...", or "".
func versionFromPath(file string) string {
	p := filepath.ToSlash(file)
	i := strings.Index(p, Module+"@")
	if i < 0 || (i > 0 && p[i-1] != '/') {
		return ""
	}
	version, _, ok := strings.Cut(p[i+len(Module)+1:], "/")
	if !ok {
		return ""
	}
	return version
}

// CheckVersion returns nil when version is verified, else an error naming both.
func CheckVersion(version, verified string) error {
	if version == verified {
		return nil
	}
	if version == "" {
		version = "of unknown version"
	}
	return fmt.Errorf("GoMLX %s is not %s, the release it was verified against", version, verified)
}

// Field returns the field name of struct type t, which must be a direct field of type want.
func Field(t reflect.Type, name string, want reflect.Type) (reflect.StructField, error) {
	if t == nil || t.Kind() != reflect.Struct {
		return reflect.StructField{}, fmt.Errorf("%v is not a struct", t)
	}
	f, ok := t.FieldByName(name)
	if !ok || len(f.Index) != 1 {
		return reflect.StructField{}, fmt.Errorf("%s has no field %q", t, name)
	}
	if f.Type != want {
		return reflect.StructField{}, fmt.Errorf("%s.%s has type %s, not %s", t, name, f.Type, want)
	}
	return f, nil
}
