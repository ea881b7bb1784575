package plots

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/mmpoison/mmpoison/kernelext"
)

// HitSeries is one Hit@K curve: Hits[i] is Hit@Ks[i]; Err, when not nil,
// gives a symmetric error (for instance the standard deviation over seeds)
// for each point.
type HitSeries struct {
	// Name labels the series in the legend.
	Name string
	// Ks are the cut-offs (x values).
	Ks []int
	// Hits are Hit@K for each K (NaN points are skipped).
	Hits []float64
	// Err are optional symmetric errors, one per point (nil for none).
	Err []float64
}

// HitAtKCurve draws Hit@K against K, one line with markers per series
// (distinct colours, markers and dashes), with error bars when Err is given.
// The y axis spans [0, 1] and the x ticks are the Ks used.
//
// Default labels: x "K", y "Hit@K"; legend under the plot.
func HitAtKCurve(title string, series []HitSeries, opts ...Option) (*kernelext.Figure, error) {
	if len(series) == 0 {
		return nil, errors.New("plots.HitAtKCurve: no series")
	}
	cfg := newConfig(title, "K", "Hit@K", false, false, opts)
	cfg.legendBelow = true
	p := NewPlot(title, cfg.xLabel, cfg.yLabel)
	var allKs []int
	for i, s := range series {
		if len(s.Ks) != len(s.Hits) || (s.Err != nil && len(s.Err) != len(s.Hits)) {
			return nil, fmt.Errorf("plots.HitAtKCurve: series %q: %d Ks, %d hits, %d errors", s.Name, len(s.Ks), len(s.Hits), len(s.Err))
		}
		var pts plotter.XYs
		var errPts xyErrs
		for j, k := range s.Ks {
			if !finite(s.Hits[j]) {
				continue
			}
			pts = append(pts, plotter.XY{X: float64(k), Y: s.Hits[j]})
			if s.Err != nil && finite(s.Err[j]) {
				errPts = append(errPts, xyErr{float64(k), s.Hits[j], math.Abs(s.Err[j])})
			}
			allKs = append(allKs, k)
		}
		if err := addLinePoints(p, s.Name, i, pts, errPts); err != nil {
			return nil, fmt.Errorf("plots.HitAtKCurve: %w", err)
		}
	}
	slices.Sort(allKs)
	allKs = slices.Compact(allKs)
	ticks := make([]plot.Tick, len(allKs))
	for i, k := range allKs {
		ticks[i] = plot.Tick{Value: float64(k), Label: fmt.Sprint(k)}
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	if len(allKs) > 0 {
		p.X.Min = 0
	}
	p.Y.Min, p.Y.Max = 0, 1
	p.Y.Tick.Marker = plot.ConstantTicks(fractionTicks(1))
	return cfg.render(p)
}

// fractionTicks marks every 0.1 up to top (at most 1), labelling 0, 0.2, 0.4, …
func fractionTicks(top float64) []plot.Tick {
	var t []plot.Tick
	for i := 0; i <= 10 && float64(i)/10 <= top+1e-9; i++ {
		v := float64(i) / 10
		label := ""
		if i%2 == 0 {
			label = fmt.Sprintf("%.1f", v)
		}
		t = append(t, plot.Tick{Value: v, Label: label})
	}
	return t
}

// addLinePoints adds a line with markers (and error bars) for series i.
func addLinePoints(p *plot.Plot, name string, i int, pts plotter.XYs, errPts xyErrs) error {
	if len(pts) == 0 {
		return nil
	}
	l, sc, err := plotter.NewLinePoints(pts)
	if err != nil {
		return err
	}
	l.LineStyle = lineStyle(i)
	sc.GlyphStyle = glyphStyle(i)
	p.Add(l, sc)
	if len(errPts) > 0 {
		eb, err := plotter.NewYErrorBars(errPts)
		if err != nil {
			return err
		}
		eb.LineStyle = draw.LineStyle{Color: DefaultStyle.Color(i), Width: DefaultStyle.LineWidth * 2 / 3}
		eb.CapWidth = vg.Points(5)
		p.Add(eb)
	}
	p.Legend.Add(name, l, sc)
	return nil
}

type xyErr struct{ x, y, err float64 }

// xyErrs implements plotter.XYer and plotter.YErrorer.
type xyErrs []xyErr

func (e xyErrs) Len() int                         { return len(e) }
func (e xyErrs) XY(i int) (float64, float64)      { return e[i].x, e[i].y }
func (e xyErrs) YError(i int) (low, high float64) { return e[i].err, e[i].err }

// BarSeries is one series of a grouped bar chart: Values[i] belongs to
// category i; Err, when not nil, gives a symmetric error per value.
type BarSeries struct {
	// Name labels the series in the legend.
	Name string
	// Values holds one bar height per category (NaN bars are skipped).
	Values []float64
	// Err are optional symmetric errors, one per bar (nil for none).
	Err []float64
}

// Bars draws a grouped bar chart: one group per category (for instance
// "TR@1", "TR@5", ..., "IR@10"), one bar per series in each group (for
// instance "clean" and "poisoned"), with error bars when Err is given. The
// y axis starts at 0 and ends just above the tallest bar (WithYRange fixes
// it); the legend stands under the plot, so it never covers a bar, and the
// default width is a quarter wider than other figures'.
//
// Default labels: no x label, y "Recall@K".
func Bars(title string, categories []string, series []BarSeries, opts ...Option) (*kernelext.Figure, error) {
	if len(categories) == 0 || len(series) == 0 {
		return nil, errors.New("plots.Bars: no categories or no series")
	}
	for _, s := range series {
		if len(s.Values) != len(categories) || (s.Err != nil && len(s.Err) != len(categories)) {
			return nil, fmt.Errorf("plots.Bars: series %q: %d values, %d errors for %d categories",
				s.Name, len(s.Values), len(s.Err), len(categories))
		}
	}
	cfg := newConfig(title, "", "Recall@K", true, false, opts)
	if cfg.width == DefaultStyle.Width {
		cfg.width = DefaultStyle.Width * 5 / 4 // Room for groups of bars.
	}
	p := newPlot(title, cfg.xLabel, cfg.yLabel, false)
	const groupWidth = 0.8
	barW := groupWidth / float64(len(series))
	yTop := 0.0
	for i, s := range series {
		gb := &groupedBars{
			values: s.Values, errs: s.Err,
			offset: -groupWidth/2 + barW*(float64(i)+0.5), width: barW,
			fill: DefaultStyle.Color(i),
			line: draw.LineStyle{Color: DefaultStyle.Color(i), Width: DefaultStyle.LineWidth * 2 / 3},
		}
		for j, v := range s.Values {
			if finite(v) {
				top := v
				if s.Err != nil && finite(s.Err[j]) {
					top += math.Abs(s.Err[j])
				}
				yTop = max(yTop, top)
			}
		}
		p.Add(gb)
		p.Legend.Add(s.Name, gb)
	}
	p.NominalX(categories...)
	p.X.Min, p.X.Max = -0.5, float64(len(categories))-0.5
	p.Y.Min = 0
	if yTop > 0 {
		p.Y.Max = yTop * 1.05
	}
	cfg.legendBelow = true
	return cfg.render(p)
}

// groupedBars draws one series of a grouped bar chart with bar widths in
// data units (plotter.BarChart uses absolute widths, which do not line up
// with data-unit error bars).
type groupedBars struct {
	values, errs  []float64
	offset, width float64
	fill          color.Color
	line          draw.LineStyle
}

func (b *groupedBars) Plot(c draw.Canvas, plt *plot.Plot) {
	trX, trY := plt.Transforms(&c)
	for j, v := range b.values {
		if !finite(v) {
			continue
		}
		x0, x1 := trX(float64(j)+b.offset-b.width/2), trX(float64(j)+b.offset+b.width/2)
		y0, y1 := trY(0), trY(v)
		pts := []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}}
		c.FillPolygon(b.fill, c.ClipPolygonY(pts))
		c.StrokeLines(b.line, c.ClipLinesY(append(pts, pts[0]))...)
		if b.errs == nil || !finite(b.errs[j]) {
			continue
		}
		e := math.Abs(b.errs[j])
		xm := trX(float64(j) + b.offset)
		lo, hi := trY(math.Max(v-e, 0)), trY(v+e)
		capW := (x1 - x0) / 4
		black := draw.LineStyle{Color: color.Black, Width: DefaultStyle.AxisWidth * 1.5}
		c.StrokeLine2(black, xm, lo, xm, hi)
		c.StrokeLine2(black, xm-capW, lo, xm+capW, lo)
		c.StrokeLine2(black, xm-capW, hi, xm+capW, hi)
	}
}

func (b *groupedBars) DataRange() (xmin, xmax, ymin, ymax float64) {
	xmin, xmax = -0.5, float64(len(b.values))-0.5
	for j, v := range b.values {
		if !finite(v) {
			continue
		}
		top, bottom := v, v
		if b.errs != nil && finite(b.errs[j]) {
			top += math.Abs(b.errs[j])
			bottom -= math.Abs(b.errs[j])
		}
		ymax = max(ymax, top)
		ymin = min(ymin, bottom, 0)
	}
	return xmin, xmax, ymin, ymax
}

func (b *groupedBars) Thumbnail(c *draw.Canvas) {
	pts := []vg.Point{
		{X: c.Min.X, Y: c.Min.Y}, {X: c.Min.X, Y: c.Max.Y},
		{X: c.Max.X, Y: c.Max.Y}, {X: c.Max.X, Y: c.Min.Y},
	}
	c.FillPolygon(b.fill, c.ClipPolygonY(pts))
	c.StrokeLines(b.line, c.ClipLinesY(append(pts, pts[0]))...)
}

// XYSeries is one curve: Y[i] at X[i].
type XYSeries struct {
	// Name labels the series in the legend.
	Name string
	// X and Y are the coordinates (points with NaN or Inf are skipped).
	X, Y []float64
}

// LossCurve draws one line per series, for instance the training loss
// against the step for several runs, or the clean and poisoned losses.
// [WithLogY] gives a logarithmic y axis.
//
// Default labels: x "step", y "loss"; legend under the plot.
func LossCurve(title string, series []XYSeries, opts ...Option) (*kernelext.Figure, error) {
	if len(series) == 0 {
		return nil, errors.New("plots.LossCurve: no series")
	}
	cfg := newConfig(title, "step", "loss", true, false, opts)
	cfg.legendBelow = true
	p := NewPlot(title, cfg.xLabel, cfg.yLabel)
	if cfg.logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = logTicks125{}
	}
	drawn := false
	for i, s := range series {
		if len(s.X) != len(s.Y) {
			return nil, fmt.Errorf("plots.LossCurve: series %q: %d x values, %d y values", s.Name, len(s.X), len(s.Y))
		}
		var pts plotter.XYs
		for j := range s.X {
			if finite(s.X[j]) && finite(s.Y[j]) && (!cfg.logY || s.Y[j] > 0) {
				pts = append(pts, plotter.XY{X: s.X[j], Y: s.Y[j]})
			}
		}
		if len(pts) == 0 {
			continue
		}
		drawn = true
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, fmt.Errorf("plots.LossCurve: %w", err)
		}
		l.LineStyle = lineStyle(i)
		p.Add(l)
		p.Legend.Add(s.Name, l)
	}
	if !drawn {
		return nil, errors.New("plots.LossCurve: no finite points")
	}
	return cfg.render(p)
}

// logTicks125 marks every m·10^k on a log axis, labelling m = 1, 2 and 5.
type logTicks125 struct{}

func (logTicks125) Ticks(min, max float64) []plot.Tick {
	if !(min > 0) || !(max > min) {
		return nil
	}
	var out []plot.Tick
	for k := math.Floor(math.Log10(min)); k <= math.Ceil(math.Log10(max)); k++ {
		dec := math.Pow(10, k)
		for m := 1; m <= 9; m++ {
			v := float64(m) * dec
			if v < min*(1-1e-9) || v > max*(1+1e-9) {
				continue
			}
			label := ""
			if m == 1 || m == 2 || m == 5 {
				label = strconv.FormatFloat(v, 'g', 3, 64)
			}
			out = append(out, plot.Tick{Value: v, Label: label})
		}
	}
	return out
}
