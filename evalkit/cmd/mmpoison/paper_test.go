package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/internal/testenv"
)

// "mmpoison paper -mini" runs the paper's pipeline on a generated miniature and writes the report folder; bad
// command lines fail with messages that name the problem.
func TestPaperCommand(t *testing.T) {
	vocab := testenv.Vocab(t, "../../../..")
	dir := t.TempDir()
	t.Setenv("MMPOISON_CACHE", filepath.Join(dir, "cache"))
	out := filepath.Join(dir, "report")
	if err := paper([]string{"-mini", filepath.Join(dir, "mini"), "-dataset", "flickr-pascal", "-tokenizer", vocab,
		"-out", out, "-quiet"}); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "Attack II sheep → aeroplane") || !strings.Contains(string(md), "fine-tuned on flickr-pascal") {
		t.Errorf("report.md:\n%s", md)
	}
	// -prepare writes the miniature and the spec of its run, and runs nothing.
	prepared := filepath.Join(dir, "prepared")
	if err := paper([]string{"-mini", prepared, "-tokenizer", vocab, "-prepare", "-epochs", "3"}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(prepared, "spec.json"))
	if err != nil {
		t.Fatal(err)
	}
	var spec experiment.Spec
	if err := json.Unmarshal(data, &spec); err != nil || spec.Finetune.Epochs != 3 || spec.Real.Dataset != experiment.DatasetCOCO || spec.Validate() != nil {
		t.Errorf("spec.json: %+v, %v", spec, err)
	}
	if _, err := os.Stat(spec.Real.Weights); err != nil {
		t.Errorf("the prepared checkpoint: %v", err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-dataset", "coco", "-root", dir}, "needs a pre-trained checkpoint"},
		{[]string{"-dataset", "imagenet", "-mini", dir, "-tokenizer", vocab}, `unknown dataset "imagenet"`},
		{[]string{"-dataset", "coco", "-root", dir, "-weights", filepath.Join(dir, "mini", "random-mini-clip.safetensors"),
			"-tokenizer", vocab}, "no COCO annotations in " + filepath.Join(dir, "annotations")},
		{[]string{"-mini", dir, "-tokenizer", vocab, "extra"}, `unexpected argument "extra"`},
		{[]string{"-dataset", "imagenet", "-root", dir, "-weights", "w", "-tokenizer", vocab}, `unknown dataset "imagenet"`},
		{[]string{"-prepare"}, "-prepare needs -mini"},
	} {
		err := paper(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("paper %q: error %v, want one containing %q", tc.args, err, tc.want)
		}
	}
}
