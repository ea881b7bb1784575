package defense

import (
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

func near(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) < 1e-9
}

func TestPairDistances(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	tests := []struct {
		name     string
		img, txt [][]float32
		want     []float64
		wantErr  bool
	}{
		{"identical", [][]float32{{1, 2, 3}}, [][]float32{{1, 2, 3}}, []float64{0}, false},
		{"scaled, not normalised", [][]float32{{1, 0}}, [][]float32{{3, 0}}, []float64{0}, false},
		{"orthogonal", [][]float32{{1, 0}}, [][]float32{{0, 5}}, []float64{1}, false},
		{"opposite", [][]float32{{1, 1}}, [][]float32{{-2, -2}}, []float64{2}, false},
		{"45 degrees", [][]float32{{1, 0}}, [][]float32{{1, 1}}, []float64{1 - 1/math.Sqrt2}, false},
		{"zero vector", [][]float32{{0, 0}}, [][]float32{{1, 1}}, []float64{1}, false},
		{"NaN component", [][]float32{{nan, 1}}, [][]float32{{1, 1}}, []float64{math.NaN()}, false},
		{"Inf component", [][]float32{{1, 1}}, [][]float32{{inf, 1}}, []float64{math.NaN()}, false},
		{"several rows", [][]float32{{1, 0}, {0, 1}, {1, 0}}, [][]float32{{1, 0}, {1, 0}, {-1, 0}}, []float64{0, 1, 2}, false},
		{"empty", nil, nil, []float64{}, false},
		{"row count mismatch", [][]float32{{1, 0}}, [][]float32{{1, 0}, {0, 1}}, nil, true},
		{"dimension mismatch", [][]float32{{1, 0}}, [][]float32{{1, 0, 0}}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			imgCopy := slices.Clone(tc.img)
			got, err := PairDistances(tc.img, tc.txt)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if !near(got[i], tc.want[i]) {
					t.Errorf("distance %d = %v, want %v", i, got[i], tc.want[i])
				}
			}
			if !reflect.DeepEqual(imgCopy, tc.img) {
				t.Error("input modified")
			}
		})
	}
}

func TestChooseGammaFixedAndQuantile(t *testing.T) {
	// 0.1 … 1.0, shuffled, with a NaN that quantiles ignore.
	dist := []float64{0.3, 1.0, 0.1, math.NaN(), 0.7, 0.5, 0.9, 0.2, 0.8, 0.4, 0.6}
	tests := []struct {
		name    string
		dist    []float64
		th      Threshold
		want    float64
		wantErr string
	}{
		{"fixed", nil, Threshold{Kind: KindFixed, Value: 0.8}, 0.8, ""},
		{"fixed ignores budget", dist, Threshold{Kind: KindFixed, Value: 0.5, MaxCleanDrop: 7}, 0.5, ""},
		{"fixed NaN", dist, Threshold{Kind: KindFixed, Value: math.NaN()}, 0, "finite"},
		{"fixed Inf", dist, Threshold{Kind: KindFixed, Value: math.Inf(1)}, 0, "finite"},
		{"q=0.9 drops the top one", dist, Threshold{Kind: KindQuantile, Value: 0.9}, 0.9, ""},
		{"q=0.75 drops floor(2.5)=2", dist, Threshold{Kind: KindQuantile, Value: 0.75}, 0.8, ""},
		{"q=0.7 drops 3 despite rounding", dist, Threshold{Kind: KindQuantile, Value: 0.7}, 0.7, ""},
		{"q=0.05", dist, Threshold{Kind: KindQuantile, Value: 0.05}, 0.1, ""},
		{"q=0.99 drops nothing of 10", dist, Threshold{Kind: KindQuantile, Value: 0.99}, 1.0, ""},
		{"ties at γ", []float64{0.5, 0.9, 0.5, 0.5}, Threshold{Kind: KindQuantile, Value: 0.5}, 0.5, ""},
		{"q=0", dist, Threshold{Kind: KindQuantile, Value: 0}, 0, "(0, 1)"},
		{"q=1", dist, Threshold{Kind: KindQuantile, Value: 1}, 0, "(0, 1)"},
		{"q NaN", dist, Threshold{Kind: KindQuantile, Value: math.NaN()}, 0, "(0, 1)"},
		{"quantile of nothing", []float64{math.NaN()}, Threshold{Kind: KindQuantile, Value: 0.5}, 0, "none of them"},
		{"quantile of empty", nil, Threshold{Kind: KindQuantile, Value: 0.5}, 0, "none of them"},
		{"unknown kind", dist, Threshold{Kind: "median"}, 0, "unknown threshold kind"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := slices.Clone(tc.dist)
			got, err := ChooseGamma(tc.dist, tc.th, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("γ = %v, want %v", got, tc.want)
			}
			for i := range before {
				if !near(before[i], tc.dist[i]) {
					t.Fatal("distances modified")
				}
			}
		})
	}
}

func TestChooseGammaLabelled(t *testing.T) {
	// Clean 0–3, poisoned 4–6, unlabelled 7–8 (a NaN outside the sample is fine).
	dist := []float64{0.70, 0.72, 0.75, 0.82, 0.80, 0.86, 0.90, 0.99, math.NaN()}
	sample := &LabelledSample{Clean: []int{0, 1, 2, 3}, Poisoned: []int{4, 5, 6}}
	two := &LabelledSample{Clean: []int{0}, Poisoned: []int{1}}
	tests := []struct {
		name    string
		dist    []float64
		budget  float64
		sample  *LabelledSample
		want    float64
		wantErr string
	}{
		// No clean drop allowed: drop 0.86 and 0.90 only, γ halfway between 0.82 (kept) and 0.86.
		{"budget 0", dist, 0, sample, 0.84, ""},
		// One clean pair (0.82) may go: catch 0.80 too, γ between 0.75 and 0.80.
		{"budget 1 of 4", dist, 0.25, sample, 0.775, ""},
		// Just under one pair: same as 0.
		{"budget 0.24", dist, 0.24, sample, 0.84, ""},
		// Everything allowed: recall is already 1 at 0.775; ties go to the lenient cut.
		{"budget 1", dist, 1, sample, 0.775, ""},
		// Poison below the clean pair and no budget: drop nothing, γ = largest sample distance.
		{"no useful cut", []float64{0.9, 0.1}, 0, two, 0.9, ""},
		// Full budget and poison at the bottom: drop everything, γ just below 0.1.
		{"drop all", []float64{0.9, 0.1}, 1, two, math.Nextafter(0.1, math.Inf(-1)), ""},
		// A clean and a poisoned pair at the same distance can only go together.
		{"tied distances", []float64{0.5, 0.8, 0.8, 0.9}, 0, &LabelledSample{Clean: []int{0, 1}, Poisoned: []int{2, 3}}, 0.85, ""},
		{"tied distances, budget 1 of 2", []float64{0.5, 0.8, 0.8, 0.9}, 0.5, &LabelledSample{Clean: []int{0, 1}, Poisoned: []int{2, 3}}, 0.65, ""},
		{"nil sample", dist, 0.1, nil, 0, "at least one clean and one poisoned"},
		{"no poison", dist, 0.1, &LabelledSample{Clean: []int{0}}, 0, "at least one clean and one poisoned"},
		{"no clean", dist, 0.1, &LabelledSample{Poisoned: []int{4}}, 0, "at least one clean and one poisoned"},
		{"out of range", dist, 0.1, &LabelledSample{Clean: []int{0}, Poisoned: []int{9}}, 0, "out of range"},
		{"negative index", dist, 0.1, &LabelledSample{Clean: []int{-1}, Poisoned: []int{4}}, 0, "out of range"},
		{"clean and poisoned", dist, 0.1, &LabelledSample{Clean: []int{4}, Poisoned: []int{4}}, 0, "listed twice"},
		{"NaN in sample", dist, 0.1, &LabelledSample{Clean: []int{8}, Poisoned: []int{4}}, 0, "NaN distance"},
		{"budget > 1", dist, 1.5, sample, 0, "MaxCleanDrop"},
		{"budget < 0", dist, -0.1, sample, 0, "MaxCleanDrop"},
		{"budget NaN", dist, math.NaN(), sample, 0, "MaxCleanDrop"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ChooseGamma(tc.dist, Threshold{Kind: KindLabelled, MaxCleanDrop: tc.budget}, tc.sample)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-tc.want) > 1e-12 || (tc.name == "drop all" && got != tc.want) {
				t.Errorf("γ = %v, want %v", got, tc.want)
			}
		})
	}
}

// knownSet is 10 pairs: 3 poisoned with high distances, 6 clean ones below γ = 0.8 and one clean outlier above
// it. At γ = 0.8 the filter drops 4 pairs: precision 3/4, recall 1, 1 of 7 clean pairs lost.
func knownSet() (*dataset.PairSet, []float64) {
	ps := &dataset.PairSet{Name: "toy", Classes: []string{"a", "b"}}
	for i := range 4 {
		ps.Images = append(ps.Images, dataset.Example{ID: string(rune('A' + i)), Captions: []string{"c"}, Label: i % 2})
	}
	dist := []float64{0.74, 0.86, 0.71, 0.77, 0.91, 0.83, 0.75, 0.70, 0.88, 0.76}
	poisoned := map[int]bool{1: true, 4: true, 8: true} // 5 is the clean outlier
	for i := range dist {
		ps.Pairs = append(ps.Pairs, dataset.Pair{Image: i % 4, Caption: "c", CaptionOf: i % 4, Poisoned: poisoned[i]})
	}
	return ps, dist
}

func ptr(v float64) *float64 { return &v }

func TestFilterKnownAnswer(t *testing.T) {
	ps, dist := knownSet()
	origPairs := slices.Clone(ps.Pairs)
	origDist := slices.Clone(dist)
	out, r := Filter(ps, dist, 0.8)

	want := &FilterReport{
		Gamma: ptr(0.8), Labels: LabelsFromFlags,
		Total: 10, Kept: 6, Dropped: 4, FractionRemoved: 0.4,
		Poisoned: 3, Clean: 7, TruePositives: 3, FalsePositives: 1, PoisonedKept: 0,
		Precision: ptr(0.75), Recall: ptr(1), CleanDroppedFraction: ptr(1.0 / 7),
		DroppedIndices: []int{1, 4, 5, 8},
	}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("report\n%+v\nwant\n%+v", r, want)
	}
	if len(out.Pairs) != 6 || out.NumPoisoned() != 0 || out.Name != "toy+filter" {
		t.Errorf("output: %d pairs, %d poisoned, name %q", len(out.Pairs), out.NumPoisoned(), out.Name)
	}
	var keptWant []dataset.Pair
	for _, i := range []int{0, 2, 3, 6, 7, 9} {
		keptWant = append(keptWant, origPairs[i])
	}
	if !reflect.DeepEqual(out.Pairs, keptWant) {
		t.Error("kept pairs are not the low-distance ones in order")
	}
	// Input untouched, images shared, pairs not.
	if !reflect.DeepEqual(ps.Pairs, origPairs) || !reflect.DeepEqual(dist, origDist) || ps.Name != "toy" {
		t.Error("Filter modified its input")
	}
	if &out.Images[0] != &ps.Images[0] {
		t.Error("images are not shared")
	}
	out.Pairs[0].Caption = "changed"
	if ps.Pairs[0].Caption == "changed" {
		t.Error("output pairs alias the input")
	}

	// The manifest gives the same report.
	m := &attack.Manifest{Version: attack.ManifestVersion, TotalPairs: 10, PoisonedPairs: 3, CleanPairs: 7,
		Pairs: []attack.PoisonedPair{{Index: 1}, {Index: 4}, {Index: 8}}}
	shuffled := []int{8, 5, 1, 4}
	mr, err := ReportFromManifest(m, shuffled, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(shuffled, []int{8, 5, 1, 4}) {
		t.Error("ReportFromManifest sorted its input")
	}
	if mr.Labels != LabelsFromManifest || mr.Gamma != nil {
		t.Errorf("manifest report: labels %q, gamma %v", mr.Labels, mr.Gamma)
	}
	mr.Labels, mr.Gamma = r.Labels, r.Gamma
	if !reflect.DeepEqual(mr, r) {
		t.Errorf("manifest report\n%+v\ndiffers from flag report\n%+v", mr, r)
	}
}

func TestFilterEdgeCases(t *testing.T) {
	ps, dist := knownSet()
	t.Run("γ above everything: nothing dropped, precision null", func(t *testing.T) {
		_, r := Filter(ps, dist, 2)
		if r.Dropped != 0 || r.Precision != nil || r.Recall == nil || *r.Recall != 0 || r.PoisonedKept != 3 {
			t.Errorf("%+v", r)
		}
		data, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		s := string(data)
		if !strings.Contains(s, `"precision":null`) || !strings.Contains(s, `"dropped_indices":[]`) {
			t.Errorf("JSON %s", s)
		}
	})
	t.Run("pair exactly at γ is kept", func(t *testing.T) {
		_, r := Filter(ps, dist, 0.83)
		if !slices.Equal(r.DroppedIndices, []int{1, 4, 8}) || *r.Precision != 1 {
			t.Errorf("%+v", r)
		}
	})
	t.Run("NaN distance is dropped as unscored", func(t *testing.T) {
		d := slices.Clone(dist)
		d[0] = math.NaN()
		_, r := Filter(ps, d, 0.8)
		if r.Unscored != 1 || !slices.Equal(r.DroppedIndices, []int{0, 1, 4, 5, 8}) || r.FalsePositives != 2 {
			t.Errorf("%+v", r)
		}
		if _, err := json.Marshal(r); err != nil {
			t.Error(err)
		}
	})
	t.Run("clean set: recall null", func(t *testing.T) {
		c := ps.Clone()
		for i := range c.Pairs {
			c.Pairs[i].Poisoned = false
		}
		_, r := Filter(c, dist, 0.8)
		if r.Recall != nil || *r.Precision != 0 || r.FalsePositives != 4 {
			t.Errorf("%+v", r)
		}
	})
	t.Run("empty set", func(t *testing.T) {
		out, r := Filter(&dataset.PairSet{Name: "e"}, nil, 0.8)
		if len(out.Pairs) != 0 || r.Total != 0 || r.FractionRemoved != 0 || r.Precision != nil ||
			r.Recall != nil || r.CleanDroppedFraction != nil {
			t.Errorf("%+v", r)
		}
		if _, err := json.Marshal(r); err != nil {
			t.Error(err)
		}
	})
	for name, f := range map[string]func(){
		"length mismatch": func() { Filter(ps, dist[:3], 0.8) },
		"NaN γ":           func() { Filter(ps, dist, math.NaN()) },
		"nil set":         func() { Filter(nil, nil, 0.8) },
	} {
		t.Run("panics on "+name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		})
	}
}

func TestReportFromManifestErrors(t *testing.T) {
	m := &attack.Manifest{TotalPairs: 5, PoisonedPairs: 2, CleanPairs: 3,
		Pairs: []attack.PoisonedPair{{Index: 1}, {Index: 3}}}
	tests := []struct {
		name    string
		m       *attack.Manifest
		dropped []int
		total   int
		wantErr string
	}{
		{"nil manifest", nil, nil, 5, "nil manifest"},
		{"total mismatch", m, nil, 6, "manifest says 5"},
		{"dropped out of range", m, []int{5}, 5, "out of range"},
		{"dropped negative", m, []int{-1}, 5, "out of range"},
		{"dropped twice", m, []int{2, 2}, 5, "listed twice"},
		{"manifest index out of range", &attack.Manifest{TotalPairs: 2, Pairs: []attack.PoisonedPair{{Index: 2}}}, nil, 2, "out of range"},
		{"manifest index twice", &attack.Manifest{TotalPairs: 2, Pairs: []attack.PoisonedPair{{Index: 1}, {Index: 1}}}, nil, 2, "twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReportFromManifest(tc.m, tc.dropped, tc.total)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
	r, err := ReportFromManifest(m, nil, 5)
	if err != nil || r.Dropped != 0 || r.Recall == nil || *r.Recall != 0 || r.Precision != nil || r.Poisoned != 2 {
		t.Errorf("no drops: %+v, %v", r, err)
	}
}
