package tokenizer

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/testskip"
)

var (
	openAIOnce sync.Once
	openAITok  *BPE
	openAIErr  error
)

// openAIVocab is OpenAI's bpe_simple_vocab_16e6.txt.gz: $MMPOISON_CLIP_VOCAB, or the copy in the shared/ folder
// beside the repository (never inside it). Tests that need it skip, visibly, when it is absent.
func openAIVocab(t testing.TB) string {
	t.Helper()
	return testskip.CLIPVocab(t, filepath.Join("..", "..", ".."))
}

func loadOpenAI(t testing.TB) *BPE {
	t.Helper()
	vocab := openAIVocab(t)
	openAIOnce.Do(func() { openAITok, openAIErr = LoadOpenAIVocab(vocab, 0) })
	if openAIErr != nil {
		t.Fatal(openAIErr)
	}
	return openAITok
}

// clipCases hold the ids of OpenAI's tokenizer (without start, end and padding). The first three are the
// well-known ids of CLIP's README-style prompts; the vocabulary entries behind them are checked in
// TestCLIPVocabularyEntries. All were produced by SimpleTokenizer.encode (less ftfy, which leaves these texts
// unchanged) on the same vocabulary file.
var clipCases = []struct {
	name, text string
	want       []int32
}{
	{"diagram", "a diagram", []int32{320, 22697}},
	{"dog", "a dog", []int32{320, 1929}},
	{"cat", "a photo of a cat", []int32{320, 1125, 539, 320, 2368}},
	{"upper case", "A PHOTO OF A CAT", []int32{320, 1125, 539, 320, 2368}},
	{"punctuation", "Hello, World!!!", []int32{3306, 267, 1002, 995}},
	{"punctuation run", "e-mail: foo@bar.com", []int32{324, 268, 2614, 281, 23435, 287, 2411, 269, 2464}},
	{"contraction don't", "don't", []int32{847, 713}},
	{"contraction it's", "it's", []int32{585, 568}},
	{"contractions", "They'll've we'd I'm you're", []int32{889, 1342, 1200, 649, 1896, 328, 880, 592, 982}},
	{"digits one by one", "2024", []int32{273, 271, 273, 275}},
	{"decimal", "3.14", []int32{274, 269, 272, 275}},
	{"accent", "café", []int32{15304}},
	{"diaeresis", "naïve", []int32{1097, 35689, 563}},
	{"CJK", "日本", []int32{39121, 19277, 361}},
	{"emoji", "emoji 😀", []int32{16327, 7334}},
	{"greek final sigma", "ΟΔΥΣΣΕΥΣ", []int32{138, 123, 138, 112, 139, 227, 139, 225, 139, 225, 138, 113, 139, 227, 139, 480}},
	{"dotted capital I", "İ", []int32{328, 16384}},
	{"HTML entity unescaped twice", "&amp;amp;", []int32{261}},
	{"HTML entity", "&lt;3", []int32{283, 274}},
	{"white space", "  tab\tand\nnewline  ", []int32{14724, 537, 1218, 1148}},
	{"long word", "pneumonoultramicroscopicsilicovolcanoconiosis",
		[]int32{28714, 749, 20253, 9800, 535, 532, 1065, 901, 1556, 13697, 9916, 78, 39031, 13903}},
	{"special tokens in text", "<|startoftext|>hi<|endoftext|>", []int32{49406, 1883, 49407}},
	{"empty", "", nil},
	{"only spaces", " \t\n ", nil},
}

func TestCLIPKnownIDs(t *testing.T) {
	tok := loadOpenAI(t)
	if tok.VocabSize() != CLIPVocabSize || tok.StartID() != 49406 || tok.EndID() != 49407 || tok.ContextLength() != 77 {
		t.Fatalf("vocab %d, start %d, end %d, context %d; want 49408, 49406, 49407, 77",
			tok.VocabSize(), tok.StartID(), tok.EndID(), tok.ContextLength())
	}
	for _, c := range clipCases {
		t.Run(c.name, func(t *testing.T) {
			want := make([]int32, CLIPContextLength)
			want[0] = 49406
			copy(want[1:], c.want)
			want[len(c.want)+1] = 49407
			if got := tok.Encode(c.text); !slices.Equal(got, want) {
				t.Errorf("Encode(%q) =\n%v, want\n%v", c.text, got, want)
			}
			if got := tok.EncodeTokens(c.text); !slices.Equal(got, c.want) {
				t.Errorf("EncodeTokens(%q) = %v, want %v", c.text, got, c.want)
			}
		})
	}
}

// TestCLIPVocabularyEntries checks ids against the merges file itself: id 512+k is the k-th merge (1-based
// line k of the file), ids 0-511 are byte symbols.
func TestCLIPVocabularyEntries(t *testing.T) {
	tok := loadOpenAI(t)
	for id, want := range map[int32]string{
		0: "!", 64: "a", 256: "!</w>", 320: "a</w>", 512: "in", 539: "of</w>", 713: "'t</w>", 847: "don</w>",
		1125: "photo</w>", 1929: "dog</w>", 2368: "cat</w>", 15304: "cafÃ©</w>", 22697: "diagram</w>",
		49406: StartOfText, 49407: EndOfText, 49408: "", -1: "",
	} {
		if got := tok.Token(id); got != want {
			t.Errorf("Token(%d) = %q, want %q", id, got, want)
		}
	}
}

func TestCLIPTruncation(t *testing.T) {
	tok := loadOpenAI(t)
	text := strings.Repeat("a ", 100)
	if n := len(tok.EncodeTokens(text)); n != 100 {
		t.Fatalf("EncodeTokens gave %d ids, want 100", n)
	}
	got := tok.Encode(text)
	want := slices.Repeat([]int32{320}, 77)
	want[0], want[76] = 49406, 49407
	if !slices.Equal(got, want) {
		t.Errorf("Encode(100 words) = %v, want %v", got, want)
	}
	// 75 tokens fit; a 76th is cut, and the end id takes position 76 either way.
	for n, want := range map[int]int32{75: 1929, 76: 320} {
		got := tok.Encode(strings.Repeat("a ", n-1) + "dog")
		if got[75] != want || got[76] != 49407 {
			t.Errorf("%d words: ids[75:] = %v, want [%d 49407]", n, got[75:], want)
		}
	}
	short, err := LoadOpenAIVocab(openAIVocab(t), 5)
	if err != nil {
		t.Fatal(err)
	}
	if got := short.Encode("a photo of a cat"); !slices.Equal(got, []int32{49406, 320, 1125, 539, 49407}) {
		t.Errorf("context 5: %v", got)
	}
	if got := short.Encode("a"); !slices.Equal(got, []int32{49406, 320, 49407, 0, 0}) {
		t.Errorf("context 5, padding: %v", got)
	}
}

func TestCLIPDecode(t *testing.T) {
	tok := loadOpenAI(t)
	for text, want := range map[string]string{
		"A photo of a CAT.":       "a photo of a cat .",
		"don't":                   "don 't",
		"naïve café 日本":           "naïve café 日本",
		"&amp;amp; 3.14":          "& 3 . 1 4",
		"":                        "",
		strings.Repeat("x ", 100): strings.TrimSpace(strings.Repeat("x ", 75)),
	} {
		if got := tok.Decode(tok.Encode(text)); got != want {
			t.Errorf("Decode(Encode(%q)) = %q, want %q", text, got, want)
		}
	}
	if got := tok.Decode([]int32{320, 99999, -3}); got != "a \uFFFD\uFFFD" {
		t.Errorf("Decode of bad ids = %q", got)
	}
}

// writeHuggingFace writes tok's vocabulary as HuggingFace's vocab.json and merges.txt.
func writeHuggingFace(t *testing.T, dir string, tok *BPE, merges []string) (vocabPath, mergesPath string) {
	t.Helper()
	vocab := make(map[string]int, tok.VocabSize())
	for id := range tok.VocabSize() {
		vocab[tok.Token(int32(id))] = id
	}
	data, err := json.Marshal(vocab)
	if err != nil {
		t.Fatal(err)
	}
	vocabPath, mergesPath = filepath.Join(dir, "vocab.json"), filepath.Join(dir, "merges.txt")
	if err := os.WriteFile(vocabPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mergesPath, []byte("#version: 0.2\n"+strings.Join(merges, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return vocabPath, mergesPath
}

func TestCLIPHuggingFaceMatchesOpenAI(t *testing.T) {
	tok := loadOpenAI(t)
	f, err := os.Open(openAIVocab(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var merges []string
	for i, line := range strings.SplitN(string(readAll(t, zr)), "\n", CLIPMerges+2) {
		if i >= 1 && i <= CLIPMerges {
			merges = append(merges, line)
		}
	}
	vocabPath, mergesPath := writeHuggingFace(t, t.TempDir(), tok, merges)
	hf, err := LoadHuggingFaceVocab(vocabPath, mergesPath, 0)
	if err != nil {
		t.Fatal(err)
	}
	if hf.VocabSize() != tok.VocabSize() || hf.StartID() != tok.StartID() || hf.EndID() != tok.EndID() {
		t.Fatalf("HuggingFace vocabulary: size %d, start %d, end %d", hf.VocabSize(), hf.StartID(), hf.EndID())
	}
	for _, c := range clipCases {
		if got, want := hf.Encode(c.text), tok.Encode(c.text); !slices.Equal(got, want) {
			t.Errorf("%q: HuggingFace %v, OpenAI %v", c.text, got, want)
		}
	}
}

func readAll(t *testing.T, r interface{ Read([]byte) (int, error) }) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := b.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// tinyMerges make "hello</w>" one token: h e, l l, l o</w>, he ll, hell o</w> get ids 512-516.
var tinyMerges = []string{"h e", "l l", "l o</w>", "he ll", "hell o</w>"}

func TestCLIPTinyVocabulary(t *testing.T) {
	dir := t.TempDir()
	plain := "#version: 0.2\n" + strings.Join(tinyMerges, "\n") + "\n"
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(plain))
	zw.Close()
	plainPath, gzPath := filepath.Join(dir, "tiny.txt"), filepath.Join(dir, "tiny.txt.gz")
	os.WriteFile(plainPath, []byte(plain), 0o644)
	os.WriteFile(gzPath, gz.Bytes(), 0o644)

	// LoadFile tells the formats apart: OpenAI's, gzip or plain, and HuggingFace's vocab.json with merges.txt.
	tok, err := LoadFile(gzPath, 8)
	if err != nil {
		t.Fatal(err)
	}
	fromPlain, err := LoadFile(plainPath, 8)
	if err != nil {
		t.Fatal(err)
	}
	vocabPath, _ := writeHuggingFace(t, dir, tok, tinyMerges)
	upper := filepath.Join(dir, "VOCAB.JSON")
	if err := os.Rename(vocabPath, upper); err != nil {
		t.Fatal(err)
	}
	hf, err := LoadFile(upper, 8)
	if err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() != 519 || tok.StartID() != 517 || tok.EndID() != 518 {
		t.Fatalf("vocab %d, start %d, end %d; want 519, 517, 518", tok.VocabSize(), tok.StartID(), tok.EndID())
	}
	// Byte 'l' is the 76th printable byte (id 75, 331 with "</w>"); ',' is 11/267, '!' 0/256.
	cases := []struct {
		text string
		want []int32
	}{
		{"hello", []int32{517, 516, 518, 0, 0, 0, 0, 0}},
		{"Hello, hello!", []int32{517, 516, 267, 516, 256, 518, 0, 0}},
		{"hell", []int32{517, 512, 75, 331, 518, 0, 0, 0}},
		{"helo", []int32{517, 512, 514, 518, 0, 0, 0, 0}},
		{"hello hello hello hello hello hello hello", []int32{517, 516, 516, 516, 516, 516, 516, 518}},
		{"", []int32{517, 518, 0, 0, 0, 0, 0, 0}},
	}
	for _, c := range cases {
		for name, tk := range map[string]*BPE{"gzip": tok, "plain": fromPlain, "HuggingFace": hf} {
			if got := tk.Encode(c.text); !slices.Equal(got, c.want) {
				t.Errorf("%s: Encode(%q) = %v, want %v", name, c.text, got, c.want)
			}
		}
	}
	// Random text: all three loaders agree.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		text := randomText(rng, 30)
		if a, b, c := tok.Encode(text), fromPlain.Encode(text), hf.Encode(text); !slices.Equal(a, b) || !slices.Equal(a, c) {
			t.Errorf("%q: gzip %v, plain %v, HuggingFace %v", text, a, b, c)
		}
	}
}

func TestCLIPBadFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tiny, err := ReadOpenAIVocab(strings.NewReader("#version: 0.2\n"+strings.Join(tinyMerges, "\n")), 0)
	if err != nil {
		t.Fatal(err)
	}
	goodVocab, goodMerges := writeHuggingFace(t, t.TempDir(), tiny, tinyMerges)
	noEnd := map[string]int{}
	for id := range tiny.VocabSize() - 1 {
		noEnd[tiny.Token(int32(id))] = id
	}
	noEndJSON, _ := json.Marshal(noEnd)

	missing := filepath.Join(dir, "missing.txt.gz")
	corruptGzip := write("corrupt.txt.gz", "\x1f\x8b\x08\x00garbage")
	truncated := write("truncated.txt.gz", string(gzipped(t, "#version: 0.2\n"+strings.Join(tinyMerges, "\n"))[:30]))
	threeFields := write("three.txt", "#version: 0.2\nh e\nl l x\n")
	unknownPart := write("unknown.txt", "#version: 0.2\nhe ll\n")
	empty := write("empty.txt", "")
	badJSON := write("bad.json", "{not json")
	badIDs := write("ids.json", `{"a": 0, "b": 0}`)
	noEndPath := write("noend.json", string(noEndJSON))
	badMerges := write("badmerges.txt", "#version: 0.2\nh e\nq z\n")
	goodVocabJSON, err := os.ReadFile(goodVocab)
	if err != nil {
		t.Fatal(err)
	}
	alone := write("vocab.json", string(goodVocabJSON)) // No merges.txt in dir.

	for _, c := range []struct {
		name string
		load func() (*BPE, error)
		want []string // substrings of the error
	}{
		{"missing", func() (*BPE, error) { return LoadOpenAIVocab(missing, 0) }, []string{missing}},
		{"corrupt gzip", func() (*BPE, error) { return LoadOpenAIVocab(corruptGzip, 0) }, []string{corruptGzip, "gzip"}},
		{"truncated gzip", func() (*BPE, error) { return LoadOpenAIVocab(truncated, 0) }, []string{truncated}},
		{"three fields", func() (*BPE, error) { return LoadOpenAIVocab(threeFields, 0) }, []string{threeFields, "line 3"}},
		{"unknown part", func() (*BPE, error) { return LoadOpenAIVocab(unknownPart, 0) }, []string{unknownPart, "line 2"}},
		{"empty", func() (*BPE, error) { return LoadOpenAIVocab(empty, 0) }, []string{empty, "no merges"}},
		{"context", func() (*BPE, error) { return LoadOpenAIVocab(goodMerges, 1) }, []string{"context length 1"}},
		{"HF missing vocab", func() (*BPE, error) { return LoadHuggingFaceVocab(missing, goodMerges, 0) }, []string{missing}},
		{"HF missing merges", func() (*BPE, error) { return LoadHuggingFaceVocab(goodVocab, missing, 0) }, []string{missing}},
		{"HF bad JSON", func() (*BPE, error) { return LoadHuggingFaceVocab(badJSON, goodMerges, 0) }, []string{badJSON}},
		{"HF duplicate id", func() (*BPE, error) { return LoadHuggingFaceVocab(badIDs, goodMerges, 0) }, []string{badIDs, "id 0"}},
		{"HF no end token", func() (*BPE, error) { return LoadHuggingFaceVocab(noEndPath, goodMerges, 0) }, []string{noEndPath, EndOfText}},
		{"HF bad merge", func() (*BPE, error) { return LoadHuggingFaceVocab(goodVocab, badMerges, 0) }, []string{badMerges, "line 3", `"qz"`}},
		{"LoadFile, OpenAI", func() (*BPE, error) { return LoadFile(threeFields, 0) }, []string{threeFields, "line 3"}},
		{"LoadFile, vocab.json without merges.txt", func() (*BPE, error) { return LoadFile(alone, 0) },
			[]string{filepath.Join(filepath.Dir(alone), "merges.txt")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tok, err := c.load()
			if err == nil {
				t.Fatalf("no error; vocab %d", tok.VocabSize())
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func gzipped(t testing.TB, s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return b.Bytes()
}

func TestCLIPCleanText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"  A\t\n B  ", "a b"},
		{"&amp;amp;", "&"},
		{"&amp;amp;amp;", "&"}, // ftfy unescapes until nothing changes, then CLIP twice more.
		{"w&#9)x &#1;y &#x;z &#128;", "w )x y &#x;z €"},
		{"\x1cx\x1c", "x"},
		{"x\x1cy", "xy"}, // ftfy's remove_control_chars
		{"ΟΔΥΣΣΕΥΣ ΣΑΣ. Σ", "οδυσσευς σας. σ"},
		{"İstanbul", "i\u0307stanbul"},
		{"\u00a0nbsp\u2003em\u3000", "nbsp em"},
	} {
		if got := cleanText(c.in); got != c.want {
			t.Errorf("cleanText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// clipPattern is CLIP's pre-tokenisation pattern in Go syntax; preTokenize must split as it does (U+0345 aside,
// which Python's IGNORECASE matching skips and Go's keeps).
var clipPattern = regexp.MustCompile(`(?i)<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`)

func randomText(rng *rand.Rand, n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEZ0123456789 ,.'!?-&;#éüßçΣσЖ日本😀\t\nſİ<|>²½"
	pieces := []string{"'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "<|startoftext|>", "<|endoftext|>", "hello", "&amp;"}
	runes := []rune(alphabet)
	var b strings.Builder
	for range rng.IntN(n + 1) {
		if rng.IntN(8) == 0 {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		} else {
			b.WriteRune(runes[rng.IntN(len(runes))])
		}
	}
	return b.String()
}

func TestCLIPPreTokenizeMatchesPattern(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		text := cleanText(randomText(rng, 40))
		var got []string
		preTokenize(text, func(tok string) bool { got = append(got, tok); return true })
		if want := clipPattern.FindAllString(text, -1); !slices.Equal(got, want) {
			t.Fatalf("preTokenize(%q) = %q, pattern gives %q", text, got, want)
		}
	}
	var got []string
	preTokenize("a\u0345b ,\u0345.", func(tok string) bool { got = append(got, tok); return true })
	if want := []string{"a", "b", ",", "."}; !slices.Equal(got, want) {
		t.Errorf("U+0345 is not skipped: %q", got)
	}
}

func TestCLIPConcurrent(t *testing.T) {
	tok, err := ReadOpenAIVocab(strings.NewReader("#version: 0.2\n"+strings.Join(tinyMerges, "\n")), 0)
	if err != nil {
		t.Fatal(err)
	}
	texts := make([]string, 200)
	want := make([][]int32, len(texts))
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range texts {
		texts[i] = randomText(rng, 30)
	}
	fresh, _ := ReadOpenAIVocab(strings.NewReader("#version: 0.2\n"+strings.Join(tinyMerges, "\n")), 0)
	for i, s := range texts {
		want[i] = fresh.Encode(s)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range texts {
				j := (i + g*50) % len(texts)
				if got := tok.Encode(texts[j]); !slices.Equal(got, want[j]) {
					t.Errorf("%q: %v, want %v", texts[j], got, want[j])
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkCLIPEncode100k(b *testing.B) {
	tok := loadOpenAI(b)
	subjects := []string{"dog", "cat", "sneaker", "bag", "red car", "mountain lake", "bowl of ramen", "tabby kitten"}
	places := []string{"on a beach", "in the snow", "at night", "in a studio", "on a wooden table", "in Paris"}
	captions := make([]string, 100_000)
	for i := range captions {
		captions[i] = fmt.Sprintf("A photo of a %s %s, number %d. It's great!", subjects[i%len(subjects)],
			places[(i/len(subjects))%len(places)], i)
	}
	b.ReportAllocs()
	for b.Loop() {
		EncodeAll(tok, captions)
	}
}
