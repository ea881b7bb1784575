package testchild

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv tells TestHelperChild what to do: "lines" prints three lines and exits, "hang" prints one line and
// waits to be killed, "fail" writes to standard error and exits 3.
const helperEnv = "MMPOISON_TESTCHILD_HELPER"

// TestHelperChild is the child of the tests below.
func TestHelperChild(t *testing.T) {
	switch os.Getenv(helperEnv) {
	case "":
		t.Skip("the child of the testchild tests")
	case "lines":
		fmt.Println("one\ntwo\nthree")
	case "hang":
		fmt.Println("ready")
		time.Sleep(time.Hour)
	case "fail":
		fmt.Fprintln(os.Stderr, "broken on purpose")
		os.Exit(3)
	}
}

func TestChild(t *testing.T) {
	c := Start(t, "TestHelperChild", helperEnv+"=lines")
	if got := c.Expect(t, "on", time.Minute); got != "one" {
		t.Errorf("Expect returned %q, want one", got)
	}
	c.Await(t, "three", time.Minute) // skips "two"
	if err := c.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if !c.Ended() {
		t.Error("Ended is false after Wait")
	}
	for range len(c.Lines()) { // what is left (the test binary's own "PASS"), then nothing
		c.Next(time.Second)
	}
	if line, ok := c.Next(time.Second); ok {
		t.Errorf("Next after the end returned %q", line)
	}
	if got := strings.Join(c.Lines()[:3], ","); got != "one,two,three" {
		t.Errorf("Lines: %q", got)
	}
}

func TestKill(t *testing.T) {
	c := Start(t, "TestHelperChild", helperEnv+"=hang")
	c.Expect(t, "ready", time.Minute)
	if c.Ended() {
		t.Fatal("Ended before the kill")
	}
	if line, ok := c.Next(50 * time.Millisecond); ok {
		t.Errorf("Next returned %q from a silent child", line)
	}
	c.Kill()
	ws, ok := c.Cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("the child ended with %v, not SIGKILL", c.Cmd.ProcessState)
	}
}

func TestFailingChild(t *testing.T) {
	c := Start(t, "TestHelperChild", helperEnv+"=fail")
	if err := c.Wait(); err == nil || c.Cmd.ProcessState.ExitCode() != 3 {
		t.Errorf("Wait: %v, want exit status 3", err)
	}
	if !strings.Contains(c.Output(), "broken on purpose") {
		t.Errorf("Output lacks the child's standard error: %q", c.Output())
	}
}
