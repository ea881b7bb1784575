// Package defenses runs defenses against an experiment's attack and compares them: the paper's pre-training
// filter (Filter) and clean fine-tuning (CleanFinetune), and two beyond it, the embedding-space k-distance
// detector (KDistance, Detect) and CleanCLIP fine-tuning (CleanCLIP). The data-side defenses share one
// independent clean checker (CheckerSpec); the post-training ones fine-tune on held-out clean data. Matrix runs
// every defense against every attack over seeds, resumably, one cached cell each.
//
// The algorithms on embeddings and pair sets (distances, thresholds, scores, EDA) are poisoning/defense's;
// this package trains, embeds and evaluates with evalkit/experiment.
package defenses

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/mmpoison/mmpoison/evalkit/cache"
	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/tokenizer"
	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// CheckerSpec chooses the independent clean model of the data-side defenses (Filter, Detect, KDistance):
//
//   - all empty: the victim's pre-training recipe with another seed, on the victim's clean pool;
//   - Preset: the same recipe and pool with another model preset (and the same seed rule);
//   - Weights: a checkpoint, either an mmpoison checkpoint (clip.Save or weights.SaveOpenAI: used in place) or
//     OpenAI / open_clip / HuggingFace safetensors (converted once by models/weights and cached), with the
//     tokenizer of Tokenizer (empty: the victim's), as the paper's ViT-B/16 checker of a ViT-B/32 victim.
//
// Whatever the choice, the pairs are embedded with the checker's own config: images resized to its resolution
// (imageprep.CLIP) and normalised with its channels, mean and standard deviation (clip.Preprocess), captions
// encoded by its tokenizer at its context length.
type CheckerSpec struct {
	// Seed seeds the checker when it is pre-trained here (0: the victim's seed + 1); unused with Weights.
	Seed int64 `json:"seed,omitempty"`
	// Preset, when set, pre-trains the checker with this model preset (see clip.Presets, e.g. "small" for a
	// "tiny" victim) instead of the victim's, on the same clean pool. Not with a victim that loads
	// Real.Weights (it has no pool to pre-train on).
	Preset string `json:"preset,omitempty"`
	// Weights, when set, is the checker's checkpoint instead of a model pre-trained here. Its own config decides
	// the images' size, channels and normalisation (Fashion-MNIST's 28×28 grayscale images are resized and
	// repeated over RGB for a 224 px RGB checker) and its context length.
	Weights string `json:"weights,omitempty"`
	// Tokenizer is the CLIP BPE vocabulary of Weights (bpe_simple_vocab_16e6.txt.gz, or a HuggingFace
	// vocab.json with merges.txt beside it); empty: the victim's tokenizer. Its vocabulary size must be the
	// checker's.
	Tokenizer string `json:"tokenizer,omitempty"`
}

// seed returns the seed of a checker pre-trained here for the victim spec s.
func (c CheckerSpec) seed(s experiment.Spec) int64 {
	if c.Seed != 0 {
		return c.Seed
	}
	return s.Seed + 1
}

// Validate checks the checker against the victim's spec before anything trains, naming the bad value.
func (c CheckerSpec) Validate(victim experiment.Spec) error {
	switch {
	case c.Preset != "" && c.Weights != "":
		return fmt.Errorf("checker: set CheckerSpec.Preset (%q) or CheckerSpec.Weights (%s), not both", c.Preset, c.Weights)
	case c.Tokenizer != "" && c.Weights == "":
		return fmt.Errorf("checker: CheckerSpec.Tokenizer %s needs CheckerSpec.Weights (a checker pre-trained here uses the spec's tokenizer)", c.Tokenizer)
	}
	if c.Preset != "" {
		if _, err := clip.Preset(c.Preset); err != nil {
			return fmt.Errorf("checker (CheckerSpec.Preset): %w", err)
		}
		if victim.Real.Weights != "" {
			return fmt.Errorf("checker preset %q would be pre-trained on the spec's clean pool, but the spec loads the "+
				"pre-trained checkpoint %s and has no pre-training pool: give the checker as CheckerSpec.Weights instead", c.Preset, victim.Real.Weights)
		}
	}
	for _, f := range []struct{ what, path string }{{"checkpoint (CheckerSpec.Weights)", c.Weights}, {"tokenizer (CheckerSpec.Tokenizer)", c.Tokenizer}} {
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
		case !st.Mode().IsRegular():
			return fmt.Errorf("checker %s %s is not a regular file (%v)", f.what, f.path, st.Mode().Type())
		}
	}
	return nil
}

// parts is the checker in the cache keys of what depends on it: its seed as resolved for victim, its preset,
// and its files by their identity (path, size, modification time).
func (c CheckerSpec) parts(victim experiment.Spec) any {
	return struct {
		Seed      int64        `json:"seed"`
		Preset    string       `json:"preset"`
		Weights   cache.FileID `json:"weights"`
		Tokenizer cache.FileID `json:"tokenizer"`
	}{c.seed(victim), c.Preset, cache.IdentifyFile(c.Weights), cache.IdentifyFile(c.Tokenizer)}
}

// stage returns the checker's model: pre-trained on d's clean pool (cached like any pre-training), or the
// checkpoint of Weights.
func (c CheckerSpec) stage(d *experiment.Data, opts experiment.Options) (*experiment.Stage, error) {
	if c.Weights != "" {
		return experiment.CheckpointStage(c.Weights)
	}
	cd := d.Reseeded(c.seed(d.Spec))
	if c.Preset != "" {
		var err error
		if cd, err = cd.WithPreset(c.Preset); err != nil {
			return nil, fmt.Errorf("checker: %w", err)
		}
	}
	return experiment.Pretrain(cd, opts)
}

// tokenizerFor returns the tokenizer the checker with config cfg reads: Tokenizer's BPE vocabulary, or the
// victim's tokenizer, at the checker's context length; its vocabulary must be the checker's.
func (c CheckerSpec) tokenizerFor(d *experiment.Data, cfg clip.Config) (tokenizer.Tokenizer, error) {
	var tok tokenizer.Tokenizer
	var err error
	source := "the spec's tokenizer (the Fashion-MNIST word-level vocabulary)"
	if t := d.Spec.Real.Tokenizer; t != "" {
		source = "the spec's tokenizer " + t
	}
	if c.Tokenizer != "" {
		source = "CheckerSpec.Tokenizer " + c.Tokenizer
		tok, err = tokenizer.LoadFile(c.Tokenizer, cfg.ContextLength)
	} else {
		tok, err = d.TokenizerAt(cfg.ContextLength)
	}
	if err != nil {
		return nil, fmt.Errorf("checker tokenizer: %w", err)
	}
	if tok.VocabSize() != cfg.VocabSize {
		hint := ""
		if c.Tokenizer == "" {
			hint = ": set CheckerSpec.Tokenizer to the checker's vocabulary (e.g. bpe_simple_vocab_16e6.txt.gz)"
		}
		return nil, fmt.Errorf("checker %q has a vocabulary of %d tokens, but %s has %d%s", cfg.Name, cfg.VocabSize,
			source, tok.VocabSize(), hint)
	}
	return tok, nil
}

// embedPairs embeds every pair of ps with the checker model at path, with the model's own config and the
// checker's tokenizer: row i holds pair i's image embedding and caption embedding (the inputs of
// defense.PairDistances and defense.KDistanceScores). Pictures are read as they are embedded
// (experiment.EmbedImages); those of another size than the model's are brought to it with CLIP's resize and
// centre crop, and to its channels and normalisation by clip.Preprocess.
func (c CheckerSpec) embedPairs(d *experiment.Data, path string, ps *dataset.PairSet, opts experiment.Options) (imgRows, txtRows [][]float32, cfg clip.Config, err error) {
	emb, cfg, err := experiment.LoadEmbedder(path, opts)
	if err != nil {
		return nil, nil, cfg, err
	}
	tok, err := c.tokenizerFor(d, cfg)
	if err != nil {
		return nil, nil, cfg, err
	}
	imgEmb, err := experiment.EmbedImages(emb, cfg, ps.Images)
	if err != nil {
		return nil, nil, cfg, err
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
func (c CheckerSpec) describe(d *experiment.Data, cfg clip.Config) string {
	name := cfg.Name
	if name == "" {
		name = fmt.Sprintf("unnamed %d px model", cfg.ImageSize)
	}
	switch {
	case c.Weights != "":
		return fmt.Sprintf("checkpoint %s (%s)", filepath.Base(c.Weights), name)
	case d.Spec.Real.Weights != "":
		return fmt.Sprintf("the victim's own pre-trained checkpoint %s (%s)", filepath.Base(d.Spec.Real.Weights), name)
	}
	return fmt.Sprintf("%s pre-trained on the clean pool, seed %d", name, c.seed(d.Spec))
}

// checked is the checker's view of the spec's poisoned training set.
type checked struct {
	stage    *experiment.Stage
	model    string // the checker, described for reports
	pairs    *dataset.PairSet
	manifest *attack.Manifest
	img, txt [][]float32 // every pair's embeddings
	poisoned []bool      // every pair's Poisoned flag
	// embedSeconds is how long embedding the pairs took.
	embedSeconds float64
}

// runChecker validates the checker, trains or loads it, poisons the train split and embeds every pair. what
// names the defense in errors.
func runChecker(what string, d *experiment.Data, c CheckerSpec, opts experiment.Options) (*checked, error) {
	if err := c.Validate(d.Spec); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	st, err := c.stage(d, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: independent clean model: %w", what, err)
	}
	ps, m, err := experiment.Poison(d)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	img, txt, cfg, err := c.embedPairs(d, st.Path, ps, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out := &checked{stage: st, model: c.describe(d, cfg), pairs: ps, manifest: m, img: img, txt: txt,
		embedSeconds: time.Since(start).Seconds()}
	for _, p := range ps.Pairs {
		out.poisoned = append(out.poisoned, p.Poisoned)
	}
	return out, nil
}
