package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
)

// "mmpoison paper -mini" runs the paper's pipeline on a generated miniature and writes the report folder; bad
// command lines fail with messages that name the problem.
func TestPaperCommand(t *testing.T) {
	vocab, err := experiment.FindCLIPVocab("../../../../shared/data/clip/bpe_simple_vocab_16e6.txt.gz")
	if err != nil {
		t.Skip(err)
	}
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
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-dataset", "coco", "-root", dir}, "needs a pre-trained checkpoint"},
		{[]string{"-dataset", "imagenet", "-mini", dir, "-tokenizer", vocab}, `unknown dataset "imagenet"`},
		{[]string{"-dataset", "coco", "-root", dir, "-weights", filepath.Join(dir, "mini", "random-mini-clip.safetensors"),
			"-tokenizer", vocab}, "no COCO annotations in " + filepath.Join(dir, "annotations")},
		{[]string{"-mini", dir, "-tokenizer", vocab, "extra"}, `unexpected argument "extra"`},
	} {
		err := paper(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("paper %q: error %v, want one containing %q", tc.args, err, tc.want)
		}
	}
}
