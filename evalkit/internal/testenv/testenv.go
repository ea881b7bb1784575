// Package testenv is what evalkit's tests share about their environment: one fresh model cache per test binary,
// and skipping (visibly) when Fashion-MNIST or the CLIP vocabulary is not installed. It is internal to the tests.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/fashionmnist"
)

// Main runs a package's tests with one fresh model cache, so that its tests reuse the models others trained.
// With MMPOISON_TEST_CACHE set (CI sets it to a fresh folder that the notebooks then use as their cache), the
// tests train into that folder and leave it in place. Call it from TestMain.
func Main(m *testing.M) {
	dir := os.Getenv("MMPOISON_TEST_CACHE")
	keep := dir != ""
	if !keep {
		var err error
		if dir, err = os.MkdirTemp("", "mmpoison-test-cache"); err != nil {
			panic(err)
		}
	}
	os.Setenv("MMPOISON_CACHE", dir)
	code := m.Run()
	if !keep {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// RequireFashionMNIST skips the test when Fashion-MNIST is not installed in its system folder.
func RequireFashionMNIST(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(fashionmnist.DefaultSystemDir, fashionmnist.TrainImagesFile)); err != nil {
		t.Skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
	}
}

// Vocab returns the real CLIP BPE vocabulary ($MMPOISON_CLIP_VOCAB, or shared/data/clip beside the checkout,
// up from the test's package folder by up), or skips the test.
func Vocab(t testing.TB, up string) string {
	t.Helper()
	p, err := FindVocab(filepath.Join(up, "shared", "data", "clip", "bpe_simple_vocab_16e6.txt.gz"))
	if err != nil {
		t.Skip(err)
	}
	return p
}

// VocabEnv names the environment variable that points to OpenAI's bpe_simple_vocab_16e6.txt.gz.
const VocabEnv = "MMPOISON_CLIP_VOCAB"

// FindVocab returns the CLIP BPE vocabulary file: $MMPOISON_CLIP_VOCAB when set (it must exist), else the
// first of candidates that exists. The error lists what was tried.
func FindVocab(candidates ...string) (string, error) {
	if p := os.Getenv(VocabEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("$%s: %w", VocabEnv, err)
		}
		return p, nil
	}
	for _, p := range candidates {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", errors.New("no CLIP BPE vocabulary (bpe_simple_vocab_16e6.txt.gz): set $" + VocabEnv + "; looked for " +
		strings.Join(candidates, ", "))
}
