package experiment

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/safetensors"
	"github.com/mmpoison/mmpoison/models/tokenizer"
	"github.com/mmpoison/mmpoison/models/train"
	"github.com/mmpoison/mmpoison/models/weights"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/fashionmnist"
	"github.com/mmpoison/mmpoison/poisoning/imageprep"
)

// checkerChoice is the independent clean model of the data-side defenses (Filter, Detect, KDistanceFilter), as
// FilterSpec's and KDistanceSpec's Checker* fields choose it:
//
//   - all empty: the spec's pre-training recipe with another seed (Seed, 0: the spec's seed + 1), on the spec's
//     clean pool;
//   - Preset: the same recipe and pool with another model preset (and the same seed rule);
//   - Weights: a checkpoint, either an mmpoison checkpoint (clip.Save or weights.SaveOpenAI: used in place) or
//     OpenAI / open_clip / HuggingFace safetensors (converted once by models/weights and cached), with the
//     tokenizer of Tokenizer (empty: the spec's).
//
// Whatever the choice, the pairs are embedded with the checker's own config: images resized to its resolution
// (imageprep.CLIP) and normalised with its channels, mean and standard deviation (clip.Preprocess), captions
// encoded by its tokenizer at its context length.
type checkerChoice struct {
	Seed      int64
	Preset    string
	Weights   string
	Tokenizer string
}

func (fs FilterSpec) checker() checkerChoice {
	return checkerChoice{fs.CheckerSeed, fs.CheckerPreset, fs.CheckerWeights, fs.CheckerTokenizer}
}

func (ks KDistanceSpec) checker() checkerChoice {
	return checkerChoice{ks.CheckerSeed, ks.CheckerPreset, ks.CheckerWeights, ks.CheckerTokenizer}
}

// checkerSpecFor returns the spec of the independent clean model pre-trained with the spec's recipe, as Filter
// chooses it by default: the spec with Seed seed (0: the spec's seed + 1).
func checkerSpecFor(d *Data, seed int64) Spec {
	s := d.Spec
	s.Seed = seed
	if s.Seed == 0 {
		s.Seed = d.Spec.Seed + 1
	}
	if s.poolSeed == 0 {
		s.poolSeed = d.Spec.Seed // The checker trains on the victim's pool, drawn by the victim's seed.
	}
	return s
}

// validate checks the choice against the victim's spec before anything trains, naming the bad value.
func (c checkerChoice) validate(s Spec) error {
	switch {
	case c.Preset != "" && c.Weights != "":
		return fmt.Errorf("checker: set CheckerPreset (%q) or CheckerWeights (%s), not both", c.Preset, c.Weights)
	case c.Tokenizer != "" && c.Weights == "":
		return fmt.Errorf("checker: CheckerTokenizer %s needs CheckerWeights (a checker pre-trained here uses the spec's tokenizer)", c.Tokenizer)
	}
	if c.Preset != "" {
		if _, err := clip.Preset(c.Preset); err != nil {
			return fmt.Errorf("checker (CheckerPreset): %w", err)
		}
		if s.Weights != "" {
			return fmt.Errorf("checker preset %q would be pre-trained on the spec's clean pool, but the spec loads the "+
				"pre-trained checkpoint %s and has no pre-training pool: give the checker as CheckerWeights instead", c.Preset, s.Weights)
		}
	}
	for _, f := range []struct{ what, path string }{
		{"checkpoint (CheckerWeights)", c.Weights}, {"tokenizer (CheckerTokenizer)", c.Tokenizer}} {
		if f.path == "" {
			continue
		}
		st, err := os.Stat(f.path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("checker %s %s does not exist", f.what, f.path)
		case err != nil:
			return fmt.Errorf("checker %s: %w", f.what, err)
		case st.IsDir():
			return fmt.Errorf("checker %s %s is a folder, not a file", f.what, f.path)
		}
	}
	return nil
}

// filesKey identifies the checker's files for cache keys (path, size and modification time), so that a
// replaced checkpoint or tokenizer is not taken for the old one; nil without CheckerWeights, so that the keys
// of checkers pre-trained here are unchanged.
func (c checkerChoice) filesKey() any {
	if c.Weights == "" {
		return nil
	}
	return struct {
		Weights   fileID
		Tokenizer fileID `json:",omitzero"`
	}{identify(c.Weights), identify(c.Tokenizer)}
}

// withCheckerFiles adds the checker's files (filesKey) to a defense's settings for a cache key; settings alone
// when there are none.
func withCheckerFiles(settings any, c checkerChoice) any {
	if f := c.filesKey(); f != nil {
		return struct{ Settings, CheckerFiles any }{settings, f}
	}
	return settings
}

// stage returns the checker's model: pre-trained on d's clean pool (cached like any pre-training), or the
// checkpoint of Weights.
func (c checkerChoice) stage(d *Data, opts Options) (*Stage, error) {
	if c.Weights != "" {
		return checkpointStage(c.Weights)
	}
	cd, err := c.data(d)
	if err != nil {
		return nil, err
	}
	return Pretrain(cd, opts)
}

// data returns the Data the checker pre-trains on: d's, with the checker's spec (another seed) and, with
// Preset, the preset's model, the spec's tokenizer at the preset's context length, and the pool at the
// preset's resolution.
func (c checkerChoice) data(d *Data) (*Data, error) {
	cd := *d
	cd.Spec = checkerSpecFor(d, c.Seed)
	if c.Preset == "" {
		return &cd, nil
	}
	if d.Spec.Weights != "" {
		return nil, c.validate(d.Spec)
	}
	cfg, err := clip.Preset(c.Preset)
	if err != nil {
		return nil, fmt.Errorf("checker (CheckerPreset): %w", err)
	}
	tok, err := d.tokenizerAt(cfg.ContextLength)
	if err != nil {
		return nil, err
	}
	cfg.VocabSize = tok.VocabSize()
	cd.Spec.Preset, cd.Model, cd.Tokenizer, cd.init = c.Preset, cfg, tok, nil
	if n := cfg.ImageSize; n != d.Model.ImageSize && d.Splits.Pool != nil {
		pool := *d.Splits.Pool
		pool.Examples = slices.Clone(pool.Examples)
		for i, ex := range pool.Examples {
			pool.Examples[i].Image = imageprep.CLIP(ex.Image, n)
		}
		splits := *d.Splits
		splits.Pool = &pool
		cd.Splits = &splits
	}
	return &cd, cfg.Validate()
}

// tokenizerAt returns the spec's tokenizer encoding n tokens: d.Tokenizer when that is its context length,
// else the same vocabulary (Spec.TokenizerFile's, or the Fashion-MNIST words) for n tokens.
func (d *Data) tokenizerAt(n int) (tokenizer.Tokenizer, error) {
	if d.Tokenizer != nil && d.Tokenizer.ContextLength() == n {
		return d.Tokenizer, nil
	}
	if d.Spec.TokenizerFile != "" {
		return LoadTokenizerFile(d.Spec.TokenizerFile, n)
	}
	return tokenizer.NewWordLevel([]string{strings.Join(fashionmnist.Vocabulary(), " ")}, n)
}

// errNotCached stops cached from producing anything: checkpointStage first asks whether a conversion is cached.
var errNotCached = errors.New("not cached")

// checkpointStage returns the stage of a checker checkpoint: the file itself when it is an mmpoison checkpoint
// (its config in the metadata, as clip.Save and weights.SaveOpenAI write it), else its conversion by
// weights.Load (OpenAI, open_clip or HuggingFace names, the latter with config.json beside it), cached as the
// pre-training stage of a spec with these Weights is.
func checkpointStage(path string) (*Stage, error) {
	if meta, err := safetensors.ReadMetadata(path); err == nil && meta[clip.MetadataConfig] != "" {
		abs, err := filepath.Abs(path)
		if err != nil {
			abs = path
		}
		return &Stage{Path: abs, Cached: true}, nil
	}
	key := Spec{Weights: path}.weightsKey()
	st, err := cached("pretrained", key, func() (*context.Context, []train.EpochStats, error) {
		return nil, nil, errNotCached
	}, clip.Config{})
	if !errors.Is(err, errNotCached) {
		return st, err
	}
	ctx, cfg, err := weights.Load(path, "", weights.Hints{})
	if err != nil {
		return nil, fmt.Errorf("checker checkpoint: %w", err)
	}
	return cached("pretrained", key, func() (*context.Context, []train.EpochStats, error) { return ctx, nil, nil }, cfg)
}

// tokenizerFor returns the tokenizer the checker with config cfg reads: Tokenizer's BPE vocabulary, or the
// spec's tokenizer, at the checker's context length; its vocabulary must be the checker's.
func (c checkerChoice) tokenizerFor(d *Data, cfg clip.Config) (tokenizer.Tokenizer, error) {
	var tok tokenizer.Tokenizer
	var err error
	source := "the spec's tokenizer (the Fashion-MNIST word-level vocabulary)"
	if d.Spec.TokenizerFile != "" {
		source = "the spec's tokenizer " + d.Spec.TokenizerFile
	}
	if c.Tokenizer != "" {
		source = "CheckerTokenizer " + c.Tokenizer
		tok, err = LoadTokenizerFile(c.Tokenizer, cfg.ContextLength)
	} else {
		tok, err = d.tokenizerAt(cfg.ContextLength)
	}
	if err != nil {
		return nil, fmt.Errorf("checker tokenizer: %w", err)
	}
	if tok.VocabSize() != cfg.VocabSize {
		hint := ""
		if c.Tokenizer == "" {
			hint = ": set CheckerTokenizer to the checker's vocabulary (e.g. bpe_simple_vocab_16e6.txt.gz)"
		}
		return nil, fmt.Errorf("checker %q has a vocabulary of %d tokens, but %s has %d%s", cfg.Name, cfg.VocabSize,
			source, tok.VocabSize(), hint)
	}
	return tok, nil
}

// embedChunk is how many images embedPairs preprocesses at a time (a multiple of clip.DefaultEvalBatch, so the
// embedder's batches are those of one call over all images).
const embedChunk = 4 * clip.DefaultEvalBatch

// embedPairs embeds every pair of ps with the checker model at path, with the model's own config and the
// checker's tokenizer: row i holds pair i's image embedding and caption embedding (the inputs of
// defense.PairDistances and defense.KDistanceScores). Images of another size than the model's are brought to
// it with CLIP's resize and centre crop, and to its channels and normalisation by clip.Preprocess.
func (c checkerChoice) embedPairs(d *Data, path string, ps *dataset.PairSet, opts Options) (imgRows, txtRows [][]float32, cfg clip.Config, err error) {
	emb, cfg, err := loadEmbedder(path, &opts)
	if err != nil {
		return nil, nil, cfg, err
	}
	tok, err := c.tokenizerFor(d, cfg)
	if err != nil {
		return nil, nil, cfg, err
	}
	imgEmb := make([][]float32, 0, len(ps.Images))
	for start := 0; start < len(ps.Images); start += embedChunk {
		batch := make([][]float32, 0, embedChunk)
		for _, ex := range ps.Images[start:min(start+embedChunk, len(ps.Images))] {
			im := ex.Image
			if im.Height != cfg.ImageSize || im.Width != cfg.ImageSize {
				im = imageprep.CLIP(im, cfg.ImageSize)
			}
			pix, err := clip.Preprocess(cfg, im)
			if err != nil {
				return nil, nil, cfg, fmt.Errorf("image %s: %w", ex.ID, err)
			}
			batch = append(batch, pix)
		}
		rows, err := emb.Images(batch)
		if err != nil {
			return nil, nil, cfg, err
		}
		imgEmb = append(imgEmb, rows...)
	}
	tokens := make([][]int32, len(ps.Pairs))
	for i, p := range ps.Pairs {
		tokens[i] = tok.Encode(p.Caption)
	}
	if txtRows, err = emb.Texts(tokens); err != nil {
		return nil, nil, cfg, err
	}
	imgRows = make([][]float32, len(ps.Pairs))
	for i, p := range ps.Pairs {
		imgRows[i] = imgEmb[p.Image]
	}
	return imgRows, txtRows, cfg, nil
}

// describe names the checker for reports, e.g. "small pre-trained on the clean pool, seed 43" or
// "checkpoint ViT-B-16.safetensors (ViT-B/16)"; cfg is the checker model's config.
func (c checkerChoice) describe(d *Data, cfg clip.Config) string {
	name := cfg.Name
	if name == "" {
		name = fmt.Sprintf("unnamed %d px model", cfg.ImageSize)
	}
	switch {
	case c.Weights != "":
		return fmt.Sprintf("checkpoint %s (%s)", filepath.Base(c.Weights), name)
	case d.Spec.Weights != "":
		return fmt.Sprintf("the victim's own pre-trained checkpoint %s (%s)", filepath.Base(d.Spec.Weights), name)
	}
	return fmt.Sprintf("%s pre-trained on the clean pool, seed %d", name, checkerSpecFor(d, c.Seed).Seed)
}
