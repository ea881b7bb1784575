package weights

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/poisoning/atomicfile"
)

// OpenCLIPConfigName is the file open_clip writes beside a checkpoint it publishes (open_clip_model.safetensors):
// {"model_cfg": {...}, "preprocess_cfg": {...}}. Load reads it when no config is given.
const OpenCLIPConfigName = "open_clip_config.json"

// open_clip's defaults (CLIPVisionCfg.head_width, CLIPTextCfg.heads) for fields a config leaves out.
const (
	openCLIPDefaultHeadWidth = 64
	openCLIPDefaultTextHeads = 8
)

// openCLIPVision holds the fields of open_clip's CLIPVisionCfg read here; nil or empty: absent.
type openCLIPVision struct {
	Layers        json.RawMessage `json:"layers"` // an int (ViT) or four ints (ModifiedResNet)
	Width         *int            `json:"width"`
	HeadWidth     *int            `json:"head_width"`
	MLPRatio      *float64        `json:"mlp_ratio"`
	PatchSize     *int            `json:"patch_size"`
	ImageSize     json.RawMessage `json:"image_size"` // an int or [height, width]
	LSInitValue   *float64        `json:"ls_init_value"`
	TimmModelName *string         `json:"timm_model_name"`
}

// openCLIPText holds the fields of open_clip's CLIPTextCfg read here; nil: absent.
type openCLIPText struct {
	ContextLength *int     `json:"context_length"`
	VocabSize     *int     `json:"vocab_size"`
	Width         *int     `json:"width"`
	Heads         *int     `json:"heads"`
	Layers        *int     `json:"layers"`
	MLPRatio      *float64 `json:"mlp_ratio"`
	LSInitValue   *float64 `json:"ls_init_value"`
	HFModelName   *string  `json:"hf_model_name"`
}

// openCLIPConfig is an open_clip model config: a model_configs/*.json file, or the model_cfg of an
// open_clip_config.json with its preprocess_cfg's normalisation.
type openCLIPConfig struct {
	path      string
	EmbedDim  *int            `json:"embed_dim"`
	QuickGELU *bool           `json:"quick_gelu"`
	Vision    *openCLIPVision `json:"vision_cfg"`
	Text      *openCLIPText   `json:"text_cfg"`
	mean, std []float64
}

// readOpenCLIPConfig reads an open_clip model config: {"model_cfg": {...}, "preprocess_cfg": {...}} as
// open_clip_config.json holds it, or the bare {"embed_dim", "vision_cfg", "text_cfg"} of model_configs/*.json.
// Errors name the file.
func readOpenCLIPConfig(path string) (*openCLIPConfig, error) {
	data, err := atomicfile.ReadFile(path, MaxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("reading the open_clip config: %w", err)
	}
	c, err := parseOpenCLIPConfig(data)
	if err != nil {
		return nil, fmt.Errorf("open_clip config %s: %w", path, err)
	}
	c.path = path
	return c, nil
}

func parseOpenCLIPConfig(data []byte) (*openCLIPConfig, error) {
	var top struct {
		ModelCfg      json.RawMessage `json:"model_cfg"`
		PreprocessCfg *struct {
			Mean []float64 `json:"mean"`
			Std  []float64 `json:"std"`
		} `json:"preprocess_cfg"`
		VisionCfg json.RawMessage `json:"vision_cfg"`
	}
	if err := strictUnmarshal(data, &top); err != nil {
		return nil, err
	}
	model := data
	switch {
	case len(top.ModelCfg) > 0:
		model = top.ModelCfg
	case len(top.VisionCfg) == 0:
		return nil, errors.New("neither model_cfg nor vision_cfg and text_cfg: not an open_clip model config " +
			"(HuggingFace's CLIPModel config goes with HuggingFace names)")
	}
	var c openCLIPConfig
	if err := strictUnmarshal(model, &c); err != nil {
		return nil, fmt.Errorf("model_cfg: %w", err)
	}
	if c.Vision == nil || c.Text == nil {
		return nil, errors.New("the model config needs both vision_cfg and text_cfg")
	}
	if p := top.PreprocessCfg; p != nil {
		if len(p.Mean) != 3 || len(p.Std) != 3 {
			return nil, fmt.Errorf("preprocess_cfg: mean %v and std %v must have 3 values each", p.Mean, p.Std)
		}
		c.mean, c.std = p.Mean, p.Std
	}
	return &c, nil
}

// strictUnmarshal is json.Unmarshal that also rejects trailing data, and says "malformed JSON" for what is not
// JSON.
func strictUnmarshal(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	err := d.Decode(v)
	var syntax *json.SyntaxError
	switch {
	case errors.As(err, &syntax) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return fmt.Errorf("malformed JSON: %w", err)
	case err != nil:
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return errors.New("malformed JSON: data after the object")
	}
	return nil
}

// apply checks every size the config states against cfg (whose sizes come from the tensor shapes) and what
// models/clip implements, then returns the head counts it gives: the vision tower's width (32·width for a
// ResNet's attention pool) over head_width, and text_cfg.heads, with open_clip's defaults for absent fields.
func (c *openCLIPConfig) apply(cfg clip.Config) (visionHeads, textHeads int, err error) {
	fail := func(format string, args ...any) (int, int, error) {
		return 0, 0, fmt.Errorf("open_clip config %s: %s", c.path, fmt.Sprintf(format, args...))
	}
	v, t := c.Vision, c.Text
	switch {
	case v.TimmModelName != nil && *v.TimmModelName != "":
		return fail("vision_cfg.timm_model_name %q: models/clip has no timm image towers", *v.TimmModelName)
	case t.HFModelName != nil && *t.HFModelName != "":
		return fail("text_cfg.hf_model_name %q: models/clip has no HuggingFace text towers", *t.HFModelName)
	case c.QuickGELU == nil || !*c.QuickGELU:
		return fail("quick_gelu is not true: the model uses nn.GELU, but models/clip implements QuickGELU only " +
			"(OpenAI's weights go with the -quickgelu configs)")
	case v.LSInitValue != nil || t.LSInitValue != nil:
		return fail("ls_init_value is set: models/clip has no layer scale")
	case v.MLPRatio != nil && *v.MLPRatio != 4 || t.MLPRatio != nil && *t.MLPRatio != 4:
		return fail("mlp_ratio is not 4: models/clip needs 4")
	}
	layers, resNet, err := c.visionLayers()
	if err != nil {
		return fail("%v", err)
	}
	if resNet != cfg.IsResNet() {
		kind := map[bool]string{false: "a ViT", true: "a ModifiedResNet"}
		return fail("vision_cfg.layers %s describes %s, but the tensors are %s", compact(v.Layers), kind[resNet],
			kind[cfg.IsResNet()])
	}
	imageSize, err := c.imageSize()
	if err != nil {
		return fail("%v", err)
	}
	checks := []struct {
		field        string
		value        *int
		shape        int
		inapplicable bool
	}{
		{"embed_dim", c.EmbedDim, cfg.EmbedDim, false},
		{"vision_cfg.width", v.Width, cfg.VisionWidth, false},
		{"vision_cfg.layers", layers, cfg.VisionLayers, resNet},
		{"vision_cfg.patch_size", v.PatchSize, cfg.PatchSize, resNet},
		{"vision_cfg.image_size", imageSize, cfg.ImageSize, false},
		{"text_cfg.context_length", t.ContextLength, cfg.ContextLength, false},
		{"text_cfg.vocab_size", t.VocabSize, cfg.VocabSize, false},
		{"text_cfg.width", t.Width, cfg.TextWidth, false},
		{"text_cfg.layers", t.Layers, cfg.TextLayers, false},
	}
	for _, k := range checks {
		if !k.inapplicable && k.value != nil && *k.value != k.shape {
			return fail("%s = %d, but the tensor shapes give %d", k.field, *k.value, k.shape)
		}
	}
	if resNet && c.resNetLayers() != cfg.ResNetLayers {
		return fail("vision_cfg.layers = %v, but the tensor shapes give %v", c.resNetLayers(), cfg.ResNetLayers)
	}
	headWidth := openCLIPDefaultHeadWidth
	if v.HeadWidth != nil {
		headWidth = *v.HeadWidth
	}
	width := cfg.VisionWidth
	if resNet {
		width = cfg.ResNetFeatureWidth()
	}
	if headWidth <= 0 || width%headWidth != 0 {
		return fail("vision_cfg.head_width %d does not divide the vision width %d", headWidth, width)
	}
	textHeads = openCLIPDefaultTextHeads
	if t.Heads != nil {
		textHeads = *t.Heads
	}
	return width / headWidth, textHeads, nil
}

// visionLayers decodes vision_cfg.layers: an int (a ViT's depth) or four ints (a ResNet's stages, read by
// resNetLayers). Absent, it is nil and not a ResNet.
func (c *openCLIPConfig) visionLayers() (layers *int, resNet bool, err error) {
	raw := c.Vision.Layers
	if len(raw) == 0 || string(raw) == "null" {
		return nil, false, nil
	}
	var n int
	if json.Unmarshal(raw, &n) == nil {
		return &n, false, nil
	}
	var stages []int
	if err := json.Unmarshal(raw, &stages); err != nil || len(stages) != 4 {
		return nil, false, fmt.Errorf("vision_cfg.layers %s is neither an int nor four ints", compact(raw))
	}
	return nil, true, nil
}

func (c *openCLIPConfig) resNetLayers() [4]int {
	var stages [4]int
	_ = json.Unmarshal(c.Vision.Layers, &stages)
	return stages
}

// imageSize decodes vision_cfg.image_size: an int, or [height, width] with both equal (models/clip's images are
// square). Absent, it is nil.
func (c *openCLIPConfig) imageSize() (*int, error) {
	raw := c.Vision.ImageSize
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var n int
	if json.Unmarshal(raw, &n) == nil {
		return &n, nil
	}
	var hw []int
	if err := json.Unmarshal(raw, &hw); err != nil || len(hw) != 2 || hw[0] != hw[1] {
		return nil, fmt.Errorf("vision_cfg.image_size %s is neither an int nor a square [height, width]", compact(raw))
	}
	return &hw[0], nil
}

// compact returns raw JSON on one line.
func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

// openCLIPConfigBeside returns the open_clip_config.json beside the checkpoint at path, or "" when there is none.
func openCLIPConfigBeside(path string) string {
	p := filepath.Join(filepath.Dir(path), OpenCLIPConfigName)
	if st, err := os.Stat(p); err == nil && !st.IsDir() {
		return p
	}
	return ""
}
