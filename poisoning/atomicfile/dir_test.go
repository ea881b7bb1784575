package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// files returns the names in dir, sorted.
func files(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// filler writes the named files, each holding its name and tag.
func filler(tag string, names ...string) func(string) error {
	return func(dir string) error {
		for _, n := range names {
			if err := WriteFile(filepath.Join(dir, n), []byte(n+" "+tag)); err != nil {
				return err
			}
		}
		return nil
	}
}

// ReplaceDir makes a folder, replaces it whole (files of the previous folder that the new one lacks are gone),
// keeps it as it was when fill fails, and leaves nothing else beside it.
func TestReplaceDir(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "a", "report")
	if err := ReplaceDir(dir, filler("first", "report.md", "old.svg")); err != nil {
		t.Fatal(err)
	}
	if got := files(t, dir); !slices.Equal(got, []string{DirMarker, "old.svg", "report.md"}) {
		t.Fatalf("first folder holds %v", got)
	}
	if err := ReplaceDir(dir, filler("second", "report.md", "new.svg")); err != nil {
		t.Fatal(err)
	}
	if got := files(t, dir); !slices.Equal(got, []string{DirMarker, "new.svg", "report.md"}) {
		t.Fatalf("replaced folder holds %v", got)
	}
	boom := errors.New("no space left")
	err := ReplaceDir(dir, func(tmp string) error {
		if err := filler("third", "report.md")(tmp); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("a failing fill: %v", err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "report.md")); string(data) != "report.md second" {
		t.Errorf("a failed write changed the folder: report.md holds %q", data)
	}
	if got := files(t, filepath.Dir(dir)); !slices.Equal(got, []string{"report"}) {
		t.Errorf("beside the folder: %v", got)
	}
}

// CheckDir refuses, before any work, what ReplaceDir could not write or should not replace.
func TestCheckDir(t *testing.T) {
	parent := t.TempDir()
	file := filepath.Join(parent, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	full := filepath.Join(parent, "full")
	os.Mkdir(full, 0o755)
	os.WriteFile(filepath.Join(full, "thesis.tex"), []byte("x"), 0o644)
	os.Mkdir(filepath.Join(parent, "empty"), 0o755)
	for _, tc := range []struct {
		dir, want string
	}{
		{filepath.Join(parent, "new", "deeper"), ""},
		{filepath.Join(parent, "empty"), ""},
		{file, "is a file"},
		{filepath.Join(file, "out"), "is a file"},
		{full, "holds files but no " + DirMarker},
		{"/", "root folder"},
	} {
		_, err := CheckDir(tc.dir)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckDir(%s) = %v, want %q", tc.dir, err, tc.want)
		}
	}
	if err := ReplaceDir(full, filler("x", "a")); err == nil {
		t.Error("ReplaceDir replaced a folder it did not write")
	}
	if got := files(t, full); !slices.Equal(got, []string{"thesis.tex"}) {
		t.Errorf("the refused folder now holds %v", got)
	}
	if got := files(t, parent); !slices.Equal(got, []string{"empty", "file", "full"}) {
		t.Errorf("CheckDir left %v", got)
	}
}

// deadPID returns the id of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip(err)
	}
	if !ProcessGone(cmd.Process.Pid) {
		t.Skip("the pid of an exited process is in use again")
	}
	return cmd.Process.Pid
}

// CleanOrphans removes the temporary siblings of a name whose process is gone or that are older than OrphanAge,
// and nothing else: not those of live processes, of this one, or of other names.
func TestCleanOrphans(t *testing.T) {
	dir := t.TempDir()
	dead := deadPID(t)
	mk := func(name string, age time.Duration, folder bool) string {
		p := filepath.Join(dir, name)
		if folder {
			os.MkdirAll(filepath.Join(p, "inner"), 0o755)
		} else {
			os.WriteFile(p, []byte("x"), 0o644)
		}
		when := time.Now().Add(-age)
		os.Chtimes(p, when, when)
		return p
	}
	gone := []string{
		mk(fmt.Sprintf(".m.safetensors.tmp-%d-1", dead), 0, false),
		mk(fmt.Sprintf(".m.safetensors.tmp-%d-2", dead), 0, true),
		mk(".m.safetensors.tmp-1-3", 2*OrphanAge, false), // pid 1 lives, but the file is old
		mk(".m.safetensors.tmp-1234567", 2*OrphanAge, false),
	}
	kept := []string{
		mk(".m.safetensors.tmp-1-4", 0, false), // pid 1 (init) lives
		mk(fmt.Sprintf(".m.safetensors.tmp-%d-5", os.Getpid()), 2*OrphanAge, false),
		mk(".m.safetensors.tmp-7654321", 0, false), // no owner recorded, recent
		mk(fmt.Sprintf(".other.tmp-%d-6", dead), 0, false),
		mk("m.safetensors", 2*OrphanAge, false),
	}
	removed := CleanOrphans(dir, "m.safetensors")
	slices.Sort(removed)
	slices.Sort(gone)
	if !slices.Equal(removed, gone) {
		t.Errorf("removed %v, want %v", removed, gone)
	}
	for _, p := range kept {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

// Write names its temporary file after this process, and removes what a killed writer of the same file left.
func TestWriteCleansOrphans(t *testing.T) {
	dir := t.TempDir()
	orphan := filepath.Join(dir, fmt.Sprintf(".ckpt.tmp-%d-99", deadPID(t)))
	os.WriteFile(orphan, make([]byte, 1<<20), 0o644)
	if err := WriteFile(filepath.Join(dir, "ckpt"), []byte("new")); err != nil {
		t.Fatal(err)
	}
	if got := files(t, dir); !slices.Equal(got, []string{"ckpt"}) {
		t.Errorf("folder holds %v", got)
	}
	if pid, ok := tempOwner(filepath.Base(tempPattern("ckpt")), "ckpt"); !ok || pid != os.Getpid() {
		t.Errorf("temporary names carry pid %d, %v", pid, ok)
	}
}

// ReadFile reads regular files up to its limit and refuses devices, named pipes and larger files, naming them.
func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small.json")
	os.WriteFile(small, []byte("{}"), 0o644)
	if data, err := ReadFile(small, 2); err != nil || string(data) != "{}" {
		t.Errorf("ReadFile = %q, %v", data, err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{small + "x", "no such file"},
		{"/dev/zero", "not a regular file"},
		{fifo, "not a regular file"},
		{dir, "not a regular file"},
	} {
		if _, err := ReadFile(tc.path, 1<<20); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("ReadFile(%s) = %v, want %q", tc.path, err, tc.want)
		}
	}
	if _, err := ReadFile(small, 1); err == nil || !strings.Contains(err.Error(), "more than the 1") {
		t.Errorf("over the limit: %v", err)
	}
}
