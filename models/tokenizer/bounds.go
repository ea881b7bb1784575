package tokenizer

import (
	"io"
	"unicode/utf8"
)

// Bounds of the vocabulary readers: the merges a tokenizer reads are at most CLIPMerges lines of at most
// maxMergeLine bytes, read from at most maxMergeBytes (decompressed) bytes, so a gzip bomb without a newline
// stops at the first long line; vocab.json is at most maxVocabJSON bytes, which the JSON decoder holds whole
// (with the map it builds, up to five times that). CLIP's real files are far below: its merges are lines of two
// short symbols, its vocab.json 49408 short entries.
const (
	maxMergeLine  = 4096
	maxMergeBytes = 16 << 20
	maxVocabJSON  = 16 << 20
)

// limitedReader passes on at most n bytes of r and then fails with err.
type limitedReader struct {
	r   io.Reader
	n   int64
	err error
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, l.err
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// MaxCaptionBytes bounds the part of a caption the BPE tokenizer reads: a longer caption is cut to its first
// 4096 bytes (at a character boundary) before cleaning, so tokenising any caption costs at most what 4096
// bytes cost (and allocates at most about 1 KiB per byte read, garbage included). Encode keeps 75 tokens; CLIP's longest token covers 32 bytes, and ordinary text reaches 75
// tokens within its first 500 bytes, so only a caption that needs more than 4096 bytes for its first 75 tokens
// (long runs of spaces, control characters or HTML entities) can get other ids than it would uncut.
const MaxCaptionBytes = 4096

// cutCaption returns the first MaxCaptionBytes bytes of text, backing up to the start of a UTF-8 sequence.
func cutCaption(text string) string {
	if len(text) <= MaxCaptionBytes {
		return text
	}
	i := MaxCaptionBytes
	for k := 0; k < utf8.UTFMax-1 && !utf8.RuneStart(text[i]); k++ {
		i--
	}
	return text[:i]
}
