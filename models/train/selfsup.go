package train

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX graph-building style.
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/imageprep"
)

// SelfSupervised switches training to CleanCLIP's objective (Bansal et al., "CleanCLIP: Mitigating Data
// Poisoning Attacks in Multimodal Contrastive Learning", ICCV 2023):
//
//	L = λ₁·L_CLIP(I, T) + λ₂·(L_SS(I, Ĩ) + L_SS(T, T̃)) / 2
//
// where L_CLIP is the usual symmetric image-text InfoNCE loss, Ĩ and T̃ are augmented views of the batch's
// images and captions, and L_SS(X, X̃) is the in-modality InfoNCE loss that asks each embedding to pick out its
// own augmented view among the batch's, with the model's logit scale (as CleanCLIP's code computes it: one
// direction, original against augmented). The images and their views go through the image tower as one batch of
// 2B, as do the captions.
//
// It is a training-side repair: fine-tuning a poisoned model on clean data with the in-modality terms makes each
// tower learn its modality's structure on its own, which breaks the spurious cross-modal association the poison
// planted (the paper's clean fine-tuning only uses L_CLIP). Set Options.SelfSupervised to use it; nil (the
// default) leaves training exactly as it was.
//
// The views are made on the host, before each step, by AugmentImage and AugmentText, called once per pair of the
// batch in batch order with one generator seeded by Options.Seed and the global step, so a run (and a resumed
// run) always sees the same views.
type SelfSupervised struct {
	// MultimodalWeight is λ₁ and UnimodalWeight λ₂ (CleanCLIP's defaults: 1 and 1). Both ≥ 0, not both 0.
	MultimodalWeight float64 `json:"multimodal_weight"`
	UnimodalWeight   float64 `json:"unimodal_weight"`
	// AugmentImage returns an augmented view of a preprocessed image (H·W·C float32, the length must not change);
	// it must not modify its input. ImageAugment.Func builds one.
	AugmentImage func(image []float32, rng *rand.Rand) []float32 `json:"-"`
	// AugmentText returns an augmented view of a caption's token ids (same length); it must not modify its
	// input. poisoning/defense's TokenEDA.Augment is one.
	AugmentText func(tokens []int32, rng *rand.Rand) []int32 `json:"-"`
}

// CleanCLIP returns the SelfSupervised objective with CleanCLIP's weights λ₁ = λ₂ = 1 and the given view makers.
func CleanCLIP(augmentImage func([]float32, *rand.Rand) []float32, augmentText func([]int32, *rand.Rand) []int32) *SelfSupervised {
	return &SelfSupervised{MultimodalWeight: 1, UnimodalWeight: 1, AugmentImage: augmentImage, AugmentText: augmentText}
}

// validate checks the weights and hooks.
func (s *SelfSupervised) validate() error {
	switch {
	case !(s.MultimodalWeight >= 0) || !(s.UnimodalWeight >= 0) || math.IsInf(s.MultimodalWeight, 0) ||
		math.IsInf(s.UnimodalWeight, 0) || s.MultimodalWeight+s.UnimodalWeight == 0:
		return fmt.Errorf("self-supervised weights must be finite, ≥ 0 and not both 0: λ₁ = %v, λ₂ = %v",
			s.MultimodalWeight, s.UnimodalWeight)
	case s.AugmentImage == nil || s.AugmentText == nil:
		return fmt.Errorf("the self-supervised objective needs both AugmentImage and AugmentText")
	}
	return nil
}

// InModalityLoss is the one-directional InfoNCE loss of CleanCLIP's in-modality term: logits [B, B] compare
// embedding i (rows) with view j (columns), and the loss is −mean_i log softmax_j(logits)[i, i].
func InModalityLoss(logits *Node) *Node {
	n := logits.Shape().Dimensions[0]
	eye := OneHot(Iota(logits.Graph(), shapes.Make(dtypes.Int32, n), 0), n, logits.DType())
	return DivScalar(Neg(ReduceAllSum(Mul(LogSoftmax(logits, 1), eye))), float64(n))
}

// SelfSupervisedLoss is the CleanCLIP loss of a batch: images and augImages [B, H, W, C], tokens and augTokens
// [B, L]. It returns the total and its multimodal and in-modality parts (before weighting).
func SelfSupervisedLoss(ctx *context.Context, cfg clip.Config, s *SelfSupervised, images, tokens, augImages,
	augTokens *Node) (total, multimodal, unimodal *Node) {
	b := images.Shape().Dimensions[0]
	imgAll := clip.EncodeImage(ctx, cfg, Concatenate([]*Node{images, augImages}, 0))
	txtAll := clip.EncodeText(ctx, cfg, Concatenate([]*Node{tokens, augTokens}, 0))
	img, imgAug := Slice(imgAll, AxisRange(0, b)), Slice(imgAll, AxisRange(b, 2*b))
	txt, txtAug := Slice(txtAll, AxisRange(0, b)), Slice(txtAll, AxisRange(b, 2*b))
	multimodal = clip.ContrastiveLoss(clip.Logits(ctx, img, txt))
	unimodal = DivScalar(Add(InModalityLoss(clip.Logits(ctx, img, imgAug)),
		InModalityLoss(clip.Logits(ctx, txt, txtAug))), 2)
	total = Add(MulScalar(multimodal, s.MultimodalWeight), MulScalar(unimodal, s.UnimodalWeight))
	return total, multimodal, unimodal
}

// selfSupervisedExec compiles the CleanCLIP training step: inputs images, tokens, augmented images, augmented
// tokens, lr, bc1, bc2; outputs the loss and the logit scale, like the default step.
func (t *Trainer) selfSupervisedExec(backend backends.Backend, params []*context.Variable) (*context.Exec, error) {
	if err := t.opts.SelfSupervised.validate(); err != nil {
		return nil, err
	}
	return context.NewExec(backend, t.ctx, func(ctx *context.Context, in []*Node) []*Node {
		images, tokens, augImages, augTokens, lr, bc1, bc2 := in[0], in[1], in[2], in[3], in[4], in[5], in[6]
		loss, _, _ := SelfSupervisedLoss(ctx, t.cfg, t.opts.SelfSupervised, images, tokens, augImages, augTokens)
		nodes := make([]*Node, len(params))
		for i, v := range params {
			nodes[i] = v.ValueGraph(images.Graph())
		}
		grads := Gradient(loss, nodes...)
		adamWUpdate(ctx, t.opts, t.specs, params, grads, lr, bc1, bc2)
		return []*Node{loss, clip.LogitScale(ctx, images.Graph())}
	})
}

// augmentSeedStream separates the augmentation generator from the data-order one.
const augmentSeedStream = 0x61756720766965 // "aug vie"

// selfSupervisedStep makes the views of the batch in imgBuf/tokBuf (B pairs) and runs one CleanCLIP step.
func (t *Trainer) selfSupervisedStep(images, tokens *tensors.Tensor, imgBuf []float32, tokBuf []int32,
	lr, bc1, bc2 float64) ([]*tensors.Tensor, error) {
	s := t.opts.SelfSupervised
	b := t.opts.BatchSize
	size := t.cfg.ImageSize * t.cfg.ImageSize * t.cfg.ImageChannels
	l := t.cfg.ContextLength
	if len(t.augImg) != len(imgBuf) {
		t.augImg, t.augTok = make([]float32, len(imgBuf)), make([]int32, len(tokBuf))
	}
	rng := rand.New(rand.NewPCG(t.opts.Seed^augmentSeedStream, uint64(t.step)))
	for j := range b {
		img := s.AugmentImage(imgBuf[j*size:(j+1)*size], rng)
		tok := s.AugmentText(tokBuf[j*l:(j+1)*l], rng)
		if len(img) != size || len(tok) != l {
			return nil, fmt.Errorf("train: augmented view of batch item %d has %d pixels and %d tokens, want %d and %d",
				j, len(img), len(tok), size, l)
		}
		copy(t.augImg[j*size:], img)
		copy(t.augTok[j*l:], tok)
	}
	augImages := tensors.FromFlatDataAndDimensions(t.augImg, b, t.cfg.ImageSize, t.cfg.ImageSize, t.cfg.ImageChannels)
	augTokens := tensors.FromFlatDataAndDimensions(t.augTok, b, l)
	return t.run(images, tokens, augImages, augTokens, float32(lr), float32(bc1), float32(bc2))
}

// ImageAugment makes augmented views of preprocessed images for the in-modality loss: a random resized crop
// (poisoning/imageprep's, on the 8-bit pixels recovered from the normalised values), a horizontal flip and
// Gaussian noise in normalised units. DefaultImageAugment holds the values used for CleanCLIP.
type ImageAugment struct {
	// Scale is the crop's range of area fractions and Ratio its range of aspect ratios (width/height).
	Scale, Ratio [2]float64
	// FlipProb is the probability of a horizontal flip; NoiseStd the standard deviation of the added noise.
	FlipProb, NoiseStd float64
}

// DefaultImageAugment returns the views used for the self-supervised loss: crops of 50 to 100% of the area with
// aspect ratios 3/4 to 4/3 (SimCLR-style views, stronger than CLIP's 90-100% training crop), flips half the
// time, and noise of standard deviation 0.1.
func DefaultImageAugment() ImageAugment {
	return ImageAugment{Scale: [2]float64{0.5, 1}, Ratio: imageprep.CLIPRatio, FlipProb: 0.5, NoiseStd: 0.1}
}

// Func returns the augmentation for preprocessed images of cfg (clip.Preprocess's layout and normalisation),
// for SelfSupervised.AugmentImage. It panics when Scale or Ratio is not a valid range, or FlipProb is outside
// [0, 1] or NoiseStd negative.
func (a ImageAugment) Func(cfg clip.Config) func([]float32, *rand.Rand) []float32 {
	if !(a.Scale[0] > 0 && a.Scale[0] <= a.Scale[1] && a.Scale[1] <= 1) || !(a.Ratio[0] > 0 && a.Ratio[0] <= a.Ratio[1]) ||
		!(a.FlipProb >= 0 && a.FlipProb <= 1) || !(a.NoiseStd >= 0) {
		panic(fmt.Sprintf("train.ImageAugment: invalid settings %+v", a))
	}
	n, c := cfg.ImageSize, cfg.ImageChannels
	return func(img []float32, rng *rand.Rand) []float32 {
		if len(img) != n*n*c {
			panic(fmt.Sprintf("train.ImageAugment: image has %d values, the model needs %d×%d×%d", len(img), n, n, c))
		}
		pix := dataset.Image{Height: n, Width: n, Channels: c, Pix: make([]uint8, len(img))}
		for i, v := range img {
			x := (float64(v)*cfg.ImageStd[i%c] + cfg.ImageMean[i%c]) * 255
			pix.Pix[i] = uint8(min(max(math.Round(x), 0), 255))
		}
		crop := imageprep.RandomResizedCropWith(pix, n, a.Scale, a.Ratio, imageprep.Bilinear, rng)
		flip := rng.Float64() < a.FlipProb
		out := make([]float32, len(img))
		for y := range n {
			for x := range n {
				sx := x
				if flip {
					sx = n - 1 - x
				}
				for ch := range c {
					v := float64(crop.Pix[(y*n+sx)*c+ch])
					out[(y*n+x)*c+ch] = float32((v/255-cfg.ImageMean[ch])/cfg.ImageStd[ch] + a.NoiseStd*rng.NormFloat64())
				}
			}
		}
		return out
	}
}
