package cache

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// captureNotices collects the notices for the rest of the test.
func captureNotices(t *testing.T) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	old := notices
	notices = &buf
	t.Cleanup(func() { notices = old })
	return &buf
}

// writer returns a produce function that writes the given files and counts its calls.
func writer(calls *int, files map[string]string) func(string) error {
	return func(dir string) error {
		*calls++
		for name, content := range files {
			p := filepath.Join(dir, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				return err
			}
		}
		return nil
	}
}

func mustKey(t *testing.T, stage string, parts any) Key {
	t.Helper()
	k, err := NewKey(stage, parts)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestNewKey(t *testing.T) {
	type parts struct {
		Seed int
		LR   float64
	}
	a := mustKey(t, "pretrain", parts{42, 1e-3})
	for _, tc := range []struct {
		name  string
		other Key
		same  bool
	}{
		{"same parts", mustKey(t, "pretrain", parts{42, 1e-3}), true},
		{"another seed", mustKey(t, "pretrain", parts{43, 1e-3}), false},
		{"another stage", mustKey(t, "finetune", parts{42, 1e-3}), false},
	} {
		if (tc.other.Hash == a.Hash) != tc.same {
			t.Errorf("%s: hash %s vs %s", tc.name, tc.other.Hash, a.Hash)
		}
	}
	if len(a.Hash) != 16 || a.Name() != "pretrain-"+a.Hash {
		t.Errorf("key %+v, name %s", a, a.Name())
	}
	if _, err := NewKey("pretrain", parts{1, math.NaN()}); err == nil || !strings.Contains(err.Error(), "pretrain") {
		t.Errorf("NaN: %v", err)
	}
	for _, bad := range []string{"", "Pretrain", "a/b", "../x", "-a", "a--b"} {
		if _, err := NewKey(bad, 1); err == nil {
			t.Errorf("stage name %q accepted", bad)
		}
	}
}

// Entries live under <root>/v3/<stage>-<hash>/ with an entry.json; a second Get loads what the first produced.
func TestGetProducesOnce(t *testing.T) {
	c := mustOpen(t, t.TempDir())
	key := mustKey(t, "result", "spec")
	calls := 0
	files := map[string]string{"result.json": `{"hit": 1}`, "sub/model.bin": "weights"}
	dir, cached, err := c.Get(key, writer(&calls, files))
	if err != nil || cached || calls != 1 {
		t.Fatalf("first Get: %s cached %v calls %d err %v", dir, cached, calls, err)
	}
	if want := filepath.Join(c.root, fmt.Sprintf("v%d", FormatVersion), key.Name()); dir != want {
		t.Errorf("entry at %s, want %s", dir, want)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "sub", "model.bin")); err != nil || string(data) != "weights" {
		t.Fatalf("entry file: %q %v", data, err)
	}
	again, cached, err := c.Get(key, writer(&calls, files))
	if err != nil || !cached || calls != 1 || again != dir {
		t.Fatalf("second Get: %s cached %v calls %d err %v", again, cached, calls, err)
	}
	// Nothing else is left in the version folder (no temporary folders) but the entries' locks.
	if entries := dirNames(t, c.Dir()); len(entries) != 1 {
		t.Errorf("version folder holds %v, want one entry", entries)
	}
	// An error from produce publishes nothing.
	failing := mustKey(t, "result", "other")
	if _, _, err := c.Get(failing, func(dir string) error {
		os.WriteFile(filepath.Join(dir, "half.json"), []byte("{"), 0o644)
		return errors.New("killed")
	}); err == nil || err.Error() != "killed" {
		t.Fatalf("failing produce: %v", err)
	}
	if entries := dirNames(t, c.Dir()); len(entries) != 1 {
		t.Errorf("a failed produce left %v", entries)
	}
}

// A corrupt, truncated, half-published or tampered entry is moved aside to .corrupt, named in one notice line,
// and recomputed; the recomputed entry is then loaded.
func TestGetRecomputesBadEntries(t *testing.T) {
	files := map[string]string{"model.bin": strings.Repeat("w", 4096), "stage.json": `{"epochs": 2}`}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		why    string
	}{
		{"corrupt", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "model.bin")
			data, _ := os.ReadFile(p)
			copy(data[1000:], bytes.Repeat([]byte{0}, 64))
			os.WriteFile(p, data, 0o644)
		}, "model.bin does not match its SHA-256"},
		{"truncated", func(t *testing.T, dir string) {
			os.Truncate(filepath.Join(dir, "model.bin"), 2048)
		}, "model.bin has 2048 bytes"},
		{"file missing", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "stage.json"))
		}, "stage.json is missing"},
		{"half-published", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, EntryFile))
		}, "no entry.json"},
		{"malformed entry.json", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, EntryFile), []byte("{"), 0o644)
		}, "malformed entry.json"},
		{"extra file", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "stray.tmp"), nil, 0o644)
		}, "stray.tmp is not listed"},
		{"another entry's entry.json", func(t *testing.T, dir string) {
			p := filepath.Join(dir, EntryFile)
			data, _ := os.ReadFile(p)
			hash := strings.TrimPrefix(filepath.Base(dir), "finetune-poisoned-")
			os.WriteFile(p, bytes.ReplaceAll(data, []byte(hash), []byte("0123456789abcdef")), 0o644)
		}, "describes format 3 entry finetune-poisoned-0123456789abcdef"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := captureNotices(t)
			c := mustOpen(t, t.TempDir())
			key := mustKey(t, "finetune-poisoned", tc.name)
			calls := 0
			dir, _, err := c.Get(key, writer(&calls, files))
			if err != nil {
				t.Fatal(err)
			}
			tc.damage(t, dir)
			again, cached, err := c.Get(key, writer(&calls, files))
			if err != nil || cached || calls != 2 || again != dir {
				t.Fatalf("Get after damage: cached %v, %d calls, %v", cached, calls, err)
			}
			if data, _ := os.ReadFile(filepath.Join(dir, "model.bin")); string(data) != files["model.bin"] {
				t.Error("the recomputed entry does not hold the produced file")
			}
			notice := out.String()
			if strings.Count(notice, "\n") != 1 || !strings.Contains(notice, dir) || !strings.Contains(notice, tc.why) ||
				!strings.Contains(notice, filepath.Join(c.Dir(), ".corrupt")) {
				t.Errorf("notice %q, want one line naming %s, %q and the .corrupt folder", notice, dir, tc.why)
			}
			moved, _ := filepath.Glob(filepath.Join(c.Dir(), ".corrupt", "*", key.Name()))
			if len(moved) != 1 {
				t.Errorf("%d entries moved aside, want 1", len(moved))
			}
			if _, cached, err := c.Get(key, writer(&calls, files)); err != nil || !cached || calls != 2 {
				t.Errorf("third Get: cached %v, %d calls, %v", cached, calls, err)
			}
		})
	}
}

// Files of older cache layouts (beside the version folder) are never read or touched, and a temporary folder
// left by a killed process is not taken for the entry.
func TestGetIgnoresOldLayoutsAndLeftovers(t *testing.T) {
	root := t.TempDir()
	old := filepath.Join(root, "pretrain-0123456789abcdef.safetensors")
	os.WriteFile(old, []byte("an old checkpoint"), 0o644)
	os.MkdirAll(filepath.Join(root, "sweeps", "attack-II"), 0o755)
	c := mustOpen(t, root)
	key := mustKey(t, "pretrain", 1)
	os.MkdirAll(filepath.Join(c.Dir(), ".tmp-"+key.Name()+"-99-123"), 0o755)
	calls := 0
	if _, cached, err := c.Get(key, writer(&calls, map[string]string{"model.bin": "new"})); err != nil || cached || calls != 1 {
		t.Fatalf("cached %v, %d calls, %v", cached, calls, err)
	}
	if data, _ := os.ReadFile(old); string(data) != "an old checkpoint" {
		t.Error("an old-layout file changed")
	}
}

func TestRoot(t *testing.T) {
	t.Setenv("MMPOISON_CACHE", "/some/where")
	if r, err := Root(); err != nil || r != "/some/where" {
		t.Errorf("Root() = %q, %v", r, err)
	}
	if c, err := Open(""); err != nil || c.Dir() != filepath.Join("/some/where", fmt.Sprintf("v%d", FormatVersion)) {
		t.Errorf("Open(\"\") = %v, %v", c, err)
	}
}

// A file's identity changes when its size or modification time does.
func TestIdentifyFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "w.safetensors")
	os.WriteFile(p, []byte("x"), 0o644)
	a := IdentifyFile(p)
	os.Chtimes(p, time.Now(), time.Now().Add(time.Hour))
	b := IdentifyFile(p)
	os.WriteFile(p, []byte("xy"), 0o644)
	os.Chtimes(p, time.Now(), b.ModTime)
	c := IdentifyFile(p)
	if a == b || b == c || a.Path != p || c.Size != 2 {
		t.Errorf("identities %+v, %+v, %+v", a, b, c)
	}
	if IdentifyFile("") != (FileID{}) {
		t.Error("the empty path has an identity")
	}
}

func mustOpen(t *testing.T, root string) *Cache {
	t.Helper()
	c, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// dirNames lists a version folder's names but the lock folder (which holds a lock file per entry ever computed).
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.Name() != ".locks" {
			names = append(names, e.Name())
		}
	}
	return names
}
