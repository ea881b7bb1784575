package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/evalkit/internal/testenv"
	"github.com/mmpoison/mmpoison/evalkit/scale"
)

// poison and verify write and check a set; bad input is one clear error before any work, leaving nothing
// behind.
func TestPoisonCommand(t *testing.T) {
	testenv.RequireFashionMNIST(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "set")
	if err := run([]string{"poison", "-out", out, "-format", "shards,csv", "-csv-separator", "comma", "-per-shard", "5000"}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"shards/000000.tar", "shards/000001.tar", "train.csv", scale.ManifestFile, scale.ExportFile} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if err := run([]string{"verify", "-in", out}); err != nil {
		t.Error(err)
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-data", "coco", "-in", filepath.Join(dir, "missing")}, "no such file"},
		{[]string{"-attack", "IV"}, "unknown kind"},
		{[]string{"-format", "parquet"}, "neither shards nor csv"},
		{[]string{"-out", filepath.Join(file, "x")}, "cannot be written"},
		{[]string{"-out", out}, "already exists"},
		{[]string{"-data", "tar", "-in", dir}, "unknown input format"},
	} {
		args := append([]string{"poison", "-out", filepath.Join(dir, "new")}, c.args...)
		if err := run(args); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error with %q", c.args, err, c.want)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 2 {
			t.Errorf("%q left %d entries in the folder, want the 2 there were", c.args, len(entries))
		}
	}
	if err := run([]string{"filter", "-in", out, "-out", filepath.Join(dir, "f"), "-checker", filepath.Join(dir, "none.safetensors")}); err == nil ||
		!strings.Contains(err.Error(), "checker") {
		t.Errorf("filter with a missing checker: %v", err)
	}
}
