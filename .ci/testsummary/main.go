// Command testsummary reads `go test -json` from stdin and prints what plain `go test` prints (a line per
// package, the output of failed tests and packages, build errors), then every skipped test with its reason and
// the slowest tests. It exits non-zero when a test, package or build failed, when no test ran, or, with
// $MMPOISON_REQUIRE_XLA=1, when a skipped test's reason mentions XLA: in CI's XLA pass a skip must not hide a
// plugin that does not load.
//
//	go test -json -timeout 30m ./... | go run ./.ci/testsummary
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

// test is what the summary keeps of one test.
type test struct {
	pkg, name string
	output    []string
	elapsed   float64
}

// summary accumulates the events.
type summary struct {
	out                   io.Writer
	running               map[string]*test // by package and name
	skipped, slow         []*test
	passed, failed        int
	failedPkgs, buildErrs int
}

func main() {
	s := &summary{out: os.Stdout, running: map[string]*test{}}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	start := time.Now()
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			fmt.Fprintln(s.out, sc.Text()) // not an event: go's own messages
			continue
		}
		s.add(e)
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(2)
	}
	os.Exit(s.report(os.Getenv("MMPOISON_REQUIRE_XLA") == "1", time.Since(start)))
}

// add takes one event.
func (s *summary) add(e event) {
	key := e.Package + " " + e.Test
	switch {
	case e.Action == "build-output":
		fmt.Fprint(s.out, e.Output)
	case e.Action == "build-fail":
		s.buildErrs++
	case e.Test == "":
		if e.Action == "output" && !strings.HasPrefix(e.Output, "=== ") && !strings.HasPrefix(e.Output, "PASS\n") &&
			!strings.HasPrefix(e.Output, "--- ") && e.Output != "FAIL\n" {
			fmt.Fprint(s.out, e.Output) // "ok  pkg 1.2s", "FAIL pkg", panics outside tests
		}
		if e.Action == "fail" {
			s.failedPkgs++
		}
	case e.Action == "run":
		s.running[key] = &test{pkg: e.Package, name: e.Test}
	case e.Action == "output":
		if t := s.running[key]; t != nil {
			t.output = append(t.output, e.Output)
		}
	case e.Action == "pass" || e.Action == "fail" || e.Action == "skip":
		t := s.running[key]
		delete(s.running, key)
		if t == nil {
			t = &test{pkg: e.Package, name: e.Test}
		}
		t.elapsed = e.Elapsed
		s.slow = append(s.slow, t)
		switch e.Action {
		case "pass":
			s.passed++
		case "fail":
			s.failed++
			fmt.Fprint(s.out, strings.Join(t.output, ""))
		case "skip":
			s.skipped = append(s.skipped, t)
		}
	}
}

// reason is a skipped test's message: its output less the framework's lines.
func (t *test) reason() string {
	var lines []string
	for _, l := range t.output {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "=== ") && !strings.HasPrefix(l, "--- SKIP") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, " | ")
}

// report prints the skips and the slowest tests and returns the exit status.
func (s *summary) report(requireXLA bool, took time.Duration) int {
	status := 0
	fmt.Fprintf(s.out, "\n[tests] %d passed, %d failed, %d skipped; %d packages failed, %d builds failed (%s)\n",
		s.passed, s.failed, len(s.skipped), s.failedPkgs, s.buildErrs, took.Round(time.Second))
	if s.failed+s.failedPkgs+s.buildErrs > 0 || s.passed == 0 {
		status = 1
	}
	for _, t := range s.skipped {
		mark := "SKIP"
		if requireXLA && strings.Contains(t.reason(), "XLA") {
			mark, status = "SKIP (XLA required: failing)", 1
		}
		fmt.Fprintf(s.out, "[tests] %s %s %s: %s\n", mark, t.pkg, t.name, t.reason())
	}
	slices.SortFunc(s.slow, func(a, b *test) int { return int(1e3*b.elapsed) - int(1e3*a.elapsed) })
	for _, t := range s.slow[:min(8, len(s.slow))] {
		fmt.Fprintf(s.out, "[tests] slow %6.1fs %s %s\n", t.elapsed, t.pkg, t.name)
	}
	return status
}
