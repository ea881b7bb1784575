package vecmath

import (
	"math"
	"strings"
	"testing"
)

func near(a, b, tol float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= tol
}

func TestRowwiseCosine(t *testing.T) {
	got, err := RowwiseCosine([][]float32{{1, 0}, {1, 1}, {0, 0}}, [][]float32{{2, 0}, {-1, -1}, {1, 0}})
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{1, -1, 0}
	for i := range want {
		if !near(got[i], want[i], 1e-12) {
			t.Errorf("row %d: got %v, want %v", i, got[i], want[i])
		}
	}
	if _, err := RowwiseCosine([][]float32{{1}}, [][]float32{{1}, {2}}); err == nil {
		t.Error("expected an error for different row counts")
	}
	if _, err := RowwiseCosine([][]float32{{1}}, [][]float32{{1, 2}}); err == nil {
		t.Error("expected an error for different dimensions")
	}
}

func TestCosineDistances(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	tests := []struct {
		name    string
		a, b    [][]float32
		want    []float64
		wantErr string
	}{
		{"same direction", [][]float32{{1, 2}}, [][]float32{{2, 4}}, []float64{0}, ""},
		{"orthogonal", [][]float32{{1, 0}}, [][]float32{{0, 3}}, []float64{1}, ""},
		{"opposite", [][]float32{{1, 1}}, [][]float32{{-1, -1}}, []float64{2}, ""},
		{"zero vector", [][]float32{{0, 0}}, [][]float32{{1, 1}}, []float64{1}, ""},
		{"NaN component", [][]float32{{nan, 1}}, [][]float32{{1, 1}}, []float64{math.NaN()}, ""},
		{"Inf component", [][]float32{{1, 1}}, [][]float32{{inf, 1}}, []float64{math.NaN()}, ""},
		{"no rows", nil, nil, []float64{}, ""},
		{"row counts", [][]float32{{1}}, nil, nil, "1 rows vs 0 rows"},
		{"dimensions", [][]float32{{1, 0}}, [][]float32{{1, 0, 0}}, nil, "row 0 of input 1 has dimension 3, want 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CosineDistances(tc.a, tc.b)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(got) != len(tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
			for i := range got {
				if !near(got[i], tc.want[i], 1e-7) {
					t.Errorf("row %d: got %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestCommonDim(t *testing.T) {
	tests := []struct {
		name    string
		ms      [][][]float32
		want    int
		wantErr string
	}{
		{"no matrices", nil, 0, ""},
		{"no rows", [][][]float32{nil, {}}, 0, ""},
		{"two matrices", [][][]float32{{{1, 2}}, {{3, 4}, {5, 6}}}, 2, ""},
		{"second matrix differs", [][][]float32{{{1, 2}}, {{3, 4}, {5}}}, 0, "row 1 of input 1 has dimension 1, want 2"},
		{"within one matrix", [][][]float32{{{1}, {2, 3}}}, 0, "row 1 of input 0 has dimension 2, want 1"},
	}
	for _, tc := range tests {
		got, err := CommonDim(tc.ms...)
		if tc.wantErr == "" && (err != nil || got != tc.want) || tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr) {
			t.Errorf("%s: CommonDim = %d, %v; want %d, %q", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}
