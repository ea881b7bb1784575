// Package tokenizer turns captions into the fixed-length token-id sequences CLIP's text tower reads.
//
// Every tokenizer follows CLIP's conventions: a start token first, an end token last (the end token has the
// highest id of the vocabulary, which is how the text tower finds it), zero padding after it, and truncation
// that keeps the end token. WordLevel is built from a caption corpus and serves the Fashion-MNIST
// default; the CLIP BPE tokenizer implements the same interface.
package tokenizer

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// Tokenizer encodes text into ContextLength token ids.
type Tokenizer interface {
	// Encode returns exactly ContextLength ids: start, tokens (truncated), end, zero padding.
	Encode(text string) []int32
	// VocabSize is the number of ids; the end token is VocabSize-1.
	VocabSize() int
	// ContextLength is the length of every encoded sequence.
	ContextLength() int
}

// Reserved ids of WordLevel: 0 pads, 1 stands for unknown words; start and end are the two highest ids.
const (
	PadID     = 0
	UnknownID = 1
)

// WordLevel maps each lower-cased word of its vocabulary to an id. Words are split on anything that is not a
// letter or digit ([dataset.Words]).
type WordLevel struct {
	words   []string
	ids     map[string]int32
	context int
}

// NewWordLevel builds a word-level tokenizer whose vocabulary is every word of the corpus, sorted (so the ids do
// not depend on the corpus order).
func NewWordLevel(corpus []string, contextLength int) (*WordLevel, error) {
	set := map[string]bool{}
	for _, text := range corpus {
		for _, w := range dataset.Words(text) {
			set[w] = true
		}
	}
	words := make([]string, 0, len(set))
	for w := range set {
		words = append(words, w)
	}
	sort.Strings(words)
	return WordLevelFromVocabulary(words, contextLength)
}

// WordLevelFromVocabulary builds a tokenizer from an explicit word list; word i gets id i+2.
func WordLevelFromVocabulary(words []string, contextLength int) (*WordLevel, error) {
	if contextLength < 2 {
		return nil, fmt.Errorf("tokenizer: context length %d leaves no room for start and end tokens", contextLength)
	}
	t := &WordLevel{words: slices.Clone(words), ids: make(map[string]int32, len(words)), context: contextLength}
	for i, w := range words {
		if _, dup := t.ids[w]; dup {
			return nil, fmt.Errorf("tokenizer: word %q appears twice in the vocabulary", w)
		}
		t.ids[w] = int32(i + 2)
	}
	return t, nil
}

// StartID is the start-of-text id.
func (t *WordLevel) StartID() int32 { return int32(len(t.words) + 2) }

// EndID is the end-of-text id, the highest of the vocabulary.
func (t *WordLevel) EndID() int32 { return int32(len(t.words) + 3) }

// VocabSize implements Tokenizer.
func (t *WordLevel) VocabSize() int { return len(t.words) + 4 }

// ContextLength implements Tokenizer.
func (t *WordLevel) ContextLength() int { return t.context }

// Vocabulary returns the words, in id order (word i has id i+2).
func (t *WordLevel) Vocabulary() []string { return slices.Clone(t.words) }

// Encode implements Tokenizer.
func (t *WordLevel) Encode(text string) []int32 {
	out := make([]int32, t.context)
	out[0] = t.StartID()
	n := 1
	for _, w := range dataset.Words(text) {
		if n == t.context-1 {
			break
		}
		id, ok := t.ids[w]
		if !ok {
			id = UnknownID
		}
		out[n] = id
		n++
	}
	out[n] = t.EndID()
	return out
}

// EncodeAll encodes every text with tok.
func EncodeAll(tok Tokenizer, texts []string) [][]int32 {
	out := make([][]int32, len(texts))
	for i, s := range texts {
		out[i] = tok.Encode(s)
	}
	return out
}

type wordLevelJSON struct {
	Kind          string   `json:"kind"`
	ContextLength int      `json:"context_length"`
	Words         []string `json:"words"`
}

// MarshalJSON stores the vocabulary, so a checkpoint can carry its tokenizer.
func (t *WordLevel) MarshalJSON() ([]byte, error) {
	return json.Marshal(wordLevelJSON{Kind: "word-level", ContextLength: t.context, Words: t.words})
}

// UnmarshalWordLevel decodes a tokenizer stored with MarshalJSON.
func UnmarshalWordLevel(data []byte) (*WordLevel, error) {
	var j wordLevelJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("tokenizer: malformed word-level tokenizer JSON: %w", err)
	}
	if j.Kind != "word-level" {
		return nil, fmt.Errorf("tokenizer: kind %q is not \"word-level\"", j.Kind)
	}
	return WordLevelFromVocabulary(j.Words, j.ContextLength)
}
