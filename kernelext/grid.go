package kernelext

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Layout of the PNG rendering of an ImageGrid, in output pixels.
const (
	gridPad         = 4  // space around and between cells
	gridMinCellW    = 98 // minimum cell width: 14 caption characters
	gridLineH       = 14 // height of one caption line (13 px font + 1)
	gridCharW       = 7  // advance of one caption character
	gridDefaultCols = 8  // default maximum number of columns
)

// GridItem is one image of an [ImageGrid] with its caption.
type GridItem struct {
	// Image is the image; any image.Image works (see [ImageFromHWC] for raw
	// pixel buffers).
	Image image.Image
	// Caption is shown under the image; it is wrapped to the cell width.
	Caption string
}

// ImageGrid lays out images in a grid with a caption under each, for
// instance poisoned (caption, image) pairs or the top retrieved images of a
// query. It renders to one PNG ([ImageGrid.PNG], captions drawn with the
// 7×13 pixel font of golang.org/x/image/font/basicfont, ASCII only) or to
// HTML ([ImageGrid.HTML], for notebooks; captions are real text there).
type ImageGrid struct {
	// Name identifies the grid; [FileName] of it is the base of the saved PNG.
	Name string
	// Title is drawn above the grid; empty for none.
	Title string
	// Items are the images, in row-major order.
	Items []GridItem
	// Columns is the number of columns; 0 means min(len(Items), 8).
	Columns int
	// Scale is the integer upscaling factor (nearest neighbour) applied to
	// every image; values below 1 mean 1.
	Scale int
	// MaxCaptionLines limits the number of caption lines in the PNG (longer
	// captions end with "..."); 0 means 3. HTML shows whole captions.
	MaxCaptionLines int
	// RowNotes, when set, holds a line of words per row ("" for none), shown
	// under the row across its width: what its images have in common.
	RowNotes []string
}

// rowNote returns the note of row r ("" when it has none).
func (g *ImageGrid) rowNote(r int) string {
	if r < len(g.RowNotes) {
		return g.RowNotes[r]
	}
	return ""
}

// Add appends an image with its caption and returns g.
func (g *ImageGrid) Add(img image.Image, caption string) *ImageGrid {
	g.Items = append(g.Items, GridItem{Image: img, Caption: caption})
	return g
}

func (g *ImageGrid) cols() int {
	if g.Columns > 0 {
		return g.Columns
	}
	return max(min(len(g.Items), gridDefaultCols), 1)
}

func (g *ImageGrid) scale() int { return max(g.Scale, 1) }

func (g *ImageGrid) maxLines() int {
	if g.MaxCaptionLines > 0 {
		return g.MaxCaptionLines
	}
	return 3
}

func (g *ImageGrid) check() error {
	if len(g.Items) == 0 {
		return errors.New("kernelext: image grid has no images")
	}
	for i, it := range g.Items {
		if it.Image == nil {
			return fmt.Errorf("kernelext: image grid item %d has no image", i)
		}
	}
	return nil
}

// Image renders the grid as one RGBA image on a white background.
func (g *ImageGrid) Image() (*image.RGBA, error) {
	if err := g.check(); err != nil {
		return nil, err
	}
	s, cols := g.scale(), g.cols()
	rows := (len(g.Items) + cols - 1) / cols
	maxW, maxH := 0, 0
	for _, it := range g.Items {
		b := it.Image.Bounds()
		maxW, maxH = max(maxW, b.Dx()*s), max(maxH, b.Dy()*s)
	}
	cellW := max(maxW, gridMinCellW)
	charsPerLine := max(cellW/gridCharW, 1)
	captions := make([][]string, len(g.Items))
	nLines := 0
	for i, it := range g.Items {
		captions[i] = wrapText(asciiOnly(it.Caption), charsPerLine, g.maxLines())
		nLines = max(nLines, len(captions[i]))
	}
	captionH := 0
	if nLines > 0 {
		captionH = gridPad/2 + nLines*gridLineH
	}
	cellH := maxH + captionH
	titleH := 0
	var titleLines []string
	if g.Title != "" {
		totalW := cols*cellW + (cols-1)*gridPad
		titleLines = wrapText(asciiOnly(g.Title), max(totalW/gridCharW, 1), 2)
		titleH = len(titleLines)*gridLineH + gridPad
	}
	width := cols*cellW + (cols+1)*gridPad
	notes := make([][]string, rows)
	noteH := 0
	for r := range notes {
		if n := g.rowNote(r); n != "" {
			notes[r] = wrapText(asciiOnly(n), max((width-2*gridPad)/gridCharW, 1), 2)
			noteH = max(noteH, len(notes[r])*gridLineH)
		}
	}
	rowH := cellH + noteH
	height := titleH + rows*rowH + (rows+1)*gridPad
	out := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(out, out.Bounds(), image.White, image.Point{}, draw.Src)

	drawer := &font.Drawer{Dst: out, Src: image.Black, Face: basicfont.Face7x13}
	drawLine := func(text string, x, top int) {
		drawer.Dot = fixed.P(x, top+basicfont.Face7x13.Ascent)
		drawer.DrawString(text)
	}
	for i, line := range titleLines {
		drawLine(line, gridPad, gridPad+i*gridLineH)
	}
	for r, lines := range notes {
		for li, line := range lines {
			drawLine(line, gridPad, titleH+gridPad+r*(rowH+gridPad)+cellH+li*gridLineH)
		}
	}
	for i, it := range g.Items {
		r, c := i/cols, i%cols
		x0 := gridPad + c*(cellW+gridPad)
		y0 := titleH + gridPad + r*(rowH+gridPad)
		b := it.Image.Bounds()
		w, h := b.Dx()*s, b.Dy()*s
		ix, iy := x0+(cellW-w)/2, y0+(maxH-h)/2
		drawScaled(out, image.Rect(ix, iy, ix+w, iy+h), it.Image, s)
		for li, line := range captions[i] {
			lx := x0 + (cellW-len(line)*gridCharW)/2
			drawLine(line, lx, y0+maxH+gridPad/2+li*gridLineH)
		}
	}
	return out, nil
}

// drawScaled draws src upscaled by the integer factor s into dst at r.
func drawScaled(dst *image.RGBA, r image.Rectangle, src image.Image, s int) {
	b := src.Bounds()
	for y := 0; y < r.Dy(); y++ {
		for x := 0; x < r.Dx(); x++ {
			c := color.RGBAModel.Convert(src.At(b.Min.X+x/s, b.Min.Y+y/s)).(color.RGBA)
			if c.A == 255 {
				dst.SetRGBA(r.Min.X+x, r.Min.Y+y, c)
				continue
			}
			// Composite translucent pixels over the white background.
			bg := dst.RGBAAt(r.Min.X+x, r.Min.Y+y)
			a := uint32(c.A)
			blend := func(fg, bg uint8) uint8 { return uint8(uint32(fg) + uint32(bg)*(255-a)/255) }
			dst.SetRGBA(r.Min.X+x, r.Min.Y+y, color.RGBA{blend(c.R, bg.R), blend(c.G, bg.G), blend(c.B, bg.B), 255})
		}
	}
}

// PNG renders the grid ([ImageGrid.Image]) and encodes it as PNG.
func (g *ImageGrid) PNG() ([]byte, error) {
	img, err := g.Image()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// HTML renders the grid as an HTML fragment: a CSS grid of <figure>
// elements, each an <img> with the image as a base64 PNG (upscaled by the
// browser with pixelated rendering) and its caption, escaped and wrapped.
func (g *ImageGrid) HTML() (string, error) {
	if err := g.check(); err != nil {
		return "", err
	}
	s, cols := g.scale(), g.cols()
	maxW := 0
	for _, it := range g.Items {
		maxW = max(maxW, it.Image.Bounds().Dx()*s)
	}
	cellW := max(maxW, gridMinCellW)
	var b strings.Builder
	b.WriteString(`<div class="mmpoison-grid">` + "\n")
	if g.Title != "" {
		b.WriteString(`<div style="font-weight:bold;margin-bottom:4px">` + htmlText(g.Title) + "</div>\n")
	}
	fmt.Fprintf(&b, `<div style="display:grid;grid-template-columns:repeat(%d,%dpx);gap:6px;align-items:start">`+"\n", cols, cellW)
	var buf bytes.Buffer
	for i, it := range g.Items {
		if r := i / cols; i > 0 && i%cols == 0 && g.rowNote(r-1) != "" {
			b.WriteString(rowNoteHTML(g.rowNote(r - 1)))
		}
		buf.Reset()
		if err := png.Encode(&buf, it.Image); err != nil {
			return "", err
		}
		bb := it.Image.Bounds()
		fmt.Fprintf(&b, `<figure style="margin:0;text-align:center">`+
			`<img src="data:image/png;base64,%s" width="%d" height="%d" style="image-rendering:pixelated" alt="%s">`+
			`<figcaption style="font-size:small;overflow-wrap:anywhere;white-space:normal">%s</figcaption></figure>`+"\n",
			base64.StdEncoding.EncodeToString(buf.Bytes()), bb.Dx()*s, bb.Dy()*s,
			html.EscapeString(oneLine(it.Caption)), htmlText(it.Caption))
	}
	if last := (len(g.Items) - 1) / cols; g.rowNote(last) != "" {
		b.WriteString(rowNoteHTML(g.rowNote(last)))
	}
	b.WriteString("</div>\n</div>\n")
	return b.String(), nil
}

// rowNoteHTML is a row's note in the HTML grid: one cell spanning every column.
func rowNoteHTML(note string) string {
	return `<div style="grid-column:1/-1;font-size:small;font-style:italic">` + htmlText(note) + "</div>\n"
}

// ShowImageGrid displays g: as HTML in a notebook. When an output directory
// is set ([SetOutputDir]) the PNG is also saved there as
// <FileName(Name)>.png ("image_grid.png" when Name is empty); outside a
// notebook one line is written to [Output]: "image grid <name>: <path>", or
// "image grid <name>: not saved (no output directory)".
func ShowImageGrid(g *ImageGrid) error {
	notebook := IsNotebook()
	name := g.Name
	if name == "" {
		name = "image_grid"
	}
	if notebook {
		h, err := g.HTML()
		if err != nil {
			return err
		}
		nb.displayHTML(h)
	}
	paths, saved, err := saveFiles(func() ([]File, error) {
		data, err := g.PNG()
		return []File{{Name: FileName(name) + ".png", Data: data}}, err
	})
	if !saved && !notebook {
		if err := g.check(); err != nil {
			return err
		}
		lineWriter(Output(), "image grid %s: not saved (no output directory)", name)
	}
	if err == nil && saved && !notebook {
		lineWriter(Output(), "image grid %s: %s", name, paths[0])
	}
	return err
}

// ImageFromHWC wraps a raw pixel buffer in height × width × channels (HWC)
// order as an image.Image, copying it: 1 channel gives an *image.Gray,
// 3 channels (RGB) an *image.RGBA with opaque alpha, 4 channels (RGBA,
// non-premultiplied) an *image.NRGBA.
func ImageFromHWC(pix []uint8, height, width, channels int) (image.Image, error) {
	if height <= 0 || width <= 0 {
		return nil, fmt.Errorf("kernelext.ImageFromHWC: invalid size %d×%d", height, width)
	}
	if len(pix) != height*width*channels {
		return nil, fmt.Errorf("kernelext.ImageFromHWC: %d bytes for %d×%d×%d", len(pix), height, width, channels)
	}
	r := image.Rect(0, 0, width, height)
	switch channels {
	case 1:
		img := image.NewGray(r)
		copy(img.Pix, pix)
		return img, nil
	case 3:
		img := image.NewRGBA(r)
		for i := 0; i < height*width; i++ {
			img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2], img.Pix[4*i+3] = pix[3*i], pix[3*i+1], pix[3*i+2], 255
		}
		return img, nil
	case 4:
		img := image.NewNRGBA(r)
		copy(img.Pix, pix)
		return img, nil
	default:
		return nil, fmt.Errorf("kernelext.ImageFromHWC: %d channels, want 1, 3 or 4", channels)
	}
}

// asciiOnly replaces characters the basic font cannot draw with '?'.
func asciiOnly(s string) string {
	s = oneLine(s)
	return strings.Map(func(r rune) rune {
		if r >= 0x20 && r < 0x7f {
			return r
		}
		return '?'
	}, s)
}

// wrapText splits s into at most maxLines lines of at most width characters,
// breaking at spaces when possible; a truncated text ends with "...".
func wrapText(s string, width, maxLines int) []string {
	words := strings.Fields(s)
	var lines []string
	cur := ""
	for _, w := range words {
		for len(w) > width { // hard-break long words
			if cur != "" {
				lines = append(lines, cur)
				cur = ""
			}
			lines = append(lines, w[:width])
			w = w[width:]
		}
		switch {
		case cur == "":
			cur = w
		case len(cur)+1+len(w) <= width:
			cur += " " + w
		default:
			lines = append(lines, cur)
			cur = w
		}
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	if len(lines) > maxLines {
		lines = lines[:maxLines]
		last := lines[maxLines-1]
		if len(last)+3 > width {
			last = last[:max(width-3, 0)]
		}
		lines[maxLines-1] = last + "..."
	}
	return lines
}
