package plots

import (
	"bytes"
	"image/png"
	"math"
	"strings"
	"testing"
)

// filterDistances are ten pairs' distances: pairs 1, 4 and 8 are poisoned, pair 5 is a clean outlier above
// γ = 0.8; a NaN distance is appended as an eleventh, clean pair.
func filterDistances() ([]float64, []bool) {
	dist := []float64{0.74, 0.86, 0.71, 0.77, 0.91, 0.83, 0.75, 0.70, 0.88, 0.76, math.NaN()}
	poisoned := make([]bool, len(dist))
	poisoned[1], poisoned[4], poisoned[8] = true, true, true
	return dist, poisoned
}

func TestDistanceHistogram(t *testing.T) {
	dist, poisoned := filterDistances()
	const xLabel = "cosine distance 1 − cos(image, caption)"
	fig, err := DistanceHistogram("Filter distances", xLabel, dist, poisoned, 0.8)
	if err != nil {
		t.Fatal(err)
	}
	if err := fig.Validate(); err != nil {
		t.Fatal(err)
	}
	_, text, _ := fig.SVGText()
	for _, w := range []string{"Filter distances", "γ = 0.800", "clean (n=7", "poisoned (n=3", "1 non-finite", "fraction of pairs", xLabel} {
		if !strings.Contains(text, w) {
			t.Errorf("SVG text lacks %q", w)
		}
	}
	if cfg, _ := png.DecodeConfig(bytes.NewReader(fig.PNG)); cfg.Width < 100 || cfg.Height < 100 || len(fig.PDF) == 0 {
		t.Errorf("PNG is %dx%d, PDF %d bytes", cfg.Width, cfg.Height, len(fig.PDF))
	}
	if fig.Name != "Filter distances" {
		t.Errorf("figure name %q", fig.Name)
	}

	for _, tc := range []struct {
		name     string
		dist     []float64
		poisoned []bool
		gamma    float64
		wantErr  bool
	}{
		{"flags length mismatch", []float64{0.5, 0.6}, []bool{true}, 0.8, true},
		{"no finite distance", []float64{math.NaN(), math.Inf(1)}, nil, 0.8, true},
		{"empty", nil, nil, 0.8, true},
		{"all clean, one value, no γ", []float64{0.7}, nil, math.NaN(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fig, err := DistanceHistogram("", "distance", tc.dist, tc.poisoned, tc.gamma)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err == nil {
				if err := fig.Validate(); err != nil {
					t.Fatal(err)
				}
				if _, text, _ := fig.SVGText(); strings.Contains(text, "γ") || fig.Name != "distance-histogram" {
					t.Errorf("name %q, text %q", fig.Name, text)
				}
			}
		})
	}
}

// TestDistanceHistogramAxes: the axes cover every finite value and γ, negative scores included (the k-distance
// detector's scores go below 0), the y axis (a fraction) never passes 1, and the label is the caller's.
func TestDistanceHistogramAxes(t *testing.T) {
	tests := []struct {
		name     string
		values   []float64
		poisoned []bool
		gamma    float64
		lo, hi   float64 // the range the x axis must cover
	}{
		{"distances", []float64{0.74, 0.86, 0.71, 0.91}, []bool{false, true, false, true}, 0.8, 0.71, 0.91},
		{"negative scores", []float64{-0.25, -0.1, 0.02, 0.3}, []bool{false, false, false, true}, 0.176, -0.25, 0.3},
		{"γ beyond the values", []float64{-0.5, -0.4}, nil, 0.2, -0.5, 0.2},
		{"all in one bin", []float64{0.5, 0.5, 0.5}, nil, math.NaN(), 0.5, 0.5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, _, err := distancePlot("t", "neighbour-contrast score", tc.values, tc.poisoned, tc.gamma, nil)
			if err != nil {
				t.Fatal(err)
			}
			if p.X.Min >= tc.lo || p.X.Max <= tc.hi {
				t.Errorf("x axis [%g, %g] does not cover [%g, %g]", p.X.Min, p.X.Max, tc.lo, tc.hi)
			}
			if p.Y.Min != 0 || p.Y.Max > 1 || p.Y.Max <= 0 {
				t.Errorf("y axis [%g, %g], want from 0 to at most 1", p.Y.Min, p.Y.Max)
			}
			if p.X.Label.Text != "neighbour-contrast score" {
				t.Errorf("x label %q", p.X.Label.Text)
			}
		})
	}
}
