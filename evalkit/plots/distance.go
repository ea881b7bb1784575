package plots

import (
	"errors"
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/mmpoison/mmpoison/kernelext"
)

// DistanceHistogram draws how a data-side defense scores the training pairs: the distributions of the clean
// and of the poisoned pairs' values (cosine distances for the paper's filter, detector scores for the k-distance
// detector) as histograms on shared bins, each normalised to its own number of pairs (poison is a small
// fraction of the data and would vanish in raw counts), with the threshold γ marked by a dashed vertical line.
// The clean pairs are filled bars, the poisoned ones an outline drawn over them, so neither hides the other;
// the legend stands to the right of the plot area.
//
// xLabel names the values, for instance "cosine distance 1 − cos(image, caption)" or "neighbour-contrast
// score"; the x axis covers every finite value, negative ones included, and γ. The y axis is the fraction of
// pairs and never goes above 1. The figure's name is the title ("distance-histogram" when the title is empty)
// unless [WithName] sets it.
//
// poisoned[i] says whether pair i is poisoned; nil means all pairs are clean. NaN and infinite values are left
// out (the legend says how many); a NaN gamma draws no line. It returns an error when poisoned and values have
// different lengths or no value is finite.
func DistanceHistogram(title, xLabel string, values []float64, poisoned []bool, gamma float64, opts ...Option) (*kernelext.Figure, error) {
	p, cfg, err := distancePlot(title, xLabel, values, poisoned, gamma, opts)
	if err != nil {
		return nil, err
	}
	return cfg.render(p)
}

// distancePlot builds DistanceHistogram's plot and configuration.
func distancePlot(title, xLabel string, values []float64, poisoned []bool, gamma float64, opts []Option) (*plot.Plot, *config, error) {
	if poisoned != nil && len(poisoned) != len(values) {
		return nil, nil, fmt.Errorf("plots.DistanceHistogram: %d values, %d poisoned flags", len(values), len(poisoned))
	}
	var groups [2][]float64 // clean, poisoned
	skipped := 0
	for i, v := range values {
		if !finite(v) {
			skipped++
			continue
		}
		g := 0
		if poisoned != nil && poisoned[i] {
			g = 1
		}
		groups[g] = append(groups[g], v)
	}
	if len(groups[0])+len(groups[1]) == 0 {
		return nil, nil, errors.New("plots.DistanceHistogram: no finite value")
	}
	name := title
	if name == "" {
		name = "distance-histogram"
	}
	cfg := newConfig(title, xLabel, "fraction of pairs", true, false, append([]Option{WithName(name)}, opts...))
	if cfg.width == DefaultStyle.Width {
		cfg.width = DefaultStyle.Width * 5 / 4 // The legend's strip beside the plot area.
	}
	cfg.legendOutside = true
	hasGamma := finite(gamma)
	edges := distanceEdges(groups, gamma, hasGamma)

	p := NewPlot(title, cfg.xLabel, cfg.yLabel)
	yTop := 0.0
	for g, vals := range groups {
		if len(vals) == 0 {
			continue
		}
		h, mean := fractionHistogram(vals, edges)
		for _, b := range h.Bins {
			yTop = max(yTop, b.Weight)
		}
		c := DefaultStyle.Color(g)
		if g == 0 {
			h.FillColor = withAlpha(c, DefaultStyle.FillAlpha)
			h.LineStyle = draw.LineStyle{Color: c, Width: DefaultStyle.LineWidth / 3}
		} else {
			h.FillColor = nil
			h.LineStyle = draw.LineStyle{Color: c, Width: DefaultStyle.LineWidth}
		}
		p.Add(h)
		p.Legend.Add(fmt.Sprintf("%s (n=%d, mean %.3f)", [2]string{"clean", "poisoned"}[g], len(vals), mean), h)
	}
	if hasGamma {
		l, err := plotter.NewLine(plotter.XYs{{X: gamma, Y: 0}, {X: gamma, Y: yTop}})
		if err != nil {
			return nil, nil, fmt.Errorf("plots.DistanceHistogram: %w", err)
		}
		l.LineStyle = draw.LineStyle{Color: color.Black, Width: DefaultStyle.LineWidth,
			Dashes: []vg.Length{vg.Points(4), vg.Points(2)}}
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("γ = %.3f", gamma), l)
	}
	if skipped > 0 {
		p.Legend.Add(fmt.Sprintf("(%d non-finite values left out)", skipped))
	}
	p.X.Min, p.X.Max = edges[0], edges[len(edges)-1]
	p.Y.Min, p.Y.Max = 0, min(yTop*1.05, 1)
	return p, cfg, nil
}

// distanceEdges returns the shared bin edges of the groups' values: from just below the smallest value (or γ)
// to just above the largest, about √n bins (between 10 and 50) of equal width.
func distanceEdges(groups [2][]float64, gamma float64, hasGamma bool) []float64 {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, vals := range groups {
		for _, v := range vals {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	if hasGamma {
		lo, hi = min(lo, gamma), max(hi, gamma)
	}
	if pad := (hi - lo) * 0.02; pad > 0 {
		lo, hi = lo-pad, hi+pad
	} else {
		lo, hi = lo-0.05, hi+0.05
	}
	bins := min(max(int(math.Round(math.Sqrt(float64(len(groups[0])+len(groups[1]))))), 10), 50)
	edges := make([]float64, bins+1)
	for b := range edges {
		edges[b] = lo + float64(b)*(hi-lo)/float64(bins)
	}
	edges[bins] = hi
	return edges
}

// fractionHistogram bins vals (all within the edges) and normalises the bins to fractions of len(vals); it
// returns the histogram, without its empty bins (so that an outline does not run along the axis), and the mean
// of vals.
func fractionHistogram(vals, edges []float64) (*plotter.Histogram, float64) {
	bins := len(edges) - 1
	width := (edges[bins] - edges[0]) / float64(bins)
	h := &plotter.Histogram{Bins: make([]plotter.HistogramBin, bins)}
	for b := range h.Bins {
		h.Bins[b].Min, h.Bins[b].Max = edges[b], edges[b+1]
	}
	mean := 0.0
	for _, v := range vals {
		b := min(max(int((v-edges[0])/width), 0), bins-1)
		h.Bins[b].Weight++
		mean += v
	}
	kept := h.Bins[:0]
	for _, b := range h.Bins {
		if b.Weight > 0 {
			b.Weight /= float64(len(vals))
			kept = append(kept, b)
		}
	}
	h.Bins = kept
	return h, mean / float64(len(vals))
}
