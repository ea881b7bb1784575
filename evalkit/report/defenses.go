package report

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"github.com/mmpoison/mmpoison/evalkit/defenses"
	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/plots"
	"github.com/mmpoison/mmpoison/evalkit/sweep"
	"github.com/mmpoison/mmpoison/kernelext"
	"github.com/mmpoison/mmpoison/poisoning/atomicfile"
)

// attackLabel names an attacked spec, e.g. "II trouser→bag" or "backdoor →bag".
func attackLabel(s experiment.Spec) string {
	return fmt.Sprintf("%s %s→%s", s.Attack.Kind, s.Attack.Source(), s.Attack.Target())
}

// matrixGroups groups outcomes by attack label and defense, in first-seen order.
func matrixGroups(os []*defenses.Outcome) (attacks, defs []string, by map[[2]string][]*defenses.Outcome) {
	by = map[[2]string][]*defenses.Outcome{}
	seenA, seenD := map[string]bool{}, map[string]bool{}
	for _, o := range os {
		a := attackLabel(o.Spec)
		if !seenA[a] {
			seenA[a], attacks = true, append(attacks, a)
		}
		if !seenD[o.Defense] {
			seenD[o.Defense], defs = true, append(defs, o.Defense)
		}
		by[[2]string{a, o.Defense}] = append(by[[2]string{a, o.Defense}], o)
	}
	return attacks, defs, by
}

// over summarises f over outcomes (seeds) as mean and standard deviation.
func over(os []*defenses.Outcome, f func(*defenses.Outcome) float64) sweep.Summary {
	vs := make([]float64, 0, len(os))
	for _, o := range os {
		if v := f(o); !math.IsNaN(v) {
			vs = append(vs, v)
		}
	}
	return sweep.Summarize(vs, 13)
}

// ms formats a summary over seeds: mean ± std over two or more, the value alone over one.
func ms(s sweep.Summary, format string) string { return s.Text(format) }

// The matrix's words for its reference models.
const (
	cleanBaseline = "clean model (baseline)"
	noDefense     = "poisoned model, no defense"
)

// matrixSeeds is the fewest seeds of a matrix's cells.
func matrixSeeds(by map[[2]string][]*defenses.Outcome) int {
	n := 0
	for _, cs := range by {
		if n == 0 || len(cs) < n {
			n = len(cs)
		}
	}
	return n
}

func evalHit10(e *experiment.ModelEval) float64 { v, _ := e.Attack.HitAt(10); return v }

// DefenseMatrixTable is the defense × attack matrix as one table: for every attack, the clean baseline, the
// undefended poisoned model and each defense, with Hit@10, MinRank, utility (Recall@10 on untargeted classes),
// the data each data-side defense removed (share of all pairs, of clean pairs, and poison recall / precision
// from the manifest) and its training cost; mean ± std over seeds.
func DefenseMatrixTable(os []*defenses.Outcome) *kernelext.Table {
	t := kernelext.NewTable("Defenses × attacks", "attack", "model", "Hit@10", "MinRank", "TR@10", "IR@10",
		"pairs removed", "clean pairs removed", "poison recall", "poison precision", "cost (s)")
	attacks, defs, by := matrixGroups(os)
	for _, a := range attacks {
		if first := by[[2]string{a, defs[0]}]; len(first) > 0 {
			t.AddRow(a, cleanBaseline, ms(over(first, func(o *defenses.Outcome) float64 { return evalHit10(o.Clean) }), "%.3f"),
				ms(over(first, func(o *defenses.Outcome) float64 { return o.Clean.Attack.MinRank.Mean }), "%.1f"),
				ms(over(first, func(o *defenses.Outcome) float64 { return o.Clean.UtilityOthers.TR(10) }), "%.3f"),
				ms(over(first, func(o *defenses.Outcome) float64 { return o.Clean.UtilityOthers.IR(10) }), "%.3f"),
				"", "", "", "", "")
		}
		for _, d := range defs {
			cs := by[[2]string{a, d}]
			if len(cs) == 0 {
				continue
			}
			rep := func(f func(o *defenses.Outcome) float64) string {
				if cs[0].Report == nil {
					return "–"
				}
				return ms(over(cs, func(o *defenses.Outcome) float64 {
					if o.Report == nil { // A cell read back without its report: left out.
						return math.NaN()
					}
					return f(o)
				}), "%.3f")
			}
			name := d
			if d == defenses.DefenseNone {
				name = noDefense
			}
			t.AddRow(a, name, ms(over(cs, func(o *defenses.Outcome) float64 { return evalHit10(o.Defended) }), "%.3f"),
				ms(over(cs, func(o *defenses.Outcome) float64 { return o.Defended.Attack.MinRank.Mean }), "%.1f"),
				ms(over(cs, func(o *defenses.Outcome) float64 { return o.Defended.UtilityOthers.TR(10) }), "%.3f"),
				ms(over(cs, func(o *defenses.Outcome) float64 { return o.Defended.UtilityOthers.IR(10) }), "%.3f"),
				rep(func(o *defenses.Outcome) float64 { return o.Report.FractionRemoved }),
				rep(func(o *defenses.Outcome) float64 { return deref(o.Report.CleanDroppedFraction) }),
				rep(func(o *defenses.Outcome) float64 { return deref(o.Report.Recall) }),
				rep(func(o *defenses.Outcome) float64 { return deref(o.Report.Precision) }),
				ms(over(cs, func(o *defenses.Outcome) float64 { return o.Seconds }), "%.0f"))
		}
	}
	return t.AddNote("%s TR@10 (image→text) and IR@10 (text→image) on the classes the attack does not target. "+
		"Post-training defenses (clean-finetune, cleanclip) remove no data; their cost is the extra epochs on held-out clean pairs. "+
		"Data-side defenses (filter, kdistance) also need an independent clean checker model%s; their cost is detection plus fine-tuning on the kept pairs.",
		sweep.SeedsNote(matrixSeeds(by), false), checkersNote(os))
}

// checkersNote names the checkers of the data-side defenses among outcomes, e.g. " (here: small pre-trained on
// the clean pool, seed 43)"; "" when no outcome names one (cells from before the checker was recorded).
func checkersNote(os []*defenses.Outcome) string {
	var names []string
	seen := map[string]bool{}
	for _, o := range os {
		if o.Checker != "" && !seen[o.Checker] {
			seen[o.Checker], names = true, append(names, o.Checker)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return " (here: " + strings.Join(names, "; ") + ")"
}

// DefenseMatrixFigures draws the matrix: Hit@10 and utility (IR@10 on untargeted classes) per attack for the
// clean baseline, the undefended poisoned model and each defense (mean ± std over seeds).
func DefenseMatrixFigures(os []*defenses.Outcome) ([]*kernelext.Figure, error) {
	attacks, defs, by := matrixGroups(os)
	if len(attacks) == 0 {
		return nil, fmt.Errorf("report: empty defense matrix")
	}
	series := func(metric func(*experiment.ModelEval) float64) []plots.BarSeries {
		clean := plots.BarSeries{Name: cleanBaseline}
		for _, a := range attacks {
			s := over(by[[2]string{a, defs[0]}], func(o *defenses.Outcome) float64 { return metric(o.Clean) })
			clean.Values, clean.Err = append(clean.Values, s.Mean), append(clean.Err, s.Spread())
		}
		out := []plots.BarSeries{clean}
		for _, d := range defs {
			bs := plots.BarSeries{Name: d}
			if d == defenses.DefenseNone {
				bs.Name = noDefense
			}
			for _, a := range attacks {
				s := over(by[[2]string{a, d}], func(o *defenses.Outcome) float64 { return metric(o.Defended) })
				bs.Values, bs.Err = append(bs.Values, s.Mean), append(bs.Err, s.Spread())
			}
			out = append(out, bs)
		}
		return out
	}
	seeds := overSeeds(matrixSeeds(by))
	hit, err := plots.Bars("Attack success under each defense\n"+seeds, attacks, series(evalHit10),
		plots.WithYLabel("Hit@10"), plots.WithName("defense_matrix_hit10"))
	if err != nil {
		return nil, err
	}
	util, err := plots.Bars("Utility under each defense, untargeted classes\n"+seeds, attacks,
		series(func(e *experiment.ModelEval) float64 { return e.UtilityOthers.IR(10) }),
		plots.WithYLabel("IR@10 (text→image Recall@10)"), plots.WithName("defense_matrix_utility"))
	if err != nil {
		return nil, err
	}
	return []*kernelext.Figure{hit, util}, nil
}

// deref returns *p, or NaN for nil (a ratio with a zero denominator).
func deref(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

// DefenseTable compares a defended model with the clean baseline and the undefended poisoned model of r:
// Hit@1, Hit@10, MinRank and utility (Recall@10 on untargeted classes). names label the evaluations, e.g.
// "after the filter" or "after epoch 1", "after epoch 2" for a post-training defense.
func DefenseTable(title string, r *experiment.Result, names []string, evals []*experiment.ModelEval) *kernelext.Table {
	t := kernelext.NewTable(title, "model", "Hit@1", "Hit@10", "MinRank", "TR@10", "IR@10")
	row := func(name string, e *experiment.ModelEval) {
		h1, _ := e.Attack.HitAt(1)
		t.AddRow(name, fmt.Sprintf("%.3f", h1), fmt.Sprintf("%.3f", evalHit10(e)), fmt.Sprintf("%.1f", e.Attack.MinRank.Mean),
			fmt.Sprintf("%.3f", e.UtilityOthers.TR(10)), fmt.Sprintf("%.3f", e.UtilityOthers.IR(10)))
	}
	row(cleanBaseline, r.Clean)
	row(noDefense, r.Poisoned)
	for i, e := range evals {
		name := fmt.Sprintf("defended (%d)", i+1)
		if i < len(names) {
			name = names[i]
		}
		row(name, e)
	}
	return t.AddNote("TR@10 (image→text) and IR@10 (text→image) Recall@10 on the test classes the attack does not target.")
}

// EpochNames returns "after epoch 1", ..., "after epoch n".
func EpochNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("after epoch %d", i+1)
	}
	return out
}

// DefenseComparison checks the paper's finding F7 for every defense and attack of a matrix, with mmpoison's
// bars: Hit@10 back within 0.1 of the clean baseline, at most 10% of the clean pairs removed (data-side
// defenses), utility (TR@10 and IR@10 on untargeted classes) no more than 0.05 below the clean model's; all in
// every seed.
func DefenseComparison(os []*defenses.Outcome) *kernelext.Table {
	t := kernelext.NewTable("Defenses beside the paper (F7)", "attack", "defense", "paper", "Hit@10: clean → poisoned → defended",
		"clean pairs removed", "largest utility drop", "verdict")
	paper := map[string]string{
		defenses.DefenseFilter:        "Attack II Hit@10 0.936 → 0.016, utility unchanged",
		defenses.DefenseCleanFinetune: "Hit@10 ≈ 0.9 → ≈ 0 after 1 epoch, utility ±0.02",
		defenses.DefenseKDistance:     "– (beyond the paper)",
		defenses.DefenseCleanCLIP:     "– (beyond the paper)",
	}
	attacks, defs, by := matrixGroups(os)
	for _, a := range attacks {
		for _, d := range defs {
			cs := by[[2]string{a, d}]
			if d == defenses.DefenseNone || len(cs) == 0 {
				continue
			}
			holds := true
			worstUtil, worstClean := 0.0, 0.0
			for _, o := range cs {
				if evalHit10(o.Defended)-evalHit10(o.Clean) > 0.1 {
					holds = false
				}
				for _, u := range []float64{o.Defended.UtilityOthers.TR(10) - o.Clean.UtilityOthers.TR(10),
					o.Defended.UtilityOthers.IR(10) - o.Clean.UtilityOthers.IR(10)} {
					worstUtil = math.Max(worstUtil, -u) // A drop; an extra clean epoch may also raise utility.
				}
				if o.Report != nil {
					worstClean = math.Max(worstClean, deref(o.Report.CleanDroppedFraction))
				}
			}
			holds = holds && worstUtil <= 0.05 && worstClean <= 0.10
			removed := "–"
			if cs[0].Report != nil {
				removed = fmt.Sprintf("%.1f%% (worst seed)", 100*worstClean)
			}
			verdict := "does not hold"
			if holds {
				verdict = "holds"
			}
			t.AddRow(a, d, paper[d], fmt.Sprintf("%s → %s → %s",
				ms(over(cs, func(o *defenses.Outcome) float64 { return evalHit10(o.Clean) }), "%.3f"),
				ms(over(cs, func(o *defenses.Outcome) float64 { return evalHit10(o.Poisoned) }), "%.3f"),
				ms(over(cs, func(o *defenses.Outcome) float64 { return evalHit10(o.Defended) }), "%.3f")),
				removed, fmt.Sprintf("%.3f", worstUtil), verdict)
		}
	}
	return t.AddNote("Bars: Hit@10 within 0.1 of the clean model, ≤ 10%% of clean pairs removed, Recall@10 at most 0.05 below the clean model's, in every seed. %s",
		sweep.SeedsNote(matrixSeeds(by), false))
}

// WriteDefenses writes a defense matrix's report folder: defenses.md (the matrix and the F7 table) and the
// figures as SVG, PDF and PNG. The folder is written whole, as Write writes its.
func WriteDefenses(dir string, outs []*defenses.Outcome) ([]string, error) {
	figs, err := DefenseMatrixFigures(outs)
	if err != nil {
		return nil, err
	}
	return writeFolder(dir, func(dir string) ([]string, error) {
		var md strings.Builder
		md.WriteString("# mmpoison defenses\n\n" + DefenseMatrixTable(outs).Markdown() + "\n" + DefenseComparison(outs).Markdown() + "\n")
		files, err := saveFigures(dir, figs, &md)
		if err != nil {
			return files, err
		}
		p := filepath.Join(dir, "defenses.md")
		if err := atomicfile.WriteFile(p, []byte(md.String())); err != nil {
			return files, err
		}
		return append(files, p), nil
	})
}
