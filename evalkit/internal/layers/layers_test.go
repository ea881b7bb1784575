package layers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/testskip"
)

const module = "github.com/mmpoison/mmpoison"

// Layers, lowest first; display is kernelext, which stands apart.
const (
	display = iota
	data
	poison
	train
	evaluate
	show
)

var layerNames = []string{"display", "data", "poison", "train", "evaluate", "show"}

// layerOf returns the layer of a package path relative to the module; ok is false for a path the table does
// not cover.
func layerOf(rel string) (layer int, ok bool) {
	under := func(prefixes ...string) bool {
		return slices.ContainsFunc(prefixes, func(p string) bool { return rel == p || strings.HasPrefix(rel, p+"/") })
	}
	switch {
	case under("kernelext"):
		return display, true
	case under("poisoning/attack", "poisoning/defense"):
		return poison, true
	case under("poisoning"):
		return data, true
	case under("models"):
		return train, true
	case under("evalkit/plots", "evalkit/report", "evalkit/cmd"):
		return show, true
	case under("evalkit"):
		return evaluate, true
	}
	return 0, false
}

// mayImport says whether a package of layer from may import one of layer to.
func mayImport(from, to int) bool {
	switch {
	case from == display:
		return false
	case to == display:
		return from >= train
	}
	return to <= from
}

// testMayImport says whether the tests of a package of layer from may import one of layer to.
func testMayImport(from, to int) bool {
	switch from {
	case display:
		return false
	case data, poison, train:
		return to < evaluate
	}
	return true
}

// pkg is what `go list -json` says about one package.
type pkg struct {
	ImportPath                         string
	Imports, TestImports, XTestImports []string
}

// violations lists every import that breaks the layer rules, one line each.
func violations(pkgs []pkg) []string {
	var out []string
	for _, p := range pkgs {
		rel, _ := strings.CutPrefix(p.ImportPath, module+"/")
		from, ok := layerOf(rel)
		if !ok {
			out = append(out, fmt.Sprintf("%s has no layer: add it to the design's layer table and to this test", rel))
			continue
		}
		check := func(imports []string, kind string, allowed func(from, to int) bool) {
			for _, imp := range imports {
				irel, project := strings.CutPrefix(imp, module+"/")
				if !project || irel == rel {
					continue
				}
				to, ok := layerOf(irel)
				if !ok || !allowed(from, to) {
					out = append(out, fmt.Sprintf("%s (%s) %s %s (%s)", rel, layerNames[from], kind, irel, layerName(to, ok)))
				}
			}
		}
		check(p.Imports, "imports", mayImport)
		check(append(slices.Clone(p.TestImports), p.XTestImports...), "has tests that import", testMayImport)
	}
	return out
}

func layerName(layer int, ok bool) string {
	if !ok {
		return "no layer"
	}
	return layerNames[layer]
}

// TestImportLayers runs `go list` on the module and fails on every import that breaks the layer rules.
func TestImportLayers(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		testskip.Skip(t, "the import-layer check needs the go command on PATH (it runs `go list -json`)")
	}
	cmd := exec.Command(goCmd, "list", "-json", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages of %s, want the whole module", len(pkgs), module)
	}
	for _, v := range violations(pkgs) {
		t.Error(v)
	}
}

// TestViolations: the rules catch each kind of backward import and accept the allowed ones.
func TestViolations(t *testing.T) {
	m := func(rel string) string { return module + "/" + rel }
	tests := []struct {
		name string
		p    pkg
		want []string
	}{
		{"display imports a project package",
			pkg{ImportPath: m("kernelext"), Imports: []string{"fmt", m("poisoning/atomicfile")}},
			[]string{"kernelext (display) imports poisoning/atomicfile (data)"}},
		{"poison imports evaluate, show and display",
			pkg{ImportPath: m("poisoning/defense"), Imports: []string{m("evalkit/metrics"), m("evalkit/plots"), m("kernelext"), m("poisoning/vecmath")}},
			[]string{"poisoning/defense (poison) imports evalkit/metrics (evaluate)",
				"poisoning/defense (poison) imports evalkit/plots (show)",
				"poisoning/defense (poison) imports kernelext (display)"}},
		{"poison imports train", pkg{ImportPath: m("poisoning/defense"), Imports: []string{m("models/tokenizer")}},
			[]string{"poisoning/defense (poison) imports models/tokenizer (train)"}},
		{"data imports poison", pkg{ImportPath: m("poisoning/loaders"), Imports: []string{m("poisoning/attack")}},
			[]string{"poisoning/loaders (data) imports poisoning/attack (poison)"}},
		{"train imports evaluate", pkg{ImportPath: m("models/safetensors"), Imports: []string{m("evalkit/cache")}},
			[]string{"models/safetensors (train) imports evalkit/cache (evaluate)"}},
		{"evaluate imports show", pkg{ImportPath: m("evalkit/experiment"), Imports: []string{m("evalkit/report")}},
			[]string{"evalkit/experiment (evaluate) imports evalkit/report (show)"}},
		{"unknown package", pkg{ImportPath: m("tools/gen")}, []string{"tools/gen has no layer: add it to the design's layer table and to this test"}},
		{"import of an unknown package", pkg{ImportPath: m("evalkit/report"), Imports: []string{m("tools/gen")}},
			[]string{"evalkit/report (show) imports tools/gen (no layer)"}},
		{"tests of train import evaluate", pkg{ImportPath: m("models/train"), XTestImports: []string{m("evalkit/internal/minidata")}},
			[]string{"models/train (train) has tests that import evalkit/internal/minidata (evaluate)"}},
		{"tests of display import data", pkg{ImportPath: m("kernelext"), TestImports: []string{m("poisoning/dataset")}},
			[]string{"kernelext (display) has tests that import poisoning/dataset (data)"}},
		{"allowed imports", pkg{ImportPath: m("evalkit/report"), Imports: []string{
			m("evalkit/plots"), m("evalkit/experiment"), m("models/clip"), m("poisoning/defense"), m("poisoning/atomicfile"), m("kernelext")}}, nil},
		{"allowed: train imports data and display", pkg{ImportPath: m("models/tokenizer"), Imports: []string{m("poisoning/dataset"), m("kernelext")}}, nil},
		{"allowed: poison tests use train fixtures", pkg{ImportPath: m("poisoning/defense"), XTestImports: []string{m("models/tokenizer"), m("poisoning/defense")}}, nil},
		{"allowed: display tests import display", pkg{ImportPath: m("kernelext"), XTestImports: []string{m("kernelext")}}, nil},
	}
	for _, tc := range tests {
		if got := violations([]pkg{tc.p}); !slices.Equal(got, tc.want) {
			t.Errorf("%s:\ngot  %q\nwant %q", tc.name, got, tc.want)
		}
	}
}
