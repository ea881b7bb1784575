package clip

import (
	"fmt"
	"math"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX graph-building style.
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// OpenAI's ModifiedResNet image tower (clip/model.py: ModifiedResNet, Bottleneck, AttentionPool2d), used when
// Config.ResNetLayers is set. Images are NHWC here (PyTorch's are NCHW); kernels keep PyTorch's [out, in, kh, kw]
// layout, so checkpoints load without transposing.

const (
	// ResNetDownsampling is the ModifiedResNet's total stride: its attention pool sees an
	// (ImageSize/32)×(ImageSize/32) grid, so ImageSize must be a multiple of it.
	ResNetDownsampling = 32
	// ResNetExpansion is the Bottleneck's expansion: a stage of width w outputs 4·w channels.
	ResNetExpansion = 4
	// BatchNormEpsilon is PyTorch's BatchNorm2d epsilon, which CLIP keeps.
	BatchNormEpsilon = 1e-5
)

// ResNetFeatureWidth is the number of channels entering the attention pool, 32·VisionWidth (2048 for RN50).
func (c Config) ResNetFeatureWidth() int { return c.VisionWidth * 8 * ResNetExpansion }

// validateResNet checks the sizes specific to a ResNet tower.
func (c Config) validateResNet() error {
	for i, n := range c.ResNetLayers {
		if n <= 0 {
			return fmt.Errorf("clip config %q: resnet_layers %v: stage %d has %d blocks, each stage needs at least one",
				c.Name, c.ResNetLayers, i+1, n)
		}
	}
	switch {
	case c.PatchSize != 0 || c.VisionLayers != 0:
		return fmt.Errorf("clip config %q: a ResNet tower (resnet_layers %v) has no patch_size or vision_layers, got %d and %d",
			c.Name, c.ResNetLayers, c.PatchSize, c.VisionLayers)
	case c.VisionWidth%2 != 0:
		return fmt.Errorf("clip config %q: the ResNet's vision_width %d must be even (its stem starts with vision_width/2 channels)",
			c.Name, c.VisionWidth)
	case c.ImageSize%ResNetDownsampling != 0:
		return fmt.Errorf("clip config %q: the ResNet's image_size %d is not a multiple of %d", c.Name, c.ImageSize,
			ResNetDownsampling)
	case c.VisionHeads <= 0 || c.ResNetFeatureWidth()%c.VisionHeads != 0:
		return fmt.Errorf("clip config %q: the ResNet attention pool's width %d (32·vision_width) is not divisible by vision_heads %d",
			c.Name, c.ResNetFeatureWidth(), c.VisionHeads)
	}
	return nil
}

// bottleneck describes one Bottleneck block: its name prefix, input channels, width (planes), stride and
// whether it has a downsample branch (OpenAI: stride > 1 or inplanes != 4·planes).
type bottleneck struct {
	prefix                   string
	inplanes, planes, stride int
	downsample               bool
}

// resNetBlocks lists the Bottleneck blocks of the four stages in order, as ModifiedResNet._make_layer builds
// them: stage s has width VisionWidth·2^s, its first block has stride 2 (stride 1 in the first stage).
func (c Config) resNetBlocks() []bottleneck {
	var out []bottleneck
	inplanes := c.VisionWidth
	for s, n := range c.ResNetLayers {
		planes := c.VisionWidth << s
		for i := range n {
			stride := 1
			if i == 0 && s > 0 {
				stride = 2
			}
			out = append(out, bottleneck{prefix: fmt.Sprintf("visual.layer%d.%d.", s+1, i), inplanes: inplanes,
				planes: planes, stride: stride, downsample: stride > 1 || inplanes != planes*ResNetExpansion})
			inplanes = planes * ResNetExpansion
		}
	}
	return out
}

// resNetParams lists the ResNet tower's state dict in PyTorch's order. Initialisation follows OpenAI's
// initialize_parameters where it sets one (attention-pool weights with std width^-0.5 for the pool's width, the
// last BatchNorm gain of every block zero) and otherwise PyTorch's defaults in spirit: convolutions normal with
// the variance of PyTorch's default uniform (1/(3·fan_in)), BatchNorm gain 1 and bias 0, running mean 0 and
// variance 1, the attention pool's positional embedding with std width^-0.5, biases 0.
func (c Config) resNetParams() []ParamSpec {
	var ps []ParamSpec
	conv := func(name string, out, in, k int) {
		ps = append(ps, ParamSpec{Name: name, Dims: []int{out, in, k, k}, Init: "normal", Std: pow(float64(3*in*k*k), -0.5)})
	}
	batchNorm := func(prefix string, ch int, zeroGain bool) {
		gain := "ones"
		if zeroGain {
			gain = "zeros"
		}
		ps = append(ps,
			ParamSpec{Name: prefix + ".weight", Dims: []int{ch}, Init: gain},
			ParamSpec{Name: prefix + ".bias", Dims: []int{ch}, Init: "zeros"},
			ParamSpec{Name: prefix + ".running_mean", Dims: []int{ch}, Init: "zeros", Buffer: true},
			ParamSpec{Name: prefix + ".running_var", Dims: []int{ch}, Init: "ones", Buffer: true})
	}
	w := c.VisionWidth
	conv("visual.conv1.weight", w/2, c.ImageChannels, 3)
	batchNorm("visual.bn1", w/2, false)
	conv("visual.conv2.weight", w/2, w/2, 3)
	batchNorm("visual.bn2", w/2, false)
	conv("visual.conv3.weight", w, w/2, 3)
	batchNorm("visual.bn3", w, false)
	for _, b := range c.resNetBlocks() {
		conv(b.prefix+"conv1.weight", b.planes, b.inplanes, 1)
		batchNorm(b.prefix+"bn1", b.planes, false)
		conv(b.prefix+"conv2.weight", b.planes, b.planes, 3)
		batchNorm(b.prefix+"bn2", b.planes, false)
		conv(b.prefix+"conv3.weight", b.planes*ResNetExpansion, b.planes, 1)
		batchNorm(b.prefix+"bn3", b.planes*ResNetExpansion, true)
		if b.downsample {
			conv(b.prefix+"downsample.0.weight", b.planes*ResNetExpansion, b.inplanes, 1)
			batchNorm(b.prefix+"downsample.1", b.planes*ResNetExpansion, false)
		}
	}
	f := c.ResNetFeatureWidth()
	std := pow(float64(f), -0.5)
	ps = append(ps, ParamSpec{Name: "visual.attnpool.positional_embedding", Dims: []int{c.NumPatches() + 1, f},
		Init: "normal", Std: std})
	for _, p := range []struct {
		name string
		out  int
	}{{"k_proj", f}, {"q_proj", f}, {"v_proj", f}, {"c_proj", c.EmbedDim}} {
		ps = append(ps,
			ParamSpec{Name: "visual.attnpool." + p.name + ".weight", Dims: []int{p.out, f}, Init: "normal", Std: std},
			ParamSpec{Name: "visual.attnpool." + p.name + ".bias", Dims: []int{p.out}, Init: "zeros"})
	}
	return ps
}

// nhwcConv is the axes configuration of an NHWC input convolved with a PyTorch [out, in, kh, kw] kernel.
var nhwcConv = ConvolveAxesConfig{
	InputBatch: 0, InputChannels: 3, InputSpatial: []int{1, 2},
	KernelOutputChannels: 0, KernelInputChannels: 1, KernelSpatial: []int{2, 3},
	OutputBatch: 0, OutputChannels: 3, OutputSpatial: []int{1, 2},
}

// conv2d is PyTorch's Conv2d without bias on NHWC x: a 1×1 kernel with stride 1 is a matrix product over the
// channels (exact, and cheaper than a convolution), anything else a ConvGeneral with symmetric zero padding.
func conv2d(ctx *context.Context, x *Node, name string, stride, padding int) *Node {
	w := param(ctx, x.Graph(), name)
	dims := w.Shape().Dimensions
	if dims[2] == 1 && dims[3] == 1 && stride == 1 && padding == 0 {
		return DotGeneral(x, []int{3}, nil, Reshape(w, dims[0], dims[1]), []int{1}, nil)
	}
	return ConvGeneral(x, w, nhwcConv, []int{stride, stride}, [][2]int{{padding, padding}, {padding, padding}},
		nil, nil, 1, 1)
}

// batchNorm is BatchNorm2d in eval mode on the channels (last axis) of x: (x − running_mean)/√(running_var + ε)
// · weight + bias, computed as x·a + (bias − running_mean·a) with a = weight/√(running_var + ε), as PyTorch's
// CPU kernel does.
func batchNorm(ctx *context.Context, x *Node, prefix string) *Node {
	g := x.Graph()
	scale := Div(param(ctx, g, prefix+".weight"), Sqrt(AddScalar(param(ctx, g, prefix+".running_var"), BatchNormEpsilon)))
	shift := Sub(param(ctx, g, prefix+".bias"), Mul(param(ctx, g, prefix+".running_mean"), scale))
	return addTrailing(mulTrailing(x, scale), shift)
}

func relu(x *Node) *Node { return MaxScalar(x, 0) }

// avgPool is AvgPool2d(k) (kernel and stride k, no padding, floor mode) on NHWC x: rows and columns that do not
// fill a window are dropped, as PyTorch does.
func avgPool(x *Node, k int) *Node {
	if k == 1 {
		return x
	}
	d := x.Shape().Dimensions
	h, w := d[1]/k, d[2]/k
	if h*k != d[1] || w*k != d[2] {
		x = Slice(x, AxisRange(), AxisRange(0, h*k), AxisRange(0, w*k))
	}
	x = Reshape(x, d[0], h, k, w, k, d[3])
	return ReduceMean(x, 2, 4)
}

// bottleneckBlock is OpenAI's Bottleneck: 1×1, 3×3 and 1×1 convolutions with BatchNorm and ReLU, an average pool
// before the last convolution when the stride is above 1, and a downsample branch (average pool, 1×1
// convolution, BatchNorm) on the identity when shapes change.
func bottleneckBlock(ctx *context.Context, x *Node, b bottleneck) *Node {
	out := relu(batchNorm(ctx, conv2d(ctx, x, b.prefix+"conv1.weight", 1, 0), b.prefix+"bn1"))
	out = relu(batchNorm(ctx, conv2d(ctx, out, b.prefix+"conv2.weight", 1, 1), b.prefix+"bn2"))
	out = avgPool(out, b.stride)
	out = batchNorm(ctx, conv2d(ctx, out, b.prefix+"conv3.weight", 1, 0), b.prefix+"bn3")
	identity := x
	if b.downsample {
		identity = batchNorm(ctx, conv2d(ctx, avgPool(x, b.stride), b.prefix+"downsample.0.weight", 1, 0),
			b.prefix+"downsample.1")
	}
	return relu(Add(out, identity))
}

// attentionPool is OpenAI's AttentionPool2d on NHWC x: the mean of the spatial positions is prepended as a token,
// the positional embedding added, and multi-head attention with separate q, k and v projections (PyTorch's
// multi_head_attention_forward, q scaled by 1/√head_dim) run; only the mean token's output is kept, through
// c_proj: [B, EmbedDim].
func attentionPool(ctx *context.Context, x *Node, heads int) *Node {
	g := x.Graph()
	d := x.Shape().Dimensions
	batch, width := d[0], d[3]
	x = Reshape(x, batch, d[1]*d[2], width)
	x = Concatenate([]*Node{ReduceAndKeep(x, ReduceMean, 1), x}, 1)
	x = addTrailing(x, param(ctx, g, "visual.attnpool.positional_embedding")) // [B, L, W]
	length, headDim := x.Shape().Dimensions[1], width/heads
	query := Reshape(Slice(x, AxisRange(), AxisRange(0, 1)), batch, width)
	q := linear(ctx, query, "visual.attnpool.q_proj.weight", "visual.attnpool.q_proj.bias")
	q = Reshape(MulScalar(q, 1/math.Sqrt(float64(headDim))), batch, heads, headDim)
	k := Reshape(linear(ctx, x, "visual.attnpool.k_proj.weight", "visual.attnpool.k_proj.bias"), batch, length, heads, headDim)
	v := Reshape(linear(ctx, x, "visual.attnpool.v_proj.weight", "visual.attnpool.v_proj.bias"), batch, length, heads, headDim)
	scores := DotGeneral(q, []int{2}, []int{0, 1}, k, []int{3}, []int{0, 2}) // [B, H, L]
	probs := softmaxLast(scores)
	out := DotGeneral(probs, []int{2}, []int{0, 1}, v, []int{1}, []int{0, 2}) // [B, H, D]
	return linear(ctx, Reshape(out, batch, width), "visual.attnpool.c_proj.weight", "visual.attnpool.c_proj.bias")
}

// encodeImageResNet is encode_image for the ModifiedResNet tower: the stem (three 3×3 convolutions, the first
// with stride 2, each with BatchNorm and ReLU, then a 2×2 average pool), the four Bottleneck stages and the
// attention pool: images [B, H, W, C] → [B, EmbedDim].
func encodeImageResNet(ctx *context.Context, cfg Config, images *Node) *Node {
	x := images
	for i, stride := range []int{2, 1, 1} {
		x = relu(batchNorm(ctx, conv2d(ctx, x, fmt.Sprintf("visual.conv%d.weight", i+1), stride, 1), fmt.Sprintf("visual.bn%d", i+1)))
	}
	x = avgPool(x, 2)
	for _, b := range cfg.resNetBlocks() {
		x = bottleneckBlock(ctx, x, b)
	}
	return attentionPool(ctx, x, cfg.VisionHeads)
}
