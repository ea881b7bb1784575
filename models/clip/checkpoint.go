package clip

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/mmpoison/mmpoison/models/safetensors"
)

// MetadataConfig is the safetensors metadata key holding the model's Config as JSON.
const MetadataConfig = "mmpoison.clip_config"

// ParamsToTensors reads the model's parameters from ctx as safetensors tensors under OpenAI's names.
func ParamsToTensors(ctx *context.Context, cfg Config) ([]*safetensors.Tensor, error) {
	return VariablesToTensors(ctx.In(Scope), "", cfg.Params())
}

// VariablesToTensors reads the variables named by specs in the scope of ctx, returning them as F32 tensors whose
// names are prefix+spec.Name.
func VariablesToTensors(ctx *context.Context, prefix string, specs []ParamSpec) ([]*safetensors.Tensor, error) {
	out := make([]*safetensors.Tensor, 0, len(specs))
	for _, p := range specs {
		v := ctx.GetVariableByScopeAndName(ctx.Scope(), p.Name)
		if v == nil {
			return nil, fmt.Errorf("variable %q missing from scope %q", p.Name, ctx.Scope())
		}
		value, err := v.Value()
		if err != nil {
			return nil, fmt.Errorf("variable %q: %w", p.Name, err)
		}
		data, err := tensors.CopyFlatData[float32](value)
		if err != nil {
			return nil, fmt.Errorf("variable %q: %w", p.Name, err)
		}
		out = append(out, &safetensors.Tensor{Name: prefix + p.Name, DType: "F32", Shape: p.Dims, F32: data})
	}
	return out, nil
}

// SetVariablesFromTensors sets (or creates) the variables named by specs in the scope of ctx from the tensors
// named prefix+spec.Name, checking every shape. It returns an error naming the first missing or mis-shaped tensor.
func SetVariablesFromTensors(ctx *context.Context, prefix string, specs []ParamSpec, f *safetensors.File) error {
	for _, p := range specs {
		t := f.Get(prefix + p.Name)
		if t == nil {
			return fmt.Errorf("tensor %q is missing", prefix+p.Name)
		}
		if t.DType != "F32" || !slices.Equal(t.Shape, p.Dims) {
			return fmt.Errorf("tensor %q has shape %v (%s), the model needs %v", t.Name, t.Shape, t.DType, p.Dims)
		}
		value := tensors.FromFlatDataAndDimensions(append([]float32(nil), t.F32...), p.Dims...)
		if v := ctx.GetVariableByScopeAndName(ctx.Scope(), p.Name); v != nil {
			if err := v.SetValue(value); err != nil {
				return fmt.Errorf("tensor %q: %w", t.Name, err)
			}
		} else {
			ctx.VariableWithValue(p.Name, value)
		}
	}
	return nil
}

// Save writes the model's parameters and config to a safetensors file (atomically), with OpenAI's names.
func Save(path string, ctx *context.Context, cfg Config) error {
	ts, err := ParamsToTensors(ctx, cfg)
	if err != nil {
		return fmt.Errorf("saving %s: %w", path, err)
	}
	cfgJSON, _ := json.Marshal(cfg)
	return safetensors.WriteFile(path, &safetensors.File{Tensors: ts, Metadata: map[string]string{MetadataConfig: string(cfgJSON)}})
}

// ConfigFromMetadata decodes the Config stored by Save.
func ConfigFromMetadata(path string, f *safetensors.File) (Config, error) {
	var cfg Config
	raw, ok := f.Metadata[MetadataConfig]
	if !ok {
		return cfg, fmt.Errorf("%s: no %q metadata: not an mmpoison checkpoint", path, MetadataConfig)
	}
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		return cfg, fmt.Errorf("%s: malformed %q metadata: %w", path, MetadataConfig, err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Load reads a model written by Save into a new context and returns it with its config.
func Load(path string) (*context.Context, Config, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, Config{}, err
	}
	cfg, err := ConfigFromMetadata(path, f)
	if err != nil {
		return nil, Config{}, err
	}
	ctx := context.New()
	if err := SetVariablesFromTensors(ctx.In(Scope), "", cfg.Params(), f); err != nil {
		return nil, Config{}, fmt.Errorf("loading %s: %w", path, err)
	}
	return ctx, cfg, nil
}
