package defense

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// EDA is "easy data augmentation" (Wei & Zou, EMNLP 2019), the caption augmentation CleanCLIP (Bansal et al.,
// ICCV 2023) uses for the text half of its in-modality self-supervised loss: each call picks one of four
// operations at random and applies it to the caption's words:
//
//   - synonym replacement: max(1, ⌊SynonymRate·n⌋) distinct words of the n-word caption that have synonyms are
//     each replaced, at every occurrence, by one of their synonyms;
//   - random insertion: max(1, ⌊InsertRate·n⌋) times, a synonym of a random word is inserted at a random place;
//   - random swap: max(1, ⌊SwapRate·n⌋) times, two random words trade places;
//   - random deletion: every word is dropped with probability DeleteProb (one random word survives if all
//     would go).
//
// An operation whose rate is 0 is never picked; an operation that finds nothing to do (no word has a synonym)
// leaves the caption as it is, as in EDA. The meaning is kept (a view of the same caption), which is what the
// in-modality loss needs: the two views of one caption must be more alike than the captions of two pairs.
//
// Two entry points fit the two data flows: [EDA.Caption] works on caption strings (augment before tokenising),
// and [TokenEDA] works on the token ids of a word-level tokenizer, which is what models/train's Data holds and
// what the trainer's per-step augmentation hook receives, so a fresh view is drawn at every step without
// re-tokenising. Both follow the random generator only.
type EDA struct {
	// Synonyms maps a word to its synonyms (single words). Nil means DefaultSynonyms().
	Synonyms map[string][]string
	// SynonymRate, InsertRate and SwapRate are EDA's α_sr, α_ri and α_rs; DeleteProb is its p_rd. All in [0, 1].
	SynonymRate, InsertRate, SwapRate, DeleteProb float64
}

// DefaultEDA returns EDA with CleanCLIP's settings (α_sr = α_ri = α_rs = p_rd = 0.1) and DefaultSynonyms.
func DefaultEDA() EDA {
	return EDA{SynonymRate: 0.1, InsertRate: 0.1, SwapRate: 0.1, DeleteProb: 0.1}
}

// synonymGroups are sets of interchangeable words. EDA draws synonyms from WordNet; mmpoison has no WordNet, so
// this small table covers common caption words: image and photo words, colours and tones, textures, sizes,
// garments and accessories, and a few verbs.
var synonymGroups = [][]string{
	{"photo", "picture", "image", "photograph", "snapshot"},
	{"shot", "photo", "picture"},
	{"showing", "featuring", "depicting"},
	{"seen", "viewed"},
	{"selling", "offering"},
	{"looks", "appears"},
	{"dark", "dim", "deep"},
	{"light", "pale", "bright"},
	{"grey", "gray", "greyish"},
	{"plain", "simple", "solid", "smooth"},
	{"patterned", "printed", "textured", "detailed"},
	{"small", "little", "compact", "tiny"},
	{"large", "big", "bulky", "huge"},
	{"regular", "average", "ordinary"},
	{"background", "backdrop"},
	{"neatly", "tidily"},
	{"trousers", "pants", "slacks"},
	{"sweater", "jumper", "pullover"},
	{"dress", "gown", "frock"},
	{"coat", "jacket", "overcoat"},
	{"shirt", "blouse"},
	{"sneaker", "trainer"},
	{"bag", "handbag", "purse"},
	{"boot", "bootie"},
	{"tee", "tshirt"},
	{"man", "guy"},
	{"woman", "lady"},
	{"child", "kid"},
	{"dog", "puppy"},
	{"cat", "kitten"},
	{"car", "automobile"},
	{"street", "road"},
}

// DefaultSynonyms returns a fresh copy of the built-in synonym table: every word of a group maps to the other
// words of its groups, in table order.
func DefaultSynonyms() map[string][]string {
	out := map[string][]string{}
	for _, g := range synonymGroups {
		for _, w := range g {
			for _, s := range g {
				if s != w && !slices.Contains(out[w], s) {
					out[w] = append(out[w], s)
				}
			}
		}
	}
	return out
}

// validate checks the rates.
func (e EDA) validate() error {
	for _, r := range []struct {
		name string
		v    float64
	}{{"SynonymRate", e.SynonymRate}, {"InsertRate", e.InsertRate}, {"SwapRate", e.SwapRate}, {"DeleteProb", e.DeleteProb}} {
		if !(r.v >= 0 && r.v <= 1) {
			return fmt.Errorf("defense.EDA: %s must be in [0, 1], got %v", r.name, r.v)
		}
	}
	return nil
}

// defaultSynonyms is DefaultSynonyms built once, for read-only use.
var defaultSynonyms = sync.OnceValue(DefaultSynonyms)

func (e EDA) synonyms() map[string][]string {
	if e.Synonyms == nil {
		return defaultSynonyms()
	}
	return e.Synonyms
}

// Words returns an augmented copy of a caption's words (words is not modified). It panics when a rate is
// outside [0, 1].
func (e EDA) Words(words []string, rng *rand.Rand) []string {
	if err := e.validate(); err != nil {
		panic(err)
	}
	syn := e.synonyms()
	return edaApply(words, func(w string) []string { return syn[w] }, e, rng)
}

// Caption returns an augmented caption: the caption is split into lower-case words with [dataset.Words], as the
// word-level tokenizer splits it (punctuation dropped, as EDA does), augmented with Words and joined with single
// spaces. Tokenise the result with the model's tokenizer.
func (e EDA) Caption(caption string, rng *rand.Rand) string {
	return strings.Join(e.Words(dataset.Words(caption), rng), " ")
}

// edaApply picks one enabled operation and applies it to a copy of seq; synonyms returns the synonyms of a unit
// (nil when it has none).
func edaApply[T comparable](seq []T, synonyms func(T) []T, e EDA, rng *rand.Rand) []T {
	out := slices.Clone(seq)
	type op int
	const (
		replace op = iota
		insert
		swap
		del
	)
	var ops []op
	for o, r := range []float64{e.SynonymRate, e.InsertRate, e.SwapRate, e.DeleteProb} {
		if r > 0 {
			ops = append(ops, op(o))
		}
	}
	if len(ops) == 0 || len(out) == 0 {
		return out
	}
	count := func(rate float64) int { return max(1, int(rate*float64(len(out)))) }
	switch ops[rng.IntN(len(ops))] {
	case replace:
		var candidates []T
		for _, w := range out {
			if len(synonyms(w)) > 0 && !slices.Contains(candidates, w) {
				candidates = append(candidates, w)
			}
		}
		rng.Shuffle(len(candidates), func(i, j int) { candidates[i], candidates[j] = candidates[j], candidates[i] })
		for _, w := range candidates[:min(count(e.SynonymRate), len(candidates))] {
			s := synonyms(w)
			by := s[rng.IntN(len(s))]
			for i := range out {
				if out[i] == w {
					out[i] = by
				}
			}
		}
	case insert:
		for range count(e.InsertRate) {
			// As EDA: up to 10 tries to find a word with a synonym.
			for range 10 {
				s := synonyms(out[rng.IntN(len(out))])
				if len(s) == 0 {
					continue
				}
				by := s[rng.IntN(len(s))]
				out = slices.Insert(out, rng.IntN(len(out)+1), by)
				break
			}
		}
	case swap:
		if len(out) < 2 {
			return out
		}
		for range count(e.SwapRate) {
			i := rng.IntN(len(out))
			j := rng.IntN(len(out) - 1)
			if j >= i {
				j++
			}
			out[i], out[j] = out[j], out[i]
		}
	case del:
		if len(out) == 1 {
			return out
		}
		kept := out[:0:0]
		for _, w := range out {
			if rng.Float64() >= e.DeleteProb {
				kept = append(kept, w)
			}
		}
		if len(kept) == 0 {
			kept = append(kept, out[rng.IntN(len(out))])
		}
		out = kept
	}
	return out
}

// WordTokenizer is a word-level tokenizer (one token id per word), such as models/tokenizer's WordLevel: the
// methods of it that [NewTokenEDA] uses.
type WordTokenizer interface {
	// Encode returns exactly ContextLength ids: start, one id per word (truncated), end, padding.
	Encode(text string) []int32
	// ContextLength is the length of every encoded sequence.
	ContextLength() int
	// Vocabulary returns the words the tokenizer knows.
	Vocabulary() []string
}

// TokenEDA applies EDA to captions already tokenised by a word-level tokenizer: start id, one id per word, end
// id, padding. Synonyms the vocabulary lacks are dropped from the table (they would become unknown words).
// It is safe for concurrent use.
type TokenEDA struct {
	eda             EDA
	syn             map[int32][]int32
	start, end, pad int32
	context         int
}

// NewTokenEDA prepares e for the token ids of tok. It returns an error when a rate is outside [0, 1], when tok's
// encoding of an empty caption is not [start, end, padding…], or when a vocabulary word does not encode to a
// single id.
func NewTokenEDA(e EDA, tok WordTokenizer) (*TokenEDA, error) {
	if err := e.validate(); err != nil {
		return nil, err
	}
	empty := tok.Encode("")
	if len(empty) < 2 || tok.ContextLength() != len(empty) {
		return nil, fmt.Errorf("defense.NewTokenEDA: the tokenizer encodes an empty caption as %v, want [start, end, padding…]", empty)
	}
	t := &TokenEDA{eda: e, syn: map[int32][]int32{}, start: empty[0], end: empty[1], context: len(empty)}
	if len(empty) > 2 {
		t.pad = empty[2]
	}
	ids := map[string]int32{}
	for _, w := range tok.Vocabulary() {
		enc := tok.Encode(w)
		if len(enc) < 3 || enc[0] != t.start || enc[2] != t.end {
			return nil, fmt.Errorf("defense.NewTokenEDA: vocabulary word %q encodes to %v, not to one token: "+
				"TokenEDA needs a word-level tokenizer", w, enc)
		}
		ids[w] = enc[1]
	}
	syn := e.synonyms()
	words := make([]string, 0, len(syn))
	for w := range syn {
		words = append(words, w)
	}
	slices.Sort(words) // Deterministic table whatever the map order.
	for _, w := range words {
		id, ok := ids[w]
		if !ok {
			continue
		}
		for _, s := range syn[w] {
			if sid, ok := ids[s]; ok && sid != id && !slices.Contains(t.syn[id], sid) {
				t.syn[id] = append(t.syn[id], sid)
			}
		}
	}
	return t, nil
}

// Synonyms returns how many vocabulary words have at least one synonym in the vocabulary.
func (t *TokenEDA) Synonyms() int { return len(t.syn) }

// Augment returns an augmented copy of a tokenised caption (ids is not modified): the word ids between the
// start and the end token are augmented with EDA, then re-assembled as the tokenizer does (start, words
// truncated to the context length, end, padding). A sequence that does not begin with the start token is
// returned unchanged (copied).
func (t *TokenEDA) Augment(ids []int32, rng *rand.Rand) []int32 {
	if len(ids) == 0 || ids[0] != t.start {
		return slices.Clone(ids)
	}
	end := slices.Index(ids[1:], t.end)
	if end < 0 {
		end = len(ids) - 1
	}
	words := edaApply(ids[1:1+end], func(id int32) []int32 { return t.syn[id] }, t.eda, rng)
	n := len(ids)
	if n < 2 {
		return slices.Clone(ids)
	}
	out := make([]int32, n)
	out[0] = t.start
	k := 1 + copy(out[1:n-1], words)
	out[k] = t.end
	for i := k + 1; i < n; i++ {
		out[i] = t.pad
	}
	return out
}
