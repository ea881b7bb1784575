package weights

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/safetensors"
	"github.com/mmpoison/mmpoison/poisoning/fuzzcheck"
)

// hugeImageConfig is a ViT whose shapes say 8224-pixel images (patches of 32 on a 257×257 grid) in a file of
// 2 MB: its preprocessing would take 8224² pixels per image.
func hugeImageConfig() clip.Config {
	return clip.Config{Name: "huge-image", EmbedDim: 8, ImageSize: 257 * 32, ImageChannels: 3, PatchSize: 32,
		VisionWidth: 8, VisionHeads: 1, ContextLength: 4, VocabSize: 10, TextWidth: 8, TextHeads: 1,
		ImageMean: clip.OpenAIMean, ImageStd: clip.OpenAIStd}
}

// Hostile checkpoints and config files are refused with one error naming the file, in memory bounded by the
// file (and far below what they imply): devices, named pipes, oversized configs, and shapes implying images
// larger than CLIP's preprocessing makes.
func TestHostileCheckpoints(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.safetensors")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	huge := writeFile(t, dir, "huge-image.safetensors", randomTensors(hugeImageConfig(), 1),
		map[string]string{MetadataVisionHeads: "1", MetadataTextHeads: "1"})
	hf := filepath.Join(dir, "hf")
	os.Mkdir(hf, 0o755)
	hfModel := writeFile(t, hf, "model.safetensors", hfTensors(t, randomTensors(rgbConfig(), 1)), nil)
	bigConfig := filepath.Join(dir, "big-config.json")
	os.WriteFile(bigConfig, []byte(`{"model_type": "clip", "pad": "`+strings.Repeat("x", MaxConfigSize)+`"}`), 0o644)
	for _, tc := range []struct {
		name, path, config, want string
	}{
		{"/dev/zero", "/dev/zero", "", "reading checkpoint: /dev/zero is not a regular file"},
		{"a named pipe", fifo, "", fifo + " is not a regular file"},
		{"shapes of 8224-pixel images", huge, "", "image_size 8224 is above the 8192 pixels"},
		{"config.json from /dev/zero", hfModel, "/dev/zero", "HuggingFace config: /dev/zero is not a regular file"},
		{"a 1 MiB config.json", hfModel, bigConfig, "more than the 1048576 it may have"},
		{"an open_clip config from /dev/zero", huge, "/dev/zero", "open_clip config: /dev/zero is not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			fuzzcheck.Within(t, "Load", 8<<20, func() { _, _, err = Load(tc.path, tc.config, Hints{}) })
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
				t.Errorf("Load error %v, want one naming %s and saying %q", err, tc.path, tc.want)
			}
		})
	}
}

// InferConfig refuses image sizes above imageprep.MaxSide however the shapes say them: a ViT's patch × grid, a
// ResNet's attention-pool grid × 32.
func TestInferConfigRefusesHugeImages(t *testing.T) {
	rn := rnConfig()
	rn.ImageSize = 300 * clip.ResNetDownsampling
	for _, cfg := range []clip.Config{hugeImageConfig(), rn} {
		var ts []*safetensors.Tensor
		for _, p := range cfg.Params() { // Shapes alone: InferConfig reads no value.
			ts = append(ts, &safetensors.Tensor{Name: p.Name, DType: "F32", Shape: p.Dims})
		}
		_, err := InferConfig(&safetensors.File{Tensors: ts}, Hints{VisionHeads: 1, TextHeads: 1})
		if err == nil || !strings.Contains(err.Error(), "is above the 8192 pixels") {
			t.Errorf("%s at %d pixels: %v", cfg.Name, cfg.ImageSize, err)
		}
	}
}
