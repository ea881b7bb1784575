package report

import (
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/evalkit/defenses"
	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/study"
	"github.com/mmpoison/mmpoison/kernelext"
	"github.com/mmpoison/mmpoison/poisoning/attack"
)

// svgText returns the text of a figure, failing the test on a bad SVG.
func svgText(t *testing.T, f *kernelext.Figure) string {
	t.Helper()
	_, text, err := f.SVGText()
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// Figures and tables use the same words: the tables' row names are the figures' legend entries, TR and IR are
// defined where they appear, and the utility figure shows the untargeted classes beside all classes.
func TestFiguresUseTheTablesWords(t *testing.T) {
	r := syntheticResult()
	figs, err := Figures(r)
	if err != nil {
		t.Fatal(err)
	}
	attack := AttackTable(r).Text()
	for _, row := range []string{"clean model, class-trouser captions", "poisoned model, random captions", "poisoned model, class-trouser captions"} {
		if !strings.Contains(attack, row) {
			t.Errorf("attack table lacks %q", row)
		}
		for _, f := range figs[:2] {
			if !strings.Contains(svgText(t, f), row) {
				t.Errorf("figure %s lacks %q", f.Name, row)
			}
		}
	}
	if text := svgText(t, figs[0]); !strings.Contains(text, "MinRank of the first bag image per query") {
		t.Errorf("MinRank figure title: %q", text)
	}
	utility, util := svgText(t, figs[2]), UtilityTable(r).Text()
	for _, w := range []string{"clean model, all classes", "poisoned model, classes other than trouser", "image→text Recall@K", "text→image Recall@K"} {
		if !strings.Contains(utility, w) || !strings.Contains(util, w) {
			t.Errorf("utility figure or table lacks %q:\n%s\n%s", w, utility, util)
		}
	}
}

// report.md says how many images and pairs each stage trains on, in words that match the numbers.
func TestSetupSaysTheSizes(t *testing.T) {
	r := syntheticResult()
	r.Data = &experiment.DataSummary{PoolImages: 10000, PoolCaptions: 50000, TrainImages: 2000, TrainCaptions: 10000,
		TestImages: 250, TestCaptions: 1250, Kept: []experiment.KeptImages{{Class: "trouser", Kept: 20, Of: 220}}}
	md := Markdown(r, nil)
	for _, w := range []string{"Pre-training: 10,000 clean pool images × 5 captions = 50,000 pairs, 1 epoch",
		"Fine-tuning: 2,000 images × 5 captions = 10,000 pairs (the train split's 2,200 images less 200 of its 220 trouser images: class A is kept rare",
		"the attack re-pairs 100 of these pairs (φ = 1.00%); 2 epochs", "Test: 25 images per class, 250 images and 1,250 captions"} {
		if !strings.Contains(md, w) {
			t.Errorf("report.md lacks %q:\n%s", w, md)
		}
	}
}

// One seed is shown as one number, and the tables and figures say so; with two there is a spread.
func TestOneSeedIsOneNumber(t *testing.T) {
	one := []*experiment.Result{seededResult(1, 0.01, "trouser", "bag", []int{0, 1, 2, 0})}
	seed := SeedTable("Attack II", one).Text()
	if strings.Contains(seed, "±") || !strings.Contains(seed, "1 seed: single values") {
		t.Errorf("seed table of one run:\n%s", seed)
	}
	two := append(one, seededResult(2, 0.01, "trouser", "bag", []int{0, 5, 2, 0}))
	if seed := SeedTable("Attack II", two).Text(); !strings.Contains(seed, "±") || !strings.Contains(seed, "2 seeds") {
		t.Errorf("seed table of two runs:\n%s", seed)
	}
	var outs []*defenses.Outcome
	for _, d := range []string{defenses.DefenseNone, defenses.DefenseFilter} {
		outs = append(outs, &defenses.Outcome{Cell: defenses.Cell{Spec: one[0].Spec, Defense: d},
			Clean: one[0].Clean, Poisoned: one[0].Poisoned, Defended: one[0].Poisoned})
	}
	if m := DefenseMatrixTable(outs).Text() + DefenseComparison(outs).Text(); strings.Contains(m, "±") || !strings.Contains(m, "1 seed") {
		t.Errorf("defense tables of one seed:\n%s", m)
	}
	figs, err := DefenseMatrixFigures(outs)
	if err != nil {
		t.Fatal(err)
	}
	if text := svgText(t, figs[0]); !strings.Contains(text, "1 seed") {
		t.Errorf("defense figure title: %q", text)
	}
	efs, err := EpochFigures(one)
	if err != nil {
		t.Fatal(err)
	}
	if text := svgText(t, efs[1]); !strings.Contains(text, "MinRank by epoch") || !strings.Contains(text, "1 seed") {
		t.Errorf("MinRank by epoch: %q", text)
	}
}

// The findings table states each verdict and does not claim reproduction when a finding fails.
func TestFindingsTableTitle(t *testing.T) {
	fs := []study.Finding{{ID: "F1", Verdict: study.VerdictHolds, Holds: true, Seeds: 3}, {ID: "F5", Verdict: study.VerdictDoesNotHold, Seeds: 3},
		{ID: "F6", Verdict: study.VerdictNotEnoughRuns, Seeds: 3}}
	text := FindingsTable(fs).Text()
	for _, w := range []string{"The paper's findings, checked: 1 of 3 hold (F5 does not hold, F6 not enough runs)", "verdict", "mean ± std over seeds"} {
		if !strings.Contains(text, w) {
			t.Errorf("findings table lacks %q:\n%s", w, text)
		}
	}
	if text := FindingsTable(fs[:1]).Text(); !strings.Contains(text, "reproduced: all 1 hold") {
		t.Errorf("all hold:\n%s", text)
	}
}

// The MinRank-by-epoch figure starts at epoch 0, the pre-trained model, when the runs recorded it.
func TestEpochFiguresStartAtThePretrainedModel(t *testing.T) {
	r := seededResult(1, 0.01, "trouser", "bag", []int{0, 1})
	r.Pretrained = r.Clean
	figs, err := EpochFigures([]*experiment.Result{r})
	if err != nil {
		t.Fatal(err)
	}
	if text := svgText(t, figs[1]); !strings.Contains(text, "0: the pre-trained model") {
		t.Errorf("x axis: %q", text)
	}
}

// A row of the retrieval gallery says in words what it holds, counting the images that are neither class A nor B.
func TestRowClasses(t *testing.T) {
	goal := attack.Goal{Source: "trouser", Target: "bag"}
	for _, tc := range []struct {
		row  []string
		want string
	}{
		{[]string{"dress", "bag", "dress", "dress", "dress", "dress"}, "poisoned model, top 6: 5 dresses, 1 bag; 5 neither trouser nor bag"},
		{[]string{"bag", "bag"}, "poisoned model, top 2: 2 bags"},
		{[]string{"trouser", "coat", "sandal", "coat"}, "poisoned model, top 4: 2 coats, 1 trouser, 1 sandal; 3 neither trouser nor bag"},
	} {
		if got := rowClasses("poisoned model", tc.row, goal); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.row, got, tc.want)
		}
	}
}
