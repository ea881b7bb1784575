// Package cliptest is test support for the packages that read CLIP checkpoints (models/clip, models/weights,
// models/train): a model small enough that its checkpoint makes a fuzzing seed of a few kilobytes, and a fuzz
// target's reading of arbitrary bytes as a checkpoint file. Only _test.go files import it.
package cliptest

import (
	"encoding/binary"
	"os"
	"testing"

	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/poisoning/fuzzcheck"
)

// MicroConfig is a ViT of width 8 with one layer per tower, 8×8 grey images and a 6-word vocabulary.
func MicroConfig() clip.Config {
	return clip.Config{Name: "micro", EmbedDim: 4, ImageSize: 8, ImageChannels: 1, PatchSize: 4, VisionWidth: 8,
		VisionLayers: 1, VisionHeads: 2, ContextLength: 4, VocabSize: 6, TextWidth: 8, TextLayers: 1, TextHeads: 2,
		ImageMean: clip.OpenAIMean, ImageStd: clip.OpenAIStd}
}

// ReadAsCheckpoint writes in to path and runs read on it, failing t when read allocates more than a checkpoint
// reader may: 16 times the safetensors header the input announces (at most the input) plus 8 times the input
// (the file, its decoded tensors and the model made of them).
func ReadAsCheckpoint(t *testing.T, path string, in []byte, read func()) {
	t.Helper()
	if err := os.WriteFile(path, in, 0o644); err != nil {
		t.Fatal(err)
	}
	hlen := uint64(0)
	if len(in) >= 8 {
		hlen = min(binary.LittleEndian.Uint64(in), uint64(len(in)))
	}
	fuzzcheck.Within(t, "reading a checkpoint", 16*hlen+8*uint64(len(in)), read)
}
