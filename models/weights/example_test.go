package weights_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/safetensors"
	"github.com/mmpoison/mmpoison/models/weights"
)

// InferConfig reads the architecture off an OpenAI-named checkpoint's shapes; the head counts come from hints
// (width/64 would give 1 head for this width-64 model).
func ExampleInferConfig() {
	dir, _ := os.MkdirTemp("", "weights")
	defer os.RemoveAll(dir)

	// A tiny checkpoint in OpenAI's naming (zero weights suffice: only the shapes matter here).
	cfg := clip.Presets["tiny"]
	cfg.VocabSize = 50
	var ts []*safetensors.Tensor
	for _, p := range cfg.Params() {
		ts = append(ts, &safetensors.Tensor{Name: p.Name, DType: "F32", Shape: p.Dims,
			F32: make([]float32, safetensors.NumElements(p.Dims))})
	}
	path := filepath.Join(dir, "tiny.safetensors")
	if err := safetensors.WriteFile(path, &safetensors.File{Tensors: ts}); err != nil {
		fmt.Println(err)
		return
	}

	f, _ := safetensors.ReadFile(path)
	got, err := weights.InferConfig(f, weights.Hints{VisionHeads: 2, TextHeads: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("image %dx%d, %d channel(s), patch %d\n", got.ImageSize, got.ImageSize, got.ImageChannels, got.PatchSize)
	fmt.Printf("vision: width %d, %d layers, %d heads\n", got.VisionWidth, got.VisionLayers, got.VisionHeads)
	fmt.Printf("text: width %d, %d layers, %d heads, context %d, vocab %d\n",
		got.TextWidth, got.TextLayers, got.TextHeads, got.ContextLength, got.VocabSize)
	fmt.Println("embed", got.EmbedDim, "OpenAI mean:", got.ImageMean == clip.OpenAIMean)
	// Output:
	// image 28x28, 1 channel(s), patch 7
	// vision: width 64, 2 layers, 2 heads
	// text: width 64, 2 layers, 2 heads, context 16, vocab 50
	// embed 64 OpenAI mean: true
}
