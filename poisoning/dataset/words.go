package dataset

import (
	"strings"
	"unicode"
)

// Words splits a caption into its lower-case words: the runs of letters and digits, everything else (spaces,
// punctuation) dropped. It is the word-level view of a caption shared by the word-level tokenizer
// (models/tokenizer) and caption augmentation (poisoning/defense's EDA).
func Words(caption string) []string {
	return strings.FieldsFunc(strings.ToLower(caption), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}
