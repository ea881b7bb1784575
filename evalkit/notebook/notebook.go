// Package notebook is the small helper every mmpoison notebook starts from: its size switch (quick, as CI
// runs it, or full), the experiment its cells share, and one-call access to its data and its cached run.
//
// GoNB compiles each cell as its own program and re-runs the notebook's global declarations in every cell,
// so a notebook declares its settings once, in a global of its settings cell,
//
//	var nb = notebook.Settings{Full: false, Edit: func(s *experiment.Spec) { s.Attack.Kind = attack.KindSingleImage }}
//
// and every later cell starts from it:
//
//	%%
//	res := nb.Run() // trained once, then loaded from the cache
//	kernelext.ShowTable(report.AttackTable(res))
//
// Errors stop the cell with one line on stderr (Must, Check), never a stack trace.
package notebook

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/mmpoison/mmpoison/evalkit/cache"
	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/study"
	"github.com/mmpoison/mmpoison/evalkit/sweep"
)

// Settings are a notebook's size and the experiment its cells share.
type Settings struct {
	// Full picks the demo's size (experiment.DefaultSpec: 10,000 pre-training images) and three seeds; false
	// picks experiment.QuickSpec (3,000 images) and one seed, minutes on 2 cores, as CI runs every notebook.
	Full bool
	// Edit, when set, changes the base spec before any cell sees it (the attack, the seed, held-out data...).
	Edit func(*experiment.Spec)
}

// Spec returns the notebook's experiment: QuickSpec or DefaultSpec, changed by Edit.
func (s Settings) Spec() experiment.Spec {
	spec := experiment.QuickSpec()
	if s.Full {
		spec = experiment.DefaultSpec()
	}
	if s.Edit != nil {
		s.Edit(&spec)
	}
	return spec
}

// Seeds returns the seeds of the notebook's repetitions: the spec's seed alone, or, with Full, it and the next
// two (42, 43, 44 for the default seed).
func (s Settings) Seeds() []int64 {
	seed := s.Spec().Seed
	if s.Full {
		return []int64{seed, seed + 1, seed + 2}
	}
	return []int64{seed}
}

// String describes the size in words, e.g. "quick size (3,000 pre-training images), one seed (42)".
func (s Settings) String() string {
	spec, seeds := s.Spec(), s.Seeds()
	size := "quick size"
	if s.Full {
		size = "full size"
	}
	if spec.Real.Dataset == "" {
		size += fmt.Sprintf(" (%s pre-training images)", thousands(spec.Data.Pool))
	}
	if len(seeds) == 1 {
		return fmt.Sprintf("%s, one seed (%d)", size, seeds[0])
	}
	words := make([]string, len(seeds))
	for i, seed := range seeds {
		words[i] = fmt.Sprint(seed)
	}
	return fmt.Sprintf("%s, %d seeds (%s)", size, len(seeds), strings.Join(words, ", "))
}

// Data loads the notebook's data (experiment.LoadData of Spec), or stops the cell.
func (s Settings) Data() *experiment.Data { return Must(experiment.LoadData(s.Spec())) }

// Run returns the notebook's experiment, quietly: trained the first time, then loaded from the cache (the models
// and the result, so that every later cell gets it at once).
func (s Settings) Run() *experiment.Result { return s.run(true) }

// Train is Run with a live progress display for every model it has to train (none when all are cached).
func (s Settings) Train() *experiment.Result { return s.run(false) }

// run runs the notebook's experiment as a sweep of one, so that its result is cached too.
func (s Settings) run(quiet bool) *experiment.Result {
	sw := &sweep.Sweep{Options: experiment.Options{Quiet: quiet}}
	return Must(sw.Run([]experiment.Spec{s.Spec()}))[0]
}

// RunSeeds returns the experiment once per seed (Seeds), quietly, each run kept in the cache.
func (s Settings) RunSeeds() []*experiment.Result {
	sw := &sweep.Sweep{Options: experiment.Options{Quiet: true}}
	return Must(sw.Run(sweep.WithSeeds(s.Spec(), s.Seeds()...)))
}

// Verdict says in Markdown, one line per finding, whether each holds in this notebook's runs, with what was
// measured, the paper's numbers and the finding's bar, e.g.
// "- **F1 holds** in this run (quick size (3,000 pre-training images), one seed (42)): …; the paper: …. Bar: …."
func (s Settings) Verdict(findings ...study.Finding) string {
	var b strings.Builder
	for _, f := range findings {
		verdict := "holds"
		if !f.Holds {
			verdict = "does not hold"
		}
		fmt.Fprintf(&b, "- **%s %s** in this run (%s): %s; the paper: %s. Bar: %s.\n", f.ID, verdict, s, f.Measured,
			f.Paper, f.Bar)
	}
	return b.String()
}

// CacheName returns a path inside the model cache relative to the cache's root, for display: the same on
// every machine.
func CacheName(path string) string {
	root, err := cache.Root()
	if err != nil {
		return filepath.Base(path)
	}
	rel, err := filepath.Rel(root, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return filepath.Base(path)
	}
	return filepath.ToSlash(rel)
}

// VocabEnv names the environment variable that points to OpenAI's CLIP vocabulary file.
const VocabEnv = "MMPOISON_CLIP_VOCAB"

// vocabFile is where the shared folder beside the checkout keeps OpenAI's CLIP BPE vocabulary.
var vocabFile = filepath.Join("shared", "data", "clip", "bpe_simple_vocab_16e6.txt.gz")

// Vocab returns the real CLIP BPE vocabulary that the notebooks on pre-trained checkpoints need: the file
// $MMPOISON_CLIP_VOCAB names, else shared/data/clip/bpe_simple_vocab_16e6.txt.gz in the folder that holds the
// checkout (../shared, seen from the repository root). The error says where it looked and how to fix it.
func Vocab() (string, error) {
	if p := os.Getenv(VocabEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("$%s names no readable CLIP vocabulary: %w", VocabEnv, err)
		}
		return p, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(filepath.Dir(root), vocabFile)
	if st, err := os.Stat(p); err == nil && !st.IsDir() {
		return p, nil
	}
	return "", fmt.Errorf("the CLIP vocabulary is missing: no ../%s beside this checkout, and $%s is not set; "+
		"put OpenAI's file there (README.md, \"../shared\") or set $%s to it", filepath.ToSlash(vocabFile), VocabEnv, VocabEnv)
}

// module is the first line of the repository's go.mod.
const module = "module github.com/mmpoison/mmpoison"

// repoRoot finds the mmpoison checkout: the parent of $GONB_DIR (the notebook's folder, notebooks/), or the
// first folder up from the working directory whose go.mod declares the module.
func repoRoot() (string, error) {
	start := os.Getenv("GONB_DIR")
	if start == "" {
		var err error
		if start, err = os.Getwd(); err != nil {
			return "", err
		}
	}
	for dir := filepath.Clean(start); ; dir = filepath.Dir(dir) {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(data), module+"\n") {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", errors.New("no mmpoison checkout above " + start)
		}
	}
}

// Must returns v, or stops the cell with err on one line of stderr.
func Must[T any](v T, err error) T {
	Check(err)
	return v
}

// Check stops the cell with err on one line of stderr when err is not nil (GoNB then reports exit status 1).
func Check(err error) {
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		exit(1)
	}
}

// stderr and exit are replaced by the tests.
var (
	stderr io.Writer = os.Stderr
	exit             = os.Exit
)

// thousands writes n with comma separators (3000 → "3,000").
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
