package plots

import (
	"bytes"
	"fmt"
	"html"
	"image/color"
	"math"
	"regexp"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgpdf"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/mmpoison/mmpoison/kernelext"
)

// Style is the look shared by all figures of the package.
type Style struct {
	// Width and Height are the figure size (vg.Inch, vg.Centimeter, ...).
	Width, Height vg.Length
	// DPI is the resolution of the PNG rendering.
	DPI int
	// FontVariant is the Liberation font variant: "Sans", "Serif" or "Mono".
	FontVariant font.Variant
	// TitleSize, LabelSize, TickSize and LegendSize are font sizes.
	TitleSize, LabelSize, TickSize, LegendSize font.Length
	// LineWidth is the width of data lines and bar outlines.
	LineWidth vg.Length
	// AxisWidth is the width of axis lines and ticks.
	AxisWidth vg.Length
	// MarkerRadius is the radius of point markers.
	MarkerRadius vg.Length
	// Palette are the series colours, used in order and cycled.
	Palette []color.Color
	// GridColor is the colour of the dashed grid lines; nil disables the grid.
	GridColor color.Color
	// FillAlpha is the opacity (0–255) of filled areas (histograms) that may
	// overlap.
	FillAlpha uint8
}

// OkabeIto is the Okabe–Ito colour-blind-safe palette (black moved last).
var OkabeIto = []color.Color{
	color.RGBA{0x00, 0x72, 0xB2, 0xFF}, // blue
	color.RGBA{0xD5, 0x5E, 0x00, 0xFF}, // vermillion
	color.RGBA{0x00, 0x9E, 0x73, 0xFF}, // bluish green
	color.RGBA{0xE6, 0x9F, 0x00, 0xFF}, // orange
	color.RGBA{0xCC, 0x79, 0xA7, 0xFF}, // reddish purple
	color.RGBA{0x56, 0xB4, 0xE9, 0xFF}, // sky blue
	color.RGBA{0xF0, 0xE4, 0x42, 0xFF}, // yellow
	color.RGBA{0x00, 0x00, 0x00, 0xFF}, // black
}

// DefaultStyle is the style used by every figure. It may be changed before
// drawing (not concurrently with drawing); a figure can also get its own
// size with [WithSize].
var DefaultStyle = Style{
	Width:        5 * vg.Inch,
	Height:       3.5 * vg.Inch,
	DPI:          200,
	FontVariant:  "Sans",
	TitleSize:    vg.Points(12),
	LabelSize:    vg.Points(10),
	TickSize:     vg.Points(9),
	LegendSize:   vg.Points(9),
	LineWidth:    vg.Points(1.5),
	AxisWidth:    vg.Points(0.6),
	MarkerRadius: vg.Points(2.5),
	Palette:      OkabeIto,
	GridColor:    color.Gray{0xDD},
	FillAlpha:    0x60,
}

// Color returns the palette colour of series i.
func (s Style) Color(i int) color.Color {
	if len(s.Palette) == 0 {
		return color.Black
	}
	return s.Palette[i%len(s.Palette)]
}

// glyphs are the marker shapes of the series, so that they stay
// distinguishable in grey-scale print.
var glyphs = []draw.GlyphDrawer{
	draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.RingGlyph{},
	draw.CrossGlyph{}, draw.PlusGlyph{}, draw.PyramidGlyph{}, draw.BoxGlyph{},
}

// dashes are the line dash patterns of the series (solid first).
var dashes = [][]vg.Length{
	nil,
	{vg.Points(5), vg.Points(2.5)},
	{vg.Points(1.5), vg.Points(1.5)},
	{vg.Points(6), vg.Points(2), vg.Points(1.5), vg.Points(2)},
}

// Option adjusts one figure.
type Option func(*config)

type config struct {
	name           string
	xLabel, yLabel string
	width, height  vg.Length
	logY           bool
	logX           bool
	yMin, yMax     float64 // NaN: automatic
	logRanks       bool
	legendTop      *bool
	legendLeft     *bool
	// legendOutside draws the legend to the right of the plot area instead of inside it; legendBelow under
	// the plot unless WithLegend placed it inside (legendInside).
	legendOutside, legendBelow bool
	legendInside               *bool
}

// WithName sets the figure name (the file base name when saved) instead of
// the one derived from the title.
func WithName(name string) Option { return func(c *config) { c.name = name } }

// WithXLabel replaces the default x-axis label.
func WithXLabel(label string) Option { return func(c *config) { c.xLabel = label } }

// WithYLabel replaces the default y-axis label.
func WithYLabel(label string) Option { return func(c *config) { c.yLabel = label } }

// WithSize sets the figure size instead of DefaultStyle.Width and Height.
func WithSize(width, height vg.Length) Option {
	return func(c *config) { c.width, c.height = width, height }
}

// WithYRange fixes the y-axis range; NaN keeps the automatic bound.
func WithYRange(min, max float64) Option { return func(c *config) { c.yMin, c.yMax = min, max } }

// WithLogY uses a logarithmic y axis (values ≤ 0 are skipped). Only
// [LossCurve] supports it.
func WithLogY() Option { return func(c *config) { c.logY = true } }

// WithLogX gives a logarithmic x axis (points with x ≤ 0 are skipped), e.g. for poisoning rates.
func WithLogX() Option { return func(c *config) { c.logX = true } }

// WithLogRanks gives [RankHistogram] a logarithmic rank axis (log(rank +
// 1.5), so that rank 0 is shown) with geometric bins: ranks 0, 1, 2... get
// their own bins and large ranks share wide ones. It reads better than the
// linear default when a poisoned distribution piles up at ranks 0–5 next to
// a clean one spread over hundreds of ranks. Bars then hold the fraction of
// queries in each (unequal) bin.
func WithLogRanks() Option { return func(c *config) { c.logRanks = true } }

// WithLegend places the legend at the top or bottom, left or right of the
// plot area.
func WithLegend(top, left bool) Option {
	return func(c *config) {
		inside := true
		c.legendTop, c.legendLeft, c.legendInside = &top, &left, &inside
	}
}

func newConfig(title, xLabel, yLabel string, legendTop, legendLeft bool, opts []Option) *config {
	c := &config{
		name: title, xLabel: xLabel, yLabel: yLabel,
		width: DefaultStyle.Width, height: DefaultStyle.Height,
		yMin: math.NaN(), yMax: math.NaN(),
	}
	for _, o := range opts {
		o(c)
	}
	if c.legendTop == nil {
		c.legendTop = &legendTop
	}
	if c.legendLeft == nil {
		c.legendLeft = &legendLeft
	}
	if c.name == "" {
		c.name = "figure"
	}
	return c
}

// NewPlot returns an empty plot in [DefaultStyle] with the given title and
// axis labels, for figures this package does not provide; render it with
// [Render].
func NewPlot(title, xLabel, yLabel string) *plot.Plot {
	return newPlot(title, xLabel, yLabel, true)
}

func newPlot(title, xLabel, yLabel string, verticalGrid bool) *plot.Plot {
	st := DefaultStyle
	p := plot.New()
	fnt := func(size font.Length) font.Font {
		return font.Font{Typeface: "Liberation", Variant: st.FontVariant, Size: size}
	}
	p.Title.Text = title
	p.Title.TextStyle.Font = fnt(st.TitleSize)
	p.Title.Padding = vg.Points(6)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = fnt(st.LabelSize)
		a.Tick.Label.Font = fnt(st.TickSize)
		a.LineStyle.Width = st.AxisWidth
		a.Tick.LineStyle.Width = st.AxisWidth
		a.Tick.Length = vg.Points(4)
		a.Padding = vg.Points(2)
	}
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.X.Tick.Marker, p.Y.Tick.Marker = plainTicks{}, plainTicks{}
	p.Legend.TextStyle.Font = fnt(st.LegendSize)
	p.Legend.Top = true
	p.Legend.ThumbnailWidth = vg.Points(18)
	p.Legend.Padding = vg.Points(2)
	p.Legend.XOffs = -vg.Points(4)
	p.Legend.YOffs = -vg.Points(4)
	if st.GridColor != nil {
		g := plotter.NewGrid()
		for _, ls := range []*draw.LineStyle{&g.Vertical, &g.Horizontal} {
			ls.Color = st.GridColor
			ls.Width = vg.Points(0.5)
			ls.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
		}
		if !verticalGrid {
			g.Vertical.Color = nil
		}
		p.Add(g)
	}
	return p
}

// apply sets the labels, ranges and legend placement of cfg on p.
func (c *config) apply(p *plot.Plot) {
	p.X.Label.Text = c.xLabel
	p.Y.Label.Text = c.yLabel
	if !math.IsNaN(c.yMin) {
		p.Y.Min = c.yMin
	}
	if !math.IsNaN(c.yMax) {
		p.Y.Max = c.yMax
	}
	p.Legend.Top = *c.legendTop
	p.Legend.Left = *c.legendLeft
	if p.Legend.Left {
		p.Legend.XOffs = vg.Points(4)
	}
	if !p.Legend.Top {
		p.Legend.YOffs = vg.Points(4)
	}
}

// Render draws p at DefaultStyle's size (or width × height when both are
// positive) and returns it as a figure named name with SVG, PDF and PNG
// content.
func Render(name string, p *plot.Plot, width, height vg.Length) (fig *kernelext.Figure, err error) {
	return render(name, p.Draw, width, height)
}

// render is Render for any drawing function (a plot with decorations outside it, for instance).
func render(name string, drawFig func(draw.Canvas), width, height vg.Length) (fig *kernelext.Figure, err error) {
	if width <= 0 || height <= 0 {
		width, height = DefaultStyle.Width, DefaultStyle.Height
	}
	// gonum/plot panics on some invalid inputs (for instance a font that is
	// not in the cache); turn that into an error.
	defer func() {
		if r := recover(); r != nil {
			fig, err = nil, fmt.Errorf("plots: rendering %q: %v", name, r)
		}
	}()
	fig = &kernelext.Figure{Name: name}

	svgC := vgsvg.New(width, height)
	drawFig(draw.New(svgC))
	var svgBuf bytes.Buffer
	if _, err := svgC.WriteTo(&svgBuf); err != nil {
		return nil, fmt.Errorf("plots: SVG of %q: %w", name, err)
	}
	fig.SVG = portableText(svgBuf.Bytes())

	pdfC := vgpdf.New(width, height)
	drawFig(draw.New(pdfC))
	var pdfBuf bytes.Buffer
	if _, err := pdfC.WriteTo(&pdfBuf); err != nil {
		return nil, fmt.Errorf("plots: PDF of %q: %w", name, err)
	}
	fig.PDF = pdfBuf.Bytes()

	dpi := DefaultStyle.DPI
	if dpi <= 0 {
		dpi = 150
	}
	imgC := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(dpi))
	drawFig(draw.New(imgC))
	var pngBuf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: imgC}).WriteTo(&pngBuf); err != nil {
		return nil, fmt.Errorf("plots: PNG of %q: %w", name, err)
	}
	fig.PNG = pngBuf.Bytes()
	return fig, nil
}

// svgText matches one text element of a vgsvg document: its attributes, style and escaped text.
var svgText = regexp.MustCompile(`(?s)<text ([^>]*?)style="([^"]*)">([^<]*)</text>`)

// svgFamilies are the font families the figures use, each with the fallbacks that follow it in the SVG and the
// variant that measures its text.
var svgFamilies = []struct{ family, fallbacks string }{
	{"Liberation Sans", "Arial,Helvetica,sans-serif"},
	{"Liberation Serif", "'Times New Roman',Times,serif"},
	{"Liberation Mono", "'Courier New',Courier,monospace"},
}

// portableText makes the SVG's text keep its layout whatever font the viewer has: each font family is followed
// by metric-compatible fallbacks and its generic family, and each text element gets a textLength (with
// lengthAdjust="spacingAndGlyphs") equal to its width in the font it was laid out with, so that a substitute
// font wider or narrower than Liberation is scaled to the same width and legend text never runs into its
// swatch. Embedding the font would also do, at about 500 kB per figure.
func portableText(svg []byte) []byte {
	return svgText.ReplaceAllFunc(svg, func(elem []byte) []byte {
		m := svgText.FindSubmatch(elem)
		attrs, style, text := string(m[1]), string(m[2]), string(m[3])
		size, variant := 0.0, font.Variant("")
		for _, part := range strings.Split(style, ";") {
			k, v, _ := strings.Cut(part, ":")
			switch k {
			case "font-size":
				size, _ = strconv.ParseFloat(strings.TrimSuffix(v, "px"), 64)
			case "font-family":
				for _, f := range svgFamilies {
					if v == f.family {
						variant = font.Variant(strings.TrimPrefix(f.family, "Liberation "))
						style = strings.Replace(style, "font-family:"+v, "font-family:'"+v+"',"+f.fallbacks, 1)
					}
				}
			}
		}
		if variant == "" || size <= 0 || strings.TrimSpace(text) == "" {
			return []byte(`<text ` + attrs + `style="` + style + `">` + text + `</text>`)
		}
		face := font.DefaultCache.Lookup(font.Font{Typeface: "Liberation", Variant: variant}, vg.Points(size))
		width := face.Width(html.UnescapeString(text)).Points()
		return fmt.Appendf(nil, `<text %stextLength="%.5g" lengthAdjust="spacingAndGlyphs" style="%s">%s</text>`, attrs, width, style, text)
	})
}

// render finishes a figure built with cfg.
func (c *config) render(p *plot.Plot) (*kernelext.Figure, error) {
	c.apply(p)
	switch {
	case c.legendOutside:
		return render(c.name, legendRight(p), c.width, c.height)
	case c.legendBelow && c.legendInside == nil:
		return render(c.name, legendBelow(p, legendHeight(p.Legend)+vg.Points(10)), c.width, c.height)
	}
	return Render(c.name, p, c.width, c.height)
}

// legendHeight is the height of a legend's entries, stacked.
func legendHeight(l plot.Legend) vg.Length {
	r := l.Rectangle(draw.Canvas{})
	return r.Max.Y - r.Min.Y
}

// legendBelow draws p with its legend centred in a strip of the given height at the bottom of the figure, so
// that the legend never covers data; the plot takes the rest of the canvas.
func legendBelow(p *plot.Plot, strip vg.Length) func(draw.Canvas) {
	return func(c draw.Canvas) {
		legend := p.Legend
		legend.Top, legend.Left, legend.XOffs, legend.YOffs = false, true, 0, 0
		r := legend.Rectangle(draw.Canvas{})
		p.Legend = plot.NewLegend()
		defer func() { p.Legend = legend }()
		p.Draw(draw.Crop(c, 0, 0, strip, 0))
		width, height := c.Max.X-c.Min.X, c.Max.Y-c.Min.Y
		// Centred with room for a tenth more text to its right: swatches stay left of their text, so a viewer's
		// wider substitute font (where it ignores textLength) runs into the margin, not into a swatch.
		margin := max(vg.Points(4), (width-(r.Max.X-r.Min.X)*11/10)/2)
		legend.Draw(draw.Crop(c, margin, 0, vg.Points(4), -(height - strip)))
	}
}

// plainTicks are plot.DefaultTicks with labels written without needless digits ("50", not "50.00").
type plainTicks struct{}

func (plainTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for i, t := range ticks {
		if t.Label != "" {
			ticks[i].Label = strconv.FormatFloat(t.Value, 'g', 6, 64)
		}
	}
	return ticks
}

// legendRight draws p with its legend in a strip to the right of the plot area, top-aligned with it, so that
// the legend never covers data and the y axis needs no headroom for it.
func legendRight(p *plot.Plot) func(draw.Canvas) {
	return func(c draw.Canvas) {
		legend := p.Legend
		legend.Top, legend.Left, legend.XOffs, legend.YOffs = true, true, 0, 0
		r := legend.Rectangle(c)
		strip := (r.Max.X-r.Min.X)*11/10 + vg.Points(12) // A tenth more for a wider substitute font.
		p.Legend = plot.NewLegend()
		defer func() { p.Legend = legend }()
		p.Draw(draw.Crop(c, 0, -strip, 0, 0))
		title := vg.Length(0)
		if p.Title.Text != "" {
			title = p.Title.TextStyle.Rectangle(p.Title.Text).Size().Y + p.Title.Padding
		}
		width := c.Max.X - c.Min.X
		legend.Draw(draw.Crop(c, width-strip+vg.Points(8), 0, 0, -title-vg.Points(8)))
	}
}

// lineStyle returns the line style of series i.
func lineStyle(i int) draw.LineStyle {
	return draw.LineStyle{
		Color:  DefaultStyle.Color(i),
		Width:  DefaultStyle.LineWidth,
		Dashes: dashes[i%len(dashes)],
	}
}

// glyphStyle returns the marker style of series i.
func glyphStyle(i int) draw.GlyphStyle {
	return draw.GlyphStyle{
		Color:  DefaultStyle.Color(i),
		Radius: DefaultStyle.MarkerRadius,
		Shape:  glyphs[i%len(glyphs)],
	}
}

// withAlpha returns the opaque colour c with opacity a.
func withAlpha(c color.Color, a uint8) color.Color {
	r, g, b, _ := c.RGBA()
	return color.NRGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), a}
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
