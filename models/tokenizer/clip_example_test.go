package tokenizer_test

import (
	"fmt"
	"strings"

	"github.com/mmpoison/mmpoison/models/tokenizer"
)

// A tiny vocabulary in OpenAI's format: a header line, then merges. Its five merges join "h e", "l l",
// "l o</w>", "he ll" and "hell o</w>" (ids 512-516), so "hello" is one token; start and end get 517 and 518.
// The real vocabulary comes from LoadOpenAIVocab("bpe_simple_vocab_16e6.txt.gz", 0).
func ExampleBPE() {
	merges := "#version: 0.2\nh e\nl l\nl o</w>\nhe ll\nhell o</w>\n"
	tok, err := tokenizer.ReadOpenAIVocab(strings.NewReader(merges), 8)
	if err != nil {
		fmt.Println(err)
		return
	}
	ids := tok.Encode("Hello, hello!")
	fmt.Println(tok.VocabSize(), ids)
	fmt.Printf("%q\n", tok.Decode(ids))
	// Output:
	// 519 [517 516 267 516 256 518 0 0]
	// "hello , hello !"
}
