package tokenizer

import (
	"slices"
	"strings"
	"testing"
)

// The expected values below were produced by running the real ftfy 6.3.1 (ftfy.fix_text with its default
// configuration) and OpenAI's clip/simple_tokenizer.py (SimpleTokenizer().encode, which calls ftfy) on the same
// inputs, outside this repository.

// ftfyCases: input, ftfy.fix_text(input).
var ftfyCases = []struct{ name, in, want string }{
	{"right single quote", "It’s great", "It's great"},
	{"left right single", "‘hi’", "'hi'"},
	{"double curly", "“quoted”", "\"quoted\""},
	{"modifier apostrophe", "ʼx ‛y‟", "'x 'y\""},
	{"fi fl ligatures", "ﬁne ﬂour ﬃ ﬄ ﬅ ﬆ", "fine flour ffi ffl ſt st"},
	{"digraphs", "Ĳssel ǆ Ǉ ŉ", "IJssel dž LJ 'n"},
	{"full-width", "ＬＯＵＤ\u3000ＮＯＩＳＥＳ １２３！", "LOUD NOISES 123!"},
	{"half-width katakana", "Ｕﾀｰﾝ ｶﾞ", "Uターン ガ"},
	{"decomposed accent", "cafe\u0301 nai\u0308ve", "café naïve"},
	{"control chars", "a\x01b\x0bc\x1fd\x7fe\u206af\ufeffg￼h", "abcdefgh"},
	{"kept whitespace controls", "a\tb\x0cc\n", "a\tb\x0cc\n"},
	{"ansi escapes", "\x1b[36;44mblue\x1b[0m text", "blue text"},
	{"ansi with arabic digit", "\x1b[١mx", "x"},
	{"lone escape", "\x1bx \x1b[z", "x "},
	{"triple escaping", "&amp;amp;amp;", "&"},
	{"entity numeric", "it&#x2019;s &#8220;ok&#8221;", "it's \"ok\""},
	{"upper-case entity", "P&EACUTE;REZ BUNDESSTRA&SZLIG;E &nTILDE;", "PÉREZ BUNDESSTRASSE &nTILDE;"},
	{"entity without semicolon", "this&not that &amp", "this&not that &amp"},
	{"html stays escaped after <", "&lt;b&gt; <i>&amp;</i>\n&amp;", "&lt;b&gt; <i>&amp;</i>\n&amp;"},
	{"html auto per line", "&amp;\n&lt;\n<", "&\n<\n<"},
	{"crlf", "one\r\ntwo\rthree\u2028four\u2029five", "one\ntwo\nthree\nfour\nfive"},
	{"c1 controls", "\u0080 \u0085 \u0093x\u0094 \u0081", "€ … \"x\" \u0081"},
	{"mojibake cafe", "cafÃ©", "café"},
	{"mojibake quotes", "â€œmojibakeâ€\u009d", "\"mojibake\""},
	{"mojibake apostrophe", "itâ€™s", "it's"},
	{"mojibake nbsp", "voilÃ  le travail", "voilà le travail"},
	{"a grave word", "Ã la mode", "à la mode"},
	{"double mojibake", "Ã¢â‚¬â„¢", "'"},
	{"mojibake emoji", "ðŸ˜€ smile", "😀 smile"},
	{"mojibake lossy", "â€œ like this â€�", "\" like this �"},
	{"mojibake cyrillic", "Ð¿Ñ€Ð¸Ð²ÐµÑ‚", "привет"},
	{"inconsistent utf8", "Ã©tÃ© and é", "été and é"},
	{"mojibake windows-1251", "РґРѕР±СЂРѕ", "РґРѕР±СЂРѕ"},
	{"mojibake cesu-8", "Ã\u00adÂ\u00a0Â½Ã\u00adÂ²Â©", "💩"},
	{"kaomoji", "(ง'\u0300-'\u0301)ง ¯\\_(ツ)_/¯", "(ง'\u0300-'\u0301)ง ¯\\_(ツ)_/¯"},
	{"ftfy docs", "&macr;\\_(ã\u0083\u0084)_/&macr;", "¯\\_(ツ)_/¯"},
	{"leave alone", "naïve café", "naïve café"},
	{"leave alone greek", "ΟΔΥΣΣΕΥΣ", "ΟΔΥΣΣΕΥΣ"},
	{"emoji", "😀👍🏽 🇫🇷", "😀👍🏽 🇫🇷"},
	{"cjk", "日本語のテキスト 中文", "日本語のテキスト 中文"},
	{"sign at end", "100 £ and 5 €", "100 £ and 5 €"},
	{"ascii", "A photo of a dog.", "A photo of a dog."},
}

func TestFixTextMatchesFtfy(t *testing.T) {
	for _, c := range ftfyCases {
		if got := fixText(c.in); got != c.want {
			t.Errorf("%s: fixText(%+q) = %+q, want %+q", c.name, c.in, got, c.want)
		}
	}
}

func TestFixTextASCIIFastPath(t *testing.T) {
	for _, s := range []string{"", "A photo of a dog.", "tab\tnew\nline\fform", "<b>x</b> it's ~ {}|"} {
		if !ftfyInert(s) || fixText(s) != s {
			t.Errorf("%q should pass through untouched", s)
		}
	}
	for _, s := range []string{"a&amp;b", "a\rb", "a\x1b[0mb", "a\x01b", "café"} {
		if ftfyInert(s) {
			t.Errorf("%q needs fixing but takes the fast path", s)
		}
	}
	if n := testing.AllocsPerRun(100, func() { fixText("A photo of a dog on a beach, number 12. It's great!") }); n != 0 {
		t.Errorf("fixText allocates %v times on plain ASCII", n)
	}
}

func TestFixTextInvalidUTF8(t *testing.T) {
	if got := fixText("a\xffb\xc3"); got != "a\ufffdb\ufffd" {
		t.Errorf("fixText of invalid UTF-8 = %+q", got)
	}
}

func TestFixTextLongLine(t *testing.T) {
	// Segments are cut every 1,000,000 code points when there is no line break; each is fixed on its own.
	s := strings.Repeat("é", maxDecodeLength-1) + "Ã©"
	want := strings.Repeat("é", maxDecodeLength-1) + "Ã©"
	if got := fixText(s); got != want {
		t.Errorf("mojibake split across segments was fixed")
	}
	if got := fixText("cafÃ©\n" + s[:10]); got != "café\n"+s[:10] {
		t.Errorf("got %+q", got)
	}
}

// ftfyIDCases: input, SimpleTokenizer().encode(input) (no start and end tokens).
var ftfyIDCases = []struct {
	name, text string
	want       []int32
}{
	{"right single quote", "It’s great", []int32{585, 568, 830}},
	{"left right single", "‘hi’", []int32{262, 1883, 262}},
	{"double curly", "“quoted”", []int32{257, 27706, 257}},
	{"modifier apostrophe", "ʼx ‛y‟", []int32{262, 343, 262, 344, 257}},
	{"fi fl ligatures", "ﬁne ﬂour ﬃ ﬄ ﬅ ﬆ", []int32{3797, 18592, 1021, 328, 39490, 129, 123, 339, 545}},
	{"digraphs", "Ĳssel ǆ Ǉ ŉ", []int32{7337, 19373, 67, 129, 378, 32273, 262, 333}},
	{"full-width", "ＬＯＵＤ\u3000ＮＯＩＳＥＳ １２３！", []int32{7464, 31575, 272, 273, 274, 256}},
	{"half-width katakana", "Ｕﾀｰﾝ ｶﾞ", []int32{84, 34941, 18584, 367, 3909, 361}},
	{"decomposed accent", "cafe\u0301 nai\u0308ve", []int32{15304, 1097, 35689, 563}},
	{"control chars", "a\x01b\x0bc\x1fd\x7fe\u206af\ufeffg￼h", []int32{13137, 2044, 790}},
	{"kept whitespace controls", "a\tb\x0cc\n", []int32{320, 321, 322}},
	{"ansi escapes", "\x1b[36;44mblue\x1b[0m text", []int32{1746, 4160}},
	{"ansi with arabic digit", "\x1b[١mx", []int32{343}},
	{"lone escape", "\x1bx \x1b[z", []int32{343}},
	{"triple escaping", "&amp;amp;amp;", []int32{261}},
	{"entity numeric", "it&#x2019;s &#8220;ok&#8221;", []int32{585, 568, 257, 2481, 257}},
	{"upper-case entity", "P&EACUTE;REZ BUNDESSTRA&SZLIG;E &nTILDE;", []int32{43167, 15192, 2591, 6797, 1894, 8938, 261, 77, 6124, 654, 282}},
	{"entity without semicolon", "this&not that &amp", []int32{589, 126, 361, 682, 261}},
	{"html stays escaped after <", "&lt;b&gt; <i>&amp;</i>\n&amp;", []int32{283, 321, 285, 283, 328, 29, 5, 34308, 328, 285, 261}},
	{"html auto per line", "&amp;\n&lt;\n<", []int32{261, 283, 283}},
	{"crlf", "one\r\ntwo\rthree\u2028four\u2029five", []int32{637, 1237, 2097, 2721, 3127}},
	{"c1 controls", "\u0080 \u0085 \u0093x\u0094 \u0081", []int32{6309, 959, 257, 343, 257, 126, 479}},
	{"mojibake cafe", "cafÃ©", []int32{15304}},
	{"mojibake quotes", "â€œmojibakeâ€\u009d", []int32{257, 617, 3252, 11878, 257}},
	{"mojibake apostrophe", "itâ€™s", []int32{585, 568}},
	{"mojibake nbsp", "voilÃ  le travail", []int32{947, 543, 21259, 579, 752, 21189}},
	{"a grave word", "Ã la mode", []int32{21259, 1210, 6493}},
	{"double mojibake", "Ã¢â‚¬â„¢", []int32{262}},
	{"mojibake emoji", "ðŸ˜€ smile", []int32{7334, 3490}},
	{"mojibake lossy", "â€œ like this â€�", []int32{257, 789, 589, 39802}},
	{"mojibake cyrillic", "Ð¿Ñ€Ð¸Ð²ÐµÑ‚", []int32{26302, 16370, 29503, 110, 22176, 141, 480}},
	{"inconsistent utf8", "Ã©tÃ© and é", []int32{3459, 39694, 537, 4166}},
	{"mojibake windows-1251", "РґРѕР±СЂРѕ", []int32{16370, 142, 239, 16370, 141, 243, 141, 478, 126, 365, 23669, 141, 240, 16370, 141, 499}},
	{"mojibake cesu-8", "Ã\u00adÂ\u00a0Â½Ã\u00adÂ²Â©", []int32{28847}},
	{"kaomoji", "(ง'\u0300-'\u0301)ง ¯\\_(ツ)_/¯", []int32{263, 33382, 6, 136, 222, 12, 6, 136, 223, 264, 33382, 45115, 32173, 45781}},
	{"ftfy docs", "&macr;\\_(ã\u0083\u0084)_/&macr;", []int32{45115, 32173, 45781}},
	{"leave alone", "naïve café", []int32{1097, 35689, 563, 15304}},
	{"leave alone greek", "ΟΔΥΣΣΕΥΣ", []int32{138, 123, 138, 112, 139, 227, 139, 225, 139, 225, 138, 113, 139, 227, 139, 480}},
	{"emoji", "😀👍🏽 🇫🇷", []int32{12832, 43722, 16223}},
	{"cjk", "日本語のテキスト 中文", []int32{39121, 44353, 34002, 252, 21575, 2429, 228, 47121, 32421, 486, 19759, 255, 29032, 485}},
	{"sign at end", "100 £ and 5 €", []int32{272, 271, 271, 1950, 537, 276, 6309}},
	{"ascii", "A photo of a dog.", []int32{320, 1125, 539, 320, 1929, 269}},
}

func TestCLIPMatchesOpenAIWithFtfy(t *testing.T) {
	tok := loadOpenAI(t)
	for _, c := range ftfyIDCases {
		if got := tok.EncodeTokens(c.text); !slices.Equal(got, c.want) {
			t.Errorf("%s: EncodeTokens(%+q) = %v, want %v", c.name, c.text, got, c.want)
		}
	}
}

func BenchmarkFixTextNonASCII(b *testing.B) {
	texts := []string{"A photo of a café in Paris, it’s “great”", "naïve ﬁsh ＡＢＣ", "cafÃ© itâ€™s", "日本語のテキスト 😀"}
	for b.Loop() {
		for _, s := range texts {
			fixText(s)
		}
	}
}
