package clip

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX graph-building style.
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

const (
	// InitialLogitScale is ln(1/0.07), CLIP's initial temperature.
	InitialLogitScale = 2.659260036932778
	// MaxLogitScale is ln(100): exp(logit_scale) is clamped at 100.
	MaxLogitScale = 4.605170185988092
	// LayerNormEpsilon is the epsilon of every LayerNorm in CLIP.
	LayerNormEpsilon = 1e-5
	// Scope is the context scope that holds the model's parameters.
	Scope = "clip"
)

func pow(x, y float64) float64 { return math.Pow(x, y) }

// NewContext returns a context holding freshly initialised parameters for cfg. Initialisation runs on the host
// with a PCG generator seeded by seed, so the same seed gives the same weights on every backend.
func NewContext(cfg Config, seed uint64) (*context.Context, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx := context.New()
	rng := rand.New(rand.NewPCG(seed, 0x636c6970)) // "clip"
	pctx := ctx.In(Scope)
	for _, p := range cfg.Params() {
		n := 1
		for _, d := range p.Dims {
			n *= d
		}
		data := make([]float32, n)
		switch p.Init {
		case "normal":
			for i := range data {
				data[i] = float32(rng.NormFloat64() * p.Std)
			}
		case "ones":
			for i := range data {
				data[i] = 1
			}
		case "constant":
			for i := range data {
				data[i] = float32(p.Value)
			}
		case "zeros":
		default:
			return nil, fmt.Errorf("clip: parameter %q has unknown init %q", p.Name, p.Init)
		}
		pctx.VariableWithValue(p.Name, tensors.FromFlatDataAndDimensions(data, p.Dims...))
	}
	return ctx, nil
}

// param returns the graph node of an existing parameter; it panics (a graph-building error) when the parameter
// is missing, so a half-loaded model never trains with silently initialised weights.
func param(ctx *context.Context, g *Graph, name string) *Node {
	v := ctx.In(Scope).GetVariableByScopeAndName(ctx.In(Scope).Scope(), name)
	if v == nil {
		panic(fmt.Sprintf("clip: parameter %q is missing from the context", name))
	}
	return v.ValueGraph(g)
}

// addTrailing adds b to x, aligning b with x's trailing axes (NumPy-style broadcasting of a lower-rank b).
func addTrailing(x, b *Node) *Node {
	return Add(x, broadcastLike(b, x))
}

// mulTrailing multiplies x by b aligned with x's trailing axes.
func mulTrailing(x, b *Node) *Node {
	return Mul(x, broadcastLike(b, x))
}

// broadcastLike aligns b with x's trailing axes and broadcasts it, explicitly, to x's shape. Binary ops on equal
// shapes take the pure-Go backend's flat loop; an implicit broadcast takes its much slower index iterator (a
// third of an embedding's time before this), and the values are the same.
func broadcastLike(b, x *Node) *Node {
	if slices.Equal(b.Shape().Dimensions, x.Shape().Dimensions) {
		return b
	}
	return BroadcastToDims(expandTo(b, x.Rank()), x.Shape().Dimensions...)
}

func expandTo(b *Node, rank int) *Node {
	if b.Rank() == rank {
		return b
	}
	dims := make([]int, rank-b.Rank(), rank)
	for i := range dims {
		dims[i] = 1
	}
	return Reshape(b, append(dims, b.Shape().Dimensions...)...)
}

// softmaxLast is Softmax over the last axis with explicit broadcasts (see broadcastLike).
func softmaxLast(x *Node) *Node {
	axis := x.Rank() - 1
	shifted := Sub(x, broadcastLike(StopGradient(ReduceAndKeep(x, ReduceMax, axis)), x))
	e := Exp(shifted)
	return Div(e, broadcastLike(ReduceAndKeep(e, ReduceSum, axis), e))
}

// linear applies a PyTorch Linear with weight [out, in] (and optional bias [out]) to the last axis of x.
func linear(ctx *context.Context, x *Node, weightName, biasName string) *Node {
	w := param(ctx, x.Graph(), weightName)
	y := DotGeneral(x, []int{x.Rank() - 1}, nil, w, []int{1}, nil)
	if biasName != "" {
		y = addTrailing(y, param(ctx, x.Graph(), biasName))
	}
	return y
}

// layerNorm normalises the last axis with CLIP's epsilon and applies gain and bias.
func layerNorm(ctx *context.Context, x *Node, prefix string) *Node {
	axis := x.Rank() - 1
	mean := ReduceAndKeep(x, ReduceMean, axis)
	centered := Sub(x, broadcastLike(mean, x))
	variance := ReduceAndKeep(Square(centered), ReduceMean, axis)
	normed := Div(centered, broadcastLike(Sqrt(AddScalar(variance, LayerNormEpsilon)), centered))
	return addTrailing(mulTrailing(normed, param(ctx, x.Graph(), prefix+".weight")), param(ctx, x.Graph(), prefix+".bias"))
}

// quickGELU is CLIP's activation x·σ(1.702x).
func quickGELU(x *Node) *Node { return Mul(x, Sigmoid(MulScalar(x, 1.702))) }

// attention is PyTorch's nn.MultiheadAttention as CLIP uses it: one fused q/k/v input projection
// (in_proj_weight [3W, W]), a single 1/√head_dim scale, optional additive mask, output projection.
func attention(ctx *context.Context, x *Node, prefix string, heads int, mask *Node) *Node {
	g := x.Graph()
	batch, length, width := x.Shape().Dimensions[0], x.Shape().Dimensions[1], x.Shape().Dimensions[2]
	headDim := width / heads
	wqkv := Reshape(param(ctx, g, prefix+"in_proj_weight"), 3, heads, headDim, width)
	bqkv := Reshape(param(ctx, g, prefix+"in_proj_bias"), 3, heads, headDim)
	qkv := addTrailing(DotGeneral(x, []int{2}, nil, wqkv, []int{3}, nil), bqkv) // [B, L, 3, H, D]
	part := func(i int) *Node {
		return Reshape(Slice(qkv, AxisRange(), AxisRange(), AxisRange(i, i+1)), batch, length, heads, headDim)
	}
	q := MulScalar(part(0), 1/math.Sqrt(float64(headDim)))
	k, v := part(1), part(2)
	scores := DotGeneral(q, []int{3}, []int{0, 2}, k, []int{3}, []int{0, 2}) // [B, H, Lq, Lk]
	if mask != nil {
		scores = Add(scores, broadcastLike(mask, scores)) // mask is [1, 1, L, L].
	}
	probs := softmaxLast(scores)
	out := DotGeneral(probs, []int{3}, []int{0, 1}, v, []int{1}, []int{0, 2}) // [B, H, Lq, D]
	wout := Reshape(param(ctx, g, prefix+"out_proj.weight"), width, heads, headDim)
	y := DotGeneral(out, []int{1, 3}, nil, wout, []int{1, 2}, nil) // [B, Lq, W]
	return addTrailing(y, param(ctx, g, prefix+"out_proj.bias"))
}

// transformer applies CLIP's pre-LN residual attention blocks.
func transformer(ctx *context.Context, x *Node, prefix string, layers, heads int, mask *Node) *Node {
	for i := range layers {
		b := fmt.Sprintf("%s.resblocks.%d.", prefix, i)
		x = Add(x, attention(ctx, layerNorm(ctx, x, b+"ln_1"), b+"attn.", heads, mask))
		h := quickGELU(linear(ctx, layerNorm(ctx, x, b+"ln_2"), b+"mlp.c_fc.weight", b+"mlp.c_fc.bias"))
		x = Add(x, linear(ctx, h, b+"mlp.c_proj.weight", b+"mlp.c_proj.bias"))
	}
	return x
}

// EncodeImage is CLIP's encode_image: images [B, H, W, C] (already normalised) → [B, EmbedDim], before L2
// normalisation. A ResNet config runs the ModifiedResNet tower (encodeImageResNet). For the ViT, patches are cut
// with Reshape+Transpose and projected with conv1's weight, which is exactly a stride-p convolution without bias.
func EncodeImage(ctx *context.Context, cfg Config, images *Node) *Node {
	if cfg.IsResNet() {
		return encodeImageResNet(ctx, cfg, images)
	}
	g := images.Graph()
	b := images.Shape().Dimensions[0]
	p, grid, c, w := cfg.PatchSize, cfg.ImageSize/cfg.PatchSize, cfg.ImageChannels, cfg.VisionWidth
	x := Reshape(images, b, grid, p, grid, p, c)
	x = TransposeAllAxes(x, 0, 1, 3, 5, 2, 4) // [B, gy, gx, C, py, px]
	x = Reshape(x, b, grid*grid, c*p*p)
	conv := Reshape(param(ctx, g, "visual.conv1.weight"), w, c*p*p)
	x = DotGeneral(x, []int{2}, nil, conv, []int{1}, nil) // [B, N, W]
	cls := BroadcastToDims(Reshape(param(ctx, g, "visual.class_embedding"), 1, 1, w), b, 1, w)
	x = Concatenate([]*Node{cls, x}, 1)
	x = addTrailing(x, param(ctx, g, "visual.positional_embedding"))
	x = layerNorm(ctx, x, "visual.ln_pre")
	x = transformer(ctx, x, "visual.transformer", cfg.VisionLayers, cfg.VisionHeads, nil)
	x = Reshape(Slice(x, AxisRange(), AxisRange(0, 1)), b, w) // class token
	x = layerNorm(ctx, x, "visual.ln_post")
	return DotGeneral(x, []int{1}, nil, param(ctx, g, "visual.proj"), []int{0}, nil)
}

// causalMask is the additive attention mask of the text transformer: 0 on and below the diagonal, a large
// negative number above it, shaped to broadcast over [B, H, L, L].
func causalMask(g *Graph, length int) *Node {
	rows := Iota(g, shapes.Make(dtypes.Int32, length, length), 0)
	cols := Iota(g, shapes.Make(dtypes.Int32, length, length), 1)
	mask := Where(GreaterThan(cols, rows), Const(g, float32(-1e9)), Const(g, float32(0)))
	return Reshape(mask, 1, 1, length, length)
}

// EncodeText is CLIP's encode_text: token ids [B, L] (int32) → [B, EmbedDim], before L2 normalisation. The
// feature is taken at the end-of-text token, found as the position of the highest token id.
func EncodeText(ctx *context.Context, cfg Config, tokens *Node) *Node {
	g := tokens.Graph()
	b, l := tokens.Shape().Dimensions[0], tokens.Shape().Dimensions[1]
	x := Gather(param(ctx, g, "token_embedding.weight"), ExpandAxes(tokens, -1)) // [B, L, W]
	x = addTrailing(x, param(ctx, g, "positional_embedding"))
	x = transformer(ctx, x, "transformer", cfg.TextLayers, cfg.TextHeads, causalMask(g, l))
	x = layerNorm(ctx, x, "ln_final")
	eot := OneHot(ArgMax(tokens, 1), l, x.DType())                 // [B, L]
	x = DotGeneral(x, []int{1}, []int{0}, eot, []int{1}, []int{0}) // [B, W]
	_ = b
	return DotGeneral(x, []int{1}, nil, param(ctx, g, "text_projection"), []int{0}, nil)
}

// l2Normalize divides each row by its L2 norm.
func l2Normalize(x *Node) *Node {
	return Div(x, broadcastLike(Sqrt(AddScalar(ReduceAndKeep(Square(x), ReduceSum, -1), 1e-12)), x))
}

// LogitScale returns exp(logit_scale) clamped at 100.
func LogitScale(ctx *context.Context, g *Graph) *Node {
	return Exp(MinScalar(param(ctx, g, "logit_scale"), MaxLogitScale))
}

// Logits returns CLIP's logits_per_image [B_images, B_texts]: scaled cosine similarities.
func Logits(ctx *context.Context, imageFeatures, textFeatures *Node) *Node {
	sim := DotGeneral(l2Normalize(imageFeatures), []int{1}, nil, l2Normalize(textFeatures), []int{1}, nil)
	return Mul(sim, LogitScale(ctx, imageFeatures.Graph()))
}

// ContrastiveLoss is the symmetric InfoNCE loss over logits_per_image, pair i matching pair i.
func ContrastiveLoss(logits *Node) *Node {
	n := logits.Shape().Dimensions[0]
	eye := OneHot(Iota(logits.Graph(), shapes.Make(dtypes.Int32, n), 0), n, logits.DType())
	perImage := ReduceAllSum(Mul(LogSoftmax(logits, 1), eye))
	perText := ReduceAllSum(Mul(LogSoftmax(logits, 0), eye))
	return DivScalar(Neg(Add(perImage, perText)), float64(2*n))
}

// Loss embeds a batch of matching images [B, H, W, C] and tokens [B, L] and returns the symmetric InfoNCE loss.
func Loss(ctx *context.Context, cfg Config, images, tokens *Node) *Node {
	return ContrastiveLoss(Logits(ctx, EncodeImage(ctx, cfg, images), EncodeText(ctx, cfg, tokens)))
}
