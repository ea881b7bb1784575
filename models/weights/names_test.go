package weights

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/safetensors"
)

// TestHuggingFaceNames checks the name table against transformers' own CLIPModel keys and shapes (written down
// in testdata from transformers' module tree, not from the table) and the layouts it implies: q, k and v are
// the thirds of in_proj in that order, the projections are transposed.
func TestHuggingFaceNames(t *testing.T) {
	cfg := rgbConfig()
	cfg.VisionLayers = 1
	ts := randomTensors(cfg, 3)
	hf, err := huggingFaceTensors(ts)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join("testdata", "huggingface_clip_keys.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var want, got []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if !strings.HasPrefix(line, "#") {
			want = append(want, line)
		}
	}
	byName := map[string]*safetensors.Tensor{}
	for _, x := range hf {
		got = append(got, fmt.Sprintf("%s %v", x.Name, x.Shape))
		byName[x.Name] = x
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("HuggingFace tensors:\n%s\nwant transformers' keys:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	openAI := map[string]*safetensors.Tensor{}
	for _, x := range ts {
		openAI[x.Name] = x
	}
	inProj := openAI["transformer.resblocks.0.attn.in_proj_weight"].F32
	third := len(inProj) / 3
	for i, qkv := range []string{"q", "k", "v"} {
		part := byName["text_model.encoder.layers.0.self_attn."+qkv+"_proj.weight"].F32
		if !slices.Equal(part, inProj[i*third:(i+1)*third]) {
			t.Errorf("%s_proj.weight is not third %d of in_proj_weight", qkv, i)
		}
	}
	proj, hfProj := openAI["visual.proj"], byName["visual_projection.weight"]
	rows, cols := proj.Shape[0], proj.Shape[1] // [width, embed]
	for i := range rows {
		for j := range cols {
			if hfProj.F32[j*rows+i] != proj.F32[i*cols+j] {
				t.Fatalf("visual_projection.weight[%d, %d] != visual.proj[%d, %d]", j, i, i, j)
			}
		}
	}
}

// TestSaveHuggingFace: SaveHuggingFace writes what LoadHuggingFace reads back unchanged, and refuses a ResNet.
func TestSaveHuggingFace(t *testing.T) {
	for i, cfg := range []clip.Config{tinyConfig(), rgbConfig(), rnConfig()} {
		t.Run(cfg.Name, func(t *testing.T) {
			want := randomTensors(cfg, uint64(50+i))
			ctx, _, err := LoadOpenAI(writeFile(t, t.TempDir(), "m.safetensors", want, nil),
				Hints{VisionHeads: cfg.VisionHeads, TextHeads: cfg.TextHeads})
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "hf")
			err = SaveHuggingFace(dir, ctx, cfg)
			if cfg.IsResNet() {
				if err == nil || !strings.Contains(err.Error(), "ModifiedResNet") {
					t.Fatalf("SaveHuggingFace of a ResNet: %v, want an error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			meta, err := safetensors.ReadMetadata(filepath.Join(dir, "model.safetensors"))
			if err != nil || meta["format"] != "pt" {
				t.Errorf("metadata %v, %v: transformers needs format pt", meta, err)
			}
			ctx2, got, err := LoadHuggingFace(filepath.Join(dir, "model.safetensors"), filepath.Join(dir, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			if !sizesEqual(got, cfg) {
				t.Fatalf("config = %+v, want %+v", got, cfg)
			}
			checkTensors(t, ctx2, got, want)
		})
	}
}
