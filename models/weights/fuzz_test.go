package weights

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/internal/cliptest"
	"github.com/mmpoison/mmpoison/models/safetensors"
	"github.com/mmpoison/mmpoison/poisoning/fuzzcheck"
	"github.com/mmpoison/mmpoison/poisoning/imageprep"
)

// shapesOnly returns the tensors of cfg's parameters with their shapes and no values (InferConfig reads none).
func shapesOnly(cfg clip.Config) []*safetensors.Tensor {
	var ts []*safetensors.Tensor
	for _, p := range cfg.Params() {
		ts = append(ts, &safetensors.Tensor{Name: p.Name, DType: "F32", Shape: slices.Clone(p.Dims)})
	}
	return ts
}

// checkAccepted fails t unless cfg, accepted by a loader, is valid, within CLIP's image sizes, and (for a ViT)
// has the image size its patches and grid give without overflow.
func checkAccepted(t *testing.T, cfg clip.Config) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("accepted an invalid config %+v: %v", cfg, err)
	}
	if cfg.ImageSize > imageprep.MaxSide {
		t.Fatalf("accepted image size %d", cfg.ImageSize)
	}
	if !cfg.IsResNet() && cfg.ImageSize/cfg.PatchSize*cfg.PatchSize != cfg.ImageSize {
		t.Fatalf("accepted image size %d for patches of %d", cfg.ImageSize, cfg.PatchSize)
	}
}

// FuzzInferConfig infers configs from the OpenAI-named tensor shapes of the micro ViT (or of a small
// ModifiedResNet), with the shapes InferConfig reads set to the fuzzer's sizes, and head counts given as metadata
// text. Properties: no panic; at most 1 MiB allocated; an accepted config is valid, has images of at most
// imageprep.MaxSide pixels, and has exactly the sizes the shapes give (no overflow turned into a plausible size).
func FuzzInferConfig(f *testing.F) {
	f.Add(4, 2, 8, 1, 8, 4, 6, 4, false, "2", "2")
	f.Add(32, 257, 8, 3, 8, 4, 10, 8, false, "1", "1")      // 8224-pixel images
	f.Add(1<<32, 1<<32, 8, 3, 8, 4, 10, 8, false, "1", "1") // a product that wraps around
	f.Add(0, 7, 4, 3, 32, 8, 50, 24, true, "8", " 2")       // a ResNet, 224 pixels
	f.Add(0, 300, 4, 3, 32, 8, 50, 24, true, "8", "x")      // a ResNet, 9600 pixels
	f.Fuzz(func(t *testing.T, patch, grid, width, channels, textWidth, context, vocab, embed int, resNet bool,
		visionHeads, textHeads string) {
		base := cliptest.MicroConfig()
		if resNet {
			base = rnConfig()
		}
		dims := map[string][]int{
			"visual.conv1.weight": {width, channels, patch, patch}, "visual.positional_embedding": {grid*grid + 1, width},
			"visual.attnpool.positional_embedding": {grid*grid + 1, 32 * width}, "visual.layer1.0.conv1.weight": {width, width, 1, 1},
			"text_projection": {textWidth, embed}, "positional_embedding": {context, textWidth},
			"token_embedding.weight": {vocab, textWidth}, "ln_final.weight": {textWidth},
		}
		if resNet {
			dims["visual.conv1.weight"] = []int{width / 2, channels, 3, 3}
		}
		var ts []*safetensors.Tensor
		for _, p := range base.Params() {
			shape, ok := dims[p.Name]
			if !ok {
				shape = p.Dims
			}
			ts = append(ts, &safetensors.Tensor{Name: p.Name, DType: "F32", Shape: slices.Clone(shape)})
		}
		file := &safetensors.File{Tensors: ts, Metadata: map[string]string{MetadataVisionHeads: visionHeads, MetadataTextHeads: textHeads}}
		var got clip.Config
		var err error
		fuzzcheck.Within(t, "InferConfig", 1<<20, func() { got, err = InferConfig(file, Hints{}) })
		if err != nil {
			return
		}
		checkAccepted(t, got)
		g := math.Abs(float64(grid))        // The positions are grid²+1, which a negative grid gives too.
		want := g * clip.ResNetDownsampling // In floats: no wrapping around.
		if !resNet {
			want = g * float64(patch)
		}
		if float64(got.ImageSize) != want || got.VisionWidth != width || got.TextWidth != textWidth || got.EmbedDim != embed {
			t.Fatalf("shapes with patch %d, grid %d, width %d gave %+v", patch, grid, width, got)
		}
	})
}

// writeMicroCheckpoints writes fuzzing seeds: the micro model OpenAI-named (by SaveOpenAI, with its metadata)
// and HuggingFace-named, returning their bytes; dir gets the HuggingFace config.json of the micro model.
func writeMicroCheckpoints(f *testing.F, dir string) (openAI, hf []byte) {
	cfg := cliptest.MicroConfig()
	ts := randomTensors(cfg, 1)
	ctx, _, err := loadOpenAIFile(&safetensors.File{Tensors: ts, Metadata: map[string]string{
		MetadataVisionHeads: "2", MetadataTextHeads: "2"}}, Hints{}, "")
	if err != nil {
		f.Fatal(err)
	}
	path := filepath.Join(dir, "seed.safetensors")
	if err := SaveOpenAI(path, ctx, cfg); err != nil {
		f.Fatal(err)
	}
	if openAI, err = os.ReadFile(path); err != nil {
		f.Fatal(err)
	}
	hfts, err := huggingFaceTensors(ts)
	if err != nil {
		f.Fatal(err)
	}
	if err := safetensors.WriteFile(path, &safetensors.File{Tensors: hfts}); err != nil {
		f.Fatal(err)
	}
	if hf, err = os.ReadFile(path); err != nil {
		f.Fatal(err)
	}
	data, _ := json.Marshal(hfConfigFor(cfg))
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		f.Fatal(err)
	}
	return openAI, hf
}

// FuzzLoad loads arbitrary bytes as a checkpoint with Load (either naming; HuggingFace names with the micro
// model's config.json beside). Properties: no panic; memory within 16 times the header plus 8 times the file;
// an accepted checkpoint has a valid config within CLIP's image sizes, and its model holds every parameter with
// its shape.
func FuzzLoad(f *testing.F) {
	dir := f.TempDir()
	openAI, hf := writeMicroCheckpoints(f, dir)
	f.Add(fuzzcheck.WithoutChecksum(openAI))
	f.Add(fuzzcheck.WithoutChecksum(hf))
	f.Add(openAI)
	f.Add([]byte("PK\x03\x04archive/data.pkl"))
	f.Add(binary.LittleEndian.AppendUint64(nil, 1<<40))
	path := filepath.Join(dir, "model.safetensors")
	f.Fuzz(func(t *testing.T, in []byte) {
		var cfg clip.Config
		var err error
		var ts []*safetensors.Tensor
		cliptest.ReadAsCheckpoint(t, path, in, func() {
			ctx, c, lerr := Load(path, "", Hints{})
			cfg, err = c, lerr
			if lerr == nil {
				ts, err = clip.ParamsToTensors(ctx, c)
			}
		})
		if err != nil {
			return
		}
		checkAccepted(t, cfg)
		for i, p := range cfg.Params() {
			if !slices.Equal(ts[i].Shape, p.Dims) {
				t.Fatalf("parameter %s has shape %v, want %v", p.Name, ts[i].Shape, p.Dims)
			}
		}
	})
}

// FuzzHuggingFaceConfig reads arbitrary bytes as a HuggingFace config.json and, when that works, infers the
// micro model's config from its HuggingFace-named shapes with it. Properties: no panic; memory within 64 times
// the input; an accepted config is valid, and every size config.json states equals the shapes'.
func FuzzHuggingFaceConfig(f *testing.F) {
	cfg := cliptest.MicroConfig()
	good, _ := json.Marshal(hfConfigFor(cfg))
	f.Add(good)
	f.Add([]byte(`{"model_type": "clip", "vision_config_dict": {"num_attention_heads": 4}, "text_config": null}`))
	f.Add([]byte(`{"model_cfg": {}}`))
	f.Add([]byte(`{"vision_config": {"hidden_act": "gelu", "layer_norm_eps": 1e-6}}`))
	hfts, err := huggingFaceTensors(randomTensors(cfg, 2))
	if err != nil {
		f.Fatal(err)
	}
	file := &safetensors.File{Tensors: hfts}
	f.Fuzz(func(t *testing.T, in []byte) {
		var got clip.Config
		var hc *hfConfig
		var err error
		fuzzcheck.Within(t, "parseHFConfig and inferHFConfig", 64*uint64(len(in)), func() {
			if hc, err = parseHFConfig(in, "config.json"); err == nil {
				got, err = inferHFConfig(file, hc, "config.json")
			}
		})
		if err != nil {
			return
		}
		checkAccepted(t, got)
		for _, c := range []struct {
			stated *int
			shape  int
		}{{hc.ProjectionDim, got.EmbedDim}, {hc.Vision.ImageSize, got.ImageSize}, {hc.Vision.HiddenSize, got.VisionWidth},
			{hc.Text.MaxPositionEmbeddings, got.ContextLength}, {hc.Text.VocabSize, got.VocabSize}} {
			if c.stated != nil && *c.stated != c.shape {
				t.Fatalf("config.json states %d, the accepted config has %d", *c.stated, c.shape)
			}
		}
	})
}

// FuzzOpenCLIPConfig reads arbitrary bytes as an open_clip model config and, when that works, infers the micro
// model's config (OpenAI-named shapes, no metadata) with it. Properties: no panic; memory within 64 times the
// input; an accepted config is valid, its head counts come from the config (open_clip's defaults for absent
// fields), and the sizes the config states equal the shapes'.
func FuzzOpenCLIPConfig(f *testing.F) {
	for _, name := range []string{"vit-rgb.json", "rn-tiny.json", "malformed.json", "hub/open_clip_config.json"} {
		data, err := os.ReadFile(filepath.Join(openCLIPDir, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	cfg := cliptest.MicroConfig()
	f.Add([]byte(fmt.Sprintf(`{"embed_dim": 4, "quick_gelu": true, "vision_cfg": {"image_size": [8, 8], "layers": 1, `+
		`"width": 8, "head_width": 4, "patch_size": 4}, "text_cfg": {"context_length": 4, "vocab_size": 6, "width": 8, `+
		`"heads": %d, "layers": 1}}`, cfg.TextHeads)))
	file := &safetensors.File{Tensors: shapesOnly(cfg)}
	f.Fuzz(func(t *testing.T, in []byte) {
		var got clip.Config
		var oc *openCLIPConfig
		var err error
		fuzzcheck.Within(t, "parseOpenCLIPConfig and inferConfig", 64*uint64(len(in)), func() {
			if oc, err = parseOpenCLIPConfig(in); err == nil {
				oc.path = "open_clip_config.json"
				got, err = inferConfig(file, Hints{}, oc)
			}
		})
		if err != nil {
			return
		}
		checkAccepted(t, got)
		headWidth, textHeads := openCLIPDefaultHeadWidth, openCLIPDefaultTextHeads
		if oc.Vision.HeadWidth != nil {
			headWidth = *oc.Vision.HeadWidth
		}
		if oc.Text.Heads != nil {
			textHeads = *oc.Text.Heads
		}
		if got.VisionHeads != cfg.VisionWidth/headWidth || got.TextHeads != textHeads {
			t.Fatalf("heads %d and %d, the config gives %d and %d", got.VisionHeads, got.TextHeads, cfg.VisionWidth/headWidth, textHeads)
		}
		if oc.EmbedDim != nil && *oc.EmbedDim != got.EmbedDim || oc.Text.Width != nil && *oc.Text.Width != got.TextWidth {
			t.Fatalf("the config states other sizes than the accepted %+v", got)
		}
	})
}
