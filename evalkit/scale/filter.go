package scale

import (
	"encoding/json"
	"fmt"
	"math"
	"os"

	"github.com/mmpoison/mmpoison/evalkit/defenses"
	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/tokenizer"
	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/defense"
	"github.com/mmpoison/mmpoison/poisoning/loaders"
)

// FilterSpec configures Filter: the paper's pre-training filter with an independent clean checker.
type FilterSpec struct {
	// Checker is the checker model: an mmpoison checkpoint, or OpenAI / open_clip / HuggingFace safetensors
	// (converted once and cached, see experiment.CheckpointStage).
	Checker string
	// Tokenizer is the checker's CLIP BPE vocabulary ("": the Fashion-MNIST word-level vocabulary of the
	// presets trained here).
	Tokenizer string
	// Threshold picks γ; LabelledPairs sizes the sample of a "labelled" threshold (0: 200), drawn by Seed and
	// labelled from the input's poison manifest.
	Threshold     defense.Threshold
	LabelledPairs int
	Seed          int64
}

// Validate checks the checker's file and the threshold before any work.
func (fs FilterSpec) Validate() error {
	if fs.Checker == "" {
		return fmt.Errorf("filter: no checker given")
	}
	for _, f := range []struct{ what, path string }{{"checker", fs.Checker}, {"checker tokenizer", fs.Tokenizer}} {
		if f.path == "" {
			continue
		}
		if st, err := os.Stat(f.path); err != nil {
			return fmt.Errorf("filter: %s: %w", f.what, err)
		} else if !st.Mode().IsRegular() {
			return fmt.Errorf("filter: %s %s is not a regular file", f.what, f.path)
		}
	}
	// Distances and a sample that every valid threshold accepts: only the threshold's own values can fail.
	if _, err := defense.ChooseGamma([]float64{0, 1}, fs.Threshold, &defense.LabelledSample{Clean: []int{0}, Poisoned: []int{1}}); err != nil {
		return fmt.Errorf("filter: %w", err)
	}
	return nil
}

// Filter runs the pre-training filter on the clean pairs of in and writes the pairs it keeps as out says, in
// two passes over the input: the checker embeds every pair (pictures read, decoded and preprocessed a batch at
// a time, ahead of the model, see distances), keeping one distance per pair; γ is chosen; then the kept pairs
// are copied. A picture that does not decode has no distance and is dropped (FilterReport.Unscored). The
// report is scored with the input's poison manifest (a folder written by Poison), or with none poisoned; the
// written set's manifest keeps the manifest's surviving pairs, renumbered.
func Filter(in *Opened, fs FilterSpec, out Output, opts experiment.Options) (*Export, *defense.FilterReport, error) {
	if err := out.Check(); err != nil {
		return nil, nil, err
	}
	if err := fs.Validate(); err != nil {
		return nil, nil, err
	}
	if fs.Threshold.Kind == defense.KindLabelled && in.Manifest == nil {
		return nil, nil, fmt.Errorf("filter: a labelled threshold needs the input's poison manifest (a folder written by poison)")
	}
	emb, cfg, tok, err := loadChecker(fs, opts)
	if err != nil {
		return nil, nil, err
	}
	table := dataset.CleanTable(in.Source)
	m := in.Manifest
	if m == nil {
		n := table.NumPairs()
		m = &attack.Manifest{Version: attack.ManifestVersion, Attack: "none", Dataset: in.Source.Name(), TotalPairs: n, CleanPairs: n}
	}
	dist, err := distances(table, emb, cfg, tok)
	if err != nil {
		return nil, nil, err
	}
	var sample *defense.LabelledSample
	if fs.Threshold.Kind == defense.KindLabelled {
		poisoned := map[int]bool{}
		for _, e := range m.Pairs {
			poisoned[e.Index] = true
		}
		sample = defenses.LabelledSample(len(dist), fs.LabelledPairs, fs.Seed, func(i int) bool { return poisoned[i] })
	}
	gamma, err := defense.ChooseGamma(dist, fs.Threshold, sample)
	if err != nil {
		return nil, nil, fmt.Errorf("filter: %w", err)
	}
	report, err := filterReport(m, dist, gamma)
	if err != nil {
		return nil, nil, err
	}
	exp, err := writeKept(in, table, dist, gamma, keptManifest(m, report.DroppedIndices), report, out)
	return exp, report, err
}

// loadChecker loads the checker's embedder and tokenizer.
func loadChecker(fs FilterSpec, opts experiment.Options) (*clip.Embedder, clip.Config, tokenizer.Tokenizer, error) {
	st, err := experiment.CheckpointStage(fs.Checker)
	if err != nil {
		return nil, clip.Config{}, nil, fmt.Errorf("filter: checker: %w", err)
	}
	emb, cfg, err := experiment.LoadEmbedder(st.Path, opts)
	if err != nil {
		return nil, cfg, nil, fmt.Errorf("filter: checker: %w", err)
	}
	var tok tokenizer.Tokenizer
	if fs.Tokenizer == "" {
		tok, err = fashionTokenizer(cfg.ContextLength)
	} else {
		tok, err = tokenizer.LoadFile(fs.Tokenizer, cfg.ContextLength)
	}
	if err != nil {
		return nil, cfg, nil, fmt.Errorf("filter: checker tokenizer: %w", err)
	}
	if tok.VocabSize() != cfg.VocabSize {
		return nil, cfg, nil, fmt.Errorf("filter: the checker has a vocabulary of %d tokens, its tokenizer %d", cfg.VocabSize, tok.VocabSize())
	}
	return emb, cfg, tok, nil
}

// filterReport scores the pairs dropped at γ (distance above it, or none) with the manifest.
func filterReport(m *attack.Manifest, dist []float64, gamma float64) (*defense.FilterReport, error) {
	var dropped []int
	unscored := 0
	for i, d := range dist {
		if math.IsNaN(d) {
			unscored++
		}
		if math.IsNaN(d) || d > gamma {
			dropped = append(dropped, i)
		}
	}
	r, err := defense.ReportFromManifest(m, dropped, len(dist))
	if err != nil {
		return nil, fmt.Errorf("filter: %w", err)
	}
	r.Gamma, r.Unscored = &gamma, unscored
	return r, nil
}

// keptManifest is the manifest of the pairs m describes that survive dropping the sorted positions dropped,
// renumbered in the filtered set.
func keptManifest(m *attack.Manifest, dropped []int) *attack.Manifest {
	out := *m
	out.Pairs = nil
	d := 0
	for _, e := range m.Pairs {
		for d < len(dropped) && dropped[d] < e.Index {
			d++
		}
		if d < len(dropped) && dropped[d] == e.Index {
			continue
		}
		e.Index -= d
		out.Pairs = append(out.Pairs, e)
	}
	out.TotalPairs = m.TotalPairs - len(dropped)
	out.PoisonedPairs = len(out.Pairs)
	out.CleanPairs = out.TotalPairs - out.PoisonedPairs
	out.Rate = 0
	if out.TotalPairs > 0 {
		out.Rate = float64(out.PoisonedPairs) / float64(out.TotalPairs)
	}
	return &out
}

// writeKept copies the pairs whose distance is at most gamma, reading each picture once.
func writeKept(in *Opened, table *dataset.Table, dist []float64, gamma float64, m *attack.Manifest, report *defense.FilterReport, out Output) (*Export, error) {
	w, err := newSetWriter(out, in.Source.Classes())
	if err != nil {
		return nil, err
	}
	poisoned := map[int]bool{}
	if in.Manifest != nil {
		for _, e := range in.Manifest.Pairs {
			poisoned[e.Index] = true
		}
	}
	shards, _ := in.Source.(*loaders.Shards)
	p := 0
	for i := range in.Source.Len() {
		n := in.Source.NumCaptions(i)
		var ex dataset.Example
		var enc dataset.Encoded
		for j := range n {
			if d := dist[p+j]; math.IsNaN(d) || d > gamma {
				continue
			}
			if ex.ID == "" {
				if ex, enc, err = in.Source.Read(i, false); err == nil && enc.Data == nil {
					ex, enc, err = in.Source.Read(i, true)
				}
				if err != nil {
					w.abort()
					return nil, err
				}
			}
			meta, err := keptMeta(shards, in.Export != nil, i, ex, j)
			if err == nil {
				shown := ex
				if in.Export != nil { // The picture's own ID and label, as the input recorded them.
					shown.ID, shown.Label = meta.ImageID, dataset.NoLabel
					if meta.Label != nil {
						shown.Label = *meta.Label
					}
				}
				meta.Poisoned = poisoned[p+j]
				err = w.write(shown, enc, ex.Captions[j], meta)
			}
			if err != nil {
				w.abort()
				return nil, err
			}
		}
		p += n
	}
	exp := &Export{Stage: "filter", Input: in.Source.Name(), Skipped: len(in.Skipped)}
	if err := w.finish(exp, m, report); err != nil {
		return nil, err
	}
	return exp, nil
}

// keptMeta is the metadata of caption j of image i: that of the input's json member for an export (its pairs'
// caption owners are the attack's), else the image's own.
func keptMeta(s *loaders.Shards, export bool, i int, ex dataset.Example, j int) (sampleMeta, error) {
	if !export || s == nil {
		return sampleMeta{CaptionImageID: ex.ID, CaptionIndex: j}, nil
	}
	js, err := s.Member(i, "json")
	if err != nil {
		return sampleMeta{}, err
	}
	var meta sampleMeta
	if err := json.Unmarshal(js, &meta); err != nil {
		return sampleMeta{}, fmt.Errorf("sample %s: json member: %w", ex.ID, err)
	}
	return meta, nil
}
