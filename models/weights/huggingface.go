package weights

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/safetensors"
	"github.com/mmpoison/mmpoison/poisoning/atomicfile"
)

// hfTower holds the fields of a HuggingFace CLIPVisionConfig or CLIPTextConfig that matter here; nil means absent
// (transformers' default then applies).
type hfTower struct {
	HiddenSize            *int     `json:"hidden_size"`
	IntermediateSize      *int     `json:"intermediate_size"`
	NumAttentionHeads     *int     `json:"num_attention_heads"`
	NumHiddenLayers       *int     `json:"num_hidden_layers"`
	PatchSize             *int     `json:"patch_size"`
	ImageSize             *int     `json:"image_size"`
	NumChannels           *int     `json:"num_channels"`
	MaxPositionEmbeddings *int     `json:"max_position_embeddings"`
	VocabSize             *int     `json:"vocab_size"`
	HiddenAct             *string  `json:"hidden_act"`
	LayerNormEps          *float64 `json:"layer_norm_eps"`
}

// hfConfig is a HuggingFace CLIPModel config.json.
type hfConfig struct {
	ModelType     string  `json:"model_type"`
	ProjectionDim *int    `json:"projection_dim"`
	Vision, Text  hfTower `json:"-"`
}

// transformers' defaults for the head counts, used when config.json omits them.
const (
	hfDefaultVisionHeads = 12
	hfDefaultTextHeads   = 8
)

// readHFConfig reads a CLIPModel config.json; the older vision_config_dict/text_config_dict entries are read too,
// with vision_config/text_config taking precedence.
func readHFConfig(path string) (*hfConfig, error) {
	data, err := atomicfile.ReadFile(path, MaxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("reading the HuggingFace config: %w", err)
	}
	return parseHFConfig(data, path)
}

// parseHFConfig is readHFConfig of the content data of the file at path.
func parseHFConfig(data []byte, path string) (*hfConfig, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("HuggingFace config %s: %w", path, err)
	}
	var c hfConfig
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("HuggingFace config %s: %w", path, err)
	}
	if _, ok := raw["model_cfg"]; ok || raw["vision_cfg"] != nil {
		return nil, fmt.Errorf("%s is an open_clip model config, but the checkpoint uses HuggingFace names: give its config.json", path)
	}
	if c.ModelType != "" && c.ModelType != "clip" {
		return nil, fmt.Errorf("HuggingFace config %s: model_type %q is not \"clip\"", path, c.ModelType)
	}
	for _, k := range []struct {
		key   string
		tower *hfTower
	}{{"vision_config_dict", &c.Vision}, {"vision_config", &c.Vision}, {"text_config_dict", &c.Text}, {"text_config", &c.Text}} {
		msg, ok := raw[k.key]
		if !ok || string(msg) == "null" {
			continue
		}
		if err := json.Unmarshal(msg, k.tower); err != nil {
			return nil, fmt.Errorf("HuggingFace config %s: %s: %w", path, k.key, err)
		}
	}
	return &c, nil
}

// inferHFConfig infers the architecture of a HuggingFace-named file from its shapes, takes the head counts from
// config.json (or transformers' defaults) and checks every size config.json states against the shapes.
func inferHFConfig(f *safetensors.File, hc *hfConfig, configPath string) (clip.Config, error) {
	cfg, err := configFromShapes(f, huggingFaceNames)
	if err != nil {
		return cfg, err
	}
	cfg.VisionHeads, cfg.TextHeads = hfDefaultVisionHeads, hfDefaultTextHeads
	if hc.Vision.NumAttentionHeads != nil {
		cfg.VisionHeads = *hc.Vision.NumAttentionHeads
	}
	if hc.Text.NumAttentionHeads != nil {
		cfg.TextHeads = *hc.Text.NumAttentionHeads
	}
	type check struct {
		field string
		value *int
		shape int
	}
	checks := []check{
		{"projection_dim", hc.ProjectionDim, cfg.EmbedDim},
		{"vision_config.hidden_size", hc.Vision.HiddenSize, cfg.VisionWidth},
		{"vision_config.intermediate_size", hc.Vision.IntermediateSize, 4 * cfg.VisionWidth},
		{"vision_config.num_hidden_layers", hc.Vision.NumHiddenLayers, cfg.VisionLayers},
		{"vision_config.patch_size", hc.Vision.PatchSize, cfg.PatchSize},
		{"vision_config.image_size", hc.Vision.ImageSize, cfg.ImageSize},
		{"vision_config.num_channels", hc.Vision.NumChannels, cfg.ImageChannels},
		{"text_config.hidden_size", hc.Text.HiddenSize, cfg.TextWidth},
		{"text_config.intermediate_size", hc.Text.IntermediateSize, 4 * cfg.TextWidth},
		{"text_config.num_hidden_layers", hc.Text.NumHiddenLayers, cfg.TextLayers},
		{"text_config.max_position_embeddings", hc.Text.MaxPositionEmbeddings, cfg.ContextLength},
		{"text_config.vocab_size", hc.Text.VocabSize, cfg.VocabSize},
	}
	for _, c := range checks {
		if c.value != nil && *c.value != c.shape {
			what := "the tensor shapes give"
			if strings.HasSuffix(c.field, "intermediate_size") {
				what = "models/clip needs 4·hidden_size ="
			}
			return clip.Config{}, fmt.Errorf("%s says %s = %d, but %s %d", configPath, c.field, *c.value, what, c.shape)
		}
	}
	for _, t := range []struct {
		name  string
		tower hfTower
	}{{"vision_config", hc.Vision}, {"text_config", hc.Text}} {
		if t.tower.HiddenAct != nil && *t.tower.HiddenAct != "quick_gelu" {
			return clip.Config{}, fmt.Errorf("%s: %s.hidden_act is %q, but models/clip implements quick_gelu only",
				configPath, t.name, *t.tower.HiddenAct)
		}
		if t.tower.LayerNormEps != nil && math.Abs(*t.tower.LayerNormEps-clip.LayerNormEpsilon) > 1e-12 {
			return clip.Config{}, fmt.Errorf("%s: %s.layer_norm_eps is %g, but models/clip uses %g", configPath,
				t.name, *t.tower.LayerNormEps, clip.LayerNormEpsilon)
		}
	}
	if name := presetName(cfg); name != "" {
		cfg.Name = name
	}
	if err := cfg.Validate(); err != nil {
		return clip.Config{}, err
	}
	return cfg, nil
}

// loadHuggingFaceFile loads a HuggingFace-named file with its config.json into a new context.
func loadHuggingFaceFile(f *safetensors.File, configPath string) (*context.Context, clip.Config, error) {
	if key := resNetKey(f); key != "" {
		return nil, clip.Config{}, fmt.Errorf("checkpoint mixes HuggingFace CLIPModel names with tensor %q of OpenAI's "+
			"ModifiedResNet tower, which HuggingFace's CLIPModel does not have: ResNet checkpoints load with OpenAI's names only", key)
	}
	hc, err := readHFConfig(configPath)
	if err != nil {
		return nil, clip.Config{}, err
	}
	cfg, err := inferHFConfig(f, hc, configPath)
	if err != nil {
		return nil, clip.Config{}, err
	}
	c := newChecker(f, HuggingFaceIgnoredKeys)
	params := cfg.Params()
	out := &safetensors.File{Tensors: make([]*safetensors.Tensor, 0, len(params))}
	for _, p := range params {
		src, err := hfNameOf(p.Name)
		if err != nil {
			return nil, clip.Config{}, err
		}
		switch {
		case src.transpose:
			if t := c.take(src.hf[0], []int{p.Dims[1], p.Dims[0]}); t != nil {
				out.Tensors = append(out.Tensors, &safetensors.Tensor{Name: p.Name, DType: "F32", Shape: p.Dims,
					F32: transpose(t.F32, t.Shape[0], t.Shape[1])})
			}
		case len(src.hf) == 3:
			part := append([]int{p.Dims[0] / 3}, p.Dims[1:]...)
			data := make([]float32, 0, safetensors.NumElements(p.Dims))
			complete := true
			for _, n := range src.hf {
				if t := c.take(n, part); t != nil {
					data = append(data, t.F32...)
				} else {
					complete = false
				}
			}
			if complete {
				out.Tensors = append(out.Tensors, &safetensors.Tensor{Name: p.Name, DType: "F32", Shape: p.Dims, F32: data})
			}
		default:
			if t := c.take(src.hf[0], p.Dims); t != nil {
				out.Tensors = append(out.Tensors, &safetensors.Tensor{Name: p.Name, DType: "F32", Shape: p.Dims, F32: t.F32})
			}
		}
	}
	if err := c.finish(describe(cfg)); err != nil {
		return nil, clip.Config{}, err
	}
	ctx := context.New()
	if err := clip.SetVariablesFromTensors(ctx.In(clip.Scope), "", params, out); err != nil {
		return nil, clip.Config{}, err
	}
	return ctx, cfg, nil
}

// LoadHuggingFace reads a HuggingFace transformers CLIPModel safetensors checkpoint (model.safetensors) with its
// config.json into a new context, under clip.Scope and OpenAI's names: q_proj, k_proj and v_proj are
// concatenated, in that order, into attn.in_proj_weight and in_proj_bias, and visual_projection.weight and
// text_projection.weight are transposed into visual.proj and text_projection. Sizes are inferred from the
// tensor shapes and must agree with every size config.json states; head counts come from config.json
// (transformers' defaults 12 and 8 when absent); hidden_act must be quick_gelu. The image mean and standard
// deviation are OpenAI's (preprocessor_config.json is not read). As in LoadOpenAI, every parameter must be
// present with its shape and every tensor used exactly once, apart from HuggingFaceIgnoredKeys.
func LoadHuggingFace(safetensorsPath, configPath string) (*context.Context, clip.Config, error) {
	f, err := readCheckpoint(safetensorsPath)
	if err != nil {
		return nil, clip.Config{}, err
	}
	ctx, cfg, err := loadHuggingFaceFile(f, configPath)
	if err != nil {
		return nil, clip.Config{}, fmt.Errorf("loading %s: %w", safetensorsPath, err)
	}
	return ctx, cfg, nil
}

// SaveHuggingFace writes the model in ctx (a ViT: HuggingFace's CLIPModel has no ResNet tower) as a HuggingFace
// transformers CLIPModel: dir/model.safetensors, with HuggingFace's names and layouts, and dir/config.json with
// its sizes and head counts, so that LoadHuggingFace (or transformers' CLIPModel.from_pretrained) reads it back.
func SaveHuggingFace(dir string, ctx *context.Context, cfg clip.Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("saving %s: %w", dir, err)
	}
	if cfg.IsResNet() {
		return fmt.Errorf("saving %s: model %q has a ModifiedResNet image tower, which HuggingFace's CLIPModel does not have",
			dir, cfg.Name)
	}
	ts, err := clip.ParamsToTensors(ctx, cfg)
	if err != nil {
		return fmt.Errorf("saving %s: %w", dir, err)
	}
	hf, err := huggingFaceTensors(ts)
	if err != nil {
		return fmt.Errorf("saving %s: %w", dir, err)
	}
	config, err := json.MarshalIndent(hfConfigFor(cfg), "", "  ")
	if err != nil {
		return fmt.Errorf("saving %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("saving %s: %w", dir, err)
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"),
		&safetensors.File{Tensors: hf, Metadata: map[string]string{"format": "pt"}}); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, "config.json"), append(config, '\n'))
}

// hfConfigFor returns the config.json of a HuggingFace CLIPModel with cfg's sizes.
func hfConfigFor(cfg clip.Config) map[string]any {
	tower := func(width, heads, layers int) map[string]any {
		return map[string]any{"hidden_size": width, "intermediate_size": 4 * width, "num_attention_heads": heads,
			"num_hidden_layers": layers, "hidden_act": "quick_gelu", "layer_norm_eps": clip.LayerNormEpsilon,
			"projection_dim": cfg.EmbedDim}
	}
	vision := tower(cfg.VisionWidth, cfg.VisionHeads, cfg.VisionLayers)
	vision["patch_size"], vision["image_size"], vision["num_channels"] = cfg.PatchSize, cfg.ImageSize, cfg.ImageChannels
	text := tower(cfg.TextWidth, cfg.TextHeads, cfg.TextLayers)
	text["vocab_size"], text["max_position_embeddings"] = cfg.VocabSize, cfg.ContextLength
	return map[string]any{"architectures": []string{"CLIPModel"}, "model_type": "clip", "projection_dim": cfg.EmbedDim,
		"logit_scale_init_value": clip.InitialLogitScale, "vision_config": vision, "text_config": text}
}
