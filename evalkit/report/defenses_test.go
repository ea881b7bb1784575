package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/evalkit/defenses"
	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/metrics"
	"github.com/mmpoison/mmpoison/poisoning/defense"
)

func TestDefenseMatrixTableAndFigures(t *testing.T) {
	var outs []*defenses.Outcome
	for _, seed := range []int64{1, 2} {
		r := seededResult(seed, 0.01, "trouser", "bag", []int{0, 0, 1, 2})
		for _, d := range defenses.All {
			o := &defenses.Outcome{Cell: defenses.Cell{Spec: r.Spec, Defense: d},
				Clean: r.Clean, Poisoned: r.Poisoned, Defended: r.Poisoned, Seconds: 10}
			if d != defenses.DefenseNone {
				o.Defended = &experiment.ModelEval{Attack: metrics.AttackResultFromRanks([]int{50, 60, 70, 5}, nil),
					UtilityOthers: r.Clean.UtilityOthers}
			}
			if d == defenses.DefenseFilter {
				rec, prec, cl := 0.8, 0.5, 0.02
				o.Report = &defense.FilterReport{Total: 1000, Dropped: 40, FractionRemoved: 0.04, Recall: &rec, Precision: &prec, CleanDroppedFraction: &cl}
				o.Checker = "small pre-trained on the clean pool, seed 43"
			}
			outs = append(outs, o)
		}
	}
	text := DefenseMatrixTable(outs).Text()
	for _, want := range []string{"clean model (baseline)", "poisoned model, no defense", "filter", "cleanclip", "kdistance",
		"0.800 ± 0.000", "0.040 ± 0.000", "0.250 ± 0.000", "1.000 ± 0.000",
		"independent clean checker model (here: small pre-trained on the clean pool, seed 43);"} {
		if !strings.Contains(text, want) {
			t.Errorf("matrix table lacks %q:\n%s", want, text)
		}
	}
	figs, err := DefenseMatrixFigures(outs)
	if err != nil {
		t.Fatal(err)
	}
	if len(figs) != 2 {
		t.Fatalf("%d figures", len(figs))
	}
	for _, f := range figs {
		if err := f.Validate(); err != nil {
			t.Error(err)
		}
	}
	dir := t.TempDir()
	files, err := WriteDefenses(dir, outs)
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "defenses.md"))
	if err != nil || !strings.Contains(string(md), "defense_matrix_hit10.svg") || !strings.Contains(string(md), "Defenses beside the paper") {
		t.Errorf("defenses.md (%v):\n%s", err, md)
	}
	if len(files) != 2*3+1 {
		t.Errorf("%d files written: %v", len(files), files)
	}
	if _, err := DefenseMatrixFigures(nil); err == nil {
		t.Error("an empty matrix drew a figure")
	}
}
