package weights

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/safetensors"
)

// TestLoadResNetErrors: a missing, extra or mis-shaped ResNet tensor, a malformed BatchNorm counter, a metadata
// config that disagrees with the shapes and ResNet tensors among HuggingFace names are errors naming them.
func TestLoadResNetErrors(t *testing.T) {
	without := func(prefix string) func([]*safetensors.Tensor) []*safetensors.Tensor {
		return func(ts []*safetensors.Tensor) []*safetensors.Tensor {
			return slices.DeleteFunc(ts, func(x *safetensors.Tensor) bool { return strings.HasPrefix(x.Name, prefix) })
		}
	}
	with := func(x *safetensors.Tensor) func([]*safetensors.Tensor) []*safetensors.Tensor {
		return func(ts []*safetensors.Tensor) []*safetensors.Tensor { return append(ts, x) }
	}
	stored := rnConfig()
	stored.ResNetLayers = [4]int{1, 1, 1, 1}
	storedJSON, _ := json.Marshal(stored)
	cases := []struct {
		name   string
		mutate func([]*safetensors.Tensor) []*safetensors.Tensor
		meta   map[string]string
		hf     bool
		want   []string
	}{
		{name: "missing running variance", mutate: without("visual.layer2.1.bn2.running_var"),
			want: []string{`"visual.layer2.1.bn2.running_var" is missing`}},
		{name: "missing downsample", mutate: without("visual.layer3.0.downsample.0.weight"),
			want: []string{`"visual.layer3.0.downsample.0.weight" is missing`}},
		{name: "empty stage", mutate: without("visual.layer3."), want: []string{"stage 3 has 0 blocks"}},
		{name: "extra block", mutate: with(&safetensors.Tensor{Name: "visual.layer4.1.conv1.weight", DType: "F32",
			Shape: []int{128, 128, 1, 1}, F32: make([]float32, 128*128)}), want: []string{`"visual.layer4.1.bn1.weight" is missing`}},
		{name: "mis-shaped pool", mutate: func(ts []*safetensors.Tensor) []*safetensors.Tensor {
			for _, x := range ts {
				if x.Name == "visual.attnpool.c_proj.weight" {
					x.Shape = []int{128, 24}
				}
			}
			return ts
		}, want: []string{`"visual.attnpool.c_proj.weight" has shape [128 24], the model needs [24 128]`}},
		{name: "counter with two values", mutate: with(&safetensors.Tensor{Name: "visual.bn1.num_batches_tracked", DType: "I64",
			Shape: []int{2}, Raw: make([]byte, 16)}), want: []string{`"visual.bn1.num_batches_tracked" has shape [2]`}},
		{name: "counter of no BatchNorm", mutate: with(&safetensors.Tensor{Name: "visual.layer1.0.bn9.num_batches_tracked",
			DType: "I64", Raw: make([]byte, 8)}), want: []string{`"visual.layer1.0.bn9.num_batches_tracked" is not a parameter`}},
		{name: "metadata disagrees", meta: map[string]string{clip.MetadataConfig: string(storedJSON)},
			want: []string{"resnet_layers = [1 1 1 1]", "[1 2 1 1]"}},
		{name: "HuggingFace names", hf: true, want: []string{"visual.layer1.0.conv1.weight", "OpenAI's names only"}},
	}
	dir := t.TempDir()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := randomTensors(rnConfig(), uint64(40+i))
			var err error
			if c.hf {
				vit := hfTensors(t, randomTensors(rgbConfig(), 1))
				rn := slices.DeleteFunc(ts, func(x *safetensors.Tensor) bool { return x.Name != "visual.layer1.0.conv1.weight" })
				path := writeFile(t, dir, fmt.Sprintf("hf%d.safetensors", i), append(vit, rn...), nil)
				confPath := filepath.Join(dir, fmt.Sprintf("hf%d.json", i))
				writeJSON(t, confPath, hfConfigFor(rgbConfig()))
				_, _, err = Load(path, confPath, Hints{})
			} else {
				if c.mutate != nil {
					ts = c.mutate(ts)
				}
				path := writeFile(t, dir, fmt.Sprintf("rn%d.safetensors", i), ts, c.meta)
				_, _, err = LoadOpenAI(path, Hints{8, 2})
			}
			if err == nil {
				t.Fatal("loaded; want an error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestInferResNetConfig infers OpenAI's RN50 and RN101 from the shapes of their state dicts (as listed by
// clip.Config.Params, whose names and shapes match PyTorch's, see models/clip's tests): sizes, OpenAI's head
// rules (32 attention-pool heads, 8 text heads) and the preset name.
func TestInferResNetConfig(t *testing.T) {
	rn101 := clip.Presets["RN50"]
	rn101.Name, rn101.EmbedDim, rn101.ResNetLayers = "openai-resnet", 512, [4]int{3, 4, 23, 3}
	for _, want := range []clip.Config{clip.Presets["RN50"], rn101} {
		t.Run(want.Name, func(t *testing.T) {
			f := &safetensors.File{}
			for _, p := range want.Params() {
				f.Tensors = append(f.Tensors, &safetensors.Tensor{Name: p.Name, DType: "F32", Shape: p.Dims}) // Shapes only.
			}
			got, err := InferConfig(f, Hints{})
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("inferred %+v, want %+v", got, want)
			}
		})
	}
}
