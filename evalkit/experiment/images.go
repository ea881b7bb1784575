package experiment

import (
	"fmt"

	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/imageprep"
)

// EmbedChunk is how many pictures EmbedImages reads and preprocesses at a time: a multiple of the embedder's
// batch (clip.DefaultEvalBatch), so the batches are those of one call over all pictures.
const EmbedChunk = 4 * clip.DefaultEvalBatch

// EmbedImages embeds the examples' pictures with emb, a model of config cfg. Each picture is read when its
// chunk is embedded (Example.Pixels: held, or read from its file or shard now), brought to the model's size
// with CLIP's test transform (imageprep.CLIP) when it has another, and preprocessed (clip.Preprocess), on
// GOMAXPROCS goroutines; memory holds the preprocessed pictures of one chunk (EmbedChunk), whatever the number
// of examples.
func EmbedImages(emb *clip.Embedder, cfg clip.Config, examples []dataset.Example) ([][]float32, error) {
	out := make([][]float32, 0, len(examples))
	for start := 0; start < len(examples); start += EmbedChunk {
		chunk := examples[start:min(start+EmbedChunk, len(examples))]
		pre := make([][]float32, len(chunk))
		if err := dataset.Parallel(len(chunk), 0, func(i int) error {
			var err error
			pre[i], err = preprocess(cfg, &chunk[i])
			return err
		}); err != nil {
			return nil, err
		}
		rows, err := emb.Images(pre)
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
	return out, nil
}

// preprocess reads ex's picture and makes it the model's input.
func preprocess(cfg clip.Config, ex *dataset.Example) ([]float32, error) {
	img, err := ex.Pixels()
	if err != nil {
		return nil, err
	}
	if img.Height != cfg.ImageSize || img.Width != cfg.ImageSize {
		if err := imageprep.CheckCLIPSize(img.Width, img.Height, cfg.ImageSize); err != nil {
			return nil, fmt.Errorf("image %s: %w", ex.ID, err)
		}
		img = imageprep.CLIP(img, cfg.ImageSize)
	}
	pre, err := clip.Preprocess(cfg, img)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ex.ID, err)
	}
	return pre, nil
}
