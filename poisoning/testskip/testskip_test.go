//go:build unix

package testskip

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Run(m)) }

// child skips when run as the child process of TestSkipIsReported, and passes otherwise.
func TestChild(t *testing.T) {
	if os.Getenv("TESTSKIP_CHILD") != "" {
		Skip(t, "no widget: install one")
	}
}

// A test binary whose test skips for want of a resource passes, lists the skip after its tests on standard
// error, and leaves the marker that keeps the go command from caching the run.
func TestSkipIsReported(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChild$")
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "TESTSKIP_CHILD=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // No terminal: the notice goes to standard error only.
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "SKIPPED: 1 test(s) of") || !strings.Contains(string(out), "  TestChild: no widget: install one\n") {
		t.Errorf("child output lacks the notice:\n%s", out)
	}
	if data, err := os.ReadFile(filepath.Join(dir, Marker)); err != nil || !strings.Contains(string(data), "TestChild: no widget") {
		t.Errorf("marker: %q, %v", data, err)
	}
}
