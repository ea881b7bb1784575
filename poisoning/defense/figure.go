package defense

import (
	"errors"
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/mmpoison/mmpoison/evalkit/plots"
	"github.com/mmpoison/mmpoison/kernelext"
)

// DistanceHistogram draws the distributions of the clean and the poisoned pairs' distances as overlaid,
// semi-transparent histograms on shared bins, each normalised to its own number of pairs (poison is a small
// fraction of the data and would vanish in raw counts), with γ marked by a dashed vertical line. It uses the
// evalkit/plots style: palette colours 0 (clean) and 1 (poisoned), [plots.NewPlot] and [plots.Render], so the
// figure has SVG, PDF and PNG content; its name is the title ("distance-histogram" when the title is empty).
//
// poisoned[i] says whether pair i is poisoned; nil means all pairs are clean. NaN and infinite distances are
// left out (the legend says how many); a NaN gamma draws no line. It returns an error when poisoned and dist
// have different lengths or no distance is finite.
func DistanceHistogram(dist []float64, poisoned []bool, gamma float64, title string) (*kernelext.Figure, error) {
	if poisoned != nil && len(poisoned) != len(dist) {
		return nil, fmt.Errorf("defense.DistanceHistogram: %d distances, %d poisoned flags", len(dist), len(poisoned))
	}
	var groups [2][]float64 // clean, poisoned
	skipped := 0
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, d := range dist {
		if math.IsNaN(d) || math.IsInf(d, 0) {
			skipped++
			continue
		}
		g := 0
		if poisoned != nil && poisoned[i] {
			g = 1
		}
		groups[g] = append(groups[g], d)
		lo, hi = min(lo, d), max(hi, d)
	}
	if len(groups[0])+len(groups[1]) == 0 {
		return nil, errors.New("defense.DistanceHistogram: no finite distance")
	}
	hasGamma := !math.IsNaN(gamma) && !math.IsInf(gamma, 0)
	if hasGamma {
		lo, hi = min(lo, gamma), max(hi, gamma)
	}
	if pad := (hi - lo) * 0.02; pad > 0 {
		lo, hi = lo-pad, hi+pad
	} else {
		lo, hi = lo-0.05, hi+0.05
	}
	n := len(groups[0]) + len(groups[1])
	bins := min(max(int(math.Round(math.Sqrt(float64(n)))), 10), 50)
	width := (hi - lo) / float64(bins)

	name := title
	if name == "" {
		name = "distance-histogram"
	}
	p := plots.NewPlot(title, "cosine distance 1 − cos(image, caption)", "fraction of pairs")
	yTop := 0.0
	for g, vals := range groups {
		if len(vals) == 0 {
			continue
		}
		h := &plotter.Histogram{Bins: make([]plotter.HistogramBin, bins)}
		for b := range h.Bins {
			h.Bins[b].Min, h.Bins[b].Max = lo+float64(b)*width, lo+float64(b+1)*width
		}
		mean := 0.0
		for _, d := range vals {
			b := min(int((d-lo)/width), bins-1)
			h.Bins[b].Weight++
			mean += d
		}
		mean /= float64(len(vals))
		for b := range h.Bins {
			h.Bins[b].Weight /= float64(len(vals))
			yTop = max(yTop, h.Bins[b].Weight)
		}
		c := plots.DefaultStyle.Color(g)
		h.FillColor = withAlpha(c, plots.DefaultStyle.FillAlpha)
		h.LineStyle = draw.LineStyle{Color: c, Width: plots.DefaultStyle.LineWidth * 2 / 3}
		p.Add(h)
		p.Legend.Add(fmt.Sprintf("%s (n=%d, mean %.3f)", [2]string{"clean", "poisoned"}[g], len(vals), mean), h)
	}
	if hasGamma {
		l, err := plotter.NewLine(plotter.XYs{{X: gamma, Y: 0}, {X: gamma, Y: yTop * 1.03}})
		if err != nil {
			return nil, fmt.Errorf("defense.DistanceHistogram: %w", err)
		}
		l.LineStyle = draw.LineStyle{Color: color.Black, Width: plots.DefaultStyle.LineWidth,
			Dashes: []vg.Length{vg.Points(4), vg.Points(2)}}
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("γ = %.3f", gamma), l)
	}
	if skipped > 0 {
		p.Legend.Add(fmt.Sprintf("(%d non-finite distances left out)", skipped))
	}
	p.X.Min, p.X.Max = lo, hi
	p.Y.Min = 0
	p.Y.Max = yTop * 1.45 // headroom for the legend
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.XOffs = vg.Points(4)
	fig, err := plots.Render(name, p, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("defense.DistanceHistogram: %w", err)
	}
	return fig, nil
}

// withAlpha returns the opaque colour c with opacity a (as evalkit/plots does for its histograms).
func withAlpha(c color.Color, a uint8) color.Color {
	r, g, b, _ := c.RGBA()
	return color.NRGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(b >> 8), A: a}
}
