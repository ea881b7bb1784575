package loaders

import "testing"

// The expected outputs are worked out by hand from the official pre_caption's Python: str.lower, re.sub of
// the punctuation class by ”, str.replace of '-', '/' and '<person>', re.sub(r"\s{2,}", ' '),
// rstrip('\n'), strip(' '), split(' ') and ' '.join of the first max_words.
func TestPreCaption(t *testing.T) {
	for _, tc := range []struct {
		in       string
		maxWords int
		want     string
	}{
		{"A man, riding a Horse.", 77, "a man riding a horse"},
		{"Two dogs - playing in the snow/grass!", 77, "two dogs playing in the snow grass"},
		{"well-known dog-", 77, "well known dog"},
		{"<PERSON> is holding a frisbee", 77, "person is holding a frisbee"},
		{"<per.son> waves", 77, "person waves"}, // deletion first, then the replacement
		{`The "best" (really) cat's toy: #1; ~ok? *yes*`, 77, "the best really cats toy 1 ok yes"},
		{"...!?", 77, ""},
		{"", 77, ""},
		{"  a dog\t\tsits \n", 77, "a dog sits"},
		{"a dog\n", 77, "a dog"},
		{"a\n\n", 77, "a"},
		{"end-\n", 77, "end"},
		{"\na dog", 77, "\na dog"},    // strip(' ') keeps a leading newline
		{"a\tdog", 77, "a\tdog"},      // a single white-space character is not collapsed
		{"\ta dog \t", 77, "\ta dog"}, // " \t" is a run: one space, then stripped
		{"a\x1c\x1cb", 77, "a b"},     // Python's \s includes the information separators
		{"a\u00a0\u00a0b\u3000c", 77, "a b\u3000c"},
		{"it’s a DOG", 77, "it’s a dog"}, // the typographic apostrophe is not deleted
		{"one two three four five", 3, "one two three"},
		{"one two three", 3, "one two three"},
		{"One, two; three: four.", 2, "one two"},
		{"a\tb c d", 2, "a\tb c"}, // split(' ') counts "a\tb" as one word
		{"one two three four five", 0, "one two three four five"},
	} {
		if got := PreCaption(tc.in, tc.maxWords); got != tc.want {
			t.Errorf("PreCaption(%q, %d) = %q, want %q", tc.in, tc.maxWords, got, tc.want)
		}
	}
}
