package kernelext

import (
	"bytes"
	"image"
	"image/png"
	"strings"
	"testing"
)

func TestFigureValidate(t *testing.T) {
	var pngBuf bytes.Buffer
	if err := png.Encode(&pngBuf, image.NewGray(image.Rect(0, 0, 2, 2))); err != nil {
		t.Fatal(err)
	}
	svg := []byte(`<svg xmlns="http://www.w3.org/2000/svg"><text>Hit@K</text></svg>`)
	pdf := []byte("%PDF-1.4\n...\n%%EOF\n")
	cases := []struct {
		name string
		fig  Figure
		want string // "" for valid
	}{
		{"all formats", Figure{Name: "f", SVG: svg, PNG: pngBuf.Bytes(), PDF: pdf}, ""},
		{"svg only", Figure{Name: "f", SVG: svg}, ""},
		{"empty", Figure{Name: "f"}, "no content"},
		{"broken svg", Figure{Name: "f", SVG: []byte("<svg><text>")}, "not well-formed"},
		{"html, not svg", Figure{Name: "f", SVG: []byte("<div></div>")}, `root element is "div"`},
		{"broken png", Figure{Name: "f", PNG: []byte("\x89PNG nope")}, "PNG does not decode"},
		{"pdf without trailer", Figure{Name: "f", PDF: []byte("%PDF-1.4\n")}, "PDF header or trailer"},
	}
	for _, c := range cases {
		err := c.fig.Validate()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: Validate() = %v, want %q", c.name, err, c.want)
		}
	}
	files, err := (&Figure{Name: "Hit@K: A→B", SVG: svg, PDF: pdf}).Files()
	if err != nil || len(files) != 2 || files[0].Name != "Hit_K_A_B.svg" || files[1].Name != "Hit_K_A_B.pdf" ||
		!bytes.Equal(files[1].Data, pdf) {
		t.Errorf("Files() = %v, %v; want Hit_K_A_B.svg and Hit_K_A_B.pdf", files, err)
	}
	if _, err := (&Figure{Name: "empty"}).Files(); err == nil {
		t.Error("Files() of an empty figure: want an error")
	}
	root, text, err := (&Figure{SVG: svg}).SVGText()
	if err != nil || root != "svg" || text != "Hit@K" {
		t.Errorf("SVGText = %q, %q, %v", root, text, err)
	}
}
