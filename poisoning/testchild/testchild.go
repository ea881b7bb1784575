// Package testchild runs one test of the running test binary again, as a child process, for the tests that
// kill a process at a chosen moment or run two processes at once (kill -9 mid-training or mid-report, two
// processes on one cache). The child test reads what to do from its environment and skips itself when run
// without it; the parent reads the child's standard output line by line, kills it or waits for it.
package testchild

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Child is a running child test.
type Child struct {
	// Cmd is the child process (Cmd.Process.Pid names it).
	Cmd    *exec.Cmd
	stderr lockedBuffer
	pumped chan struct{} // closed once the child's standard output is read to its end

	mu      sync.Mutex
	lines   []string      // every line of standard output so far
	next    int           // the first line Next has not returned
	closed  bool          // standard output is read to its end
	changed chan struct{} // closed (and replaced) whenever lines or closed change
}

// Start runs the test named test (exactly that one) of this test binary, with env ("NAME=value") added to its
// environment.
func Start(t testing.TB, test string, env ...string) *Child {
	t.Helper()
	c := &Child{Cmd: exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.v=false"),
		pumped: make(chan struct{}), changed: make(chan struct{})}
	c.Cmd.Env = append(os.Environ(), env...)
	c.Cmd.Stderr = &c.stderr
	out, err := c.Cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go c.pump(out)
	return c
}

// pump reads the child's standard output into lines.
func (c *Child) pump(out interface{ Read([]byte) (int, error) }) {
	defer close(c.pumped)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		c.update(func() { c.lines = append(c.lines, sc.Text()) })
	}
	c.update(func() { c.closed = true })
}

// update changes the state under the lock and wakes whoever waits in Next.
func (c *Child) update(change func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	change()
	close(c.changed)
	c.changed = make(chan struct{})
}

// Next returns the child's next line of standard output; false when the child closed it, or when none came
// within timeout.
func (c *Child) Next(timeout time.Duration) (string, bool) {
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		if c.next < len(c.lines) {
			line := c.lines[c.next]
			c.next++
			c.mu.Unlock()
			return line, true
		}
		closed, changed := c.closed, c.changed
		c.mu.Unlock()
		if closed {
			return "", false
		}
		select {
		case <-changed:
		case <-deadline:
			return "", false
		}
	}
}

// Expect waits up to timeout for the child's next line, which must start with prefix, and returns it; it
// fails the test otherwise.
func (c *Child) Expect(t testing.TB, prefix string, timeout time.Duration) string {
	t.Helper()
	line, ok := c.Next(timeout)
	if !ok || !strings.HasPrefix(line, prefix) {
		t.Fatalf("the child said %q (ok %v), want a line starting %q; its standard error:\n%s", line, ok, prefix, c.Stderr())
	}
	return line
}

// Await reads the child's lines until one equals want, for at most timeout; it fails the test otherwise.
func (c *Child) Await(t testing.TB, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		line, ok := c.Next(time.Until(deadline))
		if !ok {
			t.Fatalf("the child did not say %q in time; its standard error:\n%s", want, c.Stderr())
		}
		if line == want {
			return
		}
	}
}

// Kill kills the child at once (SIGKILL) and waits for it to end.
func (c *Child) Kill() {
	c.Cmd.Process.Signal(syscall.SIGKILL)
	c.Wait()
}

// Wait waits for the child to end, having read all it wrote, and returns how it ended (exec.Cmd.Wait's error).
func (c *Child) Wait() error {
	<-c.pumped
	return c.Cmd.Wait()
}

// Ended reports whether the child has closed its standard output: it has ended, or is about to.
func (c *Child) Ended() bool {
	select {
	case <-c.pumped:
		return true
	default:
		return false
	}
}

// Output returns what the child wrote so far, standard output then standard error, for failure messages.
func (c *Child) Output() string { return strings.Join(c.Lines(), "\n") + "\n" + c.Stderr() }

// Lines returns every line the child wrote to its standard output so far.
func (c *Child) Lines() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...)
}

// Stderr returns what the child wrote to its standard error so far.
func (c *Child) Stderr() string { return c.stderr.String() }

// lockedBuffer is a bytes.Buffer that the child's output copier writes while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
