package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/metrics"
	"github.com/mmpoison/mmpoison/poisoning/attack"
)

func recall(imgs, caps int, tr, ir []float64) *metrics.RecallResult {
	return &metrics.RecallResult{Ks: metrics.RecallKs, ImageToText: tr, TextToImage: ir, NumImages: imgs, NumCaptions: caps}
}

func syntheticResult() *experiment.Result {
	ev := func(ranks []int, tr float64) *experiment.ModelEval {
		return &experiment.ModelEval{
			Attack:        metrics.AttackResultFromRanks(ranks, nil),
			RandomQueries: metrics.AttackResultFromRanks([]int{30, 31, 29, 40}, nil),
			Utility:       recall(250, 1250, []float64{0.1, 0.4, tr}, []float64{0.1, 0.4, 0.6}),
			UtilityOthers: recall(225, 1125, []float64{0.1, 0.4, tr + 0.01}, []float64{0.1, 0.4, 0.6}),
		}
	}
	return &experiment.Result{Spec: experiment.DefaultSpec(), Backend: "test",
		Poison: experiment.PoisonSummary{Source: "trouser", Target: "bag", Mode: attack.Repair, TotalPairs: 10000,
			PoisonedPairs: 100, Rate: 0.01},
		Clean: ev([]int{60, 70, 55, 65}, 0.61), Poisoned: ev([]int{0, 0, 1, 0}, 0.56),
		Timings: map[string]float64{"total": 1}}
}

func TestTablesShowTheNumbers(t *testing.T) {
	r := syntheticResult()
	text := AttackTable(r).Text()
	for _, want := range []string{"Hit@10", "MinRank mean", "62.5", "0.2", "1.000", "φ = 1.00%"} {
		if !strings.Contains(text, want) {
			t.Errorf("attack table lacks %q:\n%s", want, text)
		}
	}
	util := UtilityTable(r).Text()
	if !strings.Contains(util, "-0.050") || !strings.Contains(util, "classes other than trouser") {
		t.Errorf("utility table lacks the difference row:\n%s", util)
	}
	if cmp := PaperComparison(r).Text(); !strings.Contains(cmp, "51.0 → 2.19") || !strings.Contains(cmp, "62.5 → 0.25") {
		t.Errorf("paper comparison wrong:\n%s", cmp)
	}
}

// TestWriteAndReload: the report folder holds valid figures and a JSON result that re-renders the same tables.
func TestWriteAndReload(t *testing.T) {
	r := syntheticResult()
	dir := t.TempDir()
	files, err := Write(dir, r)
	if err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{".svg", ".pdf", ".png"} {
		found := false
		for _, f := range files {
			if strings.HasSuffix(f, ext) {
				found = true
			}
		}
		if !found {
			t.Errorf("no %s figure written: %v", ext, files)
		}
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil || !strings.Contains(string(md), "minrank_distribution.svg") {
		t.Fatalf("report.md missing or without figures: %v", err)
	}
	back, err := experiment.ReadResult(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if AttackTable(back).Text() != AttackTable(r).Text() || UtilityTable(back).Text() != UtilityTable(r).Text() {
		t.Fatal("the reloaded result renders different tables")
	}
	if _, err := experiment.ReadResult(filepath.Join(dir, "report.md")); err == nil {
		t.Fatal("a Markdown file was accepted as a result")
	}
}
