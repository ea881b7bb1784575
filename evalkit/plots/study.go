package plots

import (
	"cmp"
	"errors"
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/mmpoison/mmpoison/kernelext"
)

// LineSeries is one curve with optional symmetric error bars: Y[i] ± Err[i] at X[i].
type LineSeries struct {
	// Name labels the series in the legend.
	Name string
	// X and Y are the coordinates (points with NaN or Inf are skipped).
	X, Y []float64
	// Err are optional symmetric errors (e.g. the standard deviation over seeds), one per point; nil for none.
	Err []float64
}

// Lines draws one line with markers per series, with error bars where Err is given: metrics against the
// poisoning rate, the number of epochs or any other swept value. [WithLogX] gives a logarithmic x axis
// (poisoning rates), [WithYRange] fixes the y range (e.g. 0–1 for Hit@K).
//
// Default labels: as given; legend under the plot.
func Lines(title, xLabel, yLabel string, series []LineSeries, opts ...Option) (*kernelext.Figure, error) {
	if len(series) == 0 {
		return nil, errors.New("plots.Lines: no series")
	}
	cfg := newConfig(title, xLabel, yLabel, true, true, opts)
	cfg.legendBelow = true
	p := NewPlot(title, cfg.xLabel, cfg.yLabel)
	if cfg.logX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = logTicks125{}
	}
	drawn := false
	for i, s := range series {
		if len(s.X) != len(s.Y) || (s.Err != nil && len(s.Err) != len(s.Y)) {
			return nil, fmt.Errorf("plots.Lines: series %q: %d x values, %d y values, %d errors", s.Name, len(s.X), len(s.Y), len(s.Err))
		}
		var pts plotter.XYs
		var errPts xyErrs
		for j := range s.X {
			if !finite(s.X[j]) || !finite(s.Y[j]) || (cfg.logX && s.X[j] <= 0) {
				continue
			}
			pts = append(pts, plotter.XY{X: s.X[j], Y: s.Y[j]})
			if s.Err != nil && finite(s.Err[j]) {
				errPts = append(errPts, xyErr{s.X[j], s.Y[j], math.Abs(s.Err[j])})
			}
		}
		drawn = drawn || len(pts) > 0
		if err := addLinePoints(p, s.Name, i, pts, errPts); err != nil {
			return nil, fmt.Errorf("plots.Lines: %w", err)
		}
	}
	if !drawn {
		return nil, errors.New("plots.Lines: no finite points")
	}
	if ticks := dataXTicks(series); ticks != nil {
		p.X.Tick.Marker = plot.ConstantTicks(ticks)
	}
	return cfg.render(p)
}

// dataXTicks returns one labelled tick per x value when the series share at most ten distinct x values (rates,
// epochs of a sweep), so that every point's x can be read; nil otherwise.
func dataXTicks(series []LineSeries) []plot.Tick {
	seen := map[float64]bool{}
	for _, s := range series {
		for _, x := range s.X {
			if finite(x) {
				seen[x] = true
			}
		}
	}
	if len(seen) == 0 || len(seen) > 10 {
		return nil
	}
	var ticks []plot.Tick
	for x := range seen {
		ticks = append(ticks, plot.Tick{Value: x, Label: strconv.FormatFloat(x, 'g', 4, 64)})
	}
	slices.SortFunc(ticks, func(a, b plot.Tick) int { return cmp.Compare(a.Value, b.Value) })
	return ticks
}

// Heatmap draws a matrix of values in [lo, hi] as coloured cells with the value printed in each, rows top to
// bottom and columns left to right: the paper's goal matrix (row = source class A, column = target class B,
// value = Hit@10). NaN cells (e.g. the diagonal A = B) are left blank. The colour scale runs from white (lo) to
// the palette's first colour (hi).
func Heatmap(title, xLabel, yLabel string, rows, cols []string, values [][]float64, lo, hi float64, opts ...Option) (*kernelext.Figure, error) {
	if len(rows) == 0 || len(cols) == 0 {
		return nil, errors.New("plots.Heatmap: no rows or columns")
	}
	if len(values) != len(rows) {
		return nil, fmt.Errorf("plots.Heatmap: %d rows of values for %d row labels", len(values), len(rows))
	}
	for i, r := range values {
		if len(r) != len(cols) {
			return nil, fmt.Errorf("plots.Heatmap: row %q has %d values for %d columns", rows[i], len(r), len(cols))
		}
	}
	if !(hi > lo) {
		return nil, fmt.Errorf("plots.Heatmap: empty colour range [%v, %v]", lo, hi)
	}
	opts = append([]Option{WithSize(DefaultStyle.Width+vg.Inch/2, DefaultStyle.Width)}, opts...)
	cfg := newConfig(title, xLabel, yLabel, true, false, opts)
	p := newPlot(title, cfg.xLabel, cfg.yLabel, false)
	p.Add(&cells{values: values, lo: lo, hi: hi})
	labelTicks := func(labels []string, flip bool) []plot.Tick {
		t := make([]plot.Tick, len(labels))
		for i, l := range labels {
			v := float64(i)
			if flip {
				v = float64(len(labels) - 1 - i)
			}
			t[i] = plot.Tick{Value: v, Label: l}
		}
		return t
	}
	p.X.Tick.Marker = plot.ConstantTicks(labelTicks(cols, false))
	p.Y.Tick.Marker = plot.ConstantTicks(labelTicks(rows, true))
	p.X.Tick.Label.Rotation = math.Pi / 4
	p.X.Tick.Label.XAlign, p.X.Tick.Label.YAlign = text.XRight, text.YCenter
	p.X.Min, p.X.Max = -0.5, float64(len(cols))-0.5
	p.Y.Min, p.Y.Max = -0.5, float64(len(rows))-0.5
	cfg.apply(p)
	p.X.Min, p.X.Max = -0.5, float64(len(cols))-0.5
	p.Y.Min, p.Y.Max = -0.5, float64(len(rows))-0.5
	return Render(cfg.name, p, cfg.width, cfg.height)
}

// cells is the plotter of Heatmap.
type cells struct {
	values [][]float64
	lo, hi float64
}

func (c *cells) color(v float64) color.Color {
	t := math.Max(0, math.Min(1, (v-c.lo)/(c.hi-c.lo)))
	r, g, b, _ := DefaultStyle.Color(0).RGBA()
	mix := func(x uint32) uint8 { return uint8(255 - t*(255-float64(x>>8))) }
	return color.RGBA{mix(r), mix(g), mix(b), 0xFF}
}

// Plot draws the cells and their values.
func (c *cells) Plot(dc draw.Canvas, plt *plot.Plot) {
	trX, trY := plt.Transforms(&dc)
	n := len(c.values)
	sty := plt.Legend.TextStyle
	sty.XAlign, sty.YAlign = text.XCenter, text.YCenter
	for i, row := range c.values {
		y := float64(n - 1 - i)
		for j, v := range row {
			if !finite(v) {
				continue
			}
			x := float64(j)
			rect := vg.Rectangle{Min: vg.Point{X: trX(x - 0.5), Y: trY(y - 0.5)}, Max: vg.Point{X: trX(x + 0.5), Y: trY(y + 0.5)}}
			dc.FillPolygon(c.color(v), []vg.Point{rect.Min, {X: rect.Max.X, Y: rect.Min.Y}, rect.Max, {X: rect.Min.X, Y: rect.Max.Y}})
			sty.Color = color.Black
			if (v-c.lo)/(c.hi-c.lo) > 0.6 {
				sty.Color = color.White
			}
			dc.FillText(sty, vg.Point{X: trX(x), Y: trY(y)}, fmt.Sprintf("%.2f", v))
		}
	}
}

// DataRange covers every cell.
func (c *cells) DataRange() (xmin, xmax, ymin, ymax float64) {
	cols := 0
	if len(c.values) > 0 {
		cols = len(c.values[0])
	}
	return -0.5, float64(cols) - 0.5, -0.5, float64(len(c.values)) - 0.5
}
