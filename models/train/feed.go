package train

import (
	gocontext "context"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/imageprep"
)

// Stream reads a training set's pairs on demand, for sets that do not fit in memory: every batch's pictures
// are read (from files, tar shards or memory: any dataset.PairSource), brought to the model's input and
// preprocessed by Data.Workers goroutines while the previous batches train, and its captions encoded.
type Stream struct {
	// Pairs gives pair i's picture and caption.
	Pairs dataset.PairSource
	// Encode turns a caption into the model's ContextLength token ids (a tokenizer's Encode).
	Encode func(caption string) []int32
	// Transform brings a picture to the model's ImageSize × ImageSize, possibly at random (a training
	// augmentation such as a random resized crop) with rng, seeded as Data.View's generators are. Nil: CLIP's
	// test transform (imageprep.CLIP: resize the shorter side, centre crop) for pictures of another size, the
	// picture itself otherwise. clip.Preprocess then converts the channels and normalises.
	Transform func(img dataset.Image, rng *rand.Rand) (dataset.Image, error)
}

// Defaults of Data.Prefetch and Data.Workers.
const (
	// DefaultPrefetch is the number of batches prepared ahead of the step being trained.
	DefaultPrefetch = 2
)

// batch is one step's inputs, prepared ahead by the feed.
type batch struct {
	images []float32
	tokens []int32
	err    error
}

// feed prepares the batches of one epoch in a goroutine, at most prefetch ahead of the consumer: memory holds
// prefetch + 2 batches whatever the data's size.
type feed struct {
	ready chan *batch // prepared batches, in step order
	free  chan *batch // buffers the consumer is done with
	stop  chan struct{}
	done  sync.WaitGroup
}

// startFeed prepares the batches of steps [from, steps) of epoch epoch (global step epoch·steps + s for batch
// s), pairs taken from order.
func (t *Trainer) startFeed(ctx gocontext.Context, data *Data, order []int32, epoch, from, steps int) *feed {
	prefetch := data.Prefetch
	if prefetch <= 0 {
		prefetch = DefaultPrefetch
	}
	b := t.opts.BatchSize
	size := t.cfg.ImageSize * t.cfg.ImageSize * t.cfg.ImageChannels
	f := &feed{ready: make(chan *batch, prefetch), free: make(chan *batch, prefetch+2), stop: make(chan struct{})}
	for range prefetch + 2 {
		f.free <- &batch{images: make([]float32, b*size), tokens: make([]int32, b*t.cfg.ContextLength)}
	}
	f.done.Add(1)
	go func() {
		defer f.done.Done()
		defer close(f.ready)
		for s := from; s < steps; s++ {
			var buf *batch
			select {
			case buf = <-f.free:
			case <-f.stop:
				return
			case <-ctx.Done():
				return
			}
			pairs := order[s*b : (s+1)*b]
			buf.err = t.fill(data, pairs, epoch*steps+s, buf)
			select {
			case f.ready <- buf:
			case <-f.stop:
				return
			}
			if buf.err != nil {
				return
			}
		}
	}()
	return f
}

// close stops the feed and waits for its goroutine.
func (f *feed) close() {
	close(f.stop)
	f.done.Wait()
}

// fill writes the images and tokens of the batch of pairs at global step into buf.
func (t *Trainer) fill(data *Data, pairs []int32, step int, buf *batch) error {
	l := t.cfg.ContextLength
	if data.Stream == nil {
		for j, p := range pairs {
			copy(buf.tokens[j*l:(j+1)*l], data.Tokens[p])
		}
		if data.View == nil {
			size := len(buf.images) / len(pairs)
			for j, p := range pairs {
				copy(buf.images[j*size:(j+1)*size], data.Images[data.ImageOf[p]])
			}
			return nil
		}
	}
	return t.parallel(data, pairs, step, buf)
}

// viewSeedStream separates the generators of Data.View and Stream.Transform from the data order and the
// self-supervised views.
const viewSeedStream = 0x7472766965772031 // "trview 1"

// parallel fills buf with the batch's views (Data.View) or streamed pairs on data.Workers goroutines; batch
// item j's generator is seeded by (Seed, step·B + j), so the result does not depend on the scheduling.
func (t *Trainer) parallel(data *Data, pairs []int32, step int, buf *batch) error {
	return dataset.Parallel(len(pairs), data.Workers, func(j int) error {
		rng := rand.New(rand.NewPCG(t.opts.Seed^viewSeedStream, uint64(step)*uint64(len(pairs))+uint64(j)))
		return t.item(data, int(pairs[j]), j, rng, buf)
	})
}

// item writes batch item j, pair p, into buf: Data.View's image, or the streamed pair's image and tokens.
func (t *Trainer) item(data *Data, p, j int, rng *rand.Rand, buf *batch) error {
	size := len(buf.images) / t.opts.BatchSize
	var img []float32
	var err error
	if data.Stream == nil {
		if img, err = data.View(data.ImageOf[p], rng); err != nil {
			return err
		}
		if len(img) != size {
			return fmt.Errorf("view of image %d has %d values, the model needs %d", data.ImageOf[p], len(img), size)
		}
	} else if img, err = t.streamed(data.Stream, p, j, rng, buf); err != nil {
		return err
	}
	copy(buf.images[j*size:(j+1)*size], img)
	return nil
}

// streamed reads pair p of s, writes its tokens as batch item j and returns its preprocessed image.
func (t *Trainer) streamed(s *Stream, p, j int, rng *rand.Rand, buf *batch) ([]float32, error) {
	pic, caption, err := s.Pairs.Pair(p)
	if err != nil {
		return nil, fmt.Errorf("pair %d: %w", p, err)
	}
	l := t.cfg.ContextLength
	toks := s.Encode(caption)
	if len(toks) != l {
		return nil, fmt.Errorf("pair %d: caption encoded to %d tokens, the model reads %d", p, len(toks), l)
	}
	copy(buf.tokens[j*l:(j+1)*l], toks)
	n := t.cfg.ImageSize
	switch {
	case s.Transform != nil:
		if pic, err = s.Transform(pic, rng); err != nil {
			return nil, fmt.Errorf("pair %d: %w", p, err)
		}
	case pic.Height != n || pic.Width != n:
		if err := imageprep.CheckCLIPSize(pic.Width, pic.Height, n); err != nil {
			return nil, fmt.Errorf("pair %d: %w", p, err)
		}
		pic = imageprep.CLIP(pic, n)
	}
	img, err := clip.Preprocess(t.cfg, pic)
	if err != nil {
		return nil, fmt.Errorf("pair %d: %w", p, err)
	}
	return img, nil
}

// Order32 is Order in 32-bit indices (half the memory for large sets): the same permutation, element for
// element, as rand.Perm gives.
func Order32(seed uint64, epoch, numPairs int) []int32 {
	rng := rand.New(rand.NewPCG(seed, uint64(epoch)+0x6f72646572))
	p := make([]int32, numPairs)
	for i := range p {
		p[i] = int32(i)
	}
	rng.Shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
	return p
}
