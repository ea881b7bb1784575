package weights

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/mmpoison/mmpoison/models/clip"
)

// applyMetadata sets the head counts, name and normalisation of cfg (whose sizes come from the shapes) from
// hints, an open_clip config (nil: none) and metadata, checking that the open_clip config and a stored config
// agree with the shapes.
func applyMetadata(cfg *clip.Config, meta map[string]string, hints Hints, oc *openCLIPConfig) error {
	stored, err := storedConfig(cfg, meta)
	if err != nil {
		return err
	}
	if _, ok := meta[clip.MetadataConfig]; ok {
		if stored.Name != "" {
			cfg.Name = stored.Name
		}
	} else if name := presetName(*cfg); name != "" {
		cfg.Name = name
	}
	if stored.ImageStd != ([3]float64{}) {
		cfg.ImageMean, cfg.ImageStd = stored.ImageMean, stored.ImageStd
	}
	var ocVision, ocText headSource
	if oc != nil {
		v, t, err := oc.apply(*cfg)
		if err != nil {
			return err
		}
		from := "open_clip config " + oc.path
		ocVision, ocText = headSource{v, from}, headSource{t, from}
		if oc.std != nil {
			cfg.ImageMean, cfg.ImageStd = [3]float64(oc.mean), [3]float64(oc.std)
		}
	}
	metaVision, err := metadataHeads(meta, MetadataVisionHeads)
	if err != nil {
		return err
	}
	metaText, err := metadataHeads(meta, MetadataTextHeads)
	if err != nil {
		return err
	}
	storedFrom := fmt.Sprintf("metadata %q", clip.MetadataConfig)
	// The vision heads split a ResNet's attention pool, which works on 32·VisionWidth channels.
	visionWidth, visionWhat := cfg.VisionWidth, "vision"
	if cfg.IsResNet() {
		visionWidth, visionWhat = cfg.ResNetFeatureWidth(), "vision attention-pool"
	}
	if cfg.VisionHeads, err = pickHeads(visionWhat, visionWidth, MetadataVisionHeads, headSource{hints.VisionHeads, "hint"},
		ocVision, metaVision, headSource{stored.VisionHeads, storedFrom}); err != nil {
		return err
	}
	cfg.TextHeads, err = pickHeads("text", cfg.TextWidth, MetadataTextHeads, headSource{hints.TextHeads, "hint"},
		ocText, metaText, headSource{stored.TextHeads, storedFrom})
	return err
}

// headSource is a head count and where it comes from; 0 heads: the source says nothing.
type headSource struct {
	heads int
	from  string
}

// metadataHeads reads the head count under key, if any.
func metadataHeads(meta map[string]string, key string) (headSource, error) {
	raw, ok := meta[key]
	if !ok {
		return headSource{}, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(raw))
	if err != nil {
		return headSource{}, fmt.Errorf("malformed %q metadata %q: %w", key, raw, err)
	}
	return headSource{n, fmt.Sprintf("metadata %q", key)}, nil
}

// pickHeads returns the head count of the first source that has one, else OpenAI's rule width/64, checking
// that it divides width.
func pickHeads(what string, width int, key string, sources ...headSource) (int, error) {
	chosen := headSource{width / 64, fmt.Sprintf("OpenAI's rule: %s width %d/64", what, width)}
	for _, s := range sources {
		if s.heads != 0 {
			chosen = s
			break
		}
	}
	if chosen.heads <= 0 || width%chosen.heads != 0 {
		return 0, fmt.Errorf("%s heads = %d (from %s) does not divide the %s width %d: give the head count in "+
			"weights.Hints, an open_clip config or the %q metadata", what, chosen.heads, chosen.from, what, width, key)
	}
	return chosen.heads, nil
}

// storedConfig decodes the clip.Config that clip.Save and SaveOpenAI store in the metadata (zero when absent)
// and checks its sizes against cfg's.
func storedConfig(cfg *clip.Config, meta map[string]string) (clip.Config, error) {
	var stored clip.Config
	raw, ok := meta[clip.MetadataConfig]
	if !ok {
		return stored, nil
	}
	if err := json.Unmarshal([]byte(raw), &stored); err != nil {
		return stored, fmt.Errorf("malformed %q metadata: %w", clip.MetadataConfig, err)
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
			return stored, fmt.Errorf("%q metadata says %s = %d, but the tensor shapes give %d", clip.MetadataConfig,
				c.field, c.stored, c.shape)
		}
	}
	if stored.ResNetLayers != ([4]int{}) && stored.ResNetLayers != cfg.ResNetLayers {
		return stored, fmt.Errorf("%q metadata says resnet_layers = %v, but the tensor shapes give %v", clip.MetadataConfig,
			stored.ResNetLayers, cfg.ResNetLayers)
	}
	return stored, nil
}
