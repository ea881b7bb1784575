package cache

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Environment of TestChildGet, the child process of the tests below (the test binary run again).
const (
	childRoot    = "MMPOISON_CACHE_TEST_ROOT"    // the cache root
	childRelease = "MMPOISON_CACHE_TEST_RELEASE" // produce waits for this file to exist, having said "producing"
)

// TestChildGet is the child: it gets one entry, whose produce says "producing", appends its pid to the file
// count (beside the cache root), waits for the release file, keeps a note in the partial folder, and writes
// result.txt holding the partial notes it found. It prints "cached DIR" or "computed DIR".
func TestChildGet(t *testing.T) {
	root := os.Getenv(childRoot)
	if root == "" {
		t.Skip("the child of the two-process tests")
	}
	c := mustOpen(t, root)
	key := mustKey(t, "pretrain", "shared")
	dir, cached, err := c.Get(key, func(dir string) error {
		partial, err := c.Partial(key)
		if err != nil {
			return err
		}
		found, _ := os.ReadFile(filepath.Join(partial, "note"))
		os.WriteFile(filepath.Join(dir, "big.bin"), make([]byte, 1<<20), 0o644)
		count, err := os.OpenFile(filepath.Join(root, "..", "count"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		fmt.Fprintln(count, os.Getpid())
		count.Close()
		if err := os.WriteFile(filepath.Join(partial, "note"), append(found, "a note\n"...), 0o644); err != nil {
			return err
		}
		fmt.Println("producing")
		for release := os.Getenv(childRelease); release != ""; time.Sleep(10 * time.Millisecond) {
			if _, err := os.Stat(release); err == nil {
				break
			}
		}
		return os.WriteFile(filepath.Join(dir, "result.txt"), found, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(map[bool]string{true: "cached", false: "computed"}[cached], dir)
}

// child is a running TestChildGet.
type child struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr bytes.Buffer
}

// startChild runs TestChildGet on the cache at root; produce waits for release ("" for no wait).
func startChild(t *testing.T, root, release string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(os.Args[0], "-test.run=^TestChildGet$", "-test.v=false"), lines: make(chan string, 16)}
	c.cmd.Env = append(os.Environ(), childRoot+"="+root, childRelease+"="+release)
	c.cmd.Stderr = &c.stderr
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.lines)
		for sc := bufio.NewScanner(out); sc.Scan(); {
			c.lines <- sc.Text()
		}
	}()
	return c
}

// expect waits for the child's next line to start with prefix and returns it.
func (c *child) expect(t *testing.T, prefix string) string {
	t.Helper()
	select {
	case line := <-c.lines:
		if !strings.HasPrefix(line, prefix) {
			t.Fatalf("child said %q, want %q (stderr: %s)", line, prefix, c.stderr.String())
		}
		return line
	case <-time.After(time.Minute):
		t.Fatalf("child did not say %q (stderr: %s)", prefix, c.stderr.String())
	}
	return ""
}

func (c *child) wait(t *testing.T) {
	t.Helper()
	for range c.lines {
	}
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("child: %v (stderr: %s)", err, c.stderr.String())
	}
}

// Two processes that ask for the same missing entry compute it once: the second waits, saying so, while the
// first computes, then uses the first's entry.
func TestTwoProcessesComputeOnce(t *testing.T) {
	base := t.TempDir()
	root, release := filepath.Join(base, "cache"), filepath.Join(base, "release")
	a := startChild(t, root, release)
	a.expect(t, "producing")
	b := startChild(t, root, release)
	deadline := time.Now().Add(time.Minute) // b waits on a's lock and says so.
	for !strings.Contains(b.stderr.String(), "is being computed by process") {
		if time.Now().After(deadline) {
			t.Fatalf("the second process did not wait: %s", b.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	os.WriteFile(release, nil, 0o644)
	first, second := a.expect(t, "computed "), b.expect(t, "cached ")
	a.wait(t)
	b.wait(t)
	if strings.Fields(first)[1] != strings.Fields(second)[1] {
		t.Errorf("the processes used %q and %q", first, second)
	}
	if count, _ := os.ReadFile(filepath.Join(base, "count")); strings.Count(string(count), "\n") != 1 {
		t.Errorf("the entry was computed by %q", count)
	}
	if !strings.Contains(b.stderr.String(), fmt.Sprint(a.cmd.Process.Pid)) {
		t.Errorf("the notice does not name the computing process %d: %s", a.cmd.Process.Pid, b.stderr.String())
	}
}

// A process killed while computing an entry leaves its lock free, its temporary folder for the next process to
// remove (with a notice), and its partial folder for the next computation to resume from; once the entry is
// published, the partial folder is gone.
func TestKilledProducer(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "cache")
	a := startChild(t, root, filepath.Join(base, "never"))
	a.expect(t, "producing")
	a.cmd.Process.Signal(syscall.SIGKILL)
	a.cmd.Wait()
	c := mustOpen(t, root)
	if leftovers, _ := filepath.Glob(filepath.Join(c.Dir(), ".tmp-*")); len(leftovers) != 1 {
		t.Fatalf("the killed process left %v", leftovers)
	}
	b := startChild(t, root, "")
	line := b.expect(t, "producing")
	line = b.expect(t, "computed ")
	b.wait(t)
	dir := strings.Fields(line)[1]
	if data, _ := os.ReadFile(filepath.Join(dir, "result.txt")); string(data) != "a note\n" {
		t.Errorf("the second computation found %q in the partial folder, want the killed one's note", data)
	}
	if !strings.Contains(b.stderr.String(), "left in the cache by a killed process") {
		t.Errorf("no notice of the removed temporary folder: %s", b.stderr.String())
	}
	for _, pattern := range []string{".tmp-*", ".partial/*"} {
		if left, _ := filepath.Glob(filepath.Join(c.Dir(), pattern)); len(left) > 0 {
			t.Errorf("left in the cache: %v", left)
		}
	}
}
