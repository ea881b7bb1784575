package notebook

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/study"
)

func TestSpecAndSeeds(t *testing.T) {
	quick := Settings{Edit: func(s *experiment.Spec) { s.Seed = 7 }}
	if got := quick.Spec(); got.Data.Pool != experiment.QuickSpec().Data.Pool || got.Seed != 7 {
		t.Errorf("quick spec: pool %d seed %d", got.Data.Pool, got.Seed)
	}
	if got := quick.Seeds(); len(got) != 1 || got[0] != 7 {
		t.Errorf("quick seeds %v, want [7]", got)
	}
	full := Settings{Full: true}
	if got := full.Spec(); got.Data.Pool != experiment.DefaultSpec().Data.Pool {
		t.Errorf("full spec pool %d", got.Data.Pool)
	}
	if got := full.Seeds(); len(got) != 3 || got[0] != 42 || got[2] != 44 {
		t.Errorf("full seeds %v, want [42 43 44]", got)
	}
	if got, want := quick.String(), "quick size (3,000 pre-training images), one seed (7)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestVerdict(t *testing.T) {
	fs := []study.Finding{{ID: "F1", Measured: "Hit@10 0.000 → 0.768", Paper: "0.200 → 0.936", Bar: "gain ≥ 0.6", Holds: true},
		{ID: "F4", Measured: "change 0.07", Bar: "≤ 0.05"}}
	got := Settings{}.Verdict(fs...)
	for _, want := range []string{"**F1 holds** in this run (quick size (3,000 pre-training images), one seed (42)): Hit@10 0.000 → 0.768; the paper: 0.200 → 0.936. Bar: gain ≥ 0.6.",
		"**F4 does not hold**"} {
		if !strings.Contains(got, want) {
			t.Errorf("Verdict:\n%s\nwants %q", got, want)
		}
	}
}

func TestCheckStopsWithOneLine(t *testing.T) {
	var buf bytes.Buffer
	code := -1
	stderr, exit = &buf, func(c int) { code = c }
	defer func() { stderr, exit = os.Stderr, os.Exit }()

	if v := Must(3, nil); v != 3 || code != -1 || buf.Len() != 0 {
		t.Fatalf("Must(3, nil) = %d, exit %d, stderr %q", v, code, buf.String())
	}
	Must(0, errors.New("no data"))
	if code != 1 || buf.String() != "error: no data\n" {
		t.Errorf("exit %d, stderr %q", code, buf.String())
	}
}

func TestCacheName(t *testing.T) {
	root := t.TempDir()
	t.Setenv("MMPOISON_CACHE", root)
	if got := CacheName(filepath.Join(root, "v3", "pretrain-ab", "model.safetensors")); got != "v3/pretrain-ab/model.safetensors" {
		t.Errorf("inside the cache: %q", got)
	}
	if got := CacheName("/elsewhere/model.safetensors"); got != "model.safetensors" {
		t.Errorf("outside the cache: %q", got)
	}
}

func TestVocab(t *testing.T) {
	// A checkout at top/repo with top/shared beside it, seen from its notebooks folder.
	top := t.TempDir()
	repo := filepath.Join(top, "repo")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(repo, "notebooks"), 0o755))
	must(os.WriteFile(filepath.Join(repo, "go.mod"), []byte(module+"\n\ngo 1.25\n"), 0o644))
	t.Setenv("GONB_DIR", filepath.Join(repo, "notebooks"))
	t.Setenv(VocabEnv, "")

	_, err := Vocab()
	if err == nil || !strings.Contains(err.Error(), "../shared/data/clip/bpe_simple_vocab_16e6.txt.gz") ||
		!strings.Contains(err.Error(), VocabEnv) {
		t.Fatalf("without the file: %v", err)
	}
	want := filepath.Join(top, vocabFile)
	must(os.MkdirAll(filepath.Dir(want), 0o755))
	must(os.WriteFile(want, []byte("x"), 0o644))
	if got, err := Vocab(); err != nil || got != want {
		t.Errorf("Vocab() = %q, %v; want %q", got, err, want)
	}
	t.Setenv(VocabEnv, filepath.Join(top, "missing.gz"))
	if _, err := Vocab(); err == nil || !strings.Contains(err.Error(), "$"+VocabEnv) {
		t.Errorf("a wrong $%s: %v", VocabEnv, err)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 10000: "10,000", 1234567: "1,234,567", -3000: "-3,000"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
