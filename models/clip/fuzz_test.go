package clip_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/internal/cliptest"
	"github.com/mmpoison/mmpoison/models/safetensors"
	"github.com/mmpoison/mmpoison/poisoning/fuzzcheck"
	"github.com/mmpoison/mmpoison/poisoning/imageprep"
)

// FuzzLoad loads arbitrary bytes as an mmpoison checkpoint (clip.Load: the config from the metadata, then every
// parameter). Properties: no panic; memory within 16 times the header plus 8 times the file; an accepted
// checkpoint has a valid config with images of at most imageprep.MaxSide pixels, and a model holding every
// parameter with its shape.
func FuzzLoad(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	cfg := cliptest.MicroConfig()
	ctx, err := clip.NewContext(cfg, 1)
	if err != nil {
		f.Fatal(err)
	}
	if err := clip.Save(path, ctx, cfg); err != nil {
		f.Fatal(err)
	}
	seed, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(fuzzcheck.WithoutChecksum(seed))
	f.Add(seed)
	huge := strings.Replace(string(fuzzcheck.WithoutChecksum(seed)), `\"image_size\":8,`, `\"image_size\":100000,`, 1)
	f.Add([]byte(huge)) // A header length off by 5: refused, and a seed for the fuzzer to fix.
	f.Fuzz(func(t *testing.T, in []byte) {
		var got clip.Config
		var ts []*safetensors.Tensor
		var err error
		cliptest.ReadAsCheckpoint(t, path, in, func() {
			ctx, c, lerr := clip.Load(path)
			got, err = c, lerr
			if lerr == nil {
				ts, err = clip.ParamsToTensors(ctx, c)
			}
		})
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if err := got.Validate(); err != nil || got.ImageSize > imageprep.MaxSide {
			t.Fatalf("accepted config %+v: %v", got, err)
		}
		for i, p := range got.Params() {
			if !slices.Equal(ts[i].Shape, p.Dims) {
				t.Fatalf("parameter %s has shape %v, want %v", p.Name, ts[i].Shape, p.Dims)
			}
		}
	})
}

// A checkpoint whose metadata asks for 100000-pixel images (its tensors matching) is refused at load, before any
// image is preprocessed at that size.
func TestLoadRefusesHugeImages(t *testing.T) {
	_, err := clip.ConfigFromMetadata("m.safetensors", &safetensors.File{Metadata: map[string]string{
		clip.MetadataConfig: `{"embed_dim":4,"image_size":100000,"image_channels":1,"patch_size":100000,"vision_width":8,` +
			`"vision_layers":1,"vision_heads":2,"context_length":4,"vocab_size":6,"text_width":8,"text_layers":1,` +
			`"text_heads":2,"image_mean":[0.5,0.5,0.5],"image_std":[0.5,0.5,0.5]}`}})
	if err == nil || !strings.Contains(err.Error(), "m.safetensors: clip config") ||
		!strings.Contains(err.Error(), "image_size 100000 is above the 8192 pixels") {
		t.Errorf("error %v", err)
	}
}
