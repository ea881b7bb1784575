package tokenizer

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// longCaptions are the hostile captions of BenchmarkTokenizeLongCaption: one word of seeded random lower-case
// letters and one nested HTML entity ("&amp;amp;amp;…;"), each of about size bytes.
func longCaptions(size int) map[string]string {
	rng := rand.New(rand.NewPCG(1, uint64(size)))
	letters := make([]byte, size)
	for i := range letters {
		letters[i] = byte('a' + rng.IntN(26))
	}
	return map[string]string{
		"letters":  string(letters),
		"entities": "&" + strings.Repeat("amp;", size/4),
	}
}

// BenchmarkTokenizeLongCaption times Encode on one hostile caption of 10 kB, 100 kB and 1 MB. Each iteration
// changes the caption's first two letters, so the BPE cache does not answer.
func BenchmarkTokenizeLongCaption(b *testing.B) {
	tok := loadOpenAI(b)
	for _, size := range []int{10_000, 100_000, 1_000_000} {
		for _, kind := range []string{"letters", "entities"} {
			text := longCaptions(size)[kind]
			b.Run(fmt.Sprintf("%s/%dkB", kind, size/1000), func(b *testing.B) {
				b.SetBytes(int64(len(text)))
				for i := 0; b.Loop(); i++ {
					tok.Encode(string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + text)
				}
			})
		}
	}
}
