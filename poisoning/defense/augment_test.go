package defense

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/models/tokenizer"
)

func TestEDAKnownAnswers(t *testing.T) {
	syn := map[string][]string{"big": {"large"}, "large": {"big"}, "dog": {"puppy"}}
	cases := []struct {
		name    string
		e       EDA
		caption string
		check   func(got string) bool
		want    string
	}{
		{"synonym", EDA{Synonyms: syn, SynonymRate: 0.1}, "a big cat", eq("a large cat"), "a large cat"},
		{"synonym, every occurrence", EDA{Synonyms: syn, SynonymRate: 0.1}, "big big cat", eq("large large cat"), "large large cat"},
		{"no synonym to use", EDA{Synonyms: syn, SynonymRate: 0.5}, "a small cat", eq("a small cat"), "unchanged"},
		{"swap two words", EDA{Synonyms: syn, SwapRate: 0.1}, "red cat", eq("cat red"), "cat red"},
		{"delete all but one", EDA{Synonyms: syn, DeleteProb: 1}, "a red cat", func(s string) bool {
			return s == "a" || s == "red" || s == "cat"
		}, "one of the words"},
		{"insert a synonym", EDA{Synonyms: syn, InsertRate: 0.1}, "a dog", func(s string) bool {
			return s == "puppy a dog" || s == "a puppy dog" || s == "a dog puppy"
		}, "puppy inserted"},
		{"nothing enabled", EDA{Synonyms: syn}, "a big dog", eq("a big dog"), "unchanged"},
		{"punctuation and case", EDA{Synonyms: syn, SynonymRate: 0.1}, "A BIG, cat!", eq("a large cat"), "a large cat"},
	}
	for _, c := range cases {
		for seed := range uint64(20) {
			if got := c.e.Caption(c.caption, rand.New(rand.NewPCG(seed, 1))); !c.check(got) {
				t.Errorf("%s, seed %d: %q → %q, want %s", c.name, seed, c.caption, got, c.want)
				break
			}
		}
	}
}

func eq(want string) func(string) bool { return func(s string) bool { return s == want } }

// TestEDAOperationMix: with all four operations on, each is picked sometimes; the same generator state gives
// the same view; the input is not modified.
func TestEDAOperationMix(t *testing.T) {
	e := DefaultEDA()
	words := strings.Fields("a photo of a small dark dress on a black background")
	orig := slices.Clone(words)
	seen := map[string]bool{}
	for seed := range uint64(200) {
		a := e.Words(words, rand.New(rand.NewPCG(seed, 9)))
		b := e.Words(words, rand.New(rand.NewPCG(seed, 9)))
		if !slices.Equal(a, b) {
			t.Fatalf("seed %d: two views from the same generator state differ: %q vs %q", seed, a, b)
		}
		switch {
		case len(a) > len(words):
			seen["insert"] = true
		case len(a) < len(words):
			seen["delete"] = true
		case slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(words))) && !slices.Equal(a, words):
			seen["swap"] = true
		case !slices.Equal(a, words):
			seen["replace"] = true
		}
	}
	for _, op := range []string{"insert", "delete", "swap", "replace"} {
		if !seen[op] {
			t.Errorf("operation %s never happened in 200 views", op)
		}
	}
	if !slices.Equal(words, orig) {
		t.Error("Words modified its input")
	}
}

// TestTokenEDAMatchesCaption: on a word-level tokenizer, augmenting the token ids gives the ids of the
// augmented caption, for the same generator state.
func TestTokenEDAMatchesCaption(t *testing.T) {
	syn := map[string][]string{"big": {"large", "huge"}, "large": {"big", "huge"}, "huge": {"big", "large"},
		"dog": {"puppy"}, "puppy": {"dog"}}
	tok, err := tokenizer.NewWordLevel([]string{"a big large huge dog puppy on the red sofa"}, 12)
	if err != nil {
		t.Fatal(err)
	}
	e := EDA{Synonyms: syn, SynonymRate: 0.2, InsertRate: 0.2, SwapRate: 0.2, DeleteProb: 0.2}
	te, err := NewTokenEDA(e, tok)
	if err != nil {
		t.Fatal(err)
	}
	if te.Synonyms() != 5 {
		t.Errorf("%d words with synonyms, want 5", te.Synonyms())
	}
	for _, caption := range []string{"a big dog on the red sofa", "a puppy", "huge"} {
		ids := tok.Encode(caption)
		orig := slices.Clone(ids)
		for seed := range uint64(50) {
			got := te.Augment(ids, rand.New(rand.NewPCG(seed, 2)))
			want := tok.Encode(e.Caption(caption, rand.New(rand.NewPCG(seed, 2))))
			if !slices.Equal(got, want) {
				t.Fatalf("%q, seed %d: token view %v, caption view %v", caption, seed, got, want)
			}
		}
		if !slices.Equal(ids, orig) {
			t.Fatal("Augment modified its input")
		}
	}
	// Insertions into a full-length caption are truncated like the tokenizer truncates: the end token stays.
	full := tok.Encode("a big dog on the red sofa a big dog on the red sofa")
	ins, _ := NewTokenEDA(EDA{Synonyms: syn, InsertRate: 0.5}, tok)
	got := ins.Augment(full, rand.New(rand.NewPCG(1, 1)))
	if len(got) != 12 || got[11] != tok.EndID() || got[0] != tok.StartID() {
		t.Errorf("truncated view %v: want 12 ids from start to end", got)
	}
	// A sequence without the start token is returned as it is.
	if odd := []int32{5, 6, 7}; !slices.Equal(te.Augment(odd, rand.New(rand.NewPCG(1, 1))), odd) {
		t.Error("a sequence without start token was changed")
	}
}

// twoTokens is a tokenizer that encodes every word as two ids: not word-level.
type twoTokens struct{}

func (twoTokens) Encode(s string) []int32 {
	if s == "" {
		return []int32{9, 10, 0, 0, 0}
	}
	return []int32{9, 3, 4, 10, 0}
}
func (twoTokens) VocabSize() int       { return 11 }
func (twoTokens) ContextLength() int   { return 5 }
func (twoTokens) Vocabulary() []string { return []string{"dog"} }

func TestEDAErrors(t *testing.T) {
	tok, _ := tokenizer.NewWordLevel([]string{"a dog"}, 8)
	if _, err := NewTokenEDA(EDA{SynonymRate: 2}, tok); err == nil || !strings.Contains(err.Error(), "SynonymRate must be in [0, 1], got 2") {
		t.Errorf("bad rate: %v", err)
	}
	if _, err := NewTokenEDA(DefaultEDA(), twoTokens{}); err == nil || !strings.Contains(err.Error(), `"dog" encodes to`) {
		t.Errorf("not word-level: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("Words accepted a negative rate")
		}
	}()
	EDA{DeleteProb: -0.1}.Words([]string{"a"}, rand.New(rand.NewPCG(1, 1)))
}

func TestDefaultSynonyms(t *testing.T) {
	a := DefaultSynonyms()
	for w, ss := range a {
		for _, s := range ss {
			if s == w || !slices.Contains(a[s], w) {
				t.Errorf("synonym table not symmetric or reflexive: %q → %q", w, s)
			}
		}
	}
	a["photo"] = nil
	if len(DefaultSynonyms()["photo"]) == 0 {
		t.Error("DefaultSynonyms returned a shared map")
	}
}
