package weights

import (
	"fmt"
	"strings"

	"github.com/mmpoison/mmpoison/models/safetensors"
)

// hfName maps one OpenAI parameter name to HuggingFace's CLIPModel: one tensor, the same or transposed (the
// projections: OpenAI multiplies x @ proj, HuggingFace stores a Linear [out, in]), or the q, k and v tensors
// that OpenAI's in_proj concatenates along its first axis, in that order.
type hfName struct {
	openAI    string
	hf        []string
	transpose bool
}

// The OpenAI↔HuggingFace name table, the only one: hfTopNames outside the residual blocks, hfBlockNames inside
// one (relative to the block's prefix), hfTowers the block prefixes of each tower. Loading HuggingFace files,
// exporting them and the shape inference of HuggingFace files all read it.
var (
	hfTopNames = []hfName{
		{"visual.conv1.weight", []string{"vision_model.embeddings.patch_embedding.weight"}, false},
		{"visual.class_embedding", []string{"vision_model.embeddings.class_embedding"}, false},
		{"visual.positional_embedding", []string{"vision_model.embeddings.position_embedding.weight"}, false},
		{"visual.ln_pre.weight", []string{"vision_model.pre_layrnorm.weight"}, false},
		{"visual.ln_pre.bias", []string{"vision_model.pre_layrnorm.bias"}, false},
		{"visual.ln_post.weight", []string{"vision_model.post_layernorm.weight"}, false},
		{"visual.ln_post.bias", []string{"vision_model.post_layernorm.bias"}, false},
		{"visual.proj", []string{"visual_projection.weight"}, true},
		{"token_embedding.weight", []string{"text_model.embeddings.token_embedding.weight"}, false},
		{"positional_embedding", []string{"text_model.embeddings.position_embedding.weight"}, false},
		{"ln_final.weight", []string{"text_model.final_layer_norm.weight"}, false},
		{"ln_final.bias", []string{"text_model.final_layer_norm.bias"}, false},
		{"text_projection", []string{"text_projection.weight"}, true},
		{"logit_scale", []string{"logit_scale"}, false},
	}
	hfBlockNames = []hfName{
		{"ln_1.weight", []string{"layer_norm1.weight"}, false},
		{"ln_1.bias", []string{"layer_norm1.bias"}, false},
		{"attn.in_proj_weight", []string{"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight"}, false},
		{"attn.in_proj_bias", []string{"self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias"}, false},
		{"attn.out_proj.weight", []string{"self_attn.out_proj.weight"}, false},
		{"attn.out_proj.bias", []string{"self_attn.out_proj.bias"}, false},
		{"ln_2.weight", []string{"layer_norm2.weight"}, false},
		{"ln_2.bias", []string{"layer_norm2.bias"}, false},
		{"mlp.c_fc.weight", []string{"mlp.fc1.weight"}, false},
		{"mlp.c_fc.bias", []string{"mlp.fc1.bias"}, false},
		{"mlp.c_proj.weight", []string{"mlp.fc2.weight"}, false},
		{"mlp.c_proj.bias", []string{"mlp.fc2.bias"}, false},
	}
	hfTowers = []struct{ openAI, hf string }{
		{"visual.transformer.resblocks.", "vision_model.encoder.layers."},
		{"transformer.resblocks.", "text_model.encoder.layers."},
	}
)

// huggingFaceNames are the tensors of a HuggingFace file whose shapes give the architecture: openAINames through
// the table.
var huggingFaceNames = func() shapeNames {
	n := openAINames
	name := func(openAI string) string { return mustHFName(openAI).hf[0] }
	n.config = "huggingface-clip"
	n.patch, n.visionPos, n.textPos, n.tokens, n.final = name(n.patch), name(n.visionPos), name(n.textPos),
		name(n.tokens), name(n.final)
	if mustHFName(n.projection).transpose {
		n.projectionEmbedAxis = 1 - n.projectionEmbedAxis
	}
	n.projection = name(n.projection)
	n.visionLayers, n.textLayers = hfLayerPrefix(n.visionLayers), hfLayerPrefix(n.textLayers)
	n.visionLayerSuffix = blockName(n.visionLayerSuffix).hf[0]
	return n
}()

// hfNameOf returns the table entry of the OpenAI-named parameter name, with full HuggingFace names.
func hfNameOf(name string) (hfName, error) {
	for _, e := range hfTopNames {
		if e.openAI == name {
			return e, nil
		}
	}
	for _, tower := range hfTowers {
		rest, ok := strings.CutPrefix(name, tower.openAI)
		if !ok {
			continue
		}
		layer, inner, ok := strings.Cut(rest, ".")
		if e := blockName(inner); ok && e.openAI != "" {
			full := hfName{openAI: name, transpose: e.transpose}
			for _, hf := range e.hf {
				full.hf = append(full.hf, tower.hf+layer+"."+hf)
			}
			return full, nil
		}
		break
	}
	return hfName{}, fmt.Errorf("no HuggingFace name for parameter %q", name)
}

// blockName returns the entry of a name inside a residual block, or the zero entry.
func blockName(inner string) hfName {
	for _, e := range hfBlockNames {
		if e.openAI == inner {
			return e
		}
	}
	return hfName{}
}

func mustHFName(name string) hfName {
	e, err := hfNameOf(name)
	if err != nil {
		panic(err)
	}
	return e
}

func hfLayerPrefix(openAI string) string {
	for _, t := range hfTowers {
		if t.openAI == openAI {
			return t.hf
		}
	}
	panic("no HuggingFace tower for " + openAI)
}

// huggingFaceTensors converts OpenAI-named F32 tensors to HuggingFace's names and layouts: in_proj split into q,
// k and v, the projections transposed.
func huggingFaceTensors(ts []*safetensors.Tensor) ([]*safetensors.Tensor, error) {
	out := make([]*safetensors.Tensor, 0, len(ts)+2*len(ts)/12)
	for _, t := range ts {
		e, err := hfNameOf(t.Name)
		if err != nil {
			return nil, err
		}
		switch {
		case e.transpose:
			out = append(out, &safetensors.Tensor{Name: e.hf[0], DType: "F32", Shape: []int{t.Shape[1], t.Shape[0]},
				F32: transpose(t.F32, t.Shape[0], t.Shape[1])})
		case len(e.hf) == 3:
			part := len(t.F32) / 3
			shape := append([]int{t.Shape[0] / 3}, t.Shape[1:]...)
			for i, name := range e.hf {
				out = append(out, &safetensors.Tensor{Name: name, DType: "F32", Shape: shape, F32: t.F32[i*part : (i+1)*part]})
			}
		default:
			out = append(out, &safetensors.Tensor{Name: e.hf[0], DType: "F32", Shape: t.Shape, F32: t.F32})
		}
	}
	return out, nil
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
