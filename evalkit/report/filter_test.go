package report

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/defense"
)

// filteredSet is 10 pairs: 3 poisoned with high distances, 6 clean ones below γ = 0.8 and one clean outlier
// above it. At γ = 0.8 the filter drops 4 pairs: precision 3/4, recall 1, 1 of 7 clean pairs lost.
func filteredSet(gamma float64) *defense.FilterReport {
	ps := &dataset.PairSet{Name: "toy", Pairs: make([]dataset.Pair, 10)}
	for _, i := range []int{1, 4, 8} {
		ps.Pairs[i].Poisoned = true
	}
	_, r := defense.Filter(ps, []float64{0.74, 0.86, 0.71, 0.77, 0.91, 0.83, 0.75, 0.70, 0.88, 0.76}, gamma)
	return r
}

func TestFilterTable(t *testing.T) {
	txt := FilterTable("Pre-training filter", filteredSet(0.8)).Text()
	for _, w := range []string{"γ = 0.800", "precision", "0.750", "recall", "1.000", "clean dropped fraction", "0.143", "Poisoned flags"} {
		if !strings.Contains(txt, w) {
			t.Errorf("table lacks %q:\n%s", w, txt)
		}
	}
	if txt := FilterTable("Pre-training filter", filteredSet(5)).Text(); !strings.Contains(txt, "n/a") {
		t.Errorf("undefined precision not shown as n/a:\n%s", txt)
	}
	if FilterTable("Pre-training filter", nil) == nil {
		t.Error("nil table")
	}
}

// TestFilterTableTitle: the title is the caller's, with γ when the report has it.
func TestFilterTableTitle(t *testing.T) {
	fromManifest, err := defense.ReportFromManifest(&attack.Manifest{TotalPairs: 3, Pairs: []attack.PoisonedPair{{Index: 2}}}, []int{2}, 3)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		title string
		r     *defense.FilterReport
		want  string
	}{
		{"Pre-training filter", filteredSet(0.8), "Pre-training filter (γ = 0.800)"},
		{"k-distance detector", filteredSet(0.176), "k-distance detector (γ = 0.176)"},
		{"k-distance detector", fromManifest, "k-distance detector"},
		{"Pre-training filter", nil, "Pre-training filter"},
	}
	for _, tc := range tests {
		if got := FilterTable(tc.title, tc.r).Title; got != tc.want {
			t.Errorf("FilterTable(%q) title %q, want %q", tc.title, got, tc.want)
		}
	}
}

func ExampleFilterTable() {
	// Four training pairs, the last one poisoned, with their checker distances (see defense.PairDistances).
	ps := &dataset.PairSet{Name: "toy", Pairs: []dataset.Pair{{}, {}, {}, {Poisoned: true}}}
	_, r := defense.Filter(ps, []float64{0.004, 0.005, 0.039, 0.9}, 0.8)
	fmt.Print(FilterTable("Pre-training filter", r).Text())
	// Output:
	// Pre-training filter (γ = 0.800)
	// metric                  value
	// ----------------------  -----
	// pairs                       4
	// kept                        3
	// dropped                     1
	// fraction removed        0.250
	// poisoned pairs              1
	// poison dropped (TP)         1
	// poison kept (FN)            0
	// clean dropped (FP)          0
	// clean dropped fraction  0.000
	// precision               1.000
	// recall                  1.000
	// Poisoned/clean status from the pairs' Poisoned flags.
}
