package weights

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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

// MaxConfigSize bounds the config files read beside a checkpoint (HuggingFace's config.json, open_clip's model
// configs): 1 MiB, where real ones take a few kilobytes.
const MaxConfigSize = 1 << 20

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
// signature where a safetensors header should be) with a conversion hint. It reads what safetensors.ReadFile
// reads: a regular file (a device such as /dev/zero is refused) of at most safetensors.MaxFileSize bytes, its
// checksum verified when it has one.
func readCheckpoint(path string) (*safetensors.File, error) {
	if pickleExts[strings.ToLower(filepath.Ext(path))] {
		return nil, fmt.Errorf("%s looks like a PyTorch pickle checkpoint: %s", path, conversionHint(path))
	}
	head, err := fileHead(path, 9)
	if err != nil {
		return nil, fmt.Errorf("reading checkpoint: %w", err)
	}
	// A safetensors file starts with an 8-byte header length and then '{'. Its first byte may be 0x80 by chance
	// (a header of 128 mod 256 bytes), so a pickle signature only counts where the '{' is missing.
	notSafetensors := len(head) < 9 || head[8] != '{'
	if notSafetensors && (bytes.HasPrefix(head, []byte("PK\x03\x04")) || (len(head) > 0 && head[0] == 0x80)) {
		return nil, fmt.Errorf("%s is a PyTorch zip or pickle file, not safetensors: %s", path, conversionHint(path))
	}
	return safetensors.ReadFile(path)
}

// fileHead returns the first n bytes of the regular file at path (fewer when it is shorter).
func fileHead(path string, n int) ([]byte, error) {
	if st, err := os.Stat(path); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%v)", path, st.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	head := make([]byte, n)
	k, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return head[:k], nil
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

// InferConfig infers the architecture of an OpenAI-named CLIP checkpoint from its tensor shapes, as OpenAI's
// build_model does. A checkpoint without visual.proj but with visual.layer1.* or visual.attnpool.* tensors has a
// ModifiedResNet image tower: blocks per stage from the visual.layerN.M indices present, the base width from
// visual.layer1.0.conv1.weight, the image size from the grid of visual.attnpool.positional_embedding (times 32),
// the channels from visual.conv1.weight. Otherwise it is a ViT: vision width, channels and patch size from
// visual.conv1.weight, the image size from the patch size and the grid of visual.positional_embedding, the
// layer count from the resblocks present. Both: the embedding size from text_projection, the context length
// from positional_embedding, the vocabulary from token_embedding.weight, the text width from ln_final.weight.
//
// Head counts, which shapes cannot tell, come from hints, else from an open_clip model config (LoadOpenAI and
// Load read one), else from the MetadataVisionHeads/MetadataTextHeads metadata, else from the clip.Config JSON
// under clip.MetadataConfig, else from OpenAI's rules: width/64, and 32·width/64 for a ResNet's attention pool.
// The image mean and standard deviation are the open_clip config's when it has them, else the metadata
// config's when present, else OpenAI's. The sizes an open_clip config or the metadata config state must agree
// with the shapes. The result is validated.
//
// HuggingFace-named checkpoints give an error pointing to LoadHuggingFace.
func InferConfig(f *safetensors.File, hints Hints) (clip.Config, error) {
	return inferConfig(f, hints, nil)
}

// inferConfig is InferConfig with an open_clip config (nil: none).
func inferConfig(f *safetensors.File, hints Hints, oc *openCLIPConfig) (clip.Config, error) {
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
	if err := applyMetadata(&cfg, f.Metadata, hints, oc); err != nil {
		return clip.Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return clip.Config{}, err
	}
	return cfg, nil
}

// loadOpenAIFile infers the config of an OpenAI-named file (with the open_clip config at ocPath, if not "") and
// loads its parameters into a new context.
func loadOpenAIFile(f *safetensors.File, hints Hints, ocPath string) (*context.Context, clip.Config, error) {
	var oc *openCLIPConfig
	if ocPath != "" {
		var err error
		if oc, err = readOpenCLIPConfig(ocPath); err != nil {
			return nil, clip.Config{}, err
		}
	}
	cfg, err := inferConfig(f, hints, oc)
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
// conversion hint. An open_clip config beside the file (OpenCLIPConfigName, as open_clip publishes its
// checkpoints) gives the head counts and normalisation, and its sizes must agree with the tensors.
func LoadOpenAI(path string, hints Hints) (*context.Context, clip.Config, error) {
	f, err := readCheckpoint(path)
	if err != nil {
		return nil, clip.Config{}, err
	}
	ctx, cfg, err := loadOpenAIFile(f, hints, openCLIPConfigBeside(path))
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

// Load reads a CLIP safetensors checkpoint in either naming (ResNet towers exist in OpenAI's naming only).
// HuggingFace CLIPModel names (detected by vision_model.* or text_model.* tensors) are loaded as LoadHuggingFace
// does, with configPath, or, when it is empty, the config.json beside the checkpoint (hints are then unused:
// config.json gives the heads). Anything else is loaded as LoadOpenAI does, with hints and the open_clip model
// config at configPath (open_clip_config.json, or a model_configs/*.json file), or, when it is empty, the
// open_clip_config.json beside the checkpoint if there is one.
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
		if configPath == "" {
			configPath = openCLIPConfigBeside(path)
		}
		ctx, cfg, err = loadOpenAIFile(f, hints, configPath)
	}
	if err != nil {
		return nil, clip.Config{}, fmt.Errorf("loading %s: %w", path, err)
	}
	return ctx, cfg, nil
}
