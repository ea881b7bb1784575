package tokenizer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unicode/utf8"
)

// CLIP's special tokens and sizes.
const (
	// StartOfText is the start token of CLIP's vocabulary.
	StartOfText = "<|startoftext|>"
	// EndOfText is the end token of CLIP's vocabulary, its highest id.
	EndOfText = "<|endoftext|>"
	// CLIPContextLength is the context length of OpenAI's CLIP models and of clip.tokenize.
	CLIPContextLength = 77
	// CLIPVocabSize is the vocabulary size built from bpe_simple_vocab_16e6.txt.gz: 256 byte tokens, the same
	// with "</w>", 48894 merges, the start and end tokens.
	CLIPVocabSize = 49408
	// CLIPMerges is the number of merges CLIP reads: lines 1 to 48894 of the merges file (line 0 is a header).
	CLIPMerges = 49152 - 256 - 2
)

// endOfWord marks the last symbol of a word.
const endOfWord = "</w>"

// maxCacheEntries bounds the BPE cache; it is emptied when full. Only pre-tokens of at most maxCachedToken bytes
// are cached (real words are shorter), so the cache holds a few tens of megabytes at most.
const (
	maxCacheEntries = 1 << 18
	maxCachedToken  = 64
)

// BPE is CLIP's byte-level byte-pair-encoding tokenizer, meant to give the ids of OpenAI's
// clip.tokenize(text, truncate=True) (clip/simple_tokenizer.py). It is safe for concurrent use.
//
// Text goes through the steps of SimpleTokenizer.encode: ftfy.fix_text (reimplemented in Go, see fixText: HTML
// unescaping with ftfy's "auto" rule, mojibake repair, C1 controls, Latin ligatures, full- and half-width forms,
// curly quotes, line breaks, terminal escapes, control characters, NFC, line by line until nothing changes),
// then HTML entities are unescaped twice as Python's html.unescape does, the text is stripped, runs of white
// space become one space, and it is lower-cased as Python's str.lower does. It is then split with CLIP's
// pattern (contractions, runs of letters, single digits, runs of other characters); each piece is UTF-8
// encoded, its bytes mapped to CLIP's 256 byte symbols, "</w>" appended to the last one, and merged by BPE in
// merge-rank order. Plain ASCII text without '&', CR, ESC or other control characters skips the ftfy step,
// which leaves such text unchanged.
//
// Only the first MaxCaptionBytes (4096) bytes of a caption are read, so that tokenising is bounded whatever the
// caption: BPE is O(n log n) in a word's length, but ftfy's fixes repeat until nothing changes (once per level
// of nested HTML entities, as in Python), which is quadratic. Captions up to that length get the ids of the
// Python tokenizer; see MaxCaptionBytes for longer ones.
//
// The ftfy step follows ftfy 6.3.1 with its default configuration and matched it on the test inputs and on
// 100k random strings rich in mojibake. Known differences from the Python tokenizer: Unicode tables (letters,
// digits, case mappings, NFC and NFKC for full-width forms) are those of Go and golang.org/x/text, which may be
// older or newer than the Python's, so characters that differ between Unicode versions may get other ids; Go
// strings cannot hold surrogate code points, so ftfy's fix_surrogates has nothing to do, and invalid UTF-8 is
// read as one U+FFFD per bad byte; ftfy's explanations and non-default options are not reproduced.
type BPE struct {
	tokens  []string         // id -> token
	ids     map[string]int32 // token -> id
	merges  map[uint64]merge // pair of symbol ids -> merge
	byteID  [256]int32       // id of each byte symbol inside a word
	finalID [256]int32       // id of each byte symbol with "</w>", ending a word
	start   int32
	end     int32
	context int

	mu    sync.RWMutex
	cache map[string][]int32
}

var _ Tokenizer = (*BPE)(nil)

type merge struct {
	rank int32 // lower merges first
	id   int32 // id of the merged symbol
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// byteSymbols returns CLIP's byte-to-unicode table (bytes_to_unicode): printable Latin-1 bytes map to
// themselves and the others to U+0100 onwards; order lists the bytes in vocabulary order (printable ones first).
func byteSymbols() (sym [256]rune, order [256]byte) {
	printable := func(b int) bool { return '!' <= b && b <= '~' || 0xa1 <= b && b <= 0xac || 0xae <= b && b <= 0xff }
	n, extra := 0, 0
	for b := 0; b < 256; b++ {
		if printable(b) {
			sym[b] = rune(b)
			order[n] = byte(b)
			n++
		}
	}
	for b := 0; b < 256; b++ {
		if !printable(b) {
			sym[b] = rune(256 + extra)
			extra++
			order[n] = byte(b)
			n++
		}
	}
	return sym, order
}

var byteSym, byteOrder = byteSymbols()

// byteOf inverts byteSym.
var byteOf = func() map[rune]byte {
	m := make(map[rune]byte, 256)
	for b, r := range byteSym {
		m[r] = byte(b)
	}
	return m
}()

// LoadFile loads CLIP's BPE tokenizer for contextLength tokens (0: CLIPContextLength) from either format: a
// path ending in ".json" is a HuggingFace vocab.json, whose merges.txt must lie beside it (LoadHuggingFaceVocab);
// anything else is OpenAI's bpe_simple_vocab_16e6.txt.gz, gzip-compressed or plain (LoadOpenAIVocab). Errors
// name the file.
func LoadFile(path string, contextLength int) (*BPE, error) {
	if strings.EqualFold(filepath.Ext(path), ".json") {
		return LoadHuggingFaceVocab(path, filepath.Join(filepath.Dir(path), "merges.txt"), contextLength)
	}
	return LoadOpenAIVocab(path, contextLength)
}

// LoadOpenAIVocab reads OpenAI's bpe_simple_vocab_16e6.txt.gz (gzip-compressed or plain) and builds the
// vocabulary as SimpleTokenizer does: the 256 byte symbols, the same with "</w>", the merges of lines 1 to
// CLIPMerges joined, StartOfText and EndOfText (49408 ids for the real file). contextLength 0 means
// CLIPContextLength. Errors name the file.
func LoadOpenAIVocab(path string, contextLength int) (*BPE, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: CLIP vocabulary: %w", err)
	}
	defer f.Close()
	t, err := readOpenAI(f, contextLength)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: CLIP vocabulary %s: %w", path, err)
	}
	return t, nil
}

// ReadOpenAIVocab is LoadOpenAIVocab reading from r.
func ReadOpenAIVocab(r io.Reader, contextLength int) (*BPE, error) {
	t, err := readOpenAI(r, contextLength)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: CLIP vocabulary: %w", err)
	}
	return t, nil
}

func readOpenAI(r io.Reader, contextLength int) (*BPE, error) {
	lines, err := readMergeLines(r)
	if err != nil {
		return nil, err
	}
	tokens := make([]string, 0, 512+len(lines)+2)
	for _, b := range byteOrder {
		tokens = append(tokens, string(byteSym[b]))
	}
	for _, b := range byteOrder {
		tokens = append(tokens, string(byteSym[b])+endOfWord)
	}
	for _, m := range lines {
		tokens = append(tokens, m.a+m.b)
	}
	tokens = append(tokens, StartOfText, EndOfText)
	ids := make(map[string]int32, len(tokens))
	for i, tok := range tokens {
		ids[tok] = int32(i) // a later duplicate wins, as in dict(zip(vocab, range(len(vocab)))).
	}
	return newBPE(tokens, ids, lines, contextLength)
}

// LoadHuggingFaceVocab reads a HuggingFace CLIPTokenizer's vocab.json (token -> id) and merges.txt (a
// "#version" header line, then one "left right" merge a line, at most CLIPMerges of which are used).
// contextLength 0 means CLIPContextLength. The ids must run from 0 to len-1, and EndOfText must be the highest.
// Errors name the file.
func LoadHuggingFaceVocab(vocabPath, mergesPath string, contextLength int) (*BPE, error) {
	vf, err := os.Open(vocabPath)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: CLIP vocabulary: %w", err)
	}
	defer vf.Close()
	mf, err := os.Open(mergesPath)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: CLIP merges: %w", err)
	}
	defer mf.Close()
	tokens, ids, err := readHFVocab(vf)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: CLIP vocabulary %s: %w", vocabPath, err)
	}
	lines, err := readMergeLines(mf)
	if err == nil {
		err = checkMerges(lines, ids)
	}
	if err != nil {
		return nil, fmt.Errorf("tokenizer: CLIP merges %s: %w", mergesPath, err)
	}
	t, err := newBPE(tokens, ids, lines, contextLength)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: CLIP vocabulary %s: %w", vocabPath, err)
	}
	return t, nil
}

// ReadHuggingFaceVocab is LoadHuggingFaceVocab reading vocab.json from vocab and merges.txt from merges.
func ReadHuggingFaceVocab(vocab, merges io.Reader, contextLength int) (*BPE, error) {
	tokens, ids, err := readHFVocab(vocab)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: CLIP vocab.json: %w", err)
	}
	lines, err := readMergeLines(merges)
	if err == nil {
		err = checkMerges(lines, ids)
	}
	if err != nil {
		return nil, fmt.Errorf("tokenizer: CLIP merges.txt: %w", err)
	}
	t, err := newBPE(tokens, ids, lines, contextLength)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: CLIP vocab.json: %w", err)
	}
	return t, nil
}

// readHFVocab reads a vocab.json of at most maxVocabJSON bytes.
func readHFVocab(r io.Reader) ([]string, map[string]int32, error) {
	var raw map[string]int64
	tooLarge := fmt.Errorf("more than %d bytes (not a vocab.json?)", maxVocabJSON)
	if err := json.NewDecoder(&limitedReader{r: r, n: maxVocabJSON, err: tooLarge}).Decode(&raw); err != nil {
		if errors.Is(err, tooLarge) {
			return nil, nil, tooLarge
		}
		return nil, nil, fmt.Errorf("not a JSON object of token ids: %w", err)
	}
	tokens := make([]string, len(raw))
	seen := make([]bool, len(raw))
	ids := make(map[string]int32, len(raw))
	for tok, id := range raw {
		if id < 0 || id >= int64(len(raw)) {
			return nil, nil, fmt.Errorf("token %q has id %d outside [0, %d)", tok, id, len(raw))
		}
		if seen[id] {
			return nil, nil, fmt.Errorf("id %d is used by %q and %q", id, tokens[id], tok)
		}
		seen[id] = true
		tokens[id] = tok
		ids[tok] = int32(id)
	}
	return tokens, ids, nil
}

// mergeLine is one merge: the two symbols it joins.
type mergeLine struct {
	a, b string
	line int // 1-based line number in the file
}

// readMergeLines reads a merges file, gzip-compressed or not, as SimpleTokenizer does: lines split on "\n",
// line 0 (the header) dropped, at most CLIPMerges kept. Each must hold two symbols; a blank line is only allowed
// at the end. A line longer than maxMergeLine bytes, or more than maxMergeBytes before the last merge, is an
// error.
func readMergeLines(r io.Reader) ([]mergeLine, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	what := "read error"
	var src io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("bad gzip data: %w", err)
		}
		defer zr.Close()
		src = zr
		what = "bad gzip data"
	}
	tooMuch := fmt.Errorf("more than %d bytes before merge %d (not a merges file?)", maxMergeBytes, CLIPMerges)
	br = bufio.NewReaderSize(&limitedReader{r: src, n: maxMergeBytes, err: tooMuch}, maxMergeLine)
	var lines []mergeLine
	blank := 0 // line number of a blank line met, to reject if more merges follow
	for n := 0; len(lines) < CLIPMerges; n++ {
		b, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			return nil, fmt.Errorf("line %d is longer than %d bytes (not a merges file?)", n+1, maxMergeLine)
		}
		if errors.Is(err, tooMuch) {
			return nil, fmt.Errorf("line %d: %w", n+1, tooMuch)
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("line %d: %s: %w", n+1, what, err)
		}
		// b is the reader's buffer: only the two symbols of a merge are copied out of it.
		if n > 0 {
			line := bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
			fields := bytes.Fields(line)
			switch {
			case len(fields) == 0:
				if blank == 0 {
					blank = n + 1
				}
			case blank != 0:
				return nil, fmt.Errorf("line %d is blank", blank)
			case len(fields) != 2 || !utf8.Valid(line):
				return nil, fmt.Errorf("line %d: %q is not a merge of two symbols", n+1, line)
			default:
				lines = append(lines, mergeLine{a: string(fields[0]), b: string(fields[1]), line: n + 1})
			}
		} else if !utf8.Valid(b) {
			return nil, errors.New("not UTF-8 text")
		}
		if err == io.EOF {
			break
		}
	}
	if len(lines) == 0 {
		return nil, errors.New("no merges")
	}
	return lines, nil
}

// checkMerges checks that every merge joins two tokens of the vocabulary into a third.
func checkMerges(lines []mergeLine, ids map[string]int32) error {
	for _, m := range lines {
		for _, tok := range [...]string{m.a, m.b, m.a + m.b} {
			if _, ok := ids[tok]; !ok {
				return fmt.Errorf("line %d: merge %q %q: %q is not in the vocabulary", m.line, m.a, m.b, tok)
			}
		}
	}
	return nil
}

func newBPE(tokens []string, ids map[string]int32, lines []mergeLine, contextLength int) (*BPE, error) {
	if contextLength == 0 {
		contextLength = CLIPContextLength
	}
	if contextLength < 2 {
		return nil, fmt.Errorf("context length %d leaves no room for start and end tokens", contextLength)
	}
	t := &BPE{tokens: tokens, ids: ids, merges: make(map[uint64]merge, len(lines)), context: contextLength,
		cache: map[string][]int32{}}
	var ok bool
	if t.start, ok = ids[StartOfText]; !ok {
		return nil, fmt.Errorf("no %s token", StartOfText)
	}
	if t.end, ok = ids[EndOfText]; !ok {
		return nil, fmt.Errorf("no %s token", EndOfText)
	}
	if int(t.end) != len(tokens)-1 {
		return nil, fmt.Errorf("%s has id %d, not the highest id %d", EndOfText, t.end, len(tokens)-1)
	}
	for b := range 256 {
		s := string(byteSym[b])
		if t.byteID[b], ok = ids[s]; !ok {
			return nil, fmt.Errorf("no token for byte %#02x (%q)", b, s)
		}
		if t.finalID[b], ok = ids[s+endOfWord]; !ok {
			return nil, fmt.Errorf("no token for byte %#02x ending a word (%q)", b, s+endOfWord)
		}
	}
	for rank, m := range lines {
		a, aok := ids[m.a]
		b, bok := ids[m.b]
		if !aok || !bok {
			return nil, fmt.Errorf("line %d: merge %q %q joins a symbol that is not in the vocabulary", m.line, m.a, m.b)
		}
		// A repeated pair takes its later rank, as in dict(zip(merges, range(len(merges)))).
		t.merges[pairKey(a, b)] = merge{rank: int32(rank), id: ids[m.a+m.b]}
	}
	return t, nil
}

// VocabSize implements Tokenizer: 49408 for OpenAI's vocabulary.
func (t *BPE) VocabSize() int { return len(t.tokens) }

// ContextLength implements Tokenizer.
func (t *BPE) ContextLength() int { return t.context }

// StartID is the id of StartOfText (49406 for OpenAI's vocabulary).
func (t *BPE) StartID() int32 { return t.start }

// EndID is the id of EndOfText, the highest id (49407 for OpenAI's vocabulary).
func (t *BPE) EndID() int32 { return t.end }

// Token returns the vocabulary entry of id ("</w>" marks a word end; bytes appear as CLIP's byte symbols), or
// "" when id is out of range.
func (t *BPE) Token(id int32) string {
	if id < 0 || int(id) >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// Encode implements Tokenizer like clip.tokenize(text, context_length, truncate=True): the start id, the BPE
// ids of text (of its first MaxCaptionBytes bytes), the end id and zero padding; when the ids do not fit, the
// first ContextLength-2 are kept and the end id is last.
func (t *BPE) Encode(text string) []int32 {
	out := make([]int32, t.context)
	out[0] = t.start
	n := 1
	limit := t.context - 1
	preTokenize(cleanText(cutCaption(text)), func(tok string) bool {
		n += copy(out[n:limit], t.bpe(tok))
		return n < limit
	})
	out[n] = t.end
	return out
}

// EncodeTokens returns the BPE ids of text without start, end, padding or truncation, like
// SimpleTokenizer.encode, for the first MaxCaptionBytes bytes of text. len(EncodeTokens(text)) >
// ContextLength()-2 tells that Encode truncates text.
func (t *BPE) EncodeTokens(text string) []int32 {
	var out []int32
	preTokenize(cleanText(cutCaption(text)), func(tok string) bool {
		out = append(out, t.bpe(tok)...)
		return true
	})
	return out
}

// Decode turns ids back into text, for debugging, like SimpleTokenizer.decode: tokens are joined, their byte
// symbols turned back into bytes (invalid UTF-8 becomes U+FFFD) and each "</w>" into a space. The start token is
// skipped and decoding stops at the first end token, so Encode's padding is ignored; ids out of range decode as
// U+FFFD. Trailing space is trimmed.
func (t *BPE) Decode(ids []int32) string {
	var buf []byte
	for _, id := range ids {
		if id == t.end {
			break
		}
		if id == t.start {
			continue
		}
		if id < 0 || int(id) >= len(t.tokens) {
			buf = append(buf, "\uFFFD"...)
			continue
		}
		for _, r := range t.tokens[id] {
			if b, ok := byteOf[r]; ok {
				buf = append(buf, b)
			} else {
				buf = utf8.AppendRune(buf, r)
			}
		}
	}
	buf = bytes.ReplaceAll(buf, []byte(endOfWord), []byte(" "))
	return strings.TrimRight(strings.ToValidUTF8(string(buf), "\uFFFD"), " ")
}

// bpe returns the ids of one pre-token, from the cache when it has been seen.
func (t *BPE) bpe(tok string) []int32 {
	t.mu.RLock()
	ids, ok := t.cache[tok]
	t.mu.RUnlock()
	if ok {
		return ids
	}
	ids = t.merge(tok)
	if len(tok) > maxCachedToken {
		return ids
	}
	t.mu.Lock()
	if len(t.cache) >= maxCacheEntries {
		clear(t.cache)
	}
	t.cache[tok] = ids
	t.mu.Unlock()
	return ids
}
