package train

import (
	"slices"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/models/clip"
)

// resNetConfig is a tiny ModifiedResNet CLIP.
func resNetConfig() clip.Config {
	return clip.Config{Name: "rn-tiny", EmbedDim: 16, ImageSize: 32, ImageChannels: 3,
		VisionWidth: 2, VisionHeads: 2, ResNetLayers: [4]int{1, 1, 1, 1},
		ContextLength: 8, VocabSize: 50, TextWidth: 16, TextLayers: 1, TextHeads: 2,
		ImageMean: clip.OpenAIMean, ImageStd: clip.OpenAIStd}
}

// TestResNetOnPureGo: training a ResNet image tower on the pure-Go backend fails at once, naming the XLA
// backend; with the image tower frozen the rest trains there, and the frozen tower, BatchNorm statistics
// included, stays as it was.
func TestResNetOnPureGo(t *testing.T) {
	cfg := resNetConfig()
	cases := []struct {
		name    string
		freeze  []string
		wantErr []string
	}{
		{name: "image tower trained", wantErr: []string{"XLA", "GOMLX_BACKEND", "pure-Go", "convolution gradients", `"rn-tiny"`}},
		{name: "text tower frozen", freeze: []string{"text"}, wantErr: []string{"XLA"}},
		{name: "image tower frozen", freeze: []string{"visual"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, err := clip.NewContext(cfg, 1)
			if err != nil {
				t.Fatal(err)
			}
			opts := smallOptions()
			opts.Epochs, opts.Freeze = 1, c.freeze
			tr, err := New(pureGoBackend(t), cfg, ctx, opts)
			if len(c.wantErr) > 0 {
				if err == nil {
					t.Fatal("New accepted a ResNet image tower to train on the pure-Go backend")
				}
				for _, w := range c.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			before, err := clip.ParamsToTensors(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tr.Fit(RandomData(cfg, 16, 2)); err != nil {
				t.Fatal(err)
			}
			after, err := clip.ParamsToTensors(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var textChanged bool
			for i, p := range cfg.Params() {
				same := slices.Equal(before[i].F32, after[i].F32)
				if p.Tower() == "visual" && !same {
					t.Errorf("frozen %s changed", p.Name)
				}
				if p.Tower() == "text" && !same {
					textChanged = true
				}
			}
			if !textChanged {
				t.Error("the text tower did not train")
			}
		})
	}
}
