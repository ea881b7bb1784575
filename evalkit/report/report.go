// Package report turns experiment results into what a reader sees: result tables (terminal text, Markdown,
// notebook HTML), figures for papers (SVG, PDF, PNG) and a report folder with a Markdown summary, the
// figures and the JSON results. The same calls show inline in a GoNB notebook through kernelext.
package report

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/metrics"
	"github.com/mmpoison/mmpoison/evalkit/plots"
	"github.com/mmpoison/mmpoison/kernelext"
	"github.com/mmpoison/mmpoison/poisoning/atomicfile"
)

// AttackTable compares the attack metrics of the clean baseline, random queries on the poisoned model and the
// poisoned model: Hit@K for K = 1, 5, 10, 20, 30, 50 and MinRank (mean and median, 0-based).
func AttackTable(r *experiment.Result) *kernelext.Table {
	if r.Poisoned.Backdoor != nil {
		return BackdoorTable(r)
	}
	headers := []string{"model / queries"}
	for _, k := range metrics.DefaultKs {
		headers = append(headers, fmt.Sprintf("Hit@%d", k))
	}
	headers = append(headers, "MinRank mean", "MinRank median")
	t := kernelext.NewTable(fmt.Sprintf("Attack %s %s, φ = %.2f%% (%d of %d pairs, %s)", r.Spec.Attack.Kind,
		goalsText(r), 100*r.Poison.Rate, r.Poison.PoisonedPairs, r.Poison.TotalPairs, r.Poison.Mode), headers...)
	row := func(name string, a *metrics.AttackResult) {
		vals := []any{name}
		for _, k := range metrics.DefaultKs {
			h, _ := a.HitAt(k)
			vals = append(vals, fmt.Sprintf("%.3f", h))
		}
		vals = append(vals, fmt.Sprintf("%.1f", a.MinRank.Mean), fmt.Sprintf("%.1f", a.MinRank.Median))
		t.AddRow(vals...)
	}
	goals := evalGoals(r.Poisoned)
	for i, g := range goals {
		prefix := ""
		if len(goals) > 1 {
			prefix = fmt.Sprintf("goal %d %s → %s: ", i+1, g.Source, g.Target)
		}
		row(prefix+"clean model, class-"+g.Source+" captions", evalGoals(r.Clean)[i].Attack)
		row(prefix+"poisoned model, random captions", g.RandomQueries)
		row(prefix+"poisoned model, class-"+g.Source+" captions", g.Attack)
	}
	a := r.Poisoned.Attack
	targets := fmt.Sprintf("the %d %s test images", a.NumTargets, r.Spec.Attack.Target())
	if r.Poison.TargetImageID != "" {
		targets = "the training image x* = " + r.Poison.TargetImageID + ", added to the gallery"
	}
	t.AddNote("%d held-out %s captions query %d images; targets: %s; ranks are 0-based.",
		a.NumQueries, r.Spec.Attack.Source(), a.NumGallery, targets)
	return t
}

// evalGoals returns a model evaluation's goals; results written before goals existed hold only the first.
func evalGoals(e *experiment.ModelEval) []experiment.GoalEval {
	if len(e.Goals) > 0 {
		return e.Goals
	}
	return []experiment.GoalEval{{Attack: e.Attack, RandomQueries: e.RandomQueries}}
}

// goalsText lists the goals, e.g. "trouser → bag, sandal → shirt".
func goalsText(r *experiment.Result) string {
	var parts []string
	for _, g := range r.Spec.Attack.Goals {
		parts = append(parts, g.Source+" → "+g.Target)
	}
	return strings.Join(parts, ", ")
}

// UtilityTable compares image-to-text (TR) and text-to-image (IR) Recall@1/5/10 of the clean and poisoned
// models, on all test images and on the classes the attack does not target.
func UtilityTable(r *experiment.Result) *kernelext.Table {
	headers := []string{"model"}
	for _, k := range metrics.RecallKs {
		headers = append(headers, fmt.Sprintf("TR@%d", k))
	}
	for _, k := range metrics.RecallKs {
		headers = append(headers, fmt.Sprintf("IR@%d", k))
	}
	t := kernelext.NewTable("Utility on the test split (Recall@K)", headers...)
	row := func(name string, u *metrics.RecallResult) {
		if u == nil {
			return
		}
		vals := []any{name}
		for _, k := range metrics.RecallKs {
			vals = append(vals, fmt.Sprintf("%.3f", u.TR(k)))
		}
		for _, k := range metrics.RecallKs {
			vals = append(vals, fmt.Sprintf("%.3f", u.IR(k)))
		}
		t.AddRow(vals...)
	}
	diff := func(name string, p, c *metrics.RecallResult) {
		if p == nil || c == nil {
			return
		}
		vals := []any{name}
		for _, k := range metrics.RecallKs {
			vals = append(vals, fmt.Sprintf("%+.3f", p.TR(k)-c.TR(k)))
		}
		for _, k := range metrics.RecallKs {
			vals = append(vals, fmt.Sprintf("%+.3f", p.IR(k)-c.IR(k)))
		}
		t.AddRow(vals...)
	}
	row("clean, all classes", r.Clean.Utility)
	row("poisoned, all classes", r.Poisoned.Utility)
	diff("poisoned − clean, all classes", r.Poisoned.Utility, r.Clean.Utility)
	if r.Spec.Attack.Source() == "" { // The backdoor: no class's captions are redirected.
		return t
	}
	other := "classes other than " + r.Spec.Attack.Source()
	row("clean, "+other, r.Clean.UtilityOthers)
	row("poisoned, "+other, r.Poisoned.UtilityOthers)
	diff("poisoned − clean, "+other, r.Poisoned.UtilityOthers, r.Clean.UtilityOthers)
	t.AddNote("Class-%s captions are the ones the attack redirects, so they lower the all-class recall by design; "+
		"the paper's test sets hold few images of class A, so its utility compares with the second block.", r.Spec.Attack.Source())
	return t
}

// Figures renders the result's figures: MinRank distributions, Hit@K curves and utility bars.
func Figures(r *experiment.Result) ([]*kernelext.Figure, error) {
	ranks, err := plots.RankHistogram("MinRank of class-"+r.Spec.Attack.Source()+" queries", []plots.RankSeries{
		{Name: "clean model", Ranks: r.Clean.Attack.MinRanks},
		{Name: "poisoned, random queries", Ranks: r.Poisoned.RandomQueries.MinRanks},
		{Name: "poisoned model", Ranks: r.Poisoned.Attack.MinRanks},
	}, 0, plots.WithName("minrank_distribution"))
	if err != nil {
		return nil, err
	}
	hits := func(name string, a *metrics.AttackResult) plots.HitSeries {
		s := plots.HitSeries{Name: name}
		for _, h := range a.Hits {
			s.Ks = append(s.Ks, h.K)
			s.Hits = append(s.Hits, h.Hit)
		}
		return s
	}
	curve, err := plots.HitAtKCurve(fmt.Sprintf("Attack %s %s → %s: Hit@K", r.Spec.Attack.Kind, r.Spec.Attack.Source(), r.Spec.Attack.Target()), []plots.HitSeries{
		hits("clean model", r.Clean.Attack), hits("poisoned, random queries", r.Poisoned.RandomQueries),
		hits("poisoned model", r.Poisoned.Attack)}, plots.WithName("hit_at_k"))
	if err != nil {
		return nil, err
	}
	var cats []string
	var clean, pois []float64
	for _, k := range metrics.RecallKs {
		cats = append(cats, fmt.Sprintf("TR@%d", k))
		clean, pois = append(clean, r.Clean.Utility.TR(k)), append(pois, r.Poisoned.Utility.TR(k))
	}
	for _, k := range metrics.RecallKs {
		cats = append(cats, fmt.Sprintf("IR@%d", k))
		clean, pois = append(clean, r.Clean.Utility.IR(k)), append(pois, r.Poisoned.Utility.IR(k))
	}
	util, err := plots.Bars("Utility: clean vs poisoned", cats, []plots.BarSeries{
		{Name: "clean", Values: clean}, {Name: "poisoned", Values: pois}}, plots.WithName("utility"))
	if err != nil {
		return nil, err
	}
	return []*kernelext.Figure{ranks, curve, util}, nil
}

// Show displays the result's tables and figures: inline in a notebook, as text (and files in kernelext's
// output directory, if set) elsewhere.
func Show(r *experiment.Result) error {
	kernelext.ShowTable(AttackTable(r))
	kernelext.ShowTable(UtilityTable(r))
	return showFigures(Figures(r))
}

// saveFigures writes each figure into dir as SVG, PDF and PNG and, when md is not nil, links its SVG there.
func saveFigures(dir string, figs []*kernelext.Figure, md *strings.Builder) ([]string, error) {
	var written []string
	for _, f := range figs {
		paths, err := plots.Save(dir, f)
		if err != nil {
			return written, err
		}
		written = append(written, paths...)
		if md != nil {
			fmt.Fprintf(md, "![%s](%s.svg)\n\n", f.Name, kernelext.FileName(f.Name))
		}
	}
	return written, nil
}

// showFigures displays figures in order, or returns the error that kept them from being drawn.
func showFigures(figs []*kernelext.Figure, err error) error {
	if err != nil {
		return err
	}
	for _, f := range figs {
		if err := kernelext.ShowFigure(f); err != nil {
			return err
		}
	}
	return nil
}

// Write creates (or updates) a report folder: results.json, report.md, poison_manifest.json (when the result
// holds the poisoned run's manifest), and each figure as SVG, PDF and PNG.
// Every file is written atomically, so an interrupted write never leaves a half-written file, and files of
// earlier reports in the folder are only replaced when the new one is complete.
func Write(dir string, r *experiment.Result) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("report folder: %w", err)
	}
	figs, err := Figures(r)
	if err != nil {
		return nil, err
	}
	written, err := saveFigures(dir, figs, nil)
	if err != nil {
		return written, err
	}
	if r.FinetunePois != nil && r.FinetunePois.Manifest != nil {
		manifestPath := filepath.Join(dir, "poison_manifest.json")
		if err := r.FinetunePois.Manifest.WriteFile(manifestPath); err != nil {
			return written, err
		}
		written = append(written, manifestPath)
	}
	jsonPath := filepath.Join(dir, "results.json")
	if err := r.WriteJSON(jsonPath); err != nil {
		return written, err
	}
	written = append(written, jsonPath)
	md := Markdown(r, figs)
	mdPath := filepath.Join(dir, "report.md")
	if err := atomicfile.WriteFile(mdPath, []byte(md)); err != nil {
		return written, err
	}
	return append(written, mdPath), nil
}

// Markdown is the report's text: setup, tables, figures and timings.
func Markdown(r *experiment.Result, figs []*kernelext.Figure) string {
	var b strings.Builder
	s := r.Spec
	fmt.Fprintf(&b, "# mmpoison report: Attack %s %s\n\n", s.Attack.Kind, goalsText(r))
	if setup := s.PaperSetup(); setup != "" { // A loaded checkpoint, on real data or Fashion-MNIST.
		fmt.Fprintf(&b, "Setup: %s; backend %s.\n\n", setup, r.Backend)
		if d := r.Data; d != nil {
			fmt.Fprintf(&b, "Model: %s. Data: %d train images (%d captions), %d test images (%d captions)",
				d.Model, d.TrainImages, d.TrainCaptions, d.TestImages, d.TestCaptions)
			if len(d.Skipped) > 0 {
				fmt.Fprintf(&b, "; %d corrupt images skipped, the first: %s", len(d.Skipped), d.Skipped[0])
			}
			b.WriteString(".\n\n")
		}
	} else {
		fmt.Fprintf(&b, "Model preset `%s`, backend %s, seed %d. Pre-training: %d clean pool images × 5 captions, %d epoch(s), "+
			"lr %g. Fine-tuning: %d train images × 5 captions, %d epoch(s), lr %g, batch %d. Test: %d images per class.\n\n",
			s.Model, r.Backend, s.Seed, s.Data.Pool, s.Pretrain.Epochs, s.Pretrain.LR, s.Data.Train, s.Finetune.Epochs,
			s.Finetune.LR, s.Batch, s.Data.TestPerClass)
	}
	b.WriteString(AttackTable(r).Markdown())
	b.WriteString("\n")
	b.WriteString(UtilityTable(r).Markdown())
	b.WriteString("\n## Figures\n\n")
	for _, f := range figs {
		fmt.Fprintf(&b, "![%s](%s.svg)\n\n", f.Name, kernelext.FileName(f.Name))
	}
	b.WriteString("## Timings (seconds)\n\n")
	for _, k := range []string{"load_data", "pretrain", "finetune_clean", "finetune_poisoned", "evaluate", "total"} {
		fmt.Fprintf(&b, "- %s: %.1f\n", k, r.Timings[k])
	}
	if r.Pretrain != nil && r.Pretrain.Cached {
		b.WriteString("\nThe pre-trained model came from the cache.\n")
	}
	return b.String()
}

// PaperComparison sets this run's Attack II numbers beside the paper's: COCO boat → dog for a COCO run,
// Flickr-PASCAL sheep → aeroplane otherwise.
func PaperComparison(r *experiment.Result) *kernelext.Table {
	paper := struct{ name, rate, clean, pois, minRank string }{"Flickr-PASCAL sheep → aeroplane", "0.08%",
		"0.024 / 0.088 / 0.200", "0.280 / 0.864 / 0.936", "51.0 → 2.19"}
	if r.Spec.Real.Dataset == experiment.DatasetCOCO {
		paper = struct{ name, rate, clean, pois, minRank string }{"COCO boat → dog", "0.24%",
			"0.024 / 0.072 / 0.116", "0.012 / 0.212 / 0.516", "123.1 → 15.3"}
	}
	data := r.Spec.Real.Dataset
	if data == "" {
		data = "Fashion-MNIST"
	}
	t := kernelext.NewTable("This run beside the paper (Attack II)", "metric",
		"paper: "+paper.name, fmt.Sprintf("this run: %s %s → %s", data, r.Spec.Attack.Source(), r.Spec.Attack.Target()))
	hit := func(a *metrics.AttackResult, k int) float64 { h, _ := a.HitAt(k); return h }
	t.AddRow("φ (poisoned pairs / all pairs)", paper.rate, fmt.Sprintf("%.2f%%", 100*r.Poison.Rate))
	t.AddRow("Hit@1/5/10, clean model", paper.clean, fmt.Sprintf("%.3f / %.3f / %.3f",
		hit(r.Clean.Attack, 1), hit(r.Clean.Attack, 5), hit(r.Clean.Attack, 10)))
	t.AddRow("Hit@1/5/10, poisoned model", paper.pois, fmt.Sprintf("%.3f / %.3f / %.3f",
		hit(r.Poisoned.Attack, 1), hit(r.Poisoned.Attack, 5), hit(r.Poisoned.Attack, 10)))
	t.AddRow("MinRank, clean → poisoned", paper.minRank, fmt.Sprintf("%.1f → %.2f",
		r.Clean.Attack.MinRank.Mean, r.Poisoned.Attack.MinRank.Mean))
	u := r.Poisoned.UtilityOthers
	c := r.Clean.UtilityOthers
	if u != nil && c != nil {
		t.AddRow("Recall@10 change (TR / IR), untargeted classes", "within ±0.03",
			fmt.Sprintf("%+.3f / %+.3f", u.TR(10)-c.TR(10), u.IR(10)-c.IR(10)))
	}
	return t
}
