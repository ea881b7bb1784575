package weights

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/mmpoison/mmpoison/models/clip"
)

const openCLIPDir = "testdata/openclip"

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestOpenCLIPConfig loads OpenAI-named checkpoints with open_clip model configs (the committed fixtures, in
// both of open_clip's forms): the head counts and normalisation come from the config, after hints and before
// the metadata.
func TestOpenCLIPConfig(t *testing.T) {
	fixture := func(name string) string { return filepath.Join(openCLIPDir, name) }
	cases := []struct {
		name      string
		cfg       clip.Config
		config    string // given to Load
		beside    string // copied beside the checkpoint as open_clip_config.json
		meta      map[string]string
		hints     Hints
		wantHeads [2]int
		wantMean  [3]float64
	}{
		{name: "bare ViT config", cfg: rgbConfig(), config: fixture("vit-rgb.json"), wantHeads: [2]int{2, 2},
			wantMean: clip.OpenAIMean},
		{name: "bare ResNet config", cfg: rnConfig(), config: fixture("rn-tiny.json"), wantHeads: [2]int{8, 2},
			wantMean: clip.OpenAIMean},
		{name: "open_clip_config.json given", cfg: rgbConfig(), config: fixture("hub/open_clip_config.json"),
			wantHeads: [2]int{4, 4}, wantMean: [3]float64{0.5, 0.5, 0.5}},
		{name: "open_clip_config.json beside", cfg: rgbConfig(), beside: fixture("hub/open_clip_config.json"),
			wantHeads: [2]int{4, 4}, wantMean: [3]float64{0.5, 0.5, 0.5}},
		{name: "hints first", cfg: rgbConfig(), config: fixture("vit-rgb.json"), hints: Hints{TextHeads: 4},
			wantHeads: [2]int{2, 4}, wantMean: clip.OpenAIMean},
		{name: "config before metadata", cfg: rgbConfig(), config: fixture("vit-rgb.json"), wantHeads: [2]int{2, 2},
			meta: map[string]string{MetadataVisionHeads: "4", MetadataTextHeads: "4"}, wantMean: clip.OpenAIMean},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			want := randomTensors(c.cfg, uint64(60+i))
			path := writeFile(t, dir, "open_clip_model.safetensors", want, c.meta)
			loaders := map[string]func() (*context.Context, clip.Config, error){
				"Load": func() (*context.Context, clip.Config, error) { return Load(path, c.config, c.hints) },
			}
			if c.beside != "" {
				copyFile(t, c.beside, filepath.Join(dir, OpenCLIPConfigName))
				loaders["LoadOpenAI"] = func() (*context.Context, clip.Config, error) { return LoadOpenAI(path, c.hints) }
			}
			for name, load := range loaders {
				ctx, cfg, err := load()
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				wantCfg := c.cfg
				wantCfg.VisionHeads, wantCfg.TextHeads = c.wantHeads[0], c.wantHeads[1]
				if !sizesEqual(cfg, wantCfg) || cfg.ImageMean != c.wantMean {
					t.Fatalf("%s: config = %+v, want %+v with mean %v", name, cfg, wantCfg, c.wantMean)
				}
				checkTensors(t, ctx, cfg, want)
			}
		})
	}
}

// TestOpenCLIPConfigErrors: a config that is malformed, disagrees with the tensors or describes what models/clip
// does not implement is one error naming the file and the field.
func TestOpenCLIPConfigErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	vit, err := os.ReadFile(filepath.Join(openCLIPDir, "vit-rgb.json"))
	if err != nil {
		t.Fatal(err)
	}
	edited := func(name, old, new string) string {
		if !strings.Contains(string(vit), old) {
			t.Fatalf("vit-rgb.json has no %q", old)
		}
		return write(name, strings.Replace(string(vit), old, new, 1))
	}
	hf := write("config.json", `{"model_type": "clip", "vision_config": {"num_attention_heads": 2}, "text_config": {}}`)
	cases := []struct {
		name   string
		cfg    clip.Config
		config string
		want   []string
	}{
		{"malformed", rgbConfig(), filepath.Join(openCLIPDir, "malformed.json"),
			[]string{"open_clip config " + filepath.Join(openCLIPDir, "malformed.json"), "malformed JSON"}},
		{"trailing data", rgbConfig(), write("trailing.json", string(vit)+"}"), []string{"trailing.json", "malformed JSON"}},
		{"wrong type", rgbConfig(), edited("type.json", `"width": 64`, `"width": "64"`), []string{"type.json", "width"}},
		{"a HuggingFace config", rgbConfig(), hf, []string{hf, "not an open_clip model config"}},
		{"no text_cfg", rgbConfig(), write("notext.json", `{"model_cfg": {"vision_cfg": {}}}`), []string{"notext.json", "text_cfg"}},
		{"ResNet config, ViT tensors", rgbConfig(), filepath.Join(openCLIPDir, "rn-tiny.json"),
			[]string{"rn-tiny.json", "describes a ModifiedResNet, but the tensors are a ViT"}},
		{"sizes disagree", tinyConfig(), filepath.Join(openCLIPDir, "vit-rgb.json"),
			[]string{"vit-rgb.json", "embed_dim = 48, but the tensor shapes give 64"}},
		{"ResNet stages disagree", rnConfig(), write("rn.json", strings.NewReplacer("[\n            1,\n            2,", "[\n            2,\n            2,").
			Replace(mustRead(t, filepath.Join(openCLIPDir, "rn-tiny.json")))), []string{"rn.json", "[2 2 1 1]", "[1 2 1 1]"}},
		{"GELU", rgbConfig(), edited("gelu.json", `"quick_gelu": true`, `"quick_gelu": false`), []string{"gelu.json", "QuickGELU only"}},
		{"timm tower", rgbConfig(), edited("timm.json", `"width": 64,`, `"width": 64, "timm_model_name": "vit_tiny",`),
			[]string{"timm.json", "timm_model_name"}},
		{"head width", rgbConfig(), edited("hw.json", `"head_width": 32`, `"head_width": 48`), []string{"hw.json", "head_width 48"}},
		{"non-square image", rgbConfig(), edited("hw2.json", `"image_size": 32`, `"image_size": [32, 16]`),
			[]string{"hw2.json", "image_size"}},
		{"missing file", rgbConfig(), filepath.Join(dir, "none.json"), []string{"none.json"}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "m.safetensors", randomTensors(c.cfg, uint64(70+i)), nil)
			_, _, err := Load(path, c.config, Hints{})
			if err == nil {
				t.Fatal("loaded; want an error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if n := strings.Count(err.Error(), filepath.Base(c.config)); n != 1 || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q names %s %d times, want once, on one line", err, filepath.Base(c.config), n)
			}
		})
	}
}

// TestHuggingFaceRefusesOpenCLIPConfig: an open_clip config given for a HuggingFace-named checkpoint is an error,
// not a config.json whose heads default to transformers'.
func TestHuggingFaceRefusesOpenCLIPConfig(t *testing.T) {
	path := writeFile(t, t.TempDir(), "model.safetensors", hfTensors(t, randomTensors(rgbConfig(), 80)), nil)
	config := filepath.Join(openCLIPDir, "hub", OpenCLIPConfigName)
	_, _, err := Load(path, config, Hints{})
	if err == nil || !strings.Contains(err.Error(), config) || !strings.Contains(err.Error(), "open_clip model config") {
		t.Fatalf("error = %v, want one naming %s as an open_clip config", err, config)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
