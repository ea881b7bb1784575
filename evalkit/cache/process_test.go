package cache

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mmpoison/mmpoison/poisoning/testchild"
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

// startChild runs TestChildGet on the cache at root; produce waits for release ("" for no wait).
func startChild(t *testing.T, root, release string) *testchild.Child {
	t.Helper()
	return testchild.Start(t, "TestChildGet", childRoot+"="+root, childRelease+"="+release)
}

// expect waits for the child's next line, which must start with prefix, and returns it.
func expect(t *testing.T, c *testchild.Child, prefix string) string {
	t.Helper()
	return c.Expect(t, prefix, time.Minute)
}

// wait waits for the child to end, failing the test when it failed.
func wait(t *testing.T, c *testchild.Child) {
	t.Helper()
	if err := c.Wait(); err != nil {
		t.Fatalf("child: %v (stderr: %s)", err, c.Stderr())
	}
}

// Two processes that ask for the same missing entry compute it once: the second waits, saying so, while the
// first computes, then uses the first's entry.
func TestTwoProcessesComputeOnce(t *testing.T) {
	base := t.TempDir()
	root, release := filepath.Join(base, "cache"), filepath.Join(base, "release")
	a := startChild(t, root, release)
	expect(t, a, "producing")
	b := startChild(t, root, release)
	deadline := time.Now().Add(time.Minute) // b waits on a's lock and says so.
	for !strings.Contains(b.Stderr(), "is being computed by process") {
		if time.Now().After(deadline) {
			t.Fatalf("the second process did not wait: %s", b.Stderr())
		}
		time.Sleep(10 * time.Millisecond)
	}
	os.WriteFile(release, nil, 0o644)
	first, second := expect(t, a, "computed "), expect(t, b, "cached ")
	wait(t, a)
	wait(t, b)
	if strings.Fields(first)[1] != strings.Fields(second)[1] {
		t.Errorf("the processes used %q and %q", first, second)
	}
	if count, _ := os.ReadFile(filepath.Join(base, "count")); strings.Count(string(count), "\n") != 1 {
		t.Errorf("the entry was computed by %q", count)
	}
	if !strings.Contains(b.Stderr(), fmt.Sprint(a.Cmd.Process.Pid)) {
		t.Errorf("the notice does not name the computing process %d: %s", a.Cmd.Process.Pid, b.Stderr())
	}
}

// A process killed while computing an entry leaves its lock free, its temporary folder for the next process to
// remove (with a notice), and its partial folder for the next computation to resume from; once the entry is
// published, the partial folder is gone.
func TestKilledProducer(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "cache")
	a := startChild(t, root, filepath.Join(base, "never"))
	expect(t, a, "producing")
	a.Kill()
	c := mustOpen(t, root)
	if leftovers, _ := filepath.Glob(filepath.Join(c.Dir(), ".tmp-*")); len(leftovers) != 1 {
		t.Fatalf("the killed process left %v", leftovers)
	}
	b := startChild(t, root, "")
	line := expect(t, b, "producing")
	line = expect(t, b, "computed ")
	wait(t, b)
	dir := strings.Fields(line)[1]
	if data, _ := os.ReadFile(filepath.Join(dir, "result.txt")); string(data) != "a note\n" {
		t.Errorf("the second computation found %q in the partial folder, want the killed one's note", data)
	}
	if !strings.Contains(b.Stderr(), "left in the cache by a killed process") {
		t.Errorf("no notice of the removed temporary folder: %s", b.Stderr())
	}
	for _, pattern := range []string{".tmp-*", ".partial/*"} {
		if left, _ := filepath.Glob(filepath.Join(c.Dir(), pattern)); len(left) > 0 {
			t.Errorf("left in the cache: %v", left)
		}
	}
}
