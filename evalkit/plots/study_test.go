package plots

import (
	"math"
	"strings"
	"testing"
)

func TestLines(t *testing.T) {
	rates := []float64{0.001, 0.0025, 0.005, 0.01}
	fig, err := Lines("Hit@10 vs poisoning rate", "poisoning rate φ", "Hit@10", []LineSeries{
		{Name: "poisoned", X: rates, Y: []float64{0.1, 0.4, 0.7, 0.95}, Err: []float64{0.05, 0.1, 0.08, 0.02}},
		{Name: "clean baseline", X: rates, Y: []float64{0, 0, math.NaN(), 0}},
	}, WithLogX(), WithYRange(0, 1), WithName("hit_vs_rate"))
	if err != nil {
		t.Fatal(err)
	}
	if fig.Name != "hit_vs_rate" {
		t.Errorf("name %q", fig.Name)
	}
	checkFigure(t, fig, defW, defH, "Hit@10 vs poisoning rate", "poisoning rate φ", "poisoned", "clean baseline", "0.001")

	tests := []struct {
		name   string
		series []LineSeries
		want   string
	}{
		{"no series", nil, "no series"},
		{"length mismatch", []LineSeries{{Name: "a", X: []float64{1, 2}, Y: []float64{1}}}, `series "a"`},
		{"error mismatch", []LineSeries{{Name: "b", X: []float64{1}, Y: []float64{1}, Err: []float64{1, 2}}}, `series "b"`},
		{"nothing finite", []LineSeries{{Name: "c", X: []float64{1}, Y: []float64{math.NaN()}}}, "no finite points"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Lines("t", "x", "y", tc.series)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestHeatmap(t *testing.T) {
	classes := []string{"tshirt", "trouser", "bag"}
	values := [][]float64{{math.NaN(), 0.25, 0.5}, {0.75, math.NaN(), 1}, {0, 0.125, math.NaN()}}
	fig, err := Heatmap("Goal matrix: Hit@10", "target class B", "source class A", classes, classes, values, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	checkFigure(t, fig, 1100, 1000, "Goal matrix", "tshirt", "0.75", "0.12", "target class B")
	_, text, _ := fig.SVGText()
	if strings.Contains(text, "NaN") {
		t.Error("NaN cells are printed")
	}
	for _, tc := range []struct {
		name       string
		rows, cols []string
		values     [][]float64
		lo, hi     float64
		want       string
	}{
		{"no rows", nil, classes, nil, 0, 1, "no rows"},
		{"row count", classes, classes, values[:2], 0, 1, "2 rows of values"},
		{"ragged", classes, classes, [][]float64{{1, 2, 3}, {1}, {1, 2, 3}}, 0, 1, `row "trouser" has 1 values`},
		{"empty range", classes, classes, values, 1, 1, "empty colour range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Heatmap("t", "x", "y", tc.rows, tc.cols, tc.values, tc.lo, tc.hi)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
