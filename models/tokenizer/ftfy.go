package tokenizer

import (
	"html"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// This file reimplements, in Go, what ftfy.fix_text(text) does with ftfy 6's default configuration (checked
// against ftfy 6.3.1, the release `pip install ftfy` gives, which OpenAI's basic_clean calls first). ftfy is
// Apache-2.0 software by Robyn Speer; this is an independent implementation of its documented behaviour, with
// expected outputs taken from running ftfy itself (see ftfy_test.go).
//
// The text is cut into segments after each "\n" (and every maxDecodeLength code points), and each segment is
// fixed on its own, repeating these steps until nothing changes:
//
//   - unescape_html: "&name;" HTML5 references, the upper-case forms of the all-lower-case ones ("&EACUTE;"),
//     and numeric references, only where they end in ";". "auto": once a segment contains "<", this and all
//     later segments are left escaped.
//   - fix_encoding: mojibake repair (see mojibake.go), then fix_c1_controls.
//   - fix_latin_ligatures, fix_character_width, uncurl_quotes, fix_line_breaks.
//   - fix_surrogates: nothing to do, Go strings hold no surrogate code points.
//   - remove_terminal_escapes, remove_control_chars, NFC normalisation.
//
// Invalid UTF-8 is first replaced by U+FFFD byte by byte, as ranging over the string would.

// maxDecodeLength is ftfy's default max_decode_length, in code points.
const maxDecodeLength = 1_000_000

// fixText is ftfy.fix_text(text) with the default configuration.
func fixText(text string) string {
	if ftfyInert(text) {
		return text
	}
	if !utf8.ValidString(text) {
		text = validUTF8(text)
	}
	var out strings.Builder
	out.Grow(len(text))
	unescape := true
	for pos := 0; pos < len(text); {
		end := strings.IndexByte(text[pos:], '\n')
		if end < 0 {
			end = len(text)
		} else {
			end += pos + 1
		}
		if end-pos > maxDecodeLength { // more bytes than the limit: count code points.
			n := 0
			for i := range text[pos:end] {
				if n == maxDecodeLength {
					end = pos + i
					break
				}
				n++
			}
		}
		seg := text[pos:end]
		if unescape && strings.IndexByte(seg, '<') >= 0 {
			unescape = false // as in fix_text, the choice sticks for the following segments.
		}
		out.WriteString(fixSegment(seg, unescape))
		pos = end
	}
	return out.String()
}

// ftfyInert reports whether ftfy leaves text alone for certain: printable ASCII, tab, newline and form feed,
// with no '&'. Such text needs no decoding, unescaping or normalisation.
func ftfyInert(text string) bool {
	for i := 0; i < len(text); i++ {
		c := text[i]
		if (c < 0x20 || c >= 0x7f || c == '&') && c != '\t' && c != '\n' && c != '\f' {
			return false
		}
	}
	return true
}

// validUTF8 replaces each byte of s that is not part of valid UTF-8 with U+FFFD.
func validUTF8(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.String()
}

// fixSegment is ftfy's fix_and_explain on one segment.
func fixSegment(s string, unescape bool) string {
	for {
		orig := s
		if unescape && strings.IndexByte(s, '&') >= 0 {
			s = ftfyUnescapeHTML(s)
		}
		s = fixEncoding(s)
		s = fixC1Controls(s)
		s = fixCharacters(s)
		s = removeTerminalEscapes(s)
		s = removeControlChars(s)
		if !norm.NFC.IsNormalString(s) {
			s = norm.NFC.String(s)
		}
		if s == orig {
			return s
		}
	}
}

// ftfyUnescapeHTML is ftfy's unescape_html: it replaces each match of `&#?[0-9A-Za-z]{1,24};` that is an
// HTML5 named reference (with its semicolon), the upper-case form of an all-lower-case one that Python's
// html.unescape would not decode, or a numeric reference that html.unescape decodes up to its semicolon.
func ftfyUnescapeHTML(s string) string {
	return replaceMatches(s, '&', func(s string, i int) (int, string, bool) {
		j := i + 1
		if j < len(s) && s[j] == '#' {
			j++
		}
		k := j
		for k < len(s) && k-j < 25 && isASCIIAlnum(s[k]) {
			k++
		}
		if k == j || k-j > 24 || k >= len(s) || s[k] != ';' {
			return 0, "", false
		}
		rep, ok := entityValue(s[i : k+1])
		return k + 1, rep, ok
	})
}

// replaceMatches scans s for the byte first; at each such index i, match reports whether a match starts there,
// where it ends (exclusive) and what replaces it. Matches do not overlap; s itself is returned when nothing
// matched.
func replaceMatches(s string, first byte, match func(s string, i int) (end int, rep string, ok bool)) string {
	if strings.IndexByte(s, first) < 0 {
		return s
	}
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); i++ {
		if s[i] != first {
			continue
		}
		end, rep, ok := match(s, i)
		if !ok {
			continue
		}
		b.WriteString(s[last:i])
		b.WriteString(rep)
		last, i = end, end-1
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func isASCIIAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// entityValue decodes ref, "&...;", as ftfy's unescape_html does, reporting whether it is replaced.
func entityValue(ref string) (string, bool) {
	if ref[1] == '#' {
		v := pythonUnescape(ref)
		if strings.IndexByte(v, ';') >= 0 { // html.unescape stopped before the semicolon.
			return "", false
		}
		return v, true
	}
	if v, ok := namedEntity(ref); ok {
		return v, true
	}
	name := ref[1 : len(ref)-1]
	lower := strings.ToLower(name)
	if lower == name || strings.ToUpper(lower) != name {
		return "", false
	}
	v, ok := namedEntity("&" + lower + ";")
	if !ok || html.UnescapeString(ref) != ref { // html.unescape would decode a prefix (&LTIMES; -> <IMES;).
		return "", false
	}
	return pythonUpper(v), true
}

// namedEntity looks ref ("&name;") up in the HTML5 named references that end in a semicolon. Go's html package
// has the same table; a full match is told from a decoded legacy prefix ("&notit;" -> "¬it;") by the semicolon
// being consumed.
func namedEntity(ref string) (string, bool) {
	switch ref { // two-character references missing from Go's table.
	case "&nGt;":
		return "\u226b\u20d2", true
	case "&nLt;":
		return "\u226a\u20d2", true
	}
	v := html.UnescapeString(ref)
	if v == ref || (strings.HasSuffix(v, ";") && ref != "&semi;") {
		return "", false
	}
	return v, true
}

// pythonUpper is Python's str.upper on the values of HTML references: simple upper-case mappings plus the
// SpecialCasing expansions those values need.
func pythonUpper(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case 'ß':
			b.WriteString("SS")
		case 'ŉ':
			b.WriteString("ʼN")
		case 'ﬀ':
			b.WriteString("FF")
		case 'ﬁ':
			b.WriteString("FI")
		case 'ﬂ':
			b.WriteString("FL")
		case 'ﬃ':
			b.WriteString("FFI")
		case 'ﬄ':
			b.WriteString("FFL")
		default:
			b.WriteRune(unicode.ToUpper(r))
		}
	}
	return b.String()
}

// fixC1Controls is ftfy's fix_c1_controls: C1 controls U+0080..U+009F become the Windows-1252 characters of
// those bytes; the five bytes that Windows-1252 leaves undefined stay as they are.
func fixC1Controls(s string) string {
	if !strings.ContainsFunc(s, isC1) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isC1(r) {
			return windows1252[r-0x80]
		}
		return r
	}, s)
}

func isC1(r rune) bool { return 0x80 <= r && r <= 0x9f }

// windows1252 is the Windows-1252 code page for bytes 0x80..0x9F, the five undefined bytes mapped to
// themselves as ftfy's "sloppy" codec does.
var windows1252 = [32]rune{
	'€', 0x81, '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', 0x8d, 'Ž', 0x8f,
	0x90, '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', 0x9d, 'ž', 'Ÿ',
}

// fixCharacters does, in order, fix_latin_ligatures, fix_character_width, uncurl_quotes and fix_line_breaks.
// Each maps characters to characters, so they are done in one pass, each step applied to what the previous one
// produced (ŉ -> ʼn -> 'n).
func fixCharacters(s string) string {
	i := 0
	for i < len(s) {
		if c := s[i]; c < utf8.RuneSelf {
			if c == '\r' {
				break
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if _, ok := charFix(r); ok {
			break
		}
		i += n
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		c := s[i]
		if c == '\r' {
			b.WriteByte('\n')
			if i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
			continue
		}
		if c < utf8.RuneSelf {
			b.WriteByte(c)
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if rep, ok := charFix(r); ok {
			b.WriteString(rep)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n - 1
	}
	return b.String()
}

// charFix returns what ligature, width, quote and line-break fixing make of r, if they change it.
func charFix(r rune) (string, bool) {
	if lig, ok := latinLigature(r); ok {
		return strings.Map(quoteFix, lig), true
	}
	if w, ok := widthFix(r); ok {
		return strings.Map(quoteFix, w), true
	}
	if q := quoteFix(r); q != r {
		return string(q), true
	}
	switch r {
	case 0x85, 0x2028, 0x2029:
		return "\n", true
	}
	return "", false
}

// latinLigature is fix_latin_ligatures: Latin typographic ligatures and the Dutch and Serbo-Croatian digraph
// letters, taken apart.
func latinLigature(r rune) (string, bool) {
	switch r {
	case 'Ĳ':
		return "IJ", true
	case 'ĳ':
		return "ij", true
	case 'ŉ':
		return "ʼn", true
	case 'Ǳ':
		return "DZ", true
	case 'ǲ':
		return "Dz", true
	case 'ǳ':
		return "dz", true
	case 'Ǆ':
		return "DŽ", true
	case 'ǅ':
		return "Dž", true
	case 'ǆ':
		return "dž", true
	case 'Ǉ':
		return "LJ", true
	case 'ǈ':
		return "Lj", true
	case 'ǉ':
		return "lj", true
	case 'Ǌ':
		return "NJ", true
	case 'ǋ':
		return "Nj", true
	case 'ǌ':
		return "nj", true
	case 'ﬀ':
		return "ff", true
	case 'ﬁ':
		return "fi", true
	case 'ﬂ':
		return "fl", true
	case 'ﬃ':
		return "ffi", true
	case 'ﬄ':
		return "ffl", true
	case 'ﬅ':
		return "ſt", true
	case 'ﬆ':
		return "st", true
	}
	return "", false
}

// widthFix is fix_character_width: U+3000 becomes a space, and the characters of the Halfwidth and Fullwidth
// Forms block (U+FF01..U+FFEF) become their NFKC form where that differs.
func widthFix(r rune) (string, bool) {
	if r == 0x3000 {
		return " ", true
	}
	if r < 0xff01 || r > 0xffef {
		return "", false
	}
	var buf [4]byte
	src := buf[:utf8.EncodeRune(buf[:], r)]
	if norm.NFKC.IsNormal(src) {
		return "", false
	}
	return string(norm.NFKC.Bytes(src)), true
}

// quoteFix is uncurl_quotes: ʼ and ‘ ’ ‚ ‛ become ', “ ” „ ‟ become ".
func quoteFix(r rune) rune {
	switch {
	case r == 0x2bc, 0x2018 <= r && r <= 0x201b:
		return '\''
	case 0x201c <= r && r <= 0x201f:
		return '"'
	}
	return r
}

// removeTerminalEscapes is remove_terminal_escapes: it deletes ESC '[' (digits or ';')* letter, where a digit
// is any Unicode decimal digit (Python's \d) and the letter is ASCII.
func removeTerminalEscapes(s string) string {
	return replaceMatches(s, 0x1b, func(s string, i int) (int, string, bool) {
		if i+1 >= len(s) || s[i+1] != '[' {
			return 0, "", false
		}
		j := i + 2
		for j < len(s) {
			r, n := utf8.DecodeRuneInString(s[j:])
			if r != ';' && !unicode.IsDigit(r) {
				break
			}
			j += n
		}
		if j < len(s) && ('a' <= s[j] && s[j] <= 'z' || 'A' <= s[j] && s[j] <= 'Z') {
			return j + 1, "", true
		}
		return 0, "", false
	})
}

// removeControlChars is remove_control_chars: it deletes U+0000..U+0008, U+000B, U+000E..U+001F, U+007F,
// U+206A..U+206F, U+FEFF and U+FFF9..U+FFFC.
func removeControlChars(s string) string {
	if !strings.ContainsFunc(s, isRemovedControl) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isRemovedControl(r) {
			return -1
		}
		return r
	}, s)
}

func isRemovedControl(r rune) bool {
	switch {
	case r < 0x20:
		return r <= 8 || r == 0xb || r >= 0xe
	case r < 0x7f:
		return false
	case r == 0x7f, 0x206a <= r && r <= 0x206f, r == 0xfeff, 0xfff9 <= r && r <= 0xfffc:
		return true
	}
	return false
}
