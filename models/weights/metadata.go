package weights

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/mmpoison/mmpoison/models/clip"
)

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
