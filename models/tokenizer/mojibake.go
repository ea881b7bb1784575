package tokenizer

import (
	"regexp"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// This file is ftfy's fix_encoding (ftfy 6.3.1, default configuration): repair of mojibake, text that was
// encoded as UTF-8 and decoded with a single-byte code page. When the text looks bad (badness heuristic), it is
// re-encoded with the first of ftfy's single-byte codecs that can represent it and decoded as UTF-8 (or
// ftfy's "utf-8-variants", CESU-8 and Java's C0 80); on failure, inconsistent pieces of UTF-8 mojibake are
// fixed one by one, and finally Latin-1 C1 controls are read as Windows-1252. The character classes of the
// heuristic and of the UTF-8 detector below are ftfy's, written as code-point ranges.

// codec is one of ftfy's single-byte codecs: dec decodes each byte; enc inverts it.
type codec struct {
	name   string
	sloppy bool // ftfy's "sloppy-" codecs: undefined bytes decode as Latin-1, and 0x1A as U+FFFD.
	dec    [256]rune
	enc    map[rune]byte
}

// mojibakeCodecs are ftfy's CHARMAP_ENCODINGS, in the order it tries them.
var mojibakeCodecs = func() []*codec {
	type src struct {
		name   string
		cm     *charmap.Charmap
		sloppy bool
	}
	srcs := []src{
		{"latin-1", nil, false},
		{"sloppy-windows-1252", charmap.Windows1252, true},
		{"sloppy-windows-1251", charmap.Windows1251, true},
		{"sloppy-windows-1250", charmap.Windows1250, true},
		{"sloppy-windows-1253", charmap.Windows1253, true},
		{"sloppy-windows-1254", charmap.Windows1254, true},
		{"sloppy-windows-1257", charmap.Windows1257, true},
		{"iso-8859-2", charmap.ISO8859_2, false},
		{"macroman", charmap.Macintosh, false},
		{"cp437", charmap.CodePage437, false},
	}
	var out []*codec
	for _, s := range srcs {
		c := &codec{name: s.name, sloppy: s.sloppy, enc: make(map[rune]byte, 256)}
		for b := range 256 {
			r := rune(b)
			if s.cm != nil && b >= 0x80 {
				r = s.cm.DecodeByte(byte(b))
				// x/text leaves ISO 8859-2's C1 controls undefined, where Python maps them to themselves; the
				// sloppy codecs decode what Python's code pages leave undefined as Latin-1.
				if r == utf8.RuneError {
					r = rune(b)
				}
			}
			if s.sloppy && b == 0x1a {
				r = utf8.RuneError
			}
			c.dec[b] = r
		}
		for b := 255; b >= 0; b-- { // the lowest byte wins, as Python's charmap_build.
			c.enc[c.dec[b]] = byte(b)
		}
		out = append(out, c)
	}
	return out
}()

// possible is ftfy's possible_encoding: every character is ASCII other than U+001A, or is what one of bytes
// 0x80..0xFF or 0x1A decodes to.
func (c *codec) possible(s string) bool {
	for _, r := range s {
		if r < 0x80 && r != 0x1a {
			continue
		}
		b, ok := c.enc[r]
		if !ok || (b < 0x80 && b != 0x1a) {
			return false
		}
	}
	return true
}

func (c *codec) encode(s string) []byte {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r < 0x80 && !(c.sloppy && r == 0x1a) {
			out = append(out, byte(r))
		} else {
			out = append(out, c.enc[r])
		}
	}
	return out
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// Character categories of ftfy's badness heuristic.
const (
	mbCommon     = `\x{a0}\x{ad}\x{b4}\x{b7}\x{2013}-\x{2015}\x{2019}\x{2026}`
	mbC1         = `\x{80}-\x{9f}`
	mbBad        = `\x{a4}\x{a6}\x{a8}\x{aa}\x{ac}\x{af}\x{b8}\x{ba}\x{192}\x{2c6}-\x{2c7}\x{2d8}\x{2db}-\x{2dc}\x{2020}-\x{2021}\x{2030}\x{2310}\x{25ca}\x{fffd}`
	mbLaw        = `\x{a7}\x{b6}`
	mbCurrency   = `\x{a2}-\x{a3}\x{a5}\x{20a7}\x{20ac}`
	mbStartPunct = `\x{a1}\x{a9}\x{ab}\x{bf}\x{384}-\x{385}\x{2018}\x{201a}\x{201c}\x{201e}\x{2022}\x{2039}\x{f8ff}`
	mbEndPunct   = `\x{ae}\x{bb}\x{2dd}\x{201d}\x{203a}\x{2122}`
	mbNumeric    = `\x{b1}-\x{b3}\x{b5}\x{b9}\x{bc}-\x{be}\x{d7}\x{f7}\x{2044}\x{2116}\x{2202}\x{2206}\x{220f}\x{2211}\x{221a}\x{221e}\x{2229}\x{222b}\x{2248}\x{2260}-\x{2261}\x{2264}-\x{2265}`
	mbKaomoji    = `\x{b0}\x{d2}-\x{d6}\x{d9}-\x{dc}\x{f2}-\x{f6}\x{f8}-\x{fc}\x{14c}\x{150}\x{16a}\x{172}`
	mbUpperAcc   = `\x{c0}-\x{d1}\x{d8}\x{dc}-\x{dd}\x{100}\x{102}\x{104}\x{106}\x{10c}\x{10e}\x{110}\x{112}\x{116}\x{118}\x{11a}\x{11e}\x{122}\x{12a}\x{130}\x{136}\x{139}\x{13b}\x{13d}\x{141}\x{143}\x{145}\x{147}\x{152}\x{158}\x{15a}\x{15e}\x{160}\x{162}\x{164}\x{16e}\x{170}\x{178}-\x{179}\x{17b}\x{17d}\x{490}`
	mbLowerAcc   = `\x{df}-\x{f1}\x{fc}\x{101}\x{103}\x{105}\x{107}\x{10d}\x{10f}\x{111}\x{113}\x{117}\x{119}\x{11b}\x{11f}\x{123}\x{12b}\x{12f}\x{137}\x{13a}\x{13c}\x{13e}\x{142}\x{153}\x{155}\x{15b}\x{15f}\x{161}\x{165}\x{17a}\x{17c}\x{17e}\x{491}\x{fb01}-\x{fb02}`
	mbUpperCom   = `\x{de}\x{386}\x{388}-\x{38a}\x{38c}\x{38e}-\x{38f}\x{391}-\x{3ab}\x{401}-\x{42f}`
	mbLowerCom   = `\x{3ac}-\x{3c9}\x{430}-\x{45f}`
	mbBox        = `\x{2502}\x{250c}\x{2510}\x{2518}\x{251c}\x{2524}\x{252c}\x{253c}\x{2550}-\x{256c}\x{2580}\x{2584}\x{2588}\x{258c}\x{2590}-\x{2593}`

	// pySpace and pyWord are Python's \s and \w on str patterns.
	pySpace = `\t-\r\x{1c}-\x{20}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}`
	pyWord  = `\p{L}\p{N}_`
)

// badnessRE is ftfy's BADNESS_RE: unlikely juxtapositions of the characters that UTF-8 mojibake is made of.
var badnessRE = regexp.MustCompile(strings.NewReplacer(
	"{c1}", mbC1, "{bad}", mbBad, "{law}", mbLaw, "{currency}", mbCurrency, "{start}", mbStartPunct,
	"{end}", mbEndPunct, "{numeric}", mbNumeric, "{kaomoji}", mbKaomoji, "{ua}", mbUpperAcc,
	"{la}", mbLowerAcc, "{uc}", mbUpperCom, "{lc}", mbLowerCom, "{box}", mbBox, "{common}", mbCommon,
	"{s}", pySpace, "{w}", pyWord,
).Replace(strings.Join([]string{
	`[{c1}]`,
	`[{bad}{la}{ua}{box}{start}{end}{currency}{numeric}{law}][{bad}]`,
	`[a-zA-Z][{lc}{uc}][{bad}]`,
	`[{bad}][{la}{ua}{box}{start}{end}{currency}{numeric}{law}]`,
	`[{la}{lc}{box}{end}{currency}{numeric}][{ua}]`,
	`[{box}{end}{currency}{numeric}][{la}]`,
	`[{la}{box}{end}][{currency}]`,
	`[{s}][{ua}][{currency}]`,
	`[{ua}{box}][{numeric}{law}]`,
	`[{la}{ua}{box}{currency}{end}][{start}][{numeric}]`,
	`[{la}{ua}{currency}{numeric}{box}{law}][{end}][{start}]`,
	`[{currency}{numeric}{box}][{start}]`,
	`[a-z][{ua}][{start}{currency}]`,
	`[{box}][{kaomoji}]`,
	`[{la}{ua}{currency}{numeric}{start}{end}{law}][{box}]`,
	`[{box}][{end}]`,
	`[{la}{ua}][{start}{end}][{w}]`,
	`[Œœ][^A-Za-z]`,
	`[{ua}]°`,
	`[ÂÃÎÐ][€œŠš¢£Ÿž\x{a0}\x{ad}®©°·»{start}{end}–—´]`,
	`×[²³]`,
	`[ØÙ][{common}{currency}{bad}{numeric}{start}ŸŠ®°µ»][ØÙ][{common}{currency}{bad}{numeric}{start}ŸŠ®°µ»]`,
	`à[²µ¹¼½¾]`,
	`√[±∂†≠®™´≤≥¥µø]`,
	`≈[°¢]`,
	`‚Ä[ìîïòôúùû†°¢π]`,
	`‚[âó][àä°ê]`,
	`вЂ`,
	`[ВГРС][{c1}{bad}{start}{end}{currency}°µ][ВГРС]`,
	`ГўВЂВ.[A-Za-z ]`,
	`Ã[\x{a0}¡]`,
	`[a-z][{s}]?[ÃÂ] `,
	`^[ÃÂ] `,
	`[a-z.,?!{end}]Â[ {start}{end}]`,
	`β€[™\x{a0}Ά\x{ad}®°]`,
	`[ΒΓΞΟ][{c1}{bad}{start}{end}{currency}°][ΒΓΞΟ]`,
	`ā€`,
}, "|")))

// isBad is ftfy's is_bad: whether the badness heuristic finds anything.
func isBad(s string) bool { return mayBeBad(s) && badnessRE.MatchString(s) }

// mayBeBad is a quick necessary condition for isBad: every alternative of badnessRE needs a C1 control, one of
// Ã Â Œ œ, or two adjacent characters below U+2600 (or U+F8FF, U+FB01, U+FB02, U+FFFD) that are not ASCII.
func mayBeBad(s string) bool {
	prev := false
	for _, r := range s {
		switch {
		case r < 0x80:
			prev = false
		case isC1(r), r == 'Ã', r == 'Â', r == 'Œ', r == 'œ':
			return true
		default:
			cur := r < 0x2600 || r == 0xf8ff || r == 0xfb01 || r == 0xfb02 || r == 0xfffd
			if cur && prev {
				return true
			}
			prev = cur
		}
	}
	return false
}

// Classes of ftfy's UTF-8 detector: characters that a Latin-1-like code page gives for bytes that start
// 2-, 3- and 4-byte UTF-8 sequences, and for continuation bytes (the strict set leaves out spaces, dashes,
// quotes, bullets and ellipses).
const (
	utf8First2     = `\x{c2}-\x{df}\x{100}\x{102}\x{106}\x{10c}\x{10e}\x{110}\x{112}\x{116}\x{118}\x{11a}\x{11e}\x{122}\x{12a}\x{130}\x{136}\x{139}\x{13b}\x{141}\x{143}\x{145}\x{147}\x{14c}\x{150}\x{158}\x{15a}\x{15e}\x{160}\x{162}\x{16a}\x{16e}\x{170}\x{172}\x{179}\x{17b}\x{17d}\x{392}-\x{3a1}\x{3a3}-\x{3af}\x{412}-\x{42f}`
	utf8First3     = `\x{e0}-\x{ef}\x{101}\x{103}\x{105}\x{107}\x{10d}\x{10f}\x{113}\x{117}\x{119}\x{11b}\x{123}\x{12b}\x{12f}\x{137}\x{13a}\x{13c}\x{155}\x{17a}\x{3b0}-\x{3bf}\x{430}-\x{43f}`
	utf8First4     = `\x{f0}\x{f3}\x{111}\x{11f}\x{161}\x{3c0}\x{3c3}\x{440}\x{443}`
	utf8ContStrict = `\x{80}-\x{bf}\x{c6}\x{d8}\x{e6}\x{f8}\x{104}-\x{105}\x{13d}-\x{13e}\x{141}-\x{142}\x{152}-\x{153}\x{156}-\x{157}\x{15a}-\x{15b}\x{15e}-\x{161}\x{164}-\x{165}\x{178}-\x{17e}\x{192}\x{2c6}-\x{2c7}\x{2d8}\x{2db}-\x{2dd}\x{384}-\x{386}\x{388}-\x{38a}\x{38c}\x{38e}-\x{38f}\x{401}-\x{40c}\x{40e}-\x{40f}\x{451}-\x{45c}\x{45e}-\x{45f}\x{490}-\x{491}\x{2020}-\x{2021}\x{2030}\x{2039}-\x{203a}\x{20ac}\x{2116}\x{2122}`
	utf8Cont       = utf8ContStrict + `\x{20}\x{2013}-\x{2015}\x{2018}-\x{201a}\x{201c}-\x{201e}\x{2022}\x{2026}`
)

var (
	// utf8DetectorRE is ftfy's UTF8_DETECTOR_RE without its look-behind, which utf8Detections checks.
	utf8DetectorRE = regexp.MustCompile(`^(?:[` + utf8First2 + `][` + utf8Cont + `]|[` + utf8First3 + `][` +
		utf8Cont + `]{2}|[` + utf8First4 + `][` + utf8Cont + `]{3})+`)
	utf8ContStrictRE = regexp.MustCompile(`^[` + utf8ContStrict + `]$`)
	utf8FirstRE      = regexp.MustCompile(`^[` + utf8First2 + utf8First3 + utf8First4 + `]$`)
)

// utf8Detections returns the byte spans of UTF8_DETECTOR_RE's matches in s, leftmost first and not
// overlapping, as Python's re.sub visits them. A match may not follow a strict continuation character.
func utf8Detections(s string) [][2]int {
	var spans [][2]int
	prev := rune(-1)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r >= 0xc2 && (prev < 0 || !utf8ContStrictRE.MatchString(string(prev))) && utf8FirstRE.MatchString(s[i:i+n]) {
			if loc := utf8DetectorRE.FindStringIndex(s[i:]); loc != nil {
				spans = append(spans, [2]int{i, i + loc[1]})
				last, _ := utf8.DecodeLastRuneInString(s[:i+loc[1]])
				prev = last
				i += loc[1]
				continue
			}
		}
		prev = r
		i += n
	}
	return spans
}

// Patterns on encoded bytes; they run on the bytes spelled as Latin-1 characters (latin1String).
var (
	// alteredUTF8RE is ftfy's ALTERED_UTF8_RE: UTF-8 that would be valid had a 0xA0 byte not become a space.
	alteredUTF8RE = regexp.MustCompile(`[\x{c2}\x{c3}\x{c5}\x{ce}\x{d0}\x{d9}] ` +
		`|[\x{e2}\x{e3}] [\x{80}-\x{84}\x{86}-\x{9f}\x{a1}-\x{bf}]` +
		`|[\x{e0}-\x{e3}][\x{80}-\x{84}\x{86}-\x{9f}\x{a1}-\x{bf}] ` +
		`|\x{f0} [\x{80}-\x{bf}][\x{80}-\x{bf}]` +
		`|\x{f0}[\x{80}-\x{bf}] [\x{80}-\x{bf}]` +
		`|\x{f0}[\x{80}-\x{bf}][\x{80}-\x{bf}] `)
	// lossyUTF8RE is ftfy's LOSSY_UTF8_RE: UTF-8 sequences with bytes lost to 0x1A (a sloppy codec's U+FFFD)
	// or, once, to '?'.
	lossyUTF8RE = regexp.MustCompile(`[\x{c2}-\x{df}]\x{1a}` +
		`|[\x{c2}-\x{c3}][?]` +
		`|\x{ed}[\x{a0}-\x{af}][\x{1a}?]\x{ed}[\x{b0}-\x{bf}][\x{1a}?\x{80}-\x{bf}]` +
		`|\x{ed}[\x{a0}-\x{af}][\x{1a}?\x{80}-\x{bf}]\x{ed}[\x{b0}-\x{bf}][\x{1a}?]` +
		`|[\x{e0}-\x{ef}][\x{1a}?][\x{1a}\x{80}-\x{bf}]` +
		`|[\x{e0}-\x{ef}][\x{1a}\x{80}-\x{bf}][\x{1a}?]` +
		`|[\x{f0}-\x{f4}][\x{1a}?][\x{1a}\x{80}-\x{bf}][\x{1a}\x{80}-\x{bf}]` +
		`|[\x{f0}-\x{f4}][\x{1a}\x{80}-\x{bf}][\x{1a}?][\x{1a}\x{80}-\x{bf}]` +
		`|[\x{f0}-\x{f4}][\x{1a}\x{80}-\x{bf}][\x{1a}\x{80}-\x{bf}][\x{1a}?]` +
		`|\x{1a}`)
)

func latin1String(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

func latin1Bytes(s string) []byte {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		out = append(out, byte(r))
	}
	return out
}

// restoreByteA0 is ftfy's restore_byte_a0: "Ã " as a word of its own gets its 0xA0 back while keeping the
// space (except before Portuguese "às", "àquele", ...), then spaces inside alteredUTF8RE matches become 0xA0.
func restoreByteA0(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); i++ {
		if b[i] == 0xc3 && i+1 < len(b) && b[i+1] == ' ' {
			rest := b[i+2:]
			if !(len(rest) > 0 && rest[0] == ' ') && !hasAnyPrefix(rest, "quele", "quela", "quilo", "s ") {
				out = append(out, 0xc3, 0xa0, ' ')
				i++
				continue
			}
		}
		out = append(out, b[i])
	}
	s := alteredUTF8RE.ReplaceAllStringFunc(latin1String(out), func(m string) string {
		return strings.ReplaceAll(m, " ", "\u00a0")
	})
	return latin1Bytes(s)
}

func hasAnyPrefix(b []byte, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(string(b), p) {
			return true
		}
	}
	return false
}

// replaceLossySequences is ftfy's replace_lossy_sequences: lossyUTF8RE matches become the UTF-8 of U+FFFD.
func replaceLossySequences(b []byte) []byte {
	s := latin1String(b)
	if !lossyUTF8RE.MatchString(s) {
		return b
	}
	return latin1Bytes(lossyUTF8RE.ReplaceAllLiteralString(s, "\u00ef\u00bf\u00bd"))
}

// decodeUTF8Variants decodes b as ftfy's "utf-8-variants": UTF-8, plus C0 80 for U+0000 and CESU-8 surrogate
// pairs. Anything else invalid is an error, as in Python's strict decoder. ftfy finds these sequences with
// regular expressions whose `$` also matches before a final "\n", and that quirk is kept: a C0 before a final
// newline decodes, with it, to U+0000, and so does a CESU-8 pair whose last byte is a final newline.
func decodeUTF8Variants(b []byte) (string, bool) {
	atEnd := func(j int) bool { return j >= len(b) || j == len(b)-1 && b[j] == '\n' }
	var out strings.Builder
	start := 0
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == 0xc0 && (atEnd(i+1) || b[i+1] == 0x80):
		case b[i] == 0xed && (atEnd(i+1) || 0xa0 <= b[i+1] && b[i+1] <= 0xbf) &&
			(atEnd(i+2) || 0x80 <= b[i+2] && b[i+2] <= 0xbf):
		default:
			continue
		}
		if !utf8.Valid(b[start:i]) {
			return "", false
		}
		out.Write(b[start:i])
		if b[i] == 0xc0 {
			if i+1 == len(b) {
				return "", false
			}
			out.WriteByte(0)
			i++
		} else {
			if len(b)-i < 6 || !(b[i+1] <= 0xaf && b[i+3] == 0xed && 0xb0 <= b[i+4] && b[i+4] <= 0xbf &&
				(0x80 <= b[i+5] && b[i+5] <= 0xbf || i+5 == len(b)-1 && b[i+5] == '\n')) {
				return "", false
			}
			out.WriteRune(rune(b[i+1]&0x0f)<<16 + rune(b[i+2]&0x3f)<<10 + rune(b[i+4]&0x0f)<<6 +
				rune(b[i+5]&0x3f) + 0x10000)
			i += 5
		}
		start = i + 1
	}
	if !utf8.Valid(b[start:]) {
		return "", false
	}
	out.Write(b[start:])
	return out.String(), true
}

// fixEncoding is ftfy's fix_encoding: fixEncodingStep until nothing changes.
func fixEncoding(s string) string {
	if isASCII(s) {
		return s
	}
	for {
		fixed := fixEncodingStep(s)
		if fixed == s {
			return s
		}
		s = fixed
	}
}

// fixEncodingStep is one step of ftfy's fix_encoding.
func fixEncodingStep(s string) string {
	if s == "" || isASCII(s) || !isBad(s) {
		return s
	}
	latin1Possible := false
	for _, c := range mojibakeCodecs {
		if !c.possible(s) {
			continue
		}
		if c.name == "latin-1" {
			latin1Possible = true
		}
		b := c.encode(s)
		if c.name != "macroman" && alteredUTF8RE.MatchString(latin1String(b)) {
			b = restoreByteA0(b)
		}
		if c.sloppy {
			b = replaceLossySequences(b)
		}
		var fixed string
		var ok bool
		if strings.IndexByte(string(b), 0xed) >= 0 || strings.IndexByte(string(b), 0xc0) >= 0 {
			fixed, ok = decodeUTF8Variants(b)
		} else if ok = utf8.Valid(b); ok {
			fixed = string(b)
		}
		if ok {
			return fixed
		}
	}
	if spans := utf8Detections(s); len(spans) > 0 {
		if fixed := decodeInconsistentUTF8(s, spans); fixed != s {
			return fixed
		}
	}
	if latin1Possible {
		// ftfy re-reads the Latin-1 bytes as strict Windows-1252, which fails on its five undefined bytes.
		if !strings.ContainsFunc(s, func(r rune) bool {
			return r == 0x81 || r == 0x8d || r == 0x8f || r == 0x90 || r == 0x9d
		}) {
			if fixed := fixC1Controls(s); fixed != s {
				return fixed
			}
		}
	}
	return fixC1Controls(s)
}

// decodeInconsistentUTF8 is ftfy's decode_inconsistent_utf8: each detected piece that is shorter than s and
// looks bad is fixed on its own.
func decodeInconsistentUTF8(s string, spans [][2]int) string {
	n := utf8.RuneCountInString(s)
	var b strings.Builder
	last := 0
	for _, sp := range spans {
		sub := s[sp[0]:sp[1]]
		b.WriteString(s[last:sp[0]])
		if utf8.RuneCountInString(sub) < n && isBad(sub) {
			b.WriteString(fixEncoding(sub))
		} else {
			b.WriteString(sub)
		}
		last = sp[1]
	}
	b.WriteString(s[last:])
	return b.String()
}
