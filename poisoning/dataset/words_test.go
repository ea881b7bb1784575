package dataset

import (
	"slices"
	"testing"
)

func TestWords(t *testing.T) {
	tests := []struct {
		caption string
		want    []string
	}{
		{"A photo of a Trouser.", []string{"a", "photo", "of", "a", "trouser"}},
		{"t-shirt/top, 2 views", []string{"t", "shirt", "top", "2", "views"}},
		{"  Ünïcode  café ", []string{"ünïcode", "café"}},
		{"...", nil},
		{"", nil},
	}
	for _, tc := range tests {
		if got := Words(tc.caption); !slices.Equal(got, tc.want) {
			t.Errorf("Words(%q) = %q, want %q", tc.caption, got, tc.want)
		}
	}
}
