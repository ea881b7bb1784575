package weights

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/safetensors"
)

// tinyConfig is the tiny preset (1 channel, width 64, 2 heads: width/64 would give 1).
func tinyConfig() clip.Config {
	cfg := clip.Presets["tiny"]
	cfg.VocabSize = 50
	return cfg
}

// rgbConfig has 3 channels, different tower widths and depths (text width 32: width/64 would give 0 heads).
func rgbConfig() clip.Config {
	return clip.Config{Name: "rgb", EmbedDim: 48, ImageSize: 32, ImageChannels: 3, PatchSize: 8,
		VisionWidth: 64, VisionLayers: 2, VisionHeads: 2,
		ContextLength: 8, VocabSize: 50, TextWidth: 32, TextLayers: 1, TextHeads: 2,
		ImageMean: clip.OpenAIMean, ImageStd: clip.OpenAIStd}
}

// rnConfig has a ModifiedResNet image tower (width 4: OpenAI's rule gives 32·4/64 = 2 attention-pool heads)
// with two blocks in its second stage, so blocks with and without a downsample branch both occur.
func rnConfig() clip.Config {
	return clip.Config{Name: "rn", EmbedDim: 24, ImageSize: 64, ImageChannels: 3,
		VisionWidth: 4, VisionHeads: 8, ResNetLayers: [4]int{1, 2, 1, 1},
		ContextLength: 8, VocabSize: 50, TextWidth: 32, TextLayers: 1, TextHeads: 2,
		ImageMean: clip.OpenAIMean, ImageStd: clip.OpenAIStd}
}

// bnCounters returns PyTorch's num_batches_tracked counter (an I64 scalar) for every BatchNorm of cfg.
func bnCounters(cfg clip.Config) []*safetensors.Tensor {
	var out []*safetensors.Tensor
	for _, p := range cfg.Params() {
		if prefix, ok := strings.CutSuffix(p.Name, ".running_mean"); ok {
			out = append(out, &safetensors.Tensor{Name: prefix + BatchNormCounterSuffix, DType: "I64",
				Raw: binary.LittleEndian.AppendUint64(nil, 12345)})
		}
	}
	return out
}

// randomTensors returns every parameter of cfg, OpenAI-named, filled with distinct random values (biases and
// LayerNorm gains included, so that any mix-up of names, order or layout shows).
func randomTensors(cfg clip.Config, seed uint64) []*safetensors.Tensor {
	rng := rand.New(rand.NewPCG(seed, 7))
	var ts []*safetensors.Tensor
	for _, p := range cfg.Params() {
		data := make([]float32, safetensors.NumElements(p.Dims))
		for i := range data {
			data[i] = float32(rng.NormFloat64())
		}
		ts = append(ts, &safetensors.Tensor{Name: p.Name, DType: "F32", Shape: slices.Clone(p.Dims), F32: data})
	}
	return ts
}

// hfTensors converts OpenAI-named tensors to HuggingFace CLIPModel names and layouts with the package's table
// (TestHuggingFaceNames checks it against transformers' names) and adds the position_ids buffers that
// transformers' checkpoints carry.
func hfTensors(t *testing.T, ts []*safetensors.Tensor) []*safetensors.Tensor {
	t.Helper()
	out, err := huggingFaceTensors(ts)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(name string, n int) *safetensors.Tensor {
		raw := make([]byte, 0, 8*n)
		for i := range n {
			raw = binary.LittleEndian.AppendUint64(raw, uint64(i))
		}
		return &safetensors.Tensor{Name: name, DType: "I64", Shape: []int{1, n}, Raw: raw}
	}
	return append(out, ids("vision_model.embeddings.position_ids", 17), ids("text_model.embeddings.position_ids", 8))
}

func writeFile(t *testing.T, dir, name string, ts []*safetensors.Tensor, meta map[string]string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := safetensors.WriteFile(path, &safetensors.File{Tensors: ts, Metadata: meta}); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkTensors checks that the model in ctx holds exactly the tensors want.
func checkTensors(t *testing.T, ctx *context.Context, cfg clip.Config, want []*safetensors.Tensor) {
	t.Helper()
	got, err := clip.ParamsToTensors(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d parameters loaded, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Name != w.Name || !slices.Equal(g.Shape, w.Shape) || !slices.Equal(g.F32, w.F32) {
			t.Fatalf("parameter %q (shape %v) differs from the original %q (shape %v)", g.Name, g.Shape, w.Name, w.Shape)
		}
	}
}

// sizesEqual compares two configs, name and normalisation aside.
func sizesEqual(a, b clip.Config) bool {
	a.Name, b.Name = "", ""
	a.ImageMean, a.ImageStd, b.ImageMean, b.ImageStd = [3]float64{}, [3]float64{}, [3]float64{}, [3]float64{}
	return a == b
}

func TestLoadOpenAI(t *testing.T) {
	tinyJSON, _ := json.Marshal(tinyConfig())
	scalar := func(name string) *safetensors.Tensor {
		return &safetensors.Tensor{Name: name, DType: "I64", Raw: make([]byte, 8)}
	}
	cases := []struct {
		name      string
		cfg       clip.Config
		meta      map[string]string
		extra     []*safetensors.Tensor
		hints     Hints
		wantHeads [2]int
		wantMean  [3]float64
		wantName  string
		wantErr   string
	}{
		{name: "tiny with hints", cfg: tinyConfig(), hints: Hints{2, 2}, wantHeads: [2]int{2, 2},
			wantMean: clip.OpenAIMean, wantName: "tiny"},
		{name: "tiny with head metadata", cfg: tinyConfig(), wantHeads: [2]int{2, 2}, wantMean: clip.OpenAIMean,
			meta: map[string]string{MetadataVisionHeads: "2", MetadataTextHeads: "2"}},
		{name: "tiny with config metadata", cfg: tinyConfig(), meta: map[string]string{clip.MetadataConfig: string(tinyJSON)},
			wantHeads: [2]int{2, 2}, wantMean: clip.FashionMNISTMean, wantName: "tiny"},
		{name: "hints override metadata", cfg: tinyConfig(), hints: Hints{2, 2}, wantHeads: [2]int{2, 2},
			meta: map[string]string{MetadataVisionHeads: "4", MetadataTextHeads: "4"}, wantMean: clip.OpenAIMean},
		{name: "tiny without hints takes width/64", cfg: tinyConfig(), wantHeads: [2]int{1, 1}, wantMean: clip.OpenAIMean},
		{name: "rgb with hints", cfg: rgbConfig(), hints: Hints{VisionHeads: 2, TextHeads: 2}, wantHeads: [2]int{2, 2},
			wantMean: clip.OpenAIMean, wantName: "openai-vit"},
		{name: "rgb without hints", cfg: rgbConfig(), wantErr: "text heads = 0"},
		{name: "hint not dividing the width", cfg: rgbConfig(), hints: Hints{VisionHeads: 3, TextHeads: 2}, wantErr: "vision heads = 3"},
		{name: "ResNet, OpenAI's head rule", cfg: rnConfig(), hints: Hints{TextHeads: 2}, wantHeads: [2]int{2, 2},
			wantMean: clip.OpenAIMean, wantName: "openai-resnet"},
		{name: "ResNet with hints and BatchNorm counters", cfg: rnConfig(), hints: Hints{8, 2}, wantHeads: [2]int{8, 2},
			wantMean: clip.OpenAIMean, extra: bnCounters(rnConfig())},
		{name: "ResNet with head metadata", cfg: rnConfig(), wantHeads: [2]int{16, 4}, wantMean: clip.OpenAIMean,
			meta: map[string]string{MetadataVisionHeads: "16", MetadataTextHeads: "4"}},
		{name: "ResNet without text heads", cfg: rnConfig(), wantErr: "text heads = 0"},
		{name: "ResNet heads not dividing the pool", cfg: rnConfig(), hints: Hints{VisionHeads: 3, TextHeads: 2},
			wantErr: "vision attention-pool heads = 3"},
		{name: "known OpenAI buffers ignored", cfg: rgbConfig(), hints: Hints{2, 2}, wantHeads: [2]int{2, 2},
			wantMean: clip.OpenAIMean, extra: []*safetensors.Tensor{
				{Name: "attn_mask", DType: "F32", Shape: []int{8, 8}, F32: make([]float32, 64)},
				scalar("input_resolution"), scalar("context_length"), scalar("vocab_size")}},
	}
	dir := t.TempDir()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := randomTensors(c.cfg, uint64(i))
			path := writeFile(t, dir, fmt.Sprintf("m%d.safetensors", i), append(slices.Clone(want), c.extra...), c.meta)
			ctx, cfg, err := LoadOpenAI(path, c.hints)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantCfg := c.cfg
			wantCfg.VisionHeads, wantCfg.TextHeads = c.wantHeads[0], c.wantHeads[1]
			if !sizesEqual(cfg, wantCfg) || cfg.ImageMean != c.wantMean {
				t.Fatalf("config = %+v, want %+v with mean %v", cfg, wantCfg, c.wantMean)
			}
			if c.wantName != "" && cfg.Name != c.wantName {
				t.Fatalf("name = %q, want %q", cfg.Name, c.wantName)
			}
			checkTensors(t, ctx, cfg, want)
		})
	}
}

func TestLoadHuggingFace(t *testing.T) {
	for i, cfg := range []clip.Config{tinyConfig(), rgbConfig()} {
		t.Run(cfg.Name, func(t *testing.T) {
			dir := t.TempDir()
			want := randomTensors(cfg, uint64(10+i))
			path := writeFile(t, dir, "model.safetensors", hfTensors(t, want), map[string]string{"format": "pt"})
			writeJSON(t, filepath.Join(dir, "config.json"), hfConfigFor(cfg))
			loaders := map[string]func() (*context.Context, clip.Config, error){
				"LoadHuggingFace": func() (*context.Context, clip.Config, error) {
					return LoadHuggingFace(path, filepath.Join(dir, "config.json"))
				},
				"Load": func() (*context.Context, clip.Config, error) { return Load(path, "", Hints{}) },
			}
			for name, load := range loaders {
				ctx, got, err := load()
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if !sizesEqual(got, cfg) || got.ImageMean != clip.OpenAIMean || got.ImageStd != clip.OpenAIStd {
					t.Fatalf("%s: config = %+v, want %+v with OpenAI's normalisation", name, got, cfg)
				}
				checkTensors(t, ctx, got, want)
			}
		})
	}
}

// TestRoundTrip: load (either naming) → SaveOpenAI → LoadOpenAI without hints gives identical tensors and config.
func TestRoundTrip(t *testing.T) {
	for i, cfg := range []clip.Config{tinyConfig(), rgbConfig(), rnConfig()} {
		for _, hf := range []bool{false, true} {
			if hf && cfg.IsResNet() {
				continue // HuggingFace's CLIPModel has no ResNet tower.
			}
			t.Run(fmt.Sprintf("%s hf=%v", cfg.Name, hf), func(t *testing.T) {
				dir := t.TempDir()
				want := randomTensors(cfg, uint64(20+i))
				var ctx *context.Context
				var loaded clip.Config
				var err error
				if hf {
					path := writeFile(t, dir, "model.safetensors", hfTensors(t, want), nil)
					writeJSON(t, filepath.Join(dir, "config.json"), hfConfigFor(cfg))
					ctx, loaded, err = Load(path, "", Hints{})
				} else {
					path := writeFile(t, dir, "openai.safetensors", want, nil)
					ctx, loaded, err = Load(path, "", Hints{VisionHeads: cfg.VisionHeads, TextHeads: cfg.TextHeads})
				}
				if err != nil {
					t.Fatal(err)
				}
				out := filepath.Join(dir, "export.safetensors")
				if err := SaveOpenAI(out, ctx, loaded); err != nil {
					t.Fatal(err)
				}
				ctx2, again, err := LoadOpenAI(out, Hints{})
				if err != nil {
					t.Fatal(err)
				}
				if again != loaded {
					t.Fatalf("config after the round trip = %+v, want %+v", again, loaded)
				}
				checkTensors(t, ctx2, again, want)
				// clip.Load reads the export too.
				ctx3, cfg3, err := clip.Load(out)
				if err != nil || cfg3 != loaded {
					t.Fatalf("clip.Load: %v, config %+v", err, cfg3)
				}
				checkTensors(t, ctx3, cfg3, want)
			})
		}
	}
}

func TestLoadErrors(t *testing.T) {
	without := func(name string) func([]*safetensors.Tensor) []*safetensors.Tensor {
		return func(ts []*safetensors.Tensor) []*safetensors.Tensor {
			return slices.DeleteFunc(ts, func(x *safetensors.Tensor) bool { return x.Name == name })
		}
	}
	with := func(x *safetensors.Tensor) func([]*safetensors.Tensor) []*safetensors.Tensor {
		return func(ts []*safetensors.Tensor) []*safetensors.Tensor { return append(ts, x) }
	}
	reshaped := func(name string, shape ...int) func([]*safetensors.Tensor) []*safetensors.Tensor {
		return func(ts []*safetensors.Tensor) []*safetensors.Tensor {
			for _, x := range ts {
				if x.Name == name {
					x.Shape = shape
				}
			}
			return ts
		}
	}
	cases := []struct {
		name     string
		hf       bool
		mutate   func([]*safetensors.Tensor) []*safetensors.Tensor
		hfConfig func(map[string]any)
		want     []string
		is       error
	}{
		{name: "missing", mutate: without("transformer.resblocks.0.mlp.c_fc.bias"),
			want: []string{`"transformer.resblocks.0.mlp.c_fc.bias" is missing`}},
		{name: "extra", mutate: with(&safetensors.Tensor{Name: "visual.bogus", DType: "F32", Shape: []int{1}, F32: []float32{1}}),
			want: []string{`"visual.bogus" is not a parameter`}},
		{name: "mis-shaped", mutate: reshaped("visual.ln_pre.bias", 2, 32),
			want: []string{`"visual.ln_pre.bias" has shape [2 32], the model needs [64]`}},
		{name: "integer parameter", mutate: func(ts []*safetensors.Tensor) []*safetensors.Tensor {
			ts[len(ts)-1] = &safetensors.Tensor{Name: "logit_scale", DType: "I64", Raw: make([]byte, 8)}
			return ts
		}, want: []string{`"logit_scale" has dtype I64`}},
		{name: "ResNet tensor in a ViT", mutate: with(&safetensors.Tensor{Name: "visual.layer1.0.conv1.weight", DType: "F32",
			Shape: []int{1}, F32: []float32{1}}), want: []string{`"visual.layer1.0.conv1.weight" is not a parameter`}},
		{name: "hf missing", hf: true, mutate: without("text_model.encoder.layers.0.self_attn.k_proj.bias"),
			want: []string{`"text_model.encoder.layers.0.self_attn.k_proj.bias" is missing`}},
		{name: "hf extra", hf: true, mutate: with(&safetensors.Tensor{Name: "text_model.bogus", DType: "F32", Shape: []int{1},
			F32: []float32{1}}), want: []string{`"text_model.bogus" is not a parameter`}},
		{name: "hf mis-shaped", hf: true, mutate: reshaped("vision_model.encoder.layers.1.mlp.fc1.weight", 128, 128),
			want: []string{`"vision_model.encoder.layers.1.mlp.fc1.weight" has shape [128 128], the model needs [256 64]`}},
		{name: "hf config disagrees", hf: true, hfConfig: func(m map[string]any) {
			m["vision_config"].(map[string]any)["hidden_size"] = 768
		}, want: []string{"vision_config.hidden_size = 768", "64"}},
		{name: "hf gelu", hf: true, hfConfig: func(m map[string]any) {
			m["text_config"].(map[string]any)["hidden_act"] = "gelu"
		}, want: []string{`text_config.hidden_act is "gelu"`}},
	}
	dir := t.TempDir()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := rgbConfig()
			ts := randomTensors(cfg, uint64(30+i))
			var err error
			if c.hf {
				ts = hfTensors(t, ts)
				if c.mutate != nil {
					ts = c.mutate(ts)
				}
				path := writeFile(t, dir, fmt.Sprintf("hf%d.safetensors", i), ts, nil)
				conf := hfConfigFor(cfg)
				if c.hfConfig != nil {
					c.hfConfig(conf)
				}
				confPath := filepath.Join(dir, fmt.Sprintf("hf%d.json", i))
				writeJSON(t, confPath, conf)
				_, _, err = LoadHuggingFace(path, confPath)
			} else {
				path := writeFile(t, dir, fmt.Sprintf("m%d.safetensors", i), c.mutate(ts), nil)
				_, _, err = LoadOpenAI(path, Hints{2, 2})
			}
			if err == nil {
				t.Fatal("loaded; want an error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not contain %q", err, w)
				}
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Fatalf("error %v is not %v", err, c.is)
			}
		})
	}
}

func TestRefusesPickles(t *testing.T) {
	dir := t.TempDir()
	zip := filepath.Join(dir, "zipped.safetensors")
	pickle := filepath.Join(dir, "pickled")
	if err := os.WriteFile(zip, []byte("PK\x03\x04archive/data.pkl........"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pickle, []byte{0x80, 0x02, 0x7d, 0x71, 0x00, 0x28, 0x58, 0x01, 0x00, 0x00}, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "ViT-B-32.pt"), filepath.Join(dir, "pytorch_model.bin"),
		filepath.Join(dir, "x.PTH"), zip, pickle} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			_, _, err := Load(path, "", Hints{})
			if err == nil {
				t.Fatal("loaded; want an error")
			}
			for _, w := range []string{"safetensors.torch.save_file", "model.state_dict()", filepath.Base(path)} {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// A safetensors file whose header length happens to start with the pickle byte 0x80 still loads.
func TestSafetensorsStartingWith0x80(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.safetensors")
	ts := []*safetensors.Tensor{{Name: "logit_scale", DType: "F32", F32: []float32{1}}}
	for pad := 0; ; pad++ {
		if pad > 512 {
			t.Fatal("could not make a header length ending in 0x80")
		}
		if err := safetensors.WriteFile(path, &safetensors.File{Tensors: ts,
			Metadata: map[string]string{"pad": strings.Repeat("x", pad)}}); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if data[0] == 0x80 {
			break
		}
	}
	f, err := readCheckpoint(path)
	if err != nil || f.Get("logit_scale") == nil {
		t.Fatalf("readCheckpoint: %v", err)
	}
}

func TestInferConfigRefusesHuggingFaceNames(t *testing.T) {
	f := &safetensors.File{Tensors: hfTensors(t, randomTensors(tinyConfig(), 1))}
	if _, err := InferConfig(f, Hints{}); err == nil || !strings.Contains(err.Error(), "LoadHuggingFace") {
		t.Fatalf("error = %v, want one pointing to LoadHuggingFace", err)
	}
}
