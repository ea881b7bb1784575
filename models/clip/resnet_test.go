package clip

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX graph-building style.
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// tinyResNet is a small ModifiedResNet CLIP: two blocks in the first and third stages, so blocks with and
// without a downsample branch both occur.
func tinyResNet() Config {
	return Config{Name: "rn-test", EmbedDim: 16, ImageSize: 64, ImageChannels: 3,
		VisionWidth: 4, VisionHeads: 4, ResNetLayers: [4]int{2, 1, 2, 1},
		ContextLength: 8, VocabSize: 30, TextWidth: 16, TextLayers: 1, TextHeads: 2,
		ImageMean: OpenAIMean, ImageStd: OpenAIStd}
}

// TestResNetStateDict compares the ResNet state dicts with PyTorch's: the number of entries and of values of
// OpenAI's CLIP("RN50") and CLIP("RN101") built by clip/model.py with torch 1.13 (state_dict() less the
// num_batches_tracked counters, which Params leaves out), some shapes of the real checkpoints, and where
// OpenAI's initialisation puts zeros.
func TestResNetStateDict(t *testing.T) {
	rn101 := Presets["RN50"]
	rn101.Name, rn101.EmbedDim, rn101.ResNetLayers = "RN101", 512, [4]int{3, 4, 23, 3}
	cases := []struct {
		cfg                     Config
		entries, values, buffer int
		shapes                  map[string][]int
	}{
		{cfg: Presets["RN50"], entries: 434, values: 102_060_385, buffer: 53_248, shapes: map[string][]int{
			"visual.conv1.weight":                      {32, 3, 3, 3},
			"visual.bn3.running_var":                   {64},
			"visual.layer1.0.downsample.0.weight":      {256, 64, 1, 1},
			"visual.layer4.2.conv3.weight":             {2048, 512, 1, 1},
			"visual.attnpool.positional_embedding":     {50, 2048},
			"visual.attnpool.c_proj.weight":            {1024, 2048},
			"visual.layer3.5.bn2.running_mean":         {256},
			"visual.layer2.0.downsample.1.running_var": {512},
		}},
		{cfg: rn101, entries: 689, values: 119_793_505, buffer: 105_472, shapes: map[string][]int{
			"visual.layer3.22.conv2.weight": {256, 256, 3, 3},
			"visual.attnpool.c_proj.weight": {512, 2048},
		}},
	}
	for _, c := range cases {
		t.Run(c.cfg.Name, func(t *testing.T) {
			if err := c.cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			ps := c.cfg.Params()
			var values, buffer int
			seen := map[string]bool{}
			for _, p := range ps {
				n := 1
				for _, d := range p.Dims {
					n *= d
				}
				values += n
				if p.Buffer {
					buffer += n
					if !strings.HasSuffix(p.Name, ".running_mean") && !strings.HasSuffix(p.Name, ".running_var") {
						t.Errorf("%s is marked Buffer", p.Name)
					}
				}
				if seen[p.Name] {
					t.Errorf("%s listed twice", p.Name)
				}
				seen[p.Name] = true
				if want, ok := c.shapes[p.Name]; ok && !slices.Equal(p.Dims, want) {
					t.Errorf("%s has shape %v, want %v", p.Name, p.Dims, want)
				}
				if strings.HasPrefix(p.Name, "visual.layer") && strings.HasSuffix(p.Name, "bn3.weight") && p.Init != "zeros" {
					t.Errorf("%s is initialised %q; OpenAI zeroes every block's last BatchNorm gain", p.Name, p.Init)
				}
			}
			for name := range c.shapes {
				if !seen[name] {
					t.Errorf("%s is missing", name)
				}
			}
			if len(ps) != c.entries || values != c.values || buffer != c.buffer {
				t.Errorf("%d entries, %d values (%d in buffers); PyTorch has %d, %d (%d)", len(ps), values, buffer,
					c.entries, c.values, c.buffer)
			}
		})
	}
}

func TestResNetValidate(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"valid", func(*Config) {}, ""},
		{"patch size set", func(c *Config) { c.PatchSize = 8 }, "no patch_size"},
		{"vision layers set", func(c *Config) { c.VisionLayers = 2 }, "no patch_size or vision_layers"},
		{"empty stage", func(c *Config) { c.ResNetLayers[2] = 0 }, "stage 3 has 0 blocks"},
		{"odd width", func(c *Config) { c.VisionWidth = 3 }, "must be even"},
		{"image size", func(c *Config) { c.ImageSize = 48 }, "not a multiple of 32"},
		{"heads", func(c *Config) { c.VisionHeads = 3 }, "not divisible by vision_heads 3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := tinyResNet()
			c.change(&cfg)
			err := cfg.Validate()
			switch {
			case c.want == "" && err != nil:
				t.Fatal(err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
	if !tinyResNet().IsResNet() || Presets["tiny"].IsResNet() {
		t.Error("IsResNet is wrong")
	}
	if n := tinyResNet().NumPatches(); n != 4 {
		t.Errorf("a 64-pixel ResNet pools %d positions, want 4", n)
	}
}

// TestConfigJSON: ViT configs serialise as before (no resnet_layers key, so checkpoint metadata and cache keys
// are unchanged); ResNet configs round-trip.
func TestConfigJSON(t *testing.T) {
	for _, cfg := range []Config{Presets["tiny"], Presets["ViT-B/32"], Presets["RN50"], tinyResNet()} {
		raw, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if has := strings.Contains(string(raw), `"resnet_layers"`); has != cfg.IsResNet() {
			t.Errorf("%s: JSON %s", cfg.Name, raw)
		}
		var back Config
		if err := json.Unmarshal(raw, &back); err != nil || back != cfg {
			t.Errorf("%s: read back as %+v (%v)", cfg.Name, back, err)
		}
	}
}

// randomizeContext fills every parameter of ctx with random values (BatchNorm variances positive), so that no
// part of the model is an identity.
func randomizeContext(t *testing.T, ctx *context.Context, cfg Config) {
	t.Helper()
	pctx := ctx.In(Scope)
	for i, p := range cfg.Params() {
		v := pctx.GetVariableByScopeAndName(pctx.Scope(), p.Name)
		data := tensors.MustCopyFlatData[float32](v.MustValue())
		for j := range data {
			x := math.Sin(float64(i*7919+j*104729)) * 0.3
			switch {
			case strings.HasSuffix(p.Name, "running_var"):
				data[j] = float32(1 + x)
			case len(p.Dims) <= 1:
				data[j] += float32(x)
			}
		}
		if err := v.SetValue(tensors.FromFlatDataAndDimensions(data, p.Dims...)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestResNetFeaturesIndependentOfBatch: BatchNorm runs in eval mode, so an image's feature does not depend on
// the other images of its batch; different images differ; a changed running statistic changes the feature.
func TestResNetFeaturesIndependentOfBatch(t *testing.T) {
	cfg := tinyResNet()
	ctx, err := NewContext(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	randomizeContext(t, ctx, cfg)
	img := func(v int) []float32 {
		im := dataset.Image{Height: 64, Width: 64, Channels: 3, Pix: make([]uint8, 64*64*3)}
		for i := range im.Pix {
			im.Pix[i] = uint8((v + i*7 + (i/192)*v) % 256)
		}
		x, err := Preprocess(cfg, im)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	a, b, c := img(1), img(90), img(200)
	emb, err := NewEmbedder(testBackend(), ctx, cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	one, err := emb.Images([][]float32{a})
	if err != nil {
		t.Fatal(err)
	}
	three, err := emb.Images([][]float32{b, c, a})
	if err != nil {
		t.Fatal(err)
	}
	if len(one[0]) != cfg.EmbedDim {
		t.Fatalf("feature size %d, want %d", len(one[0]), cfg.EmbedDim)
	}
	if d := maxAbsDiff(one[0], three[2]); d > 1e-5 {
		t.Errorf("batch neighbours changed an image's feature by %g", d)
	}
	if d := maxAbsDiff(three[0], three[1]); d < 1e-4 {
		t.Errorf("different images gave the same feature (diff %g)", d)
	}
	pctx := ctx.In(Scope)
	v := pctx.GetVariableByScopeAndName(pctx.Scope(), "visual.layer3.1.bn2.running_mean")
	mean := tensors.MustCopyFlatData[float32](v.MustValue())
	for i := range mean {
		mean[i] += 0.5
	}
	if err := v.SetValue(tensors.FromFlatDataAndDimensions(mean, len(mean))); err != nil {
		t.Fatal(err)
	}
	emb, err = NewEmbedder(testBackend(), ctx, cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	moved, err := emb.Images([][]float32{a})
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(one[0], moved[0]); d < 1e-5 {
		t.Errorf("a BatchNorm running mean of layer3.1 did not change the feature (diff %g)", d)
	}
}

// TestResNetOps checks the building blocks against direct loops: the convolution (PyTorch's layout, stride,
// padding), AvgPool2d in floor mode on odd sizes, and BatchNorm in eval mode.
func TestResNetOps(t *testing.T) {
	const b, h, w, cin, cout = 2, 5, 7, 3, 4
	value := func(i int) float32 { return float32(math.Sin(float64(i) * 0.37)) }
	x := make([]float32, b*h*w*cin)
	for i := range x {
		x[i] = value(i)
	}
	kernel := make([]float32, cout*cin*3*3)
	for i := range kernel {
		kernel[i] = value(1000 + i)
	}
	ch := func(i int) []float32 {
		out := make([]float32, cout)
		for j := range out {
			out[j] = value(2000+10*i+j) + float32(i/2) // running_var (i = 3) stays positive.
		}
		return out
	}
	ctx := context.New()
	pctx := ctx.In(Scope)
	pctx.VariableWithValue("k3", tensors.FromFlatDataAndDimensions(kernel, cout, cin, 3, 3))
	pctx.VariableWithValue("k1", tensors.FromFlatDataAndDimensions(kernel[:cout*cin], cout, cin, 1, 1))
	for i, n := range []string{"bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"} {
		pctx.VariableWithValue(n, tensors.FromFlatDataAndDimensions(ch(i), cout))
	}
	at := func(data []float32, dims []int, idx ...int) float32 {
		off := 0
		for k, i := range idx {
			off = off*dims[k] + i
		}
		return data[off]
	}
	// convRef is PyTorch's conv2d (cross-correlation, zero padding) on NHWC x with an [out, in, k, k] kernel.
	convRef := func(k, stride, pad int, kern []float32) ([]float32, []int) {
		oh, ow := (h+2*pad-k)/stride+1, (w+2*pad-k)/stride+1
		out := make([]float32, 0, b*oh*ow*cout)
		for n := range b {
			for y := range oh {
				for xx := range ow {
					for o := range cout {
						var s float64
						for c := range cin {
							for dy := range k {
								for dx := range k {
									iy, ix := y*stride-pad+dy, xx*stride-pad+dx
									if iy < 0 || iy >= h || ix < 0 || ix >= w {
										continue
									}
									s += float64(at(x, []int{b, h, w, cin}, n, iy, ix, c)) *
										float64(at(kern, []int{cout, cin, k, k}, o, c, dy, dx))
								}
							}
						}
						out = append(out, float32(s))
					}
				}
			}
		}
		return out, []int{b, oh, ow, cout}
	}
	poolRef := func(k int) ([]float32, []int) {
		oh, ow := h/k, w/k
		var out []float32
		for n := range b {
			for y := range oh {
				for xx := range ow {
					for c := range cin {
						var s float64
						for dy := range k {
							for dx := range k {
								s += float64(at(x, []int{b, h, w, cin}, n, y*k+dy, xx*k+dx, c))
							}
						}
						out = append(out, float32(s/float64(k*k)))
					}
				}
			}
		}
		return out, []int{b, oh, ow, cin}
	}
	conv1, _ := convRef(1, 1, 0, kernel[:cout*cin])
	bnRef := make([]float32, len(conv1))
	for i, v := range conv1 {
		c := i % cout
		bnRef[i] = (v-ch(2)[c])/float32(math.Sqrt(float64(ch(3)[c])+BatchNormEpsilon))*ch(0)[c] + ch(1)[c]
	}
	cases := []struct {
		name  string
		build func(x *Node) *Node
		ref   func() ([]float32, []int)
	}{
		{"3×3 conv, stride 2, padding 1", func(x *Node) *Node { return conv2d(ctx, x, "k3", 2, 1) },
			func() ([]float32, []int) { return convRef(3, 2, 1, kernel) }},
		{"3×3 conv, stride 1, padding 1", func(x *Node) *Node { return conv2d(ctx, x, "k3", 1, 1) },
			func() ([]float32, []int) { return convRef(3, 1, 1, kernel) }},
		{"1×1 conv", func(x *Node) *Node { return conv2d(ctx, x, "k1", 1, 0) },
			func() ([]float32, []int) { return convRef(1, 1, 0, kernel[:cout*cin]) }},
		{"avg pool 2, odd sizes", func(x *Node) *Node { return avgPool(x, 2) }, func() ([]float32, []int) { return poolRef(2) }},
		{"avg pool 3", func(x *Node) *Node { return avgPool(x, 3) }, func() ([]float32, []int) { return poolRef(3) }},
		{"batch norm", func(x *Node) *Node { return batchNorm(ctx, conv2d(ctx, x, "k1", 1, 0), "bn") },
			func() ([]float32, []int) { return bnRef, []int{b, h, w, cout} }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			exec, err := context.NewExec(testBackend(), ctx, func(ctx *context.Context, x *Node) *Node { return c.build(x) })
			if err != nil {
				t.Fatal(err)
			}
			res, err := exec.Exec(tensors.FromFlatDataAndDimensions(x, b, h, w, cin))
			if err != nil {
				t.Fatal(err)
			}
			want, dims := c.ref()
			if got := res[0].Shape().Dimensions; !slices.Equal(got, dims) {
				t.Fatalf("shape %v, want %v", got, dims)
			}
			if d := maxAbsDiff(tensors.MustCopyFlatData[float32](res[0]), want); d > 1e-5 {
				t.Errorf("differs from the direct computation by %g", d)
			}
		})
	}
}

// The RN50 preset's state dict: parameters plus BatchNorm running statistics (Buffer), under OpenAI's names.
func ExampleConfig_IsResNet() {
	cfg := Presets["RN50"]
	var params, buffers int
	for _, p := range cfg.Params() {
		if p.Buffer {
			buffers++
		} else {
			params++
		}
	}
	fmt.Println(cfg.IsResNet(), cfg.ResNetLayers, params, buffers, cfg.Params()[0].Name)
	// Output: true [3 4 6 3] 324 110 visual.conv1.weight
}
