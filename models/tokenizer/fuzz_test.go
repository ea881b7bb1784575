package tokenizer

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/mmpoison/mmpoison/poisoning/fuzzcheck"
	"github.com/mmpoison/mmpoison/poisoning/testskip"
)

// syntheticMerges returns the lines of an OpenAI-style merges file over the letters a to e: n merges, each of
// two earlier symbols, then shuffled, so that some merged symbols rank before the merges that make their parts
// (as a crafted file may have them).
func syntheticMerges(seed uint64, n int) string {
	rng := rand.New(rand.NewPCG(seed, 7))
	pool := []string{"a", "b", "c", "d", "e"}
	final := []string{"a</w>", "b</w>", "c</w>", "d</w>", "e</w>"}
	var lines []string
	for range n {
		a := pool[rng.IntN(len(pool))]
		if rng.IntN(3) == 0 {
			b := final[rng.IntN(len(final))]
			lines = append(lines, a+" "+b)
			final = append(final, a+b)
		} else {
			b := pool[rng.IntN(len(pool))]
			lines = append(lines, a+" "+b)
			pool = append(pool, a+b)
		}
	}
	rng.Shuffle(len(lines), func(i, j int) { lines[i], lines[j] = lines[j], lines[i] })
	return "#version: 0.2\n" + strings.Join(lines, "\n") + "\n"
}

var (
	syntheticOnce sync.Once
	synthetic     []*BPE
)

// syntheticBPEs returns four tokenizers over syntheticMerges.
func syntheticBPEs(t testing.TB) []*BPE {
	syntheticOnce.Do(func() {
		for seed := range 4 {
			tok, err := ReadOpenAIVocab(strings.NewReader(syntheticMerges(uint64(seed), 40+60*seed)), 0)
			if err != nil {
				panic(err)
			}
			synthetic = append(synthetic, tok)
		}
	})
	return synthetic
}

// FuzzBPEMerge: the heap merge (O(n log n), used for long words) gives exactly the rescanning merge's symbols,
// on synthetic vocabularies with shuffled ranks and on OpenAI's when it is available.
func FuzzBPEMerge(f *testing.F) {
	f.Add([]byte("abcabcabcaaaabbbbeeeddcc"), uint8(0))
	f.Add([]byte("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), uint8(1))
	f.Add([]byte("pneumonoultramicroscopicsilicovolcanoconiosis"), uint8(4))
	f.Fuzz(func(t *testing.T, word []byte, which uint8) {
		if len(word) == 0 {
			return
		}
		var tok *BPE
		if which%5 == 4 {
			if _, err := openAIAvailable(); err != nil {
				return
			}
			tok = loadOpenAI(t)
		} else {
			tok = syntheticBPEs(t)[which%5]
			for i, b := range word {
				word[i] = 'a' + b%5
			}
		}
		symbols := func() []int32 {
			s := make([]int32, len(word))
			for i, b := range word {
				s[i] = tok.byteID[b]
			}
			s[len(s)-1] = tok.finalID[word[len(word)-1]]
			return s
		}
		if got, want := tok.mergeHeap(symbols()), tok.mergeScan(symbols()); !slices.Equal(got, want) {
			t.Fatalf("%q: heap merge %v, rescanning merge %v", word, got, want)
		}
	})
}

// FuzzEncode feeds arbitrary captions to the BPE tokenizer (ftfy, HTML unescaping, pre-tokenisation, BPE).
// Properties: no panic; exactly ContextLength ids, start first, end after the tokens, zeros after; ids in the
// vocabulary; Encode keeps the first tokens of EncodeTokens; at most 1 KiB allocated per byte of the caption
// read (so at most 4 MiB, whatever its length).
func FuzzEncode(f *testing.F) {
	for _, c := range clipCases {
		f.Add(c.text)
	}
	for _, c := range ftfyIDCases {
		f.Add(c.text)
	}
	f.Add("&" + strings.Repeat("amp;", 50) + "lt;")
	f.Add(strings.Repeat("é", 3000))
	f.Fuzz(func(t *testing.T, text string) {
		tok := syntheticBPEs(t)[0]
		if _, err := openAIAvailable(); err == nil {
			tok = loadOpenAI(t)
		}
		var ids, all []int32
		fuzzcheck.Within(t, "Encode and EncodeTokens", 2*1024*uint64(min(len(text), MaxCaptionBytes)), func() {
			ids, all = tok.Encode(text), tok.EncodeTokens(text)
		})
		ctx := tok.ContextLength()
		n := min(len(all), ctx-2)
		if len(ids) != ctx || ids[0] != tok.StartID() || ids[n+1] != tok.EndID() || !slices.Equal(ids[1:n+1], all[:n]) {
			t.Fatalf("Encode(%q) = %v; EncodeTokens %v", text, ids, all)
		}
		for _, id := range ids[n+2:] {
			if id != 0 {
				t.Fatalf("Encode(%q) = %v: not zero after the end", text, ids)
			}
		}
		for _, id := range all {
			if id < 0 || int(id) >= tok.VocabSize() {
				t.Fatalf("id %d outside the vocabulary of %d", id, tok.VocabSize())
			}
		}
	})
}

// openAIAvailable reports whether OpenAI's vocabulary file is there.
func openAIAvailable() (string, error) {
	return testskip.FindCLIPVocab(filepath.Join("..", "..", ".."))
}

// FuzzOpenAIVocab feeds arbitrary merges files (plain or gzip) to ReadOpenAIVocab. Properties: no panic; the
// reading bound (16 MiB read, lines of 4 KiB) holds, whatever the input; a tokenizer read has 512 byte tokens,
// its merges, start and end, and encodes text.
func FuzzOpenAIVocab(f *testing.F) {
	f.Add([]byte(syntheticMerges(1, 50)))
	f.Add(gzipped(f, syntheticMerges(2, 30)))
	f.Add([]byte("#version: 0.2\n" + strings.Join(tinyMerges, "\n")))
	f.Add([]byte("#version\na b\n\nc d\n"))
	f.Add(gzipped(f, strings.Repeat("x", 1<<16)))
	f.Fuzz(func(t *testing.T, data []byte) {
		var tok *BPE
		var err error
		fuzzcheck.Within(t, "ReadOpenAIVocab", 64*uint64(len(data))+8*maxMergeLine, func() {
			tok, err = ReadOpenAIVocab(bytes.NewReader(data), 0)
		})
		if err != nil {
			if !strings.Contains(err.Error(), "CLIP vocabulary") {
				t.Fatalf("error %q does not say what was read", err)
			}
			return
		}
		if tok.VocabSize() < 512+2 || tok.EndID() != int32(tok.VocabSize()-1) {
			t.Fatalf("vocabulary of %d, end %d", tok.VocabSize(), tok.EndID())
		}
		_ = tok.Encode("a photo of a cat, abcde &amp; ée")
	})
}

// FuzzHuggingFaceVocab feeds arbitrary vocab.json and merges.txt to ReadHuggingFaceVocab: no panic; errors name
// the file they concern; a tokenizer read encodes text with ids in its vocabulary.
func FuzzHuggingFaceVocab(f *testing.F) {
	tiny, err := ReadOpenAIVocab(strings.NewReader("#version: 0.2\n"+strings.Join(tinyMerges, "\n")), 0)
	if err != nil {
		f.Fatal(err)
	}
	vocab := map[string]int{}
	for id := range tiny.VocabSize() {
		vocab[tiny.Token(int32(id))] = id
	}
	data, _ := json.Marshal(vocab)
	f.Add(data, []byte("#version: 0.2\n"+strings.Join(tinyMerges, "\n")+"\n"))
	f.Add([]byte(`{"a": 0, "<|endoftext|>": 1}`), []byte("#v\na b\n"))
	f.Add([]byte(`{"a": 5}`), []byte(""))
	f.Fuzz(func(t *testing.T, vocabJSON, merges []byte) {
		tok, err := ReadHuggingFaceVocab(bytes.NewReader(vocabJSON), bytes.NewReader(merges), 0)
		if err != nil {
			if !strings.Contains(err.Error(), "vocab.json") && !strings.Contains(err.Error(), "merges.txt") {
				t.Fatalf("error %q names neither file", err)
			}
			return
		}
		for _, id := range tok.EncodeTokens("hello, world &amp; ünïcode") {
			if id < 0 || int(id) >= tok.VocabSize() {
				t.Fatalf("id %d outside the vocabulary of %d", id, tok.VocabSize())
			}
		}
	})
}

// encodeUncut is Encode without the cut at MaxCaptionBytes: the reference for captions that the cut must not
// change.
func encodeUncut(t *BPE, text string) []int32 {
	out := make([]int32, t.context)
	out[0] = t.start
	n := 1
	limit := t.context - 1
	preTokenize(cleanText(text), func(tok string) bool {
		n += copy(out[n:limit], t.bpe(tok))
		return n < limit
	})
	out[n] = t.end
	return out
}

// TestCaptionCut: captions up to MaxCaptionBytes are read whole; longer captions of real text (the test cases'
// captions, with their mojibake, entities, emoji and CJK, joined into one line of 4 to 40 kB) get the ids they get
// uncut; the cut never splits a character.
func TestCaptionCut(t *testing.T) {
	tok := loadOpenAI(t)
	var texts []string
	for _, c := range clipCases {
		texts = append(texts, c.text)
	}
	for _, c := range ftfyIDCases {
		if !strings.ContainsAny(c.text, "\n\r\u2028\u2029") {
			texts = append(texts, c.text)
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := range 60 {
		var b strings.Builder
		for b.Len() < MaxCaptionBytes*(1+trial%10) {
			b.WriteString(texts[rng.IntN(len(texts))])
			b.WriteString(" ")
		}
		text := b.String()
		if got, want := tok.Encode(text), encodeUncut(tok, text); !slices.Equal(got, want) {
			t.Fatalf("a caption of %d bytes: cut %v, uncut %v", len(text), got, want)
		}
	}
	for _, n := range []int{MaxCaptionBytes - 1, MaxCaptionBytes, MaxCaptionBytes + 1, MaxCaptionBytes + 2} {
		text := strings.Repeat("x", n-4) + "😀" // a 4-byte character across the limit
		cut := cutCaption(text)
		if !utf8.ValidString(cut) || len(cut) > MaxCaptionBytes || len(text) <= MaxCaptionBytes && cut != text {
			t.Errorf("cutCaption of %d bytes: %d bytes, valid %v", n, len(cut), utf8.ValidString(cut))
		}
	}
}

// TestHostileVocabularies: a gzip bomb without a newline, a long line, a vocab.json beyond its bound and a merges
// file padded beyond its bound are refused with one clear error, in memory far below their size.
func TestHostileVocabularies(t *testing.T) {
	bomb := gzipped(t, strings.Repeat("a", 100<<20)) // 100 MiB of 'a', no newline, about 100 KB
	longLine := "#version\na " + strings.Repeat("b", 5000) + "\n"
	hugeVocab := `{"a": 0, "pad": "` + strings.Repeat("x", 20<<20) + `"}`
	manyBytes := gzipped(t, "#version\n"+strings.Repeat("a b"+strings.Repeat(" ", 4000)+"\n", 5000))
	tests := []struct {
		name  string
		read  func() error
		want  string
		bound uint64
	}{
		{"gzip bomb without a newline", func() error { _, err := ReadOpenAIVocab(bytes.NewReader(bomb), 0); return err },
			"line 1 is longer than 4096 bytes", 1 << 20},
		{"a line of 5000 bytes", func() error { _, err := ReadOpenAIVocab(strings.NewReader(longLine), 0); return err },
			"line 2 is longer than 4096 bytes", 1 << 20},
		{"20 MB of padded merges", func() error { _, err := ReadOpenAIVocab(bytes.NewReader(manyBytes), 0); return err },
			"more than 16777216 bytes before merge", 4 << 20},
		{"vocab.json of 20 MB", func() error {
			_, err := ReadHuggingFaceVocab(strings.NewReader(hugeVocab), strings.NewReader("#v\n"), 0)
			return err
		}, "vocab.json: more than 16777216 bytes", 5 * maxVocabJSON},
	}
	for _, tc := range tests {
		var err error
		fuzzcheck.PeakWithin(t, tc.name, tc.bound, func() { err = tc.read() })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}
