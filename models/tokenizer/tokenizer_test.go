package tokenizer

import (
	"fmt"
	"slices"
	"testing"
)

func TestWordLevelEncode(t *testing.T) {
	tok, err := NewWordLevel([]string{"a dark sneaker", "A light Bag, on black!"}, 6)
	if err != nil {
		t.Fatal(err)
	}
	// Vocabulary sorted: a bag black dark light on sneaker -> ids 2..8; start 9, end 10.
	if got := tok.VocabSize(); got != 11 {
		t.Fatalf("VocabSize = %d, want 11", got)
	}
	cases := []struct {
		text string
		want []int32
	}{
		{"a dark sneaker", []int32{9, 2, 5, 8, 10, 0}},
		{"Bag", []int32{9, 3, 10, 0, 0, 0}},
		{"unknown words here", []int32{9, 1, 1, 1, 10, 0}},
		{"a a a a a a a a", []int32{9, 2, 2, 2, 2, 10}}, // truncated, end token kept.
		{"", []int32{9, 10, 0, 0, 0, 0}},
	}
	for _, c := range cases {
		if got := tok.Encode(c.text); !slices.Equal(got, c.want) {
			t.Errorf("Encode(%q) = %v, want %v", c.text, got, c.want)
		}
	}
	if tok.EndID() != int32(tok.VocabSize()-1) {
		t.Errorf("end id %d is not the highest id %d", tok.EndID(), tok.VocabSize()-1)
	}
}

func TestWordLevelJSONRoundTrip(t *testing.T) {
	tok, _ := NewWordLevel([]string{"x y z"}, 8)
	data, err := tok.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnmarshalWordLevel(data)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Encode("z x q"), tok.Encode("z x q")) || back.ContextLength() != 8 {
		t.Fatalf("round trip changed the tokenizer")
	}
	if _, err := UnmarshalWordLevel([]byte("{")); err == nil {
		t.Fatal("malformed JSON accepted")
	}
}

func ExampleWordLevel_Encode() {
	tok, _ := NewWordLevel([]string{"a photo of a sneaker"}, 8)
	fmt.Println(tok.Encode("a sneaker"))
	// Output: [6 2 5 7 0 0 0 0]
}
