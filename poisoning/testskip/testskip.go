// Package testskip makes the tests that skip for want of an optional resource (Fashion-MNIST, the real CLIP
// vocabulary in ../shared, the go command) say so where a user running plain "go test ./..." sees it. That
// command shows only "ok" for a package whose tests pass, skipped or not, and replays a passing package from
// its test cache without running it; so Skip records the reason and marks the run as not cacheable, and Run,
// from TestMain, prints the skipped tests on the test binary's standard error (shown with -v, -json and when
// the package fails) and on the terminal the tests run from, when there is one.
package testskip

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	mu      sync.Mutex
	skipped []string // "TestName: reason"
	reasons []string // The reasons, in first-seen order.
	tests   = map[string][]string{}
	running bool // Run is running the tests.
)

// Marker is the file Skip writes (and reads back) in the test's folder: a file read while it is this new keeps
// the go command from caching the package's result, so the skip is reported again on the next run, and the
// tests run again once the resource is there.
const Marker = ".test-skips"

// Skip skips the test for want of an optional resource: reason says which and how to get it. The package's
// TestMain must run its tests through Run, or the test fails.
func Skip(t testing.TB, reason string) {
	t.Helper()
	mu.Lock()
	ok := running
	if ok {
		skipped = append(skipped, t.Name()+": "+reason)
		if len(tests[reason]) == 0 {
			reasons = append(reasons, reason)
		}
		tests[reason] = append(tests[reason], t.Name())
		if os.WriteFile(Marker, []byte(strings.Join(skipped, "\n")+"\n"), 0o644) == nil {
			os.ReadFile(Marker) // Recorded in the test log: the go command does not cache this run.
		}
	}
	mu.Unlock()
	if !ok {
		t.Fatalf("testskip.Skip needs TestMain to run the tests with testskip.Run (skip reason: %s)", reason)
	}
	t.Skip("SKIPPED: " + reason)
}

// Run runs the tests and, when some skipped for want of a resource, lists them on standard error and on the
// terminal (/dev/tty), so that plain "go test ./..." shows them. It returns m.Run's exit code.
func Run(m *testing.M) int {
	mu.Lock()
	running = true
	mu.Unlock()
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if len(skipped) == 0 {
		return code
	}
	var b strings.Builder
	fmt.Fprintf(&b, "SKIPPED: %d test(s) of %s need something this machine lacks:\n", len(skipped), here())
	for _, r := range reasons {
		fmt.Fprintf(&b, "  %s: %s\n", strings.Join(tests[r], ", "), r)
	}
	fmt.Fprint(os.Stderr, b.String())
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		fmt.Fprint(tty, b.String())
		tty.Close()
	}
	return code
}

// here names the package under test by its folder, relative to the module root when it can.
func here() string {
	wd, err := os.Getwd()
	if err != nil {
		return "this package"
	}
	for dir := wd; dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if rel, err := filepath.Rel(dir, wd); err == nil {
				return "./" + filepath.ToSlash(rel)
			}
		}
	}
	return wd
}

// VocabEnv names the environment variable that points to OpenAI's CLIP vocabulary, bpe_simple_vocab_16e6.txt.gz.
const VocabEnv = "MMPOISON_CLIP_VOCAB"

// VocabURL is where OpenAI publishes the CLIP vocabulary.
const VocabURL = "https://github.com/openai/CLIP/raw/main/clip/bpe_simple_vocab_16e6.txt.gz"

// CLIPVocab returns OpenAI's CLIP vocabulary for a test: $MMPOISON_CLIP_VOCAB when set, else
// shared/data/clip/bpe_simple_vocab_16e6.txt.gz in the folder that holds the checkout (up leads there from the
// test's folder, e.g. "../../.."). When neither exists it skips the test (Skip), saying where to put the file.
func CLIPVocab(t testing.TB, up string) string {
	t.Helper()
	p, err := FindCLIPVocab(up)
	if err != nil {
		Skip(t, err.Error())
	}
	return p
}

// FindCLIPVocab is CLIPVocab without the test: the vocabulary's path, or an error saying where it was looked for
// and where to get it.
func FindCLIPVocab(up string) (string, error) {
	if p := os.Getenv(VocabEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("$%s names %s, which is not there: download %s to it", VocabEnv, p, VocabURL)
		}
		return p, nil
	}
	p := filepath.Join(up, "shared", "data", "clip", "bpe_simple_vocab_16e6.txt.gz")
	if st, err := os.Stat(p); err == nil && !st.IsDir() {
		return p, nil
	}
	abs, _ := filepath.Abs(p)
	return "", fmt.Errorf("no CLIP vocabulary: looked for %s (the shared/ folder beside the checkout holds the project's "+
		"large test files); download %s there or set $%s to it", abs, VocabURL, VocabEnv)
}
