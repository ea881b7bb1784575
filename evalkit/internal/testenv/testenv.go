// Package testenv is what evalkit's tests share about their environment: one fresh model cache per test binary,
// and skipping visibly (poisoning/testskip) when Fashion-MNIST or the CLIP vocabulary is not installed. It is
// internal to the tests.
package testenv

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/fashionmnist"
	"github.com/mmpoison/mmpoison/poisoning/testskip"
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
	code := testskip.Run(m)
	if !keep {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// RequireFashionMNIST skips the test (visibly, see poisoning/testskip) when Fashion-MNIST is not installed in its
// system folder.
func RequireFashionMNIST(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(fashionmnist.DefaultSystemDir, fashionmnist.TrainImagesFile)); err != nil {
		testskip.Skip(t, "Fashion-MNIST is not in "+fashionmnist.DefaultSystemDir+": apt-get install dataset-fashion-mnist")
	}
}

// Vocab returns the real CLIP BPE vocabulary ($MMPOISON_CLIP_VOCAB, or shared/data/clip beside the checkout,
// up from the test's package folder by up), or skips the test visibly (testskip.CLIPVocab).
func Vocab(t testing.TB, up string) string {
	t.Helper()
	return testskip.CLIPVocab(t, up)
}
