// Package clip is OpenAI CLIP's architecture in GoMLX: a ViT or ModifiedResNet image tower, a causal text
// transformer and a learnable temperature, trained with the symmetric InfoNCE loss.
//
// Parameters live in a GoMLX context under OpenAI's state-dict names (visual.conv1.weight,
// transformer.resblocks.0.attn.in_proj_weight, text_projection, logit_scale, ...) and in PyTorch's layouts
// (Linear weights as [out, in]), so that real checkpoints load and export without renaming or transposing.
// Models are plain functions over a *context.Context, as in GoMLX's own examples; sizes come from a Config,
// usually one of the Presets.
//
// The image tower is a ViT unless Config.ResNetLayers is set, which makes it OpenAI's ModifiedResNet (RN50 and
// friends, see resnet.go): a three-convolution stem, anti-aliased Bottleneck stages and an attention pool, with
// BatchNorm in eval mode. Its running statistics are ParamSpec.Buffer entries: saved, loaded and exported like
// parameters, never trained.
package clip

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/mmpoison/mmpoison/poisoning/imageprep"
)

// Config holds the sizes of a CLIP model. It is JSON-serialisable so checkpoints record it.
type Config struct {
	// Name of the preset (informational).
	Name string `json:"name"`
	// EmbedDim is the size of the joint image-text embedding.
	EmbedDim int `json:"embed_dim"`

	// ImageSize is the (square) input resolution in pixels; ImageChannels is 1 (grayscale) or 3 (RGB).
	ImageSize     int `json:"image_size"`
	ImageChannels int `json:"image_channels"`
	// PatchSize is the ViT patch size (the stride of OpenAI's conv1); 0 for a ResNet.
	PatchSize int `json:"patch_size"`
	// VisionWidth is the ViT's width, or a ResNet's base width (64 for RN50: its stem ends with VisionWidth
	// channels and its attention pool works on 32·VisionWidth).
	VisionWidth int `json:"vision_width"`
	// VisionLayers is the number of ViT blocks; 0 for a ResNet (see ResNetLayers).
	VisionLayers int `json:"vision_layers"`
	// VisionHeads is the number of attention heads of the ViT, or of a ResNet's attention pool (OpenAI uses
	// VisionWidth/64 for a ViT and 32·VisionWidth/64 for a ResNet).
	VisionHeads int `json:"vision_heads"`
	// ResNetLayers, when not all zero, makes the image tower OpenAI's ModifiedResNet with this many Bottleneck
	// blocks in each of its four stages (RN50: 3, 4, 6, 3; OpenAI's vision_layers tuple). Left out of the JSON
	// when zero, so ViT configs read and write as before.
	ResNetLayers [4]int `json:"resnet_layers,omitzero"`

	// ContextLength is the number of text tokens, start and end tokens included.
	ContextLength int `json:"context_length"`
	// VocabSize is the tokenizer's vocabulary size; the end-of-text token must have the highest id.
	VocabSize  int `json:"vocab_size"`
	TextWidth  int `json:"text_width"`
	TextLayers int `json:"text_layers"`
	TextHeads  int `json:"text_heads"`

	// ImageMean and ImageStd normalise pixel values in [0, 1] per channel (only the first ImageChannels are used).
	ImageMean [3]float64 `json:"image_mean"`
	ImageStd  [3]float64 `json:"image_std"`
}

// Pixel normalisations: OpenAI CLIP's, and Fashion-MNIST's (its mean and standard deviation).
var (
	OpenAIMean       = [3]float64{0.48145466, 0.4578275, 0.40821073}
	OpenAIStd        = [3]float64{0.26862954, 0.26130258, 0.27577711}
	FashionMNISTMean = [3]float64{0.2860, 0.2860, 0.2860}
	FashionMNISTStd  = [3]float64{0.3530, 0.3530, 0.3530}
)

// Presets are the named model sizes. "tiny" trains on 2 CPU cores in minutes; "small" is the benchmark size
// (width 128, 4 layers per tower); "ViT-B/32", "ViT-B/16" and "RN50" are OpenAI's models with their real sizes.
// VocabSize 0 means "set from the tokenizer".
var Presets = map[string]Config{
	"tiny": {Name: "tiny", EmbedDim: 64, ImageSize: 28, ImageChannels: 1, PatchSize: 7,
		VisionWidth: 64, VisionLayers: 2, VisionHeads: 2,
		ContextLength: 16, TextWidth: 64, TextLayers: 2, TextHeads: 2,
		ImageMean: FashionMNISTMean, ImageStd: FashionMNISTStd},
	"small": {Name: "small", EmbedDim: 128, ImageSize: 28, ImageChannels: 1, PatchSize: 4,
		VisionWidth: 128, VisionLayers: 4, VisionHeads: 4,
		ContextLength: 16, TextWidth: 128, TextLayers: 4, TextHeads: 4,
		ImageMean: FashionMNISTMean, ImageStd: FashionMNISTStd},
	"ViT-B/32": {Name: "ViT-B/32", EmbedDim: 512, ImageSize: 224, ImageChannels: 3, PatchSize: 32,
		VisionWidth: 768, VisionLayers: 12, VisionHeads: 12,
		ContextLength: 77, VocabSize: 49408, TextWidth: 512, TextLayers: 12, TextHeads: 8,
		ImageMean: OpenAIMean, ImageStd: OpenAIStd},
	"ViT-B/16": {Name: "ViT-B/16", EmbedDim: 512, ImageSize: 224, ImageChannels: 3, PatchSize: 16,
		VisionWidth: 768, VisionLayers: 12, VisionHeads: 12,
		ContextLength: 77, VocabSize: 49408, TextWidth: 512, TextLayers: 12, TextHeads: 8,
		ImageMean: OpenAIMean, ImageStd: OpenAIStd},
	"RN50": {Name: "RN50", EmbedDim: 1024, ImageSize: 224, ImageChannels: 3,
		VisionWidth: 64, VisionHeads: 32, ResNetLayers: [4]int{3, 4, 6, 3},
		ContextLength: 77, VocabSize: 49408, TextWidth: 512, TextLayers: 12, TextHeads: 8,
		ImageMean: OpenAIMean, ImageStd: OpenAIStd},
}

// Preset returns the named preset, or an error listing the known names.
func Preset(name string) (Config, error) {
	cfg, ok := Presets[name]
	if !ok {
		names := make([]string, 0, len(Presets))
		for n := range Presets {
			names = append(names, fmt.Sprintf("%q", n))
		}
		sort.Strings(names)
		return Config{}, fmt.Errorf("unknown model preset %q: known presets are %s", name, strings.Join(names, ", "))
	}
	return cfg, nil
}

// IsResNet reports whether the image tower is OpenAI's ModifiedResNet (ResNetLayers set) rather than a ViT.
func (c Config) IsResNet() bool { return c.ResNetLayers != [4]int{} }

// NumPatches is the number of image tokens besides the class token: the ViT's patches, or for a ResNet the
// (ImageSize/32)² positions its attention pool attends to besides their mean.
func (c Config) NumPatches() int {
	if c.IsResNet() {
		g := c.ImageSize / ResNetDownsampling
		return g * g
	}
	g := c.ImageSize / c.PatchSize
	return g * g
}

// Validate checks that the sizes are consistent, and that the image size is one CLIP's preprocessing makes (at
// most imageprep.MaxSide), so that a checkpoint's config cannot ask for absurd images.
func (c Config) Validate() error {
	switch {
	case c.EmbedDim <= 0, c.ImageSize <= 0, c.VisionWidth <= 0, c.TextWidth <= 0,
		c.VisionLayers < 0, c.TextLayers < 0, c.ContextLength < 2:
		return fmt.Errorf("clip config %q: sizes must be positive: %+v", c.Name, c)
	case c.ImageChannels != 1 && c.ImageChannels != 3:
		return fmt.Errorf("clip config %q: image_channels must be 1 or 3, got %d", c.Name, c.ImageChannels)
	case c.ImageSize > imageprep.MaxSide: // Preprocessing allocates ImageSize² pixels per image.
		return fmt.Errorf("clip config %q: image_size %d is above the %d pixels CLIP's preprocessing makes (imageprep.MaxSide)",
			c.Name, c.ImageSize, imageprep.MaxSide)
	}
	if c.IsResNet() {
		if err := c.validateResNet(); err != nil {
			return err
		}
	} else {
		switch {
		case c.PatchSize <= 0:
			return fmt.Errorf("clip config %q: patch_size must be positive, got %d", c.Name, c.PatchSize)
		case c.ImageSize%c.PatchSize != 0:
			return fmt.Errorf("clip config %q: image_size %d is not a multiple of patch_size %d", c.Name, c.ImageSize, c.PatchSize)
		case c.VisionHeads <= 0 || c.VisionWidth%c.VisionHeads != 0:
			return fmt.Errorf("clip config %q: vision_width %d is not divisible by vision_heads %d", c.Name, c.VisionWidth, c.VisionHeads)
		}
	}
	switch {
	case c.TextHeads <= 0 || c.TextWidth%c.TextHeads != 0:
		return fmt.Errorf("clip config %q: text_width %d is not divisible by text_heads %d", c.Name, c.TextWidth, c.TextHeads)
	case c.ImageStd[0] == 0 || (c.ImageChannels == 3 && (c.ImageStd[1] == 0 || c.ImageStd[2] == 0)):
		return fmt.Errorf("clip config %q: image_std must be non-zero", c.Name)
	case c.VocabSize < 3:
		return fmt.Errorf("clip config %q: vocab_size %d is too small (set it from the tokenizer)", c.Name, c.VocabSize)
	}
	return nil
}

// ParamSpec describes one entry of the model's state dict: its OpenAI name, its shape, and how it is
// initialised.
type ParamSpec struct {
	Name string
	Dims []int
	// Init is "normal" (with Std), "zeros", "ones" or "constant" (with Value).
	Init  string
	Std   float64
	Value float64
	// Buffer marks a BatchNorm running statistic (running_mean, running_var) of a ResNet tower: saved, loaded
	// and exported like a parameter, used as a constant by the forward pass (BatchNorm in eval mode), and
	// never trained.
	Buffer bool
}

// Decayed reports whether AdamW applies weight decay to the parameter: matrices only, never biases,
// LayerNorm gains, the class embedding or the logit scale (open_clip's rule).
func (p ParamSpec) Decayed() bool {
	if len(p.Dims) < 2 || p.Buffer {
		return false
	}
	return !strings.Contains(p.Name, "ln_") && !strings.Contains(p.Name, ".bn") && !strings.HasSuffix(p.Name, "bias") &&
		p.Name != "logit_scale"
}

// Tower returns "visual" for image-tower parameters, "text" for the text tower and "" for the logit scale.
func (p ParamSpec) Tower() string {
	switch {
	case strings.HasPrefix(p.Name, "visual."):
		return "visual"
	case p.Name == "logit_scale":
		return ""
	default:
		return "text"
	}
}

// Params lists every parameter of the model in a fixed order, with OpenAI's names, shapes and initialisation
// (OpenAI's initialize_parameters: token embedding std 0.02, positional std 0.01, attention std width^-0.5,
// residual projections width^-0.5·(2·layers)^-0.5, MLP input (2·width)^-0.5, projections width^-0.5). For a
// ResNet tower the list holds its BatchNorm running statistics too, marked Buffer (see resNetParams), but
// never their num_batches_tracked counters, which eval mode does not use.
func (c Config) Params() []ParamSpec {
	var ps []ParamSpec
	normal := func(name string, std float64, dims ...int) {
		ps = append(ps, ParamSpec{Name: name, Dims: dims, Init: "normal", Std: std})
	}
	layerNorm := func(prefix string, width int) {
		ps = append(ps, ParamSpec{Name: prefix + ".weight", Dims: []int{width}, Init: "ones"},
			ParamSpec{Name: prefix + ".bias", Dims: []int{width}, Init: "zeros"})
	}
	zeros := func(name string, dims ...int) { ps = append(ps, ParamSpec{Name: name, Dims: dims, Init: "zeros"}) }
	blocks := func(prefix string, width, layers int) {
		attnStd := pow(float64(width), -0.5)
		projStd := attnStd * pow(float64(2*layers), -0.5)
		fcStd := pow(float64(2*width), -0.5)
		for i := range layers {
			b := fmt.Sprintf("%s.resblocks.%d.", prefix, i)
			layerNorm(b+"ln_1", width)
			normal(b+"attn.in_proj_weight", attnStd, 3*width, width)
			zeros(b+"attn.in_proj_bias", 3*width)
			normal(b+"attn.out_proj.weight", projStd, width, width)
			zeros(b+"attn.out_proj.bias", width)
			layerNorm(b+"ln_2", width)
			normal(b+"mlp.c_fc.weight", fcStd, 4*width, width)
			zeros(b+"mlp.c_fc.bias", 4*width)
			normal(b+"mlp.c_proj.weight", projStd, width, 4*width)
			zeros(b+"mlp.c_proj.bias", width)
		}
	}
	if c.IsResNet() {
		ps = append(ps, c.resNetParams()...)
	} else {
		vw := c.VisionWidth
		vScale := pow(float64(vw), -0.5)
		fanIn := c.ImageChannels * c.PatchSize * c.PatchSize
		normal("visual.conv1.weight", pow(float64(fanIn), -0.5), vw, c.ImageChannels, c.PatchSize, c.PatchSize)
		normal("visual.class_embedding", vScale, vw)
		normal("visual.positional_embedding", vScale, c.NumPatches()+1, vw)
		layerNorm("visual.ln_pre", vw)
		blocks("visual.transformer", vw, c.VisionLayers)
		layerNorm("visual.ln_post", vw)
		normal("visual.proj", vScale, vw, c.EmbedDim)
	}

	tw := c.TextWidth
	normal("token_embedding.weight", 0.02, c.VocabSize, tw)
	normal("positional_embedding", 0.01, c.ContextLength, tw)
	blocks("transformer", tw, c.TextLayers)
	layerNorm("ln_final", tw)
	normal("text_projection", pow(float64(tw), -0.5), tw, c.EmbedDim)
	ps = append(ps, ParamSpec{Name: "logit_scale", Dims: nil, Init: "constant", Value: InitialLogitScale})
	return ps
}

// ParamNames returns the names of Params in order.
func (c Config) ParamNames() []string {
	ps := c.Params()
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	return slices.Clip(names)
}
