package weights

import (
	"fmt"
	"math"
	"regexp"
	"sort"

	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/safetensors"
)

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
