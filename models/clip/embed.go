package clip

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX graph-building style.
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// Preprocess converts an image whose size and channels already match the model into the model's input:
// H·W·C float32 values, scaled to [0, 1] and normalised with the config's mean and standard deviation.
func Preprocess(cfg Config, img dataset.Image) ([]float32, error) {
	if img.Height != cfg.ImageSize || img.Width != cfg.ImageSize {
		return nil, fmt.Errorf("clip: image is %d×%d, the model needs %d×%d", img.Height, img.Width, cfg.ImageSize, cfg.ImageSize)
	}
	c := cfg.ImageChannels
	out := make([]float32, img.Height*img.Width*c)
	if c == 1 && img.Channels > 1 { // RGB input to a grayscale model: average the channels.
		for i := range out {
			var v float64
			for k := range img.Channels {
				v += float64(img.Pix[i*img.Channels+k])
			}
			out[i] = normalise(cfg, 0, v/float64(img.Channels))
		}
		return out, nil
	}
	// Each channel maps the 256 pixel values through a table of normalise's values.
	var table [3][256]float32
	for ch := range c {
		for v := range 256 {
			table[ch][v] = normalise(cfg, ch, float64(v))
		}
	}
	switch {
	case img.Channels == 3 && c == 3:
		r, g, b := &table[0], &table[1], &table[2]
		for i := 0; i+2 < len(out); i += 3 {
			p := img.Pix[i : i+3 : i+3]
			o := out[i : i+3 : i+3]
			o[0], o[1], o[2] = r[p[0]], g[p[1]], b[p[2]]
		}
	case img.Channels == c:
		for i, v := range img.Pix[:len(out)] {
			out[i] = table[i%c][v]
		}
	case img.Channels == 1: // Grayscale input to an RGB model: repeat the channel.
		for i, v := range img.Pix[:img.Height*img.Width] {
			for ch := range c {
				out[i*c+ch] = table[ch][v]
			}
		}
	default:
		for i := range img.Height * img.Width {
			for ch := range c {
				out[i*c+ch] = table[ch][img.Pix[i*img.Channels+ch]]
			}
		}
	}
	return out, nil
}

// normalise is the model's input value for the pixel value v (0 to 255) of channel ch.
func normalise(cfg Config, ch int, v float64) float32 {
	return float32((v/255 - cfg.ImageMean[ch]) / cfg.ImageStd[ch])
}

// Embedder computes CLIP features for many images or captions in fixed-size batches (the last batch is padded),
// so each tower compiles once.
type Embedder struct {
	cfg       Config
	batchSize int
	images    *context.Exec
	texts     *context.Exec
}

// DefaultEvalBatch is the batch size used for embedding.
const DefaultEvalBatch = 128

// NewEmbedder prepares the image and text encoders of the model in ctx.
func NewEmbedder(backend backends.Backend, ctx *context.Context, cfg Config, batchSize int) (*Embedder, error) {
	if batchSize <= 0 {
		batchSize = DefaultEvalBatch
	}
	e := &Embedder{cfg: cfg, batchSize: batchSize}
	var err error
	e.images, err = context.NewExec(backend, ctx, func(ctx *context.Context, images *Node) *Node {
		return EncodeImage(ctx, cfg, images)
	})
	if err != nil {
		return nil, err
	}
	e.texts, err = context.NewExec(backend, ctx, func(ctx *context.Context, tokens *Node) *Node {
		return EncodeText(ctx, cfg, tokens)
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// Images returns encode_image features (before normalisation) for preprocessed images.
func (e *Embedder) Images(images [][]float32) ([][]float32, error) {
	size := e.cfg.ImageSize * e.cfg.ImageSize * e.cfg.ImageChannels
	return e.run(len(images), size, func(buf []float32, i int) { copy(buf, images[i]) }, func(buf []float32) *tensors.Tensor {
		return tensors.FromFlatDataAndDimensions(buf, e.batchSize, e.cfg.ImageSize, e.cfg.ImageSize, e.cfg.ImageChannels)
	}, e.images)
}

// Texts returns encode_text features (before normalisation) for token sequences of ContextLength ids.
func (e *Embedder) Texts(tokens [][]int32) ([][]float32, error) {
	l := e.cfg.ContextLength
	buf := make([]int32, e.batchSize*l)
	var out [][]float32
	for start := 0; start < len(tokens); start += e.batchSize {
		clear(buf)
		n := min(e.batchSize, len(tokens)-start)
		for j := range n {
			if len(tokens[start+j]) != l {
				return nil, fmt.Errorf("clip: caption %d has %d tokens, the model needs %d", start+j, len(tokens[start+j]), l)
			}
			copy(buf[j*l:], tokens[start+j])
		}
		for j := n; j < e.batchSize; j++ {
			buf[j*l] = 1 // A valid (padding) sequence, ignored below.
		}
		res, err := e.texts.Exec(tensors.FromFlatDataAndDimensions(buf, e.batchSize, l))
		if err != nil {
			return nil, err
		}
		out = append(out, rows(res[0], n)...)
	}
	return out, nil
}

func (e *Embedder) run(n, size int, fill func(buf []float32, i int), toTensor func([]float32) *tensors.Tensor,
	exec *context.Exec) ([][]float32, error) {
	buf := make([]float32, e.batchSize*size)
	var out [][]float32
	for start := 0; start < n; start += e.batchSize {
		clear(buf)
		cnt := min(e.batchSize, n-start)
		for j := range cnt {
			fill(buf[j*size:(j+1)*size], start+j)
		}
		res, err := exec.Exec(toTensor(buf))
		if err != nil {
			return nil, err
		}
		out = append(out, rows(res[0], cnt)...)
	}
	return out, nil
}

// rows splits the first n rows of a [B, D] float32 tensor.
func rows(t *tensors.Tensor, n int) [][]float32 {
	flat, err := tensors.CopyFlatData[float32](t)
	if err != nil {
		panic(err)
	}
	d := t.Shape().Dimensions[1]
	out := make([][]float32, n)
	for i := range out {
		out[i] = flat[i*d : (i+1)*d : (i+1)*d]
	}
	return out
}
