package report

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/poisoning/testchild"
)

// Environment of TestReportChild, the child process of TestKillMidReport.
const (
	reportChildDir   = "MMPOISON_REPORT_CHILD_DIR"   // the report folder to write
	reportChildTag   = "MMPOISON_REPORT_CHILD_TAG"   // the backend named in the result, to tell reports apart
	reportChildPause = "MMPOISON_REPORT_CHILD_PAUSE" // when set, stop for good once the report is written aside
)

// taggedResult is the synthetic result with its backend named tag.
func taggedResult(tag string) *experiment.Result {
	r := syntheticResult()
	r.Backend = tag
	return r
}

// TestReportChild is the child: it writes the report of taggedResult($TAG) into $DIR, saying "filled" and
// stopping when $PAUSE is set, or "written" when done.
func TestReportChild(t *testing.T) {
	dir := os.Getenv(reportChildDir)
	if dir == "" {
		t.Skip("the child process of TestKillMidReport")
	}
	if os.Getenv(reportChildPause) != "" {
		testHookFilled = func(string) {
			fmt.Println("filled")
			select {}
		}
	}
	if _, err := Write(dir, taggedResult(os.Getenv(reportChildTag))); err != nil {
		t.Fatal(err)
	}
	fmt.Println("written")
}

// runReportChild runs TestReportChild writing tag's report into dir; with pause, it kills the child (SIGKILL)
// once the report is written aside, before it replaces dir.
func runReportChild(t *testing.T, dir, tag string, pause bool) {
	t.Helper()
	env := []string{reportChildDir + "=" + dir, reportChildTag + "=" + tag}
	if pause {
		env = append(env, reportChildPause+"=1")
	}
	c := testchild.Start(t, "TestReportChild", env...)
	c.Await(t, map[bool]string{true: "filled", false: "written"}[pause], 2*time.Minute)
	if pause {
		c.Kill()
		return
	}
	if err := c.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, c.Output())
	}
}

// folderFiles returns the content of every file in dir by name.
func folderFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = string(data)
	}
	return files
}

// A process killed while writing a report leaves the previous report as it was (not a mix of two runs), and
// the rerun replaces it whole with the report an uninterrupted run writes, removing what the killed one left.
func TestKillMidReport(t *testing.T) {
	parent := t.TempDir()
	out := filepath.Join(parent, "report")
	runReportChild(t, out, "first", false)
	first := folderFiles(t, out)
	runReportChild(t, out, "second", true)
	if got := folderFiles(t, out); !maps.Equal(got, first) {
		t.Errorf("after the kill the report folder holds %d files, not the previous report's %d", len(got), len(first))
	}
	if left, _ := filepath.Glob(filepath.Join(parent, ".report.tmp-*")); len(left) != 1 {
		t.Errorf("the killed process left %v, want its temporary folder", left)
	}
	runReportChild(t, out, "second", false)
	ref := filepath.Join(parent, "reference")
	if _, err := Write(ref, taggedResult("second")); err != nil {
		t.Fatal(err)
	}
	got, want := folderFiles(t, out), folderFiles(t, ref)
	for name, content := range want {
		if _, ok := got[name]; !ok || got[name] != content && !strings.HasSuffix(name, ".pdf") { // PDFs hold their time.
			t.Errorf("the rerun's %s is missing or differs from an uninterrupted run's", name)
		}
	}
	if len(got) != len(want) {
		t.Errorf("the rerun wrote %d files, an uninterrupted run %d", len(got), len(want))
	}
	if !strings.Contains(got["results.json"], `"second"`) {
		t.Error("the rerun's report is not the new one")
	}
	if left, _ := filepath.Glob(filepath.Join(parent, ".*")); len(left) > 0 {
		t.Errorf("left beside the report: %v", left)
	}
}
