package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The -checker-* flags reach both data-side defenses, and bad values fail before anything trains, naming the
// value.
func TestDefensesCheckerFlags(t *testing.T) {
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
		{[]string{"-checker-preset", "huge"}, `defense filter: checker (CheckerPreset): unknown model preset "huge"`},
		{[]string{"-defenses", "kdistance", "-checker-preset", "huge"}, `defense kdistance: checker (CheckerPreset): unknown model preset "huge"`},
		{[]string{"-checker-weights", missing}, "checker checkpoint (CheckerWeights) " + missing + " does not exist"},
		{[]string{"-checker-weights", file, "-checker-tokenizer", missing}, "CheckerTokenizer) " + missing + " does not exist"},
		{[]string{"-checker-tokenizer", file}, "needs CheckerWeights"},
		{[]string{"-checker-preset", "small", "-checker-weights", file}, "not both"},
	} {
		args := append([]string{"-quick", "-quiet", "-seeds", "1", "-attacks", "II", "-runs", filepath.Join(dir, "runs"),
			"-out", filepath.Join(dir, "out")}, tc.args...)
		if err := defenses(args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("defenses %v: error %v, want one containing %q", tc.args, err, tc.want)
		}
	}
}
