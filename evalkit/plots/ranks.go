package plots

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/mmpoison/mmpoison/kernelext"
)

// RankSeries is one MinRank distribution (for instance "clean" or
// "poisoned"): the per-query minranks.
type RankSeries struct {
	// Name labels the series in the legend.
	Name string
	// Ranks are the per-query minranks (negative values are ignored).
	Ranks []int
}

// RankHistogram draws MinRank distributions as step outlines (no fill, one colour and dash pattern per series,
// so that no series hides another), each bin holding the fraction of that series' queries, so that series of
// different sizes compare; a thin dotted vertical line marks each median and the legend, under the plot, gives
// median, mean and n. The y axis ends at the tallest bin, never above 1.
//
// By default the rank axis is linear from 0 to the largest rank, with about
// bins bins (bins ≤ 0 means 25) of equal, round integer width (1, 2 or 5
// times a power of ten): ranks 0..250 get bins 10 ranks wide, and a
// well-poisoned model shows as a spike in the first bin. Each integer rank r occupies [r−0.5, r+0.5), so bins of width 1 are
// centred on their rank. [WithLogRanks] switches to a logarithmic axis with
// about bins geometric bins. Negative ranks are ignored.
//
// Default labels: x "MinRank", y "fraction of queries".
func RankHistogram(title string, series []RankSeries, bins int, opts ...Option) (*kernelext.Figure, error) {
	if len(series) == 0 {
		return nil, errors.New("plots.RankHistogram: no series")
	}
	if bins <= 0 {
		bins = 25
	}
	maxRank, total := 0, 0
	for _, s := range series {
		for _, r := range s.Ranks {
			if r >= 0 {
				maxRank = max(maxRank, r)
				total++
			}
		}
	}
	if total == 0 {
		return nil, errors.New("plots.RankHistogram: no ranks")
	}
	cfg := newConfig(title, "MinRank", "fraction of queries", true, false, opts)
	cfg.legendBelow = true
	edges := linearEdges(maxRank, bins)
	if cfg.logRanks {
		edges = geometricEdges(maxRank, bins)
	}
	p := NewPlot(title, cfg.xLabel, cfg.yLabel)
	yTop := 0.0
	var medians []plotter.XY // x: the median, y: the series
	for i, s := range series {
		h := &stepBins{edges: edges, weights: make([]float64, len(edges)-1), line: lineStyle(i)}
		var valid []int
		for _, r := range s.Ranks {
			if r >= 0 {
				b, found := slices.BinarySearch(edges, r)
				if !found {
					b--
				}
				h.weights[b]++
				valid = append(valid, r)
			}
		}
		label := s.Name
		if len(valid) > 0 {
			for b := range h.weights {
				h.weights[b] /= float64(len(valid))
				yTop = max(yTop, h.weights[b])
			}
			slices.Sort(valid)
			m := median(valid)
			medians = append(medians, plotter.XY{X: m, Y: float64(i)})
			label = fmt.Sprintf("%s (median %s, mean %.1f, n=%d)", s.Name, trimFloat(m), meanInts(valid), len(valid))
		}
		p.Add(h)
		p.Legend.Add(label, h)
	}
	p.Y.Min, p.Y.Max = 0, min(1, yTop*1.08)
	for _, m := range medians {
		l, err := plotter.NewLine(plotter.XYs{{X: m.X, Y: 0}, {X: m.X, Y: p.Y.Max}})
		if err != nil {
			return nil, fmt.Errorf("plots.RankHistogram: %w", err)
		}
		l.LineStyle = draw.LineStyle{Color: DefaultStyle.Color(int(m.Y)), Width: DefaultStyle.LineWidth * 2 / 3,
			Dashes: []vg.Length{vg.Points(1), vg.Points(2)}}
		p.Add(l)
	}
	lo, hi := -0.5, float64(edges[len(edges)-1])-0.5
	p.X.Min, p.X.Max = lo, hi
	if cfg.logRanks {
		p.X.Scale = rankLogScale{}
		p.X.Tick.Marker = plot.ConstantTicks(rankLogTicks(maxRank))
	} else {
		p.X.Min, p.X.Max = lo-0.01*(hi-lo), hi+0.01*(hi-lo) // The outer bars' outlines stay inside the axes.
		p.X.Tick.Marker = integerTicks{}
	}
	p.Y.Tick.Marker = plot.ConstantTicks(fractionTicks(p.Y.Max))
	return cfg.render(p)
}

// stepBins is one series of RankHistogram drawn as a step outline: in bin b (ranks edges[b] … edges[b+1]−1) a
// horizontal line at height weights[b], joined by vertical lines, from and back to 0 at the outer edges.
type stepBins struct {
	edges   []int
	weights []float64
	line    draw.LineStyle
}

func (h *stepBins) Plot(c draw.Canvas, plt *plot.Plot) {
	trX, trY := plt.Transforms(&c)
	x := func(b int) vg.Length { return trX(float64(h.edges[b]) - 0.5) }
	pts := []vg.Point{{X: x(0), Y: trY(0)}}
	for b, w := range h.weights {
		pts = append(pts, vg.Point{X: x(b), Y: trY(w)}, vg.Point{X: x(b + 1), Y: trY(w)})
	}
	pts = append(pts, vg.Point{X: x(len(h.weights)), Y: trY(0)})
	c.StrokeLines(h.line, c.ClipLinesXY(pts)...)
}

func (h *stepBins) DataRange() (xmin, xmax, ymin, ymax float64) {
	return float64(h.edges[0]) - 0.5, float64(h.edges[len(h.edges)-1]) - 0.5, 0, slices.Max(h.weights)
}

func (h *stepBins) Thumbnail(c *draw.Canvas) {
	y := (c.Min.Y + c.Max.Y) / 2
	c.StrokeLine2(h.line, c.Min.X, y, c.Max.X, y)
}

// linearEdges returns integer bin edges 0, w, 2w, ... covering 0..maxRank,
// with w the smallest "nice" width (1, 2 or 5 times a power of ten) giving
// at most about bins bins.
func linearEdges(maxRank, bins int) []int {
	w := niceCeil(float64(maxRank) / float64(bins))
	edges := []int{0}
	for e := w; ; e += w {
		edges = append(edges, e)
		if e > maxRank {
			return edges
		}
	}
}

// niceCeil returns the smallest of 1, 2, 5, 10, 20, 50, ... that is ≥ x.
func niceCeil(x float64) int {
	for p := 1; ; p *= 10 {
		for _, m := range []int{1, 2, 5} {
			if float64(m*p) >= x {
				return m * p
			}
		}
	}
}

// geometricEdges returns integer bin edges, uniform in log(rank+1), covering
// 0..maxRank with at most bins bins.
func geometricEdges(maxRank, bins int) []int {
	top := float64(maxRank + 2)
	edges := []int{0}
	for k := 1; k <= bins; k++ {
		e := int(math.Round(math.Pow(top, float64(k)/float64(bins)))) - 1
		if e > edges[len(edges)-1] {
			edges = append(edges, e)
		}
	}
	if edges[len(edges)-1] <= maxRank {
		edges = append(edges, maxRank+1)
	}
	return edges
}

// integerTicks are plot.DefaultTicks restricted to integer values (ranks).
type integerTicks struct{}

func (integerTicks) Ticks(min, max float64) []plot.Tick {
	var out []plot.Tick
	for _, t := range (plot.DefaultTicks{}).Ticks(min, max) {
		if t.Value != math.Trunc(t.Value) {
			continue
		}
		if t.Label != "" {
			t.Label = fmt.Sprint(int(t.Value))
		}
		out = append(out, t)
	}
	if len(out) < 2 {
		out = out[:0]
		for v := math.Ceil(min); v <= max; v++ {
			out = append(out, plot.Tick{Value: v, Label: fmt.Sprint(int(v))})
		}
	}
	return out
}

// rankLogScale maps a rank x to log(x + 1.5), so that the unit interval
// [-0.5, 0.5) of rank 0 is visible on a log axis.
type rankLogScale struct{}

func (rankLogScale) Normalize(min, max, x float64) float64 {
	lo, hi := math.Log(min+1.5), math.Log(max+1.5)
	return (math.Log(x+1.5) - lo) / (hi - lo)
}

// rankLogTicks returns ticks 0, 1, 2, 5, 10, 20, 50, ... up to maxRank.
func rankLogTicks(maxRank int) []plot.Tick {
	ticks := []plot.Tick{{Value: 0, Label: "0"}}
	for dec := 1; dec <= maxRank; dec *= 10 {
		for _, m := range []int{1, 2, 5} {
			if v := m * dec; v <= maxRank+1 {
				ticks = append(ticks, plot.Tick{Value: float64(v), Label: fmt.Sprint(v)})
			}
		}
	}
	return ticks
}

func median(sorted []int) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return float64(sorted[n/2])
	}
	return float64(sorted[n/2-1]+sorted[n/2]) / 2
}

func meanInts(xs []int) float64 {
	s := 0.0
	for _, x := range xs {
		s += float64(x)
	}
	return s / float64(len(xs))
}

func trimFloat(x float64) string {
	if x == math.Trunc(x) {
		return fmt.Sprintf("%.0f", x)
	}
	return fmt.Sprintf("%.1f", x)
}
