package scale

import (
	"fmt"
	"math"

	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/tokenizer"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/defense"
	"github.com/mmpoison/mmpoison/poisoning/imageprep"
)

// chunk is a run of pool images read and preprocessed for the checker: their inputs (nil for a picture that
// does not decode) and their captions' tokens.
type chunk struct {
	start  int // first image
	first  int // first pair
	images [][]float32
	tokens [][][]int32
	err    error
}

// distances returns the checker's cosine distance of every clean pair of t (NaN for a pair whose picture does
// not decode). A goroutine reads and preprocesses the next chunk of images, on GOMAXPROCS workers, while the
// model embeds the current one: memory holds at most three chunks of clip.DefaultEvalBatch pictures.
func distances(t *dataset.Table, emb *clip.Embedder, cfg clip.Config, tok tokenizer.Tokenizer) ([]float64, error) {
	dist := make([]float64, t.NumPairs())
	chunks := make(chan *chunk, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(chunks)
		first := 0
		for start := 0; start < t.NumImages(); start += clip.DefaultEvalBatch {
			c := readChunk(t, cfg, tok, start, min(start+clip.DefaultEvalBatch, t.NumImages()), first)
			select {
			case chunks <- c:
			case <-stop:
				return
			}
			if c.err != nil {
				return
			}
			for _, toks := range c.tokens {
				first += len(toks)
			}
		}
	}()
	for c := range chunks {
		if c.err != nil {
			return nil, c.err
		}
		if err := embedChunk(emb, c, dist); err != nil {
			return nil, err
		}
	}
	return dist, nil
}

// readChunk reads images [start, end) of t and preprocesses them for a checker of config cfg.
func readChunk(t *dataset.Table, cfg clip.Config, tok tokenizer.Tokenizer, start, end, first int) *chunk {
	c := &chunk{start: start, first: first, images: make([][]float32, end-start), tokens: make([][][]int32, end-start)}
	c.err = dataset.Parallel(end-start, 0, func(k int) error {
		ex, _, err := t.Images.Read(start+k, true)
		if err != nil { // A picture that does not decode has no distance; a sample that cannot be read ends it.
			if ex, _, err = t.Images.Read(start+k, false); err != nil {
				return fmt.Errorf("image %d: %w", start+k, err)
			}
		}
		c.tokens[k] = tokenizer.EncodeAll(tok, ex.Captions)
		img := ex.Image
		if img.Pix == nil {
			return nil
		}
		if img.Height != cfg.ImageSize || img.Width != cfg.ImageSize {
			if imageprep.CheckCLIPSize(img.Width, img.Height, cfg.ImageSize) != nil {
				return nil // A picture CLIP's transform cannot take is not scored either.
			}
			img = imageprep.CLIP(img, cfg.ImageSize)
		}
		if c.images[k], err = clip.Preprocess(cfg, img); err != nil {
			return fmt.Errorf("image %d: %w", start+k, err)
		}
		return nil
	})
	return c
}

// embedChunk embeds a chunk's pictures and captions and writes its pairs' distances into dist.
func embedChunk(emb *clip.Embedder, c *chunk, dist []float64) error {
	var pics [][]float32
	var toks [][]int32
	for k, img := range c.images {
		if img != nil {
			pics = append(pics, img)
		}
		toks = append(toks, c.tokens[k]...)
	}
	var imgRows [][]float32
	if len(pics) > 0 {
		var err error
		if imgRows, err = emb.Images(pics); err != nil {
			return err
		}
	}
	txtRows, err := emb.Texts(toks)
	if err != nil {
		return err
	}
	var pairImg, pairTxt [][]float32
	var at []int
	p, row, tr := c.first, 0, 0
	for k, img := range c.images {
		for range c.tokens[k] {
			if img == nil {
				dist[p] = math.NaN()
			} else {
				pairImg, pairTxt, at = append(pairImg, imgRows[row]), append(pairTxt, txtRows[tr]), append(at, p)
			}
			p, tr = p+1, tr+1
		}
		if img != nil {
			row++
		}
	}
	if len(at) == 0 {
		return nil
	}
	d, err := defense.PairDistances(pairImg, pairTxt)
	if err != nil {
		return err
	}
	for i, v := range d {
		dist[at[i]] = v
	}
	return nil
}
