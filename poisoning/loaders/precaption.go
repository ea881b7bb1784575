package loaders

import (
	"strings"
	"unicode"
)

// PaperMaxWords is the word limit of the paper's caption pre-processing: max_words in the official code's
// configs (clip_poison_coco.yaml, clip_poison_pascal.yaml) and its datasets' default.
const PaperMaxWords = 77

// PreCaption pre-processes a caption as the paper's official code does before tokenising every training and
// test caption (zqypku/mm_poison, dataset/utils.py pre_caption), with Python's string semantics:
//
//  1. lower-case the caption;
//  2. delete the characters , . ' ! ? " ( ) * # : ; ~, then replace every '-' and '/' by a space and every
//     "<person>" by "person" (so "<per.son>" also becomes "person");
//  3. replace every run of two or more whitespace characters (Python's \s: Unicode white space plus the
//     separators U+001C–U+001F) by one space; a single tab or newline is kept;
//  4. strip trailing newlines, then spaces at both ends (only ' ': a leading tab or newline stays);
//  5. split on single spaces and keep the first maxWords words, joined by spaces, when there are more
//     (maxWords ≤ 0: no limit). The official configs use PaperMaxWords.
//
// Lower-casing is Go's strings.ToLower, which agrees with Python's str.lower except for a few characters whose
// lower case is longer in Python (e.g. 'İ'). Typographic quotes such as ’ are not in the deleted set and stay.
func PreCaption(caption string, maxWords int) string {
	var b strings.Builder
	b.Grow(len(caption))
	for _, r := range strings.ToLower(caption) {
		switch r {
		case ',', '.', '\'', '!', '?', '"', '(', ')', '*', '#', ':', ';', '~':
			continue
		case '-', '/':
			r = ' '
		}
		b.WriteRune(r)
	}
	s := strings.ReplaceAll(b.String(), "<person>", "person")

	// Collapse runs of two or more white-space characters; a lone one stays as it is.
	rs := []rune(s)
	b.Reset()
	for i := 0; i < len(rs); {
		j := i
		for j < len(rs) && pySpace(rs[j]) {
			j++
		}
		switch {
		case j-i >= 2:
			b.WriteByte(' ')
		case j-i == 1:
			b.WriteRune(rs[i])
		default:
			b.WriteRune(rs[i])
			j = i + 1
		}
		i = j
	}
	s = strings.Trim(strings.TrimRight(b.String(), "\n"), " ")
	if maxWords > 0 {
		if words := strings.Split(s, " "); len(words) > maxWords {
			s = strings.Join(words[:maxWords], " ")
		}
	}
	return s
}

// pySpace reports whether Python's re module counts r as \s in a str pattern (str.isspace): Go's Unicode white
// space plus the information separators U+001C–U+001F.
func pySpace(r rune) bool {
	return unicode.IsSpace(r) || r >= 0x1c && r <= 0x1f
}
