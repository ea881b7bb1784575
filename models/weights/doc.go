// Package weights loads and exports pretrained CLIP checkpoints (ViT and ModifiedResNet image towers) for
// models/clip.
//
// Two namings of safetensors files are understood:
//
//   - OpenAI's state-dict names (visual.conv1.weight, transformer.resblocks.0.attn.in_proj_weight,
//     visual.layer1.0.conv1.weight, visual.attnpool.q_proj.weight, ...), as in github.com/openai/CLIP and
//     open_clip, which are also models/clip's variable names. The architecture is inferred from the tensor
//     shapes the way OpenAI's build_model does (see InferConfig), except the head counts, which the shapes
//     cannot tell: they come from Hints, from an open_clip model config (open_clip_config.json beside the file,
//     as open_clip publishes checkpoints, or a model_configs/*.json file given to Load), from this package's
//     metadata keys, from the clip.Config JSON that clip.Save and SaveOpenAI store, or, last, from OpenAI's
//     rules (width/64; 32·width/64 for a ResNet's attention pool).
//   - HuggingFace transformers' CLIPModel names (vision_model.encoder.layers.0.self_attn.q_proj.weight, ...)
//     with the model's config.json, mapped onto OpenAI's names (q, k and v concatenated into in_proj, the
//     projections transposed); see LoadHuggingFace, and SaveHuggingFace for the way back. One table (names.go)
//     holds the mapping both ways. CLIPModel has no ResNet tower.
//
// Loading is strict: every parameter of the inferred model (and every BatchNorm running_mean and running_var of
// a ResNet tower) must be present with its exact shape, and every tensor of the file must be used exactly once,
// except a few known non-parameter entries, which are ignored: OpenAI's and open_clip's attn_mask,
// input_resolution, context_length and vocab_size, the num_batches_tracked counter of each BatchNorm of a ResNet
// tower, and HuggingFace's position_ids. A missing, extra or mis-shaped tensor is an error naming it.
//
// Only safetensors files are read. PyTorch pickles (.pt, .pth, .bin) are refused with a hint on converting
// them with Python's safetensors package. F16, BF16 and F64 tensors are widened to F32 on reading.
//
// Limitations: models/clip implements QuickGELU only, so HuggingFace configs with another hidden_act and
// open_clip configs without quick_gelu are refused, while an OpenAI-named open_clip checkpoint trained with plain
// GELU (several LAION models) and loaded without its open_clip config cannot be told apart by its tensors and
// loads, but computes slightly different features.
package weights
