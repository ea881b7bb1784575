package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The -checker-* flags reach both data-side defenses, and bad values fail before anything trains, naming the
// value.
func TestDefensesFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ckpt.safetensors")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.safetensors")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-checker-preset", "huge"}, `defense filter: checker (CheckerSpec.Preset): unknown model preset "huge"`},
		{[]string{"-defenses", "kdistance", "-checker-preset", "huge"}, `defense kdistance: checker (CheckerSpec.Preset): unknown model preset "huge"`},
		{[]string{"-checker-weights", missing}, "checker checkpoint (CheckerSpec.Weights) " + missing + " does not exist"},
		{[]string{"-checker-weights", file, "-checker-tokenizer", missing}, "CheckerSpec.Tokenizer) " + missing + " does not exist"},
		{[]string{"-checker-tokenizer", file}, "needs CheckerSpec.Weights"},
		{[]string{"-checker-preset", "small", "-checker-weights", file}, "not both"},
		{[]string{"-quantile", "NaN"}, "-quantile NaN: want a fraction in (0, 1)"},
		{[]string{"-quantile", "1.5"}, "-quantile 1.5"},
		{[]string{"-repair-epochs", "-3"}, "-repair-epochs -3"},
		{[]string{"-held-out", "-5"}, "-held-out -5: want 1 or more"},
		{[]string{"-attacks", "IV"}, `-attacks: attack: unknown kind "IV"`},
		{[]string{"-seeds", "1,x"}, `"x": not an integer`},
		{[]string{"-defenses", "prayer"}, `unknown defense "prayer"`},
	} {
		args := append([]string{"-quick", "-quiet", "-seeds", "1", "-attacks", "II", "-runs", filepath.Join(dir, "runs"),
			"-out", filepath.Join(dir, "out")}, tc.args...)
		if err := run(append([]string{"defenses"}, args...)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("defenses %v: error %v, want one containing %q", tc.args, err, tc.want)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "runs")); len(entries) != 0 {
		t.Errorf("a refused command line wrote %d cache entries", len(entries))
	}
}
