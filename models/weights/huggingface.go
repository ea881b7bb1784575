package weights

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/safetensors"
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
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the HuggingFace config: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("HuggingFace config %s: %w", path, err)
	}
	var c hfConfig
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("HuggingFace config %s: %w", path, err)
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

// hfSource names the HuggingFace tensors feeding one OpenAI-named parameter: one tensor, possibly transposed
// (the two projections), or the q, k and v tensors concatenated along the first axis (in_proj weight and bias).
type hfSource struct {
	names     []string
	transpose bool
}

// hfBlockNames maps the names inside an OpenAI residual block to HuggingFace's encoder layer names.
var hfBlockNames = map[string]string{
	"ln_1.weight": "layer_norm1.weight", "ln_1.bias": "layer_norm1.bias",
	"ln_2.weight": "layer_norm2.weight", "ln_2.bias": "layer_norm2.bias",
	"attn.out_proj.weight": "self_attn.out_proj.weight", "attn.out_proj.bias": "self_attn.out_proj.bias",
	"mlp.c_fc.weight": "mlp.fc1.weight", "mlp.c_fc.bias": "mlp.fc1.bias",
	"mlp.c_proj.weight": "mlp.fc2.weight", "mlp.c_proj.bias": "mlp.fc2.bias",
}

// hfTopNames maps OpenAI's names outside the residual blocks to HuggingFace's.
var hfTopNames = map[string]string{
	"visual.conv1.weight":         "vision_model.embeddings.patch_embedding.weight",
	"visual.class_embedding":      "vision_model.embeddings.class_embedding",
	"visual.positional_embedding": "vision_model.embeddings.position_embedding.weight",
	"visual.ln_pre.weight":        "vision_model.pre_layrnorm.weight",
	"visual.ln_pre.bias":          "vision_model.pre_layrnorm.bias",
	"visual.ln_post.weight":       "vision_model.post_layernorm.weight",
	"visual.ln_post.bias":         "vision_model.post_layernorm.bias",
	"token_embedding.weight":      "text_model.embeddings.token_embedding.weight",
	"positional_embedding":        "text_model.embeddings.position_embedding.weight",
	"ln_final.weight":             "text_model.final_layer_norm.weight",
	"ln_final.bias":               "text_model.final_layer_norm.bias",
	"logit_scale":                 "logit_scale",
}

// hfSourceOf returns the HuggingFace source of the OpenAI-named parameter name.
func hfSourceOf(name string) (hfSource, error) {
	if hf, ok := hfTopNames[name]; ok {
		return hfSource{names: []string{hf}}, nil
	}
	switch name {
	case "visual.proj":
		return hfSource{names: []string{"visual_projection.weight"}, transpose: true}, nil
	case "text_projection":
		return hfSource{names: []string{"text_projection.weight"}, transpose: true}, nil
	}
	for _, tower := range []struct{ openai, hf string }{
		{"visual.transformer.resblocks.", "vision_model.encoder.layers."},
		{"transformer.resblocks.", "text_model.encoder.layers."},
	} {
		rest, ok := strings.CutPrefix(name, tower.openai)
		if !ok {
			continue
		}
		layer, inner, ok := strings.Cut(rest, ".")
		if !ok {
			break
		}
		prefix := tower.hf + layer + "."
		if hf, ok := hfBlockNames[inner]; ok {
			return hfSource{names: []string{prefix + hf}}, nil
		}
		if kind, ok := map[string]string{"attn.in_proj_weight": "weight", "attn.in_proj_bias": "bias"}[inner]; ok {
			return hfSource{names: []string{prefix + "self_attn.q_proj." + kind, prefix + "self_attn.k_proj." + kind,
				prefix + "self_attn.v_proj." + kind}}, nil
		}
		break
	}
	return hfSource{}, fmt.Errorf("no HuggingFace name for parameter %q", name)
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
		src, err := hfSourceOf(p.Name)
		if err != nil {
			return nil, clip.Config{}, err
		}
		switch {
		case src.transpose:
			if t := c.take(src.names[0], []int{p.Dims[1], p.Dims[0]}); t != nil {
				out.Tensors = append(out.Tensors, &safetensors.Tensor{Name: p.Name, DType: "F32", Shape: p.Dims,
					F32: transpose(t.F32, t.Shape[0], t.Shape[1])})
			}
		case len(src.names) == 3:
			part := append([]int{p.Dims[0] / 3}, p.Dims[1:]...)
			data := make([]float32, 0, safetensors.NumElements(p.Dims))
			complete := true
			for _, n := range src.names {
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
			if t := c.take(src.names[0], p.Dims); t != nil {
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

// transpose returns the [cols, rows] transpose of the row-major [rows, cols] matrix m.
func transpose(m []float32, rows, cols int) []float32 {
	out := make([]float32, len(m))
	for i := range rows {
		for j := range cols {
			out[j*rows+i] = m[i*cols+j]
		}
	}
	return out
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
