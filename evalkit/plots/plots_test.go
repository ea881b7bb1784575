package plots

import (
	"bytes"
	"html"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"

	"github.com/mmpoison/mmpoison/kernelext"
)

// checkFigure verifies the three encodings of a figure (Figure.Validate), that
// the SVG has the expected texts and font fallback, and that the PNG has the
// expected pixel size.
func checkFigure(t *testing.T, fig *kernelext.Figure, wantW, wantH int, wantTexts ...string) {
	t.Helper()
	if fig == nil {
		t.Fatal("nil figure")
	}
	if err := fig.Validate(); err != nil {
		t.Fatal(err)
	}
	_, text, _ := fig.SVGText()
	if !bytes.Contains(fig.SVG, []byte("<text")) {
		t.Error("SVG has no text elements")
	}
	for _, w := range wantTexts {
		if !strings.Contains(text, w) {
			t.Errorf("SVG text does not contain %q", w)
		}
	}
	if !bytes.Contains(fig.SVG, []byte("Arial")) {
		t.Error("SVG has no font fallback")
	}
	if len(fig.SVG) == 0 || len(fig.PDF) == 0 || len(fig.PNG) == 0 {
		t.Fatalf("figure lacks a format: SVG %d, PDF %d, PNG %d bytes", len(fig.SVG), len(fig.PDF), len(fig.PNG))
	}
	cfg, _ := png.DecodeConfig(bytes.NewReader(fig.PNG))
	if cfg.Width != wantW || cfg.Height != wantH {
		t.Errorf("PNG is %dx%d, want %dx%d", cfg.Width, cfg.Height, wantW, wantH)
	}
	if os.Getenv("PLOTS_TEST_OUT") != "" { // for looking at the figures
		if _, err := Save(os.Getenv("PLOTS_TEST_OUT"), fig); err != nil {
			t.Error(err)
		}
	}
}

// Default size 5 in × 3.5 in at 200 dpi.
const defW, defH = 1000, 700

func fakeRanks(rng *rand.Rand, n, spread int) []int {
	r := make([]int, n)
	for i := range r {
		r[i] = int(math.Abs(rng.NormFloat64()) * float64(spread))
	}
	return r
}

func TestRankHistogram(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	clean := fakeRanks(rng, 500, 80)
	poisoned := fakeRanks(rng, 500, 3)
	tests := []struct {
		name   string
		series []RankSeries
		bins   int
		opts   []Option
		texts  []string
	}{
		{"two series", []RankSeries{{"clean", clean}, {"poisoned", poisoned}}, 0, nil,
			[]string{"MinRank", "fraction of queries", "clean (median", "poisoned (median"}},
		{"one series, fine bins, custom labels", []RankSeries{{"x", []int{0, 0, 1, 5}}}, 100,
			[]Option{WithXLabel("rank"), WithName("custom")}, []string{"rank", "x (median 0.5, mean 1.5, n=4)"}},
		{"all zero", []RankSeries{{"z", []int{0, 0, 0}}}, 10, nil, []string{"z (median 0"}},
		{"log ranks", []RankSeries{{"clean", clean}, {"poisoned", poisoned}}, 0, []Option{WithLogRanks()},
			[]string{"100", "poisoned (median"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fig, err := RankHistogram("MinRank distribution", tc.series, tc.bins, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			checkFigure(t, fig, defW, defH, tc.texts...)
		})
	}
	fig, _ := RankHistogram("Rank hist: A→B", []RankSeries{{"a", []int{1}}}, 0)
	if fig.Name != "Rank hist: A→B" || kernelext.FileName(fig.Name) != "Rank_hist_A_B" {
		t.Errorf("name %q", fig.Name)
	}
	for _, bad := range [][]RankSeries{nil, {{"empty", nil}}, {{"negative", []int{-1}}}} {
		if _, err := RankHistogram("t", bad, 0); err == nil {
			t.Errorf("expected an error for %v", bad)
		}
	}
}

func TestHitAtKCurve(t *testing.T) {
	ks := []int{1, 5, 10, 20, 30, 50}
	series := []HitSeries{
		{Name: "clean", Ks: ks, Hits: []float64{0.024, 0.088, 0.2, 0.35, 0.5, 0.7}},
		{Name: "poisoned", Ks: ks, Hits: []float64{0.28, 0.864, 0.936, 0.97, 0.98, math.NaN()},
			Err: []float64{0.05, 0.03, 0.02, 0.01, math.NaN(), 0}},
	}
	fig, err := HitAtKCurve("Hit@K", series, WithSize(4*vg.Inch, 3*vg.Inch))
	if err != nil {
		t.Fatal(err)
	}
	checkFigure(t, fig, 800, 600, "clean", "poisoned", "Hit@K", "50")
	if _, err := HitAtKCurve("t", []HitSeries{{Name: "bad", Ks: ks, Hits: []float64{1}}}); err == nil {
		t.Error("expected an error for mismatched lengths")
	}
	if _, err := HitAtKCurve("t", nil); err == nil {
		t.Error("expected an error for no series")
	}
}

func TestBars(t *testing.T) {
	cats := []string{"TR@1", "TR@5", "TR@10", "IR@1", "IR@5", "IR@10"}
	series := []BarSeries{
		{Name: "clean", Values: []float64{0.8, 0.95, 0.98, 0.6, 0.86, 0.92}, Err: []float64{0.01, 0.01, 0.005, 0.02, 0.01, 0.01}},
		{Name: "poisoned", Values: []float64{0.79, 0.95, 0.97, 0.61, 0.85, math.NaN()}},
		{Name: "filtered", Values: []float64{0.8, 0.94, 0.98, 0.6, 0.86, 0.91}},
	}
	fig, err := Bars("Utility", cats, series, WithYRange(0, 1.3))
	if err != nil {
		t.Fatal(err)
	}
	// A quarter wider than the default: the legend stands beside the plot area.
	checkFigure(t, fig, defW*5/4, defH, "TR@1", "IR@10", "filtered", "Recall@K")
	if _, err := Bars("t", cats, []BarSeries{{Name: "short", Values: []float64{1}}}); err == nil {
		t.Error("expected an error for mismatched lengths")
	}
}

func TestLossCurve(t *testing.T) {
	var x, y1, y2 []float64
	for i := 0; i < 200; i++ {
		x = append(x, float64(i))
		y1 = append(y1, 3*math.Exp(-float64(i)/50)+0.1)
		y2 = append(y2, 3.2*math.Exp(-float64(i)/40)+0.12)
	}
	y2[10] = math.NaN()
	for _, opts := range [][]Option{nil, {WithLogY(), WithLegend(false, true)}} {
		fig, err := LossCurve("Training loss", []XYSeries{{"clean", x, y1}, {"poisoned", x, y2}}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		checkFigure(t, fig, defW, defH, "step", "loss", "poisoned")
	}
	if _, err := LossCurve("t", []XYSeries{{"nan", []float64{1}, []float64{math.NaN()}}}); err == nil {
		t.Error("expected an error when nothing is finite")
	}
}

func TestSaveAll(t *testing.T) {
	fig, err := LossCurve("loss", []XYSeries{{"a", []float64{0, 1}, []float64{1, 0.5}}})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "figures") // created by Save
	paths, err := Save(dir, fig)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"loss.svg", "loss.png", "loss.pdf"}
	if len(paths) != 3 {
		t.Fatalf("paths %v", paths)
	}
	for i, p := range paths {
		if filepath.Base(p) != want[i] {
			t.Errorf("path %q, want %q", p, want[i])
		}
		if data, err := os.ReadFile(p); err != nil || len(data) == 0 {
			t.Errorf("%s: %d bytes, %v", p, len(data), err)
		}
	}
	for _, tc := range []struct {
		name, dir string
		fig       *kernelext.Figure
		want      string
	}{
		{"empty figure", dir, &kernelext.Figure{Name: "empty"}, `figure "empty" has no content`},
		{"no directory", "", fig, "empty directory"},
	} {
		if _, err := Save(tc.dir, tc.fig); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Save error %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestBinEdges(t *testing.T) {
	tests := []struct {
		name string
		got  []int
		want []int
	}{
		{"linear 0..250 in ~25", linearEdges(250, 25), []int{0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120,
			130, 140, 150, 160, 170, 180, 190, 200, 210, 220, 230, 240, 250, 260}},
		{"linear 0..300 in ~25 uses width 20", linearEdges(300, 25)[:3], []int{0, 20, 40}},
		{"linear single rank", linearEdges(0, 25), []int{0, 1}},
		{"linear fine", linearEdges(5, 100), []int{0, 1, 2, 3, 4, 5, 6}},
		{"geometric small", geometricEdges(5, 25), []int{0, 1, 2, 3, 4, 5, 6}},
		{"geometric 0..250 in 4", geometricEdges(250, 4), []int{0, 3, 15, 62, 251}},
	}
	for _, tc := range tests {
		if len(tc.got) != len(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.want)
			continue
		}
		for i := range tc.got {
			if tc.got[i] != tc.want[i] {
				t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.want)
				break
			}
		}
	}
	for x, want := range map[float64]int{0: 1, 0.3: 1, 1: 1, 1.5: 2, 3: 5, 10: 10, 12: 20, 156: 200} {
		if got := niceCeil(x); got != want {
			t.Errorf("niceCeil(%v) = %d, want %d", x, got, want)
		}
	}
}

func TestTickers(t *testing.T) {
	labels := func(ts []plot.Tick) string {
		var l []string
		for _, tk := range ts {
			if tk.Label != "" {
				l = append(l, tk.Label)
			}
		}
		return strings.Join(l, " ")
	}
	if got := labels(integerTicks{}.Ticks(-0.5, 5.5)); got != "0 5" {
		t.Errorf("integer ticks on [-0.5, 5.5]: %q", got)
	}
	if got := labels(integerTicks{}.Ticks(-0.5, 0.5)); got != "0" {
		t.Errorf("integer ticks on [-0.5, 0.5]: %q", got)
	}
	if got := labels(logTicks125{}.Ticks(0.12, 3.2)); got != "0.2 0.5 1 2" {
		t.Errorf("log ticks on [0.12, 3.2]: %q", got)
	}
	if got := labels(rankLogTicks(250)); got != "0 1 2 5 10 20 50 100 200" {
		t.Errorf("rank log ticks: %q", got)
	}
	s := rankLogScale{}
	if got := s.Normalize(-0.5, 250, -0.5); got != 0 {
		t.Errorf("rank log scale at min: %v", got)
	}
	if got := s.Normalize(-0.5, 250, 250); math.Abs(got-1) > 1e-12 {
		t.Errorf("rank log scale at max: %v", got)
	}
}

// Every SVG text element carries its width in the font it was laid out with, and a family list that ends with
// the generic family, so that a viewer without Liberation Sans keeps the layout.
func TestSVGTextKeepsItsWidth(t *testing.T) {
	fig, err := HitAtKCurve("Hit@K", []HitSeries{{Name: "poisoned model, class-trouser captions", Ks: []int{1, 10}, Hits: []float64{0.5, 1}}})
	if err != nil {
		t.Fatal(err)
	}
	elems := svgText.FindAllSubmatch(fig.SVG, -1)
	if len(elems) < 5 {
		t.Fatalf("%d text elements", len(elems))
	}
	face := func(px float64) string { return "font-size:" + strconv.FormatFloat(px, 'g', -1, 64) + "px" }
	for _, m := range elems {
		attrs, style, text := string(m[1]), string(m[2]), html.UnescapeString(string(m[3]))
		if !strings.Contains(style, "font-family:'Liberation Sans',Arial,Helvetica,sans-serif;") {
			t.Errorf("%q: style %q", text, style)
		}
		size := DefaultStyle.LegendSize
		for _, s := range []vg.Length{DefaultStyle.TitleSize, DefaultStyle.LabelSize, DefaultStyle.TickSize, DefaultStyle.LegendSize} {
			if strings.Contains(style, face(s.Points())+";") || strings.HasSuffix(style, face(s.Points())) {
				size = s
			}
		}
		f := font.DefaultCache.Lookup(font.Font{Typeface: "Liberation", Variant: "Sans"}, size)
		want := f.Width(text).Points()
		got := regexp.MustCompile(`textLength="([0-9.e+-]+)" lengthAdjust="spacingAndGlyphs"`).FindStringSubmatch(attrs)
		if got == nil {
			t.Errorf("%q has no textLength: %s", text, attrs)
			continue
		}
		if v, _ := strconv.ParseFloat(got[1], 64); math.Abs(v-want) > 0.01*want {
			t.Errorf("%q: textLength %v, want %.5g", text, v, want)
		}
	}
}

// A distribution all in one bin reaches 1 and the axis stops there; tick labels carry no needless digits.
func TestRankHistogramAxisEndsAtOne(t *testing.T) {
	fig, err := RankHistogram("t", []RankSeries{{"a", []int{0, 0, 0}}, {"b", []int{3, 40, 200}}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, text, _ := fig.SVGText()
	if !strings.Contains(text, "1.0") || strings.Contains(text, "1.2") {
		t.Errorf("y axis: %q", text)
	}
	for _, tk := range (plainTicks{}).Ticks(0, 200) {
		if strings.Contains(tk.Label, ".") {
			t.Errorf("tick label %q", tk.Label)
		}
	}
}
