package weights

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/safetensors"
)

// Safetensors metadata keys written by SaveOpenAI and read by InferConfig (besides clip.MetadataConfig).
// Their values are decimal integers.
const (
	MetadataVisionHeads = "mmpoison.vision_heads"
	MetadataTextHeads   = "mmpoison.text_heads"
)

// OpenAIIgnoredKeys are the non-parameter entries that OpenAI's and open_clip's state dicts may carry (the causal
// mask buffer and the scalar attributes of OpenAI's TorchScript models). Loaders accept and ignore exactly these,
// and, for a ResNet image tower, the num_batches_tracked counter of each of its BatchNorm layers (see
// BatchNormCounterSuffix).
var OpenAIIgnoredKeys = []string{"attn_mask", "input_resolution", "context_length", "vocab_size"}

// BatchNormCounterSuffix ends the name of PyTorch's BatchNorm num_batches_tracked counter. For every BatchNorm
// prefix P of a ResNet tower (P.running_mean is a buffer of the model), a tensor P+BatchNormCounterSuffix is
// accepted and ignored when it holds one value: the counter only matters to BatchNorm in training mode, and
// models/clip runs BatchNorm in eval mode. SaveOpenAI does not write these counters; PyTorch's BatchNorm fills
// in a missing one when it loads a plain state dict.
const BatchNormCounterSuffix = ".num_batches_tracked"

// HuggingFaceIgnoredKeys are the non-parameter buffers of HuggingFace's CLIPModel, accepted and ignored.
var HuggingFaceIgnoredKeys = []string{"vision_model.embeddings.position_ids", "text_model.embeddings.position_ids"}

// Hints supplies what the tensor shapes of a checkpoint cannot tell. Zero fields are unset.
type Hints struct {
	// VisionHeads and TextHeads are the attention head counts of the image and text transformers. They override
	// the checkpoint's metadata; without either, OpenAI's width/64 is used, which is wrong for most small models.
	VisionHeads int
	TextHeads   int
}

// pickleExts are the extensions of PyTorch pickle checkpoints, refused with a conversion hint.
var pickleExts = map[string]bool{".pt": true, ".pth": true, ".bin": true, ".ckpt": true, ".pkl": true}

// conversionHint explains how to convert a PyTorch checkpoint to safetensors.
func conversionHint(path string) string {
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	return fmt.Sprintf("only safetensors checkpoints are read; convert %s first, e.g. with\n"+
		"  python -c \"import torch, safetensors.torch; model = torch.jit.load('%s', map_location='cpu'); "+
		"safetensors.torch.save_file({k: v.contiguous() for k, v in model.state_dict().items()}, '%s.safetensors')\"\n"+
		"(for a pickled state dict rather than a TorchScript model, use sd = torch.load(path, map_location='cpu') "+
		"and safetensors.torch.save_file(sd, ...); for a HuggingFace model, save_pretrained(..., safe_serialization=True))",
		path, filepath.Base(path), base)
}

// readCheckpoint reads a safetensors file, refusing PyTorch pickles (by extension, or by a zip or pickle
// signature where a safetensors header should be) with a conversion hint.
func readCheckpoint(path string) (*safetensors.File, error) {
	if pickleExts[strings.ToLower(filepath.Ext(path))] {
		return nil, fmt.Errorf("%s looks like a PyTorch pickle checkpoint: %s", path, conversionHint(path))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading checkpoint: %w", err)
	}
	// A safetensors file starts with an 8-byte header length and then '{'. Its first byte may be 0x80 by chance
	// (a header of 128 mod 256 bytes), so a pickle signature only counts where the '{' is missing.
	notSafetensors := len(data) < 9 || data[8] != '{'
	if notSafetensors && (bytes.HasPrefix(data, []byte("PK\x03\x04")) || (len(data) > 0 && data[0] == 0x80)) {
		return nil, fmt.Errorf("%s is a PyTorch zip or pickle file, not safetensors: %s", path, conversionHint(path))
	}
	f, err := safetensors.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	return f, nil
}

// isHuggingFace reports whether f uses HuggingFace CLIPModel names.
func isHuggingFace(f *safetensors.File) bool {
	for _, t := range f.Tensors {
		if strings.HasPrefix(t.Name, "vision_model.") || strings.HasPrefix(t.Name, "text_model.") ||
			t.Name == "visual_projection.weight" {
			return true
		}
	}
	return false
}

// resNetKey returns a tensor name of an OpenAI ModifiedResNet image tower, or "".
func resNetKey(f *safetensors.File) string {
	for _, t := range f.Tensors {
		if strings.HasPrefix(t.Name, "visual.layer1.") || strings.HasPrefix(t.Name, "visual.attnpool.") {
			return t.Name
		}
	}
	return ""
}

// shapeOf returns the shape of the named tensor, checking its rank.
func shapeOf(f *safetensors.File, name string, rank int) ([]int, error) {
	t := f.Get(name)
	if t == nil {
		return nil, fmt.Errorf("tensor %q is missing", name)
	}
	if len(t.Shape) != rank {
		return nil, fmt.Errorf("tensor %q has shape %v, want rank %d", name, t.Shape, rank)
	}
	return t.Shape, nil
}

// countLayers counts the distinct block indices N of tensors named prefix+N+"."+suffix.
func countLayers(f *safetensors.File, prefix, suffix string) int {
	re := regexp.MustCompile("^" + regexp.QuoteMeta(prefix) + `(\d+)\.` + regexp.QuoteMeta(suffix))
	seen := map[string]bool{}
	for _, t := range f.Tensors {
		if m := re.FindStringSubmatch(t.Name); m != nil {
			seen[m[1]] = true
		}
	}
	return len(seen)
}

// gridSize returns g with g·g+1 == positions, as OpenAI's round(sqrt(positions-1)) with its exactness check.
func gridSize(name string, positions int) (int, error) {
	g := int(math.Round(math.Sqrt(float64(positions - 1))))
	if positions < 2 || g*g+1 != positions {
		return 0, fmt.Errorf("tensor %q has %d positions, not a square grid of patches plus the class token", name, positions)
	}
	return g, nil
}

// InferConfig infers the architecture of an OpenAI-named CLIP checkpoint from its tensor shapes, as OpenAI's
// build_model does. A checkpoint without visual.proj but with visual.layer1.* or visual.attnpool.* tensors has a
// ModifiedResNet image tower: blocks per stage from the visual.layerN.M indices present, the base width from
// visual.layer1.0.conv1.weight, the image size from the grid of visual.attnpool.positional_embedding (times 32),
// the channels from visual.conv1.weight. Otherwise it is a ViT: vision width, channels and patch size from
// visual.conv1.weight, the image size from the patch size and the grid of visual.positional_embedding, the
// layer count from the resblocks present. Both: the embedding size from text_projection, the context length
// from positional_embedding, the vocabulary from token_embedding.weight, the text width from ln_final.weight.
//
// Head counts, which shapes cannot tell, come from hints, else from the MetadataVisionHeads/MetadataTextHeads
// metadata, else from the clip.Config JSON under clip.MetadataConfig, else from OpenAI's rules: width/64, and
// 32·width/64 for a ResNet's attention pool. The image mean and standard deviation are the metadata config's
// when present, else OpenAI's. When the metadata config is present, its sizes must agree with the shapes. The
// result is validated.
//
// HuggingFace-named checkpoints give an error pointing to LoadHuggingFace.
func InferConfig(f *safetensors.File, hints Hints) (clip.Config, error) {
	if isHuggingFace(f) {
		return clip.Config{}, errors.New("checkpoint uses HuggingFace CLIPModel names (vision_model.*, text_model.*): " +
			"load it with LoadHuggingFace or Load and its config.json")
	}
	var cfg clip.Config
	var err error
	if f.Get("visual.proj") == nil && resNetKey(f) != "" {
		cfg, err = resNetConfigFromShapes(f)
	} else {
		cfg, err = configFromShapes(f, openAINames)
	}
	if err != nil {
		return cfg, err
	}
	if err := applyMetadata(&cfg, f.Metadata, hints); err != nil {
		return clip.Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return clip.Config{}, err
	}
	return cfg, nil
}

// shapeNames names, in one naming scheme, the tensors whose shapes give the architecture.
type shapeNames struct {
	config                                               string // Config.Name for files of this scheme
	patch, visionPos, projection, textPos, tokens, final string
	// projectionEmbedAxis is the axis of the projection that holds the embedding size (HuggingFace transposes it).
	projectionEmbedAxis int
	// Layers are counted as prefix+N+"."+suffix (suffix "" counts any tensor of layer N).
	visionLayers, visionLayerSuffix, textLayers string
}

var (
	openAINames = shapeNames{config: "openai-vit", patch: "visual.conv1.weight", visionPos: "visual.positional_embedding",
		projection: "text_projection", projectionEmbedAxis: 1, textPos: "positional_embedding",
		tokens: "token_embedding.weight", final: "ln_final.weight",
		visionLayers: "visual.transformer.resblocks.", visionLayerSuffix: "attn.in_proj_weight", textLayers: "transformer.resblocks."}
)

// configFromShapes reads every size the tensor shapes determine (all but the head counts) as OpenAI's
// build_model does, with OpenAI's pixel normalisation.
func configFromShapes(f *safetensors.File, n shapeNames) (clip.Config, error) {
	var cfg clip.Config
	patch, err := shapeOf(f, n.patch, 4)
	if err != nil {
		return cfg, err
	}
	if patch[2] != patch[3] {
		return cfg, fmt.Errorf("tensor %q has non-square patches %v", n.patch, patch)
	}
	vpos, err := shapeOf(f, n.visionPos, 2)
	if err != nil {
		return cfg, err
	}
	grid, err := gridSize(n.visionPos, vpos[0])
	if err != nil {
		return cfg, err
	}
	cfg = clip.Config{
		Name:          n.config,
		ImageSize:     patch[3] * grid,
		ImageChannels: patch[1],
		PatchSize:     patch[3],
		VisionWidth:   patch[0],
		VisionLayers:  countLayers(f, n.visionLayers, n.visionLayerSuffix),
		ImageMean:     clip.OpenAIMean,
		ImageStd:      clip.OpenAIStd,
	}
	return cfg, textFromShapes(f, n, &cfg)
}

// textFromShapes sets the embedding size and the text tower's sizes of cfg from the tensor shapes.
func textFromShapes(f *safetensors.File, n shapeNames, cfg *clip.Config) error {
	proj, err := shapeOf(f, n.projection, 2)
	if err != nil {
		return err
	}
	tpos, err := shapeOf(f, n.textPos, 2)
	if err != nil {
		return err
	}
	tok, err := shapeOf(f, n.tokens, 2)
	if err != nil {
		return err
	}
	final, err := shapeOf(f, n.final, 1)
	if err != nil {
		return err
	}
	cfg.EmbedDim = proj[n.projectionEmbedAxis]
	cfg.ContextLength = tpos[0]
	cfg.VocabSize = tok[0]
	cfg.TextWidth = final[0]
	cfg.TextLayers = countLayers(f, n.textLayers, "")
	return nil
}

// resNetConfigFromShapes reads the sizes of an OpenAI-named checkpoint with a ModifiedResNet image tower as
// build_model does: blocks per stage counted from the visual.layerN.M names, the base width from
// visual.layer1.0.conv1.weight, the image size 32 times the grid of visual.attnpool.positional_embedding; the
// channels from visual.conv1.weight; OpenAI's pixel normalisation.
func resNetConfigFromShapes(f *safetensors.File) (clip.Config, error) {
	var cfg clip.Config
	stem, err := shapeOf(f, "visual.conv1.weight", 4)
	if err != nil {
		return cfg, err
	}
	first, err := shapeOf(f, "visual.layer1.0.conv1.weight", 4)
	if err != nil {
		return cfg, err
	}
	pos, err := shapeOf(f, "visual.attnpool.positional_embedding", 2)
	if err != nil {
		return cfg, err
	}
	grid, err := gridSize("visual.attnpool.positional_embedding", pos[0])
	if err != nil {
		return cfg, err
	}
	cfg = clip.Config{
		Name:          "openai-resnet",
		ImageSize:     grid * clip.ResNetDownsampling,
		ImageChannels: stem[1],
		VisionWidth:   first[0],
		ImageMean:     clip.OpenAIMean,
		ImageStd:      clip.OpenAIStd,
	}
	for s := range cfg.ResNetLayers {
		cfg.ResNetLayers[s] = countLayers(f, fmt.Sprintf("visual.layer%d.", s+1), "")
	}
	return cfg, textFromShapes(f, openAINames, &cfg)
}

// applyMetadata sets the head counts, name and normalisation of cfg (whose sizes come from the shapes) from
// hints and metadata, checking that a stored config agrees with the shapes.
func applyMetadata(cfg *clip.Config, meta map[string]string, hints Hints) error {
	var stored clip.Config
	if raw, ok := meta[clip.MetadataConfig]; ok {
		if err := json.Unmarshal([]byte(raw), &stored); err != nil {
			return fmt.Errorf("malformed %q metadata: %w", clip.MetadataConfig, err)
		}
		for _, c := range []struct {
			field         string
			stored, shape int
		}{
			{"embed_dim", stored.EmbedDim, cfg.EmbedDim}, {"image_size", stored.ImageSize, cfg.ImageSize},
			{"image_channels", stored.ImageChannels, cfg.ImageChannels}, {"patch_size", stored.PatchSize, cfg.PatchSize},
			{"vision_width", stored.VisionWidth, cfg.VisionWidth}, {"vision_layers", stored.VisionLayers, cfg.VisionLayers},
			{"context_length", stored.ContextLength, cfg.ContextLength}, {"vocab_size", stored.VocabSize, cfg.VocabSize},
			{"text_width", stored.TextWidth, cfg.TextWidth}, {"text_layers", stored.TextLayers, cfg.TextLayers},
		} {
			if c.stored != 0 && c.stored != c.shape {
				return fmt.Errorf("%q metadata says %s = %d, but the tensor shapes give %d", clip.MetadataConfig,
					c.field, c.stored, c.shape)
			}
		}
		if stored.ResNetLayers != ([4]int{}) && stored.ResNetLayers != cfg.ResNetLayers {
			return fmt.Errorf("%q metadata says resnet_layers = %v, but the tensor shapes give %v", clip.MetadataConfig,
				stored.ResNetLayers, cfg.ResNetLayers)
		}
		if stored.Name != "" {
			cfg.Name = stored.Name
		}
		if stored.ImageStd != ([3]float64{}) {
			cfg.ImageMean, cfg.ImageStd = stored.ImageMean, stored.ImageStd
		}
	} else if name := presetName(*cfg); name != "" {
		cfg.Name = name
	}
	// width is the width the heads split: a ResNet's attention pool works on 32·VisionWidth channels, and
	// OpenAI's rule then gives 32·VisionWidth/64 heads.
	pick := func(what string, width, hint int, key string, storedHeads int) (int, error) {
		heads, source := hint, "hint"
		if heads == 0 {
			if raw, ok := meta[key]; ok {
				n, err := strconv.Atoi(strings.TrimSpace(raw))
				if err != nil {
					return 0, fmt.Errorf("malformed %q metadata %q: %w", key, raw, err)
				}
				heads, source = n, fmt.Sprintf("metadata %q", key)
			}
		}
		if heads == 0 && storedHeads != 0 {
			heads, source = storedHeads, fmt.Sprintf("metadata %q", clip.MetadataConfig)
		}
		if heads == 0 {
			heads, source = width/64, fmt.Sprintf("OpenAI's rule: %s width %d/64", what, width)
		}
		if heads <= 0 || width%heads != 0 {
			return 0, fmt.Errorf("%s heads = %d (from %s) does not divide the %s width %d: give the head count in "+
				"weights.Hints or the %q metadata", what, heads, source, what, width, key)
		}
		return heads, nil
	}
	visionAttention, visionWhat := cfg.VisionWidth, "vision"
	if cfg.IsResNet() {
		visionAttention, visionWhat = cfg.ResNetFeatureWidth(), "vision attention-pool"
	}
	var err error
	if cfg.VisionHeads, err = pick(visionWhat, visionAttention, hints.VisionHeads, MetadataVisionHeads, stored.VisionHeads); err != nil {
		return err
	}
	if cfg.TextHeads, err = pick("text", cfg.TextWidth, hints.TextHeads, MetadataTextHeads, stored.TextHeads); err != nil {
		return err
	}
	return nil
}

// presetName returns the name of the preset with the sizes of cfg (heads aside), or "".
func presetName(cfg clip.Config) string {
	names := make([]string, 0, len(clip.Presets))
	for n := range clip.Presets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := clip.Presets[n]
		if p.EmbedDim == cfg.EmbedDim && p.ImageSize == cfg.ImageSize && p.ImageChannels == cfg.ImageChannels &&
			p.PatchSize == cfg.PatchSize && p.VisionWidth == cfg.VisionWidth && p.VisionLayers == cfg.VisionLayers &&
			p.ResNetLayers == cfg.ResNetLayers &&
			p.ContextLength == cfg.ContextLength && p.TextWidth == cfg.TextWidth && p.TextLayers == cfg.TextLayers &&
			(p.VocabSize == 0 || p.VocabSize == cfg.VocabSize) {
			return n
		}
	}
	return ""
}

// checker matches a checkpoint's tensors against the parameters they feed, counting uses and collecting problems.
type checker struct {
	byName   map[string]*safetensors.Tensor
	order    []string
	used     map[string]int
	ignored  map[string]bool
	problems []string
}

func newChecker(f *safetensors.File, ignored []string) *checker {
	c := &checker{byName: map[string]*safetensors.Tensor{}, used: map[string]int{}, ignored: map[string]bool{}}
	for _, t := range f.Tensors {
		c.byName[t.Name] = t
		c.order = append(c.order, t.Name)
	}
	for _, n := range ignored {
		c.ignored[n] = true
	}
	return c
}

// take returns the named tensor if it exists with dims and as floating point, recording a problem otherwise.
func (c *checker) take(name string, dims []int) *safetensors.Tensor {
	t, ok := c.byName[name]
	if !ok {
		c.problems = append(c.problems, fmt.Sprintf("tensor %q is missing", name))
		return nil
	}
	c.used[name]++
	if c.used[name] > 1 {
		c.problems = append(c.problems, fmt.Sprintf("tensor %q is used more than once", name))
		return nil
	}
	if t.DType != "F32" {
		c.problems = append(c.problems, fmt.Sprintf("tensor %q has dtype %s, want a floating-point type", name, t.DType))
		return nil
	}
	if !slices.Equal(t.Shape, dims) {
		c.problems = append(c.problems, fmt.Sprintf("tensor %q has shape %v, the model needs %v", name, t.Shape, dims))
		return nil
	}
	return t
}

// ignoreCounter accepts and ignores the named BatchNorm counter if present, recording a problem unless it holds
// exactly one value.
func (c *checker) ignoreCounter(name string) {
	t, ok := c.byName[name]
	if !ok {
		return
	}
	c.ignored[name] = true
	if safetensors.NumElements(t.Shape) != 1 {
		c.problems = append(c.problems, fmt.Sprintf("tensor %q has shape %v, but a BatchNorm counter holds one value", name, t.Shape))
	}
}

// finish records the unused, not ignored tensors and returns an error listing every problem, or nil.
func (c *checker) finish(what string) error {
	for _, n := range c.order {
		if c.used[n] == 0 && !c.ignored[n] {
			c.problems = append(c.problems, fmt.Sprintf("tensor %q is not a parameter of the model (unexpected)", n))
		}
	}
	if len(c.problems) == 0 {
		return nil
	}
	const maxShown = 8
	shown := c.problems
	more := ""
	if len(shown) > maxShown {
		more = fmt.Sprintf("; and %d more", len(shown)-maxShown)
		shown = shown[:maxShown]
	}
	return fmt.Errorf("checkpoint does not match the %s: %s%s", what, strings.Join(shown, "; "), more)
}

func describe(cfg clip.Config) string {
	if cfg.IsResNet() {
		return fmt.Sprintf("inferred %q model (vision ResNet with %v blocks, width %d, attention pool %d heads; text %d×%d, %d heads; embed %d)",
			cfg.Name, cfg.ResNetLayers, cfg.VisionWidth, cfg.VisionHeads, cfg.TextLayers, cfg.TextWidth, cfg.TextHeads, cfg.EmbedDim)
	}
	return fmt.Sprintf("inferred %q model (vision %d×%d, %d heads; text %d×%d, %d heads; embed %d)", cfg.Name,
		cfg.VisionLayers, cfg.VisionWidth, cfg.VisionHeads, cfg.TextLayers, cfg.TextWidth, cfg.TextHeads, cfg.EmbedDim)
}

// loadOpenAIFile infers the config of an OpenAI-named file and loads its parameters into a new context.
func loadOpenAIFile(f *safetensors.File, hints Hints) (*context.Context, clip.Config, error) {
	cfg, err := InferConfig(f, hints)
	if err != nil {
		return nil, clip.Config{}, err
	}
	c := newChecker(f, OpenAIIgnoredKeys)
	params := cfg.Params()
	for _, p := range params {
		c.take(p.Name, p.Dims)
		if prefix, ok := strings.CutSuffix(p.Name, ".running_mean"); ok && p.Buffer {
			c.ignoreCounter(prefix + BatchNormCounterSuffix)
		}
	}
	if err := c.finish(describe(cfg)); err != nil {
		return nil, clip.Config{}, err
	}
	ctx := context.New()
	if err := clip.SetVariablesFromTensors(ctx.In(clip.Scope), "", params, f); err != nil {
		return nil, clip.Config{}, err
	}
	return ctx, cfg, nil
}

// LoadOpenAI reads an OpenAI-named CLIP safetensors checkpoint, ViT or ModifiedResNet (OpenAI's or open_clip's
// state dict, or a file written by SaveOpenAI or clip.Save) into a new context, under clip.Scope, with the
// config InferConfig gives. Every parameter (and BatchNorm running statistic) must be present with its exact
// shape and every tensor of the file used exactly once, apart from OpenAIIgnoredKeys and the BatchNorm counters
// (BatchNormCounterSuffix); otherwise the error names the offending tensors. PyTorch pickles are refused with a
// conversion hint.
func LoadOpenAI(path string, hints Hints) (*context.Context, clip.Config, error) {
	f, err := readCheckpoint(path)
	if err != nil {
		return nil, clip.Config{}, err
	}
	ctx, cfg, err := loadOpenAIFile(f, hints)
	if err != nil {
		return nil, clip.Config{}, fmt.Errorf("loading %s: %w", path, err)
	}
	return ctx, cfg, nil
}

// SaveOpenAI writes the parameters of the model in ctx (under clip.Scope) to a safetensors file with OpenAI's
// names and layouts, as F32, with cfg as JSON under clip.MetadataConfig and the head counts under
// MetadataVisionHeads and MetadataTextHeads, so that LoadOpenAI (or clip.Load) restores the same tensors and
// config without hints. A ResNet tower's BatchNorm running statistics are written, its num_batches_tracked
// counters are not (PyTorch's load_state_dict fills them in); the file loads into OpenAI's CLIP module.
func SaveOpenAI(path string, ctx *context.Context, cfg clip.Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("saving %s: %w", path, err)
	}
	ts, err := clip.ParamsToTensors(ctx, cfg)
	if err != nil {
		return fmt.Errorf("saving %s: %w", path, err)
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("saving %s: %w", path, err)
	}
	return safetensors.WriteFile(path, &safetensors.File{Tensors: ts, Metadata: map[string]string{
		clip.MetadataConfig: string(cfgJSON),
		MetadataVisionHeads: strconv.Itoa(cfg.VisionHeads),
		MetadataTextHeads:   strconv.Itoa(cfg.TextHeads),
	}})
}

// Load reads a CLIP safetensors checkpoint in either naming (ResNet towers exist in OpenAI's naming only): HuggingFace CLIPModel names (detected by
// vision_model.* or text_model.* tensors) are loaded as LoadHuggingFace does, with configPath, or, when it is
// empty, the config.json beside the checkpoint (hints are then unused: config.json gives the heads); anything
// else as LoadOpenAI does, with hints (configPath is then unused).
func Load(path, configPath string, hints Hints) (*context.Context, clip.Config, error) {
	f, err := readCheckpoint(path)
	if err != nil {
		return nil, clip.Config{}, err
	}
	var ctx *context.Context
	var cfg clip.Config
	if isHuggingFace(f) {
		if configPath == "" {
			configPath = filepath.Join(filepath.Dir(path), "config.json")
		}
		ctx, cfg, err = loadHuggingFaceFile(f, configPath)
	} else {
		ctx, cfg, err = loadOpenAIFile(f, hints)
	}
	if err != nil {
		return nil, clip.Config{}, fmt.Errorf("loading %s: %w", path, err)
	}
	return ctx, cfg, nil
}
