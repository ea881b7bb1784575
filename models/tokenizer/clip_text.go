package tokenizer

import (
	"html"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file holds the text side of the CLIP tokenizer: cleaning and pre-tokenisation, written to behave like
// basic_clean (ftfy.fix_text, see ftfy.go and mojibake.go, then html.unescape twice), whitespace_clean,
// str.lower and the pattern of OpenAI's clip/simple_tokenizer.py (Python `regex` module, IGNORECASE) on the
// same input (see the BPE documentation for what may still differ).

// cleanText does what SimpleTokenizer.encode does before pre-tokenising: ftfy.fix_text (fixText), HTML-unescape
// twice (html.UnescapeString, corrected to match Python's html.unescape), strip, collapse runs of white space
// into one space, strip again, lower-case.
func cleanText(text string) string {
	text = fixText(text)
	if strings.IndexByte(text, '&') >= 0 {
		text = pythonUnescape(pythonUnescape(text))
	}
	// Python's str.strip also strips U+001C..U+001F (str.isspace), which the `regex` module's \s (Unicode
	// White_Space, the same set as unicode.IsSpace) does not match, so those four are only removed at the ends.
	text = strings.TrimFunc(text, pythonIsSpace)
	var b strings.Builder
	b.Grow(len(text))
	space, ascii := false, true
	for _, r := range text {
		if unicode.IsSpace(r) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		if r < utf8.RuneSelf {
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
			}
			b.WriteByte(byte(r))
		} else {
			ascii = false
			b.WriteRune(r)
		}
	}
	if ascii {
		return b.String()
	}
	return pythonLower(b.String())
}

// pythonUnescape is Python's html.unescape. Named references go to html.UnescapeString, which agrees with it;
// numeric ones are decoded here, because html.UnescapeString differs on some ("&#9" without a semicolon is left
// alone, "&#x;" becomes U+FFFD, long numbers overflow) and keeps references to the code points that HTML
// forbids (controls, noncharacters), which Python drops.
func pythonUnescape(s string) string {
	if !strings.Contains(s, "&#") {
		return html.UnescapeString(s)
	}
	var b strings.Builder
	last := 0
	for i := 0; i+2 < len(s); i++ {
		if s[i] != '&' || s[i+1] != '#' {
			continue
		}
		j, num := i+2, rune(0)
		base, digits := rune(10), 0
		if s[j] == 'x' || s[j] == 'X' {
			base = 16
			j++
		}
		for ; j < len(s); j++ {
			d := hexDigit(s[j])
			if d < 0 || d >= base {
				break
			}
			if num = num*base + d; num > unicode.MaxRune {
				num = unicode.MaxRune + 1
			}
			digits++
		}
		b.WriteString(html.UnescapeString(s[last:i]))
		if digits == 0 { // not a reference: keep "&#" (and the x) as text.
			b.WriteString(s[i:j])
			last = j
			i = j - 1
			continue
		}
		if j < len(s) && s[j] == ';' {
			j++
		}
		switch {
		case num == 0, num > unicode.MaxRune, 0xd800 <= num && num <= 0xdfff:
			b.WriteRune(utf8.RuneError)
		case 0x80 <= num && num <= 0x9f: // Windows-1252, the same table in both languages.
			b.WriteString(html.UnescapeString("&#" + strconv.Itoa(int(num)) + ";"))
		case 0x1 <= num && num <= 0x8, num == 0xb, 0xe <= num && num <= 0x1f, num == 0x7f,
			0xfdd0 <= num && num <= 0xfdef, num&0xfffe == 0xfffe:
			// dropped
		default:
			b.WriteRune(num)
		}
		last = j
		i = j - 1
	}
	b.WriteString(html.UnescapeString(s[last:]))
	return b.String()
}

func hexDigit(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return rune(c-'A') + 10
	}
	return -1
}

// pythonIsSpace is Python's str.isspace for one character: Unicode white space plus U+001C..U+001F.
func pythonIsSpace(r rune) bool { return unicode.IsSpace(r) || (0x1c <= r && r <= 0x1f) }

// pythonLower is Python's str.lower: the simple lower-case mapping, except that U+0130 (İ) becomes "i̇" and a
// capital sigma at the end of a word becomes the final form ς (Unicode's Final_Sigma rule, as CPython applies it).
func pythonLower(s string) string {
	if !strings.ContainsRune(s, 'İ') && !strings.ContainsRune(s, 'Σ') {
		return strings.ToLower(s)
	}
	var b strings.Builder
	b.Grow(len(s) + 4)
	for i, r := range s {
		switch r {
		case 'İ':
			b.WriteString("i\u0307")
		case 'Σ':
			if finalSigma(s, i) {
				b.WriteRune('ς')
			} else {
				b.WriteRune('σ')
			}
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// finalSigma reports whether the capital sigma at byte offset i of s is word-final in CPython's sense: after
// skipping case-ignorable characters, a cased character precedes it and none follows it.
func finalSigma(s string, i int) bool {
	before := s[:i]
	for len(before) > 0 {
		r, n := utf8.DecodeLastRuneInString(before)
		before = before[:len(before)-n]
		if !caseIgnorable(r) {
			if !cased(r) {
				return false
			}
			for _, r := range s[i+len("Σ"):] {
				if !caseIgnorable(r) {
					return !cased(r)
				}
			}
			return true
		}
	}
	return false
}

// cased is Unicode's Cased property.
func cased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) ||
		unicode.Is(unicode.Other_Lowercase, r) || unicode.Is(unicode.Other_Uppercase, r)
}

// caseIgnorable is Unicode's Case_Ignorable property: categories Mn, Me, Cf, Lm, Sk and the word-break classes
// MidLetter, MidNumLet and Single_Quote.
func caseIgnorable(r rune) bool {
	switch r {
	case '\'', '.', ':', 0xb7, 0x387, 0x55f, 0x5f4, 0x2018, 0x2019, 0x2024, 0x2027, 0xfe13, 0xfe52, 0xfe55,
		0xff07, 0xff0e, 0xff1a:
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}

// ypogegrammeni (U+0345, a combining mark) is the one character that CLIP's pattern, compiled with IGNORECASE,
// matches with no alternative: it case-folds to ι, so `[^\s\p{L}\p{N}]` rejects it, yet it is no letter itself.
// findall therefore skips it, like white space.
const ypogegrammeni = '\u0345'

// preTokenize splits cleaned text as CLIP's pattern does:
//
//	<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//
// with leftmost-first alternation, calling emit with each match in order. It stops early when emit returns
// false.
func preTokenize(text string, emit func(token string) bool) {
	for i := 0; i < len(text); {
		if text[i] == '<' {
			if strings.HasPrefix(text[i:], StartOfText) {
				if !emit(text[i : i+len(StartOfText)]) {
					return
				}
				i += len(StartOfText)
				continue
			}
			if strings.HasPrefix(text[i:], EndOfText) {
				if !emit(text[i : i+len(EndOfText)]) {
					return
				}
				i += len(EndOfText)
				continue
			}
		}
		if text[i] == '\'' {
			if n := contraction(text[i+1:]); n > 0 {
				if !emit(text[i : i+1+n]) {
					return
				}
				i += 1 + n
				continue
			}
		}
		r, n := utf8.DecodeRuneInString(text[i:])
		var j int
		switch {
		case unicode.IsLetter(r):
			j = i + n
			for j < len(text) {
				r, n := utf8.DecodeRuneInString(text[j:])
				if !unicode.IsLetter(r) {
					break
				}
				j += n
			}
		case unicode.IsNumber(r):
			j = i + n
		case isOther(r):
			j = i + n
			for j < len(text) {
				r, n := utf8.DecodeRuneInString(text[j:])
				if !isOther(r) {
					break
				}
				j += n
			}
		default: // white space, U+0345
			i += n
			continue
		}
		if !emit(text[i:j]) {
			return
		}
		i = j
	}
}

// isOther is `[^\s\p{L}\p{N}]` under IGNORECASE.
func isOther(r rune) bool {
	return !unicode.IsSpace(r) && !unicode.IsLetter(r) && !unicode.IsNumber(r) && r != ypogegrammeni
}

// contraction returns the length of the contraction suffix (s, t, re, ve, m, ll, d) that rest starts with, or 0.
// Under IGNORECASE, 's also matches the long s ſ, the only other character in the case-folding orbits of these
// letters that survives lower-casing.
func contraction(rest string) int {
	if rest == "" {
		return 0
	}
	switch rest[0] {
	case 's', 't', 'm', 'd':
		return 1
	case 'r', 'v':
		if len(rest) > 1 && rest[1] == 'e' {
			return 2
		}
	case 'l':
		if len(rest) > 1 && rest[1] == 'l' {
			return 2
		}
	}
	if strings.HasPrefix(rest, "ſ") {
		return len("ſ")
	}
	return 0
}
