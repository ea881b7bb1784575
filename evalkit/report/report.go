// Package report turns experiment results into what a reader sees: result tables (terminal text, Markdown,
// notebook HTML), figures for papers (SVG, PDF, PNG) and a report folder with a Markdown summary, the
// figures and the JSON results. The same calls show inline in a GoNB notebook through kernelext.
package report

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/metrics"
	"github.com/mmpoison/mmpoison/evalkit/plots"
	"github.com/mmpoison/mmpoison/kernelext"
	"github.com/mmpoison/mmpoison/poisoning/atomicfile"
	"github.com/mmpoison/mmpoison/poisoning/attack"
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
	t := kernelext.NewTable(fmt.Sprintf("Attack %s %s, φ = %.2f%% (%s of %s pairs, %s)", r.Spec.Attack.Kind,
		goalsText(r), 100*r.Poison.Rate, thousands(r.Poison.PoisonedPairs), thousands(r.Poison.TotalPairs), r.Poison.Mode), headers...)
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
		if g.Source == "" && i < len(r.Spec.Attack.Goals) { // A result written before goals were recorded.
			g.Source, g.Target = r.Spec.Attack.Goals[i].Source, r.Spec.Attack.Goals[i].Target
		}
		prefix := ""
		if len(goals) > 1 {
			prefix = fmt.Sprintf("goal %d %s → %s: ", i+1, g.Source, g.Target)
		}
		row(prefix+cleanLabel(g.Source), evalGoals(r.Clean)[i].Attack)
		row(prefix+randomLabel, g.RandomQueries)
		row(prefix+poisonedLabel(g.Source), g.Attack)
	}
	a := r.Poisoned.Attack
	targets := fmt.Sprintf("the %d %s test images", a.NumTargets, r.Spec.Attack.Target())
	if r.Poison.TargetImageID != "" {
		targets = "the training image x* = " + r.Poison.TargetImageID + ", added to the gallery"
	}
	t.AddNote("%d held-out %s captions query %d images; targets: %s; random captions: as many captions of classes "+
		"the attack does not involve. Hit@K: share of queries with a target among the top K images; MinRank: rank of "+
		"the best-ranked target (0-based).", a.NumQueries, r.Spec.Attack.Source(), a.NumGallery, targets)
	return t
}

// The words every table and figure uses for a result's models and queries.
const randomLabel = "poisoned model, random captions"

func cleanLabel(source string) string    { return "clean model, class-" + source + " captions" }
func poisonedLabel(source string) string { return "poisoned model, class-" + source + " captions" }

// The words for image-to-text (TR) and text-to-image (IR) Recall@K, in tables and on figures.
const recallWords = "TR@K: image→text Recall@K (a test image's own caption among its top K captions); " +
	"IR@K: text→image Recall@K (a caption's own image among its top K images)"

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
	row("clean model, all classes", r.Clean.Utility)
	row("poisoned model, all classes", r.Poisoned.Utility)
	diff("poisoned − clean, all classes", r.Poisoned.Utility, r.Clean.Utility)
	t.AddNote("%s.", recallWords)
	if r.Spec.Attack.Source() == "" { // The backdoor: no class's captions are redirected.
		return t
	}
	other := othersLabel(r)
	row("clean model, "+other, r.Clean.UtilityOthers)
	row("poisoned model, "+other, r.Poisoned.UtilityOthers)
	diff("poisoned − clean, "+other, r.Poisoned.UtilityOthers, r.Clean.UtilityOthers)
	t.AddNote("Class-%s captions are the ones the attack redirects, so they lower the all-class recall by design; "+
		"the paper's test sets hold few images of class A, so its utility compares with the second block.", r.Spec.Attack.Source())
	return t
}

// othersLabel names the untargeted classes of a result, e.g. "classes other than trouser".
func othersLabel(r *experiment.Result) string {
	var sources []string
	for _, g := range r.Spec.Attack.Goals {
		if g.Source != "" {
			sources = append(sources, g.Source)
		}
	}
	return "classes other than " + strings.Join(sources, " and ")
}

// Figures renders the result's figures: MinRank distributions, Hit@K curves and utility bars, labelled with the
// tables' words.
func Figures(r *experiment.Result) ([]*kernelext.Figure, error) {
	src, dst := r.Spec.Attack.Source(), r.Spec.Attack.Target()
	ranks, err := plots.RankHistogram(fmt.Sprintf("MinRank of the first %s image per query", dst), []plots.RankSeries{
		{Name: cleanLabel(src), Ranks: r.Clean.Attack.MinRanks},
		{Name: randomLabel, Ranks: r.Poisoned.RandomQueries.MinRanks},
		{Name: poisonedLabel(src), Ranks: r.Poisoned.Attack.MinRanks},
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
	curve, err := plots.HitAtKCurve(fmt.Sprintf("Attack %s %s: Hit@K", r.Spec.Attack.Kind, goalsText(r)), []plots.HitSeries{
		hits(cleanLabel(src), r.Clean.Attack), hits(randomLabel, r.Poisoned.RandomQueries),
		hits(poisonedLabel(src), r.Poisoned.Attack)}, plots.WithName("hit_at_k"))
	if err != nil {
		return nil, err
	}
	util, err := utilityFigure(r)
	if err != nil {
		return nil, err
	}
	return []*kernelext.Figure{ranks, curve, util}, nil
}

// utilityFigure draws Recall@K of the clean and the poisoned model on all classes and, beside it, on the classes
// the attack does not target (what the paper's utility compares with).
func utilityFigure(r *experiment.Result) (*kernelext.Figure, error) {
	var cats []string
	for _, dir := range []string{"TR", "IR"} {
		for _, k := range metrics.RecallKs {
			cats = append(cats, fmt.Sprintf("%s@%d", dir, k))
		}
	}
	values := func(u *metrics.RecallResult) []float64 {
		var v []float64
		for _, f := range []func(int) float64{u.TR, u.IR} {
			for _, k := range metrics.RecallKs {
				v = append(v, f(k))
			}
		}
		return v
	}
	series := []plots.BarSeries{{Name: "clean model, all classes", Values: values(r.Clean.Utility)},
		{Name: "poisoned model, all classes", Values: values(r.Poisoned.Utility)}}
	if r.Spec.Attack.Source() != "" && r.Clean.UtilityOthers != nil && r.Poisoned.UtilityOthers != nil {
		other := othersLabel(r)
		series = append(series, plots.BarSeries{Name: "clean model, " + other, Values: values(r.Clean.UtilityOthers)},
			plots.BarSeries{Name: "poisoned model, " + other, Values: values(r.Poisoned.UtilityOthers)})
	}
	return plots.Bars("Utility: Recall@K of the clean and the poisoned model", cats, series,
		plots.WithXLabel("TR@K: image→text Recall@K; IR@K: text→image Recall@K"), plots.WithName("utility"))
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

// Write writes a report folder: results.json, report.md, poison_manifest.json (when the result holds the
// poisoned run's manifest), and each figure as SVG, PDF and PNG. The folder is written whole (see writeFolder):
// an interrupted write leaves the previous report as it was. It returns the paths of the files written.
func Write(dir string, r *experiment.Result) ([]string, error) {
	figs, err := Figures(r)
	if err != nil {
		return nil, err
	}
	return writeFolder(dir, func(dir string) ([]string, error) {
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
		mdPath := filepath.Join(dir, "report.md")
		if err := atomicfile.WriteFile(mdPath, []byte(Markdown(r, figs))); err != nil {
			return written, err
		}
		return append(written, mdPath), nil
	})
}

// writeFolder writes the report folder dir whole, with atomicfile.ReplaceDir: fill writes the files into a
// temporary sibling folder, which then replaces dir in one rename, so that dir holds the previous report or
// the new one, never a mix. The previous report is deleted once the new one is in place; a folder that is
// neither empty nor a report folder written this way is refused (atomicfile.CheckDir). It returns the paths
// the files fill wrote have in dir.
func writeFolder(dir string, fill func(tmp string) ([]string, error)) ([]string, error) {
	var files []string
	err := atomicfile.ReplaceDir(dir, func(tmp string) error {
		written, err := fill(tmp)
		if err != nil {
			return err
		}
		for _, f := range written {
			rel, err := filepath.Rel(tmp, f)
			if err != nil {
				return err
			}
			files = append(files, filepath.Join(dir, rel))
		}
		if testHookFilled != nil {
			testHookFilled(tmp)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("report folder: %w", err)
	}
	return files, nil
}

// testHookFilled, when set (by tests), is called with the temporary folder once a report is written there and
// before it replaces the report folder.
var testHookFilled func(tmp string)

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
		fmt.Fprintf(&b, "Model preset `%s`, backend %s, seed %d. %s\n\n", s.Model, r.Backend, s.Seed, Setup(r))
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

// Setup describes the data and training of a run on the Fashion-MNIST default in words that match its numbers,
// e.g. "Pre-training: 10,000 clean pool images × 5 captions = 50,000 pairs, 1 epoch, lr 0.001. Fine-tuning:
// 2,000 images × 5 captions = 10,000 pairs (the train split's 2,200 images less 200 of its 220 trouser images:
// class A is kept rare, as the paper's sheep class among Flickr-PASCAL's 30,000 images); the attack re-pairs 100
// of these pairs (φ = 1.00%); 2 epochs, lr 0.0002, batch 64. Test: 25 images per class, 250 images and 1,250
// captions none of the models saw."
func Setup(r *experiment.Result) string {
	s, d := r.Spec, r.Data
	var b strings.Builder
	if d == nil { // A result written before Result.Data covered Fashion-MNIST.
		fmt.Fprintf(&b, "Pre-training: %s clean pool images, %s, lr %g. Fine-tuning: %s train images, %s, lr %g, batch %d. "+
			"Test: %d images per class.", thousands(s.Data.Pool), plural(s.Pretrain.Epochs, "epoch"), s.Pretrain.LR,
			thousands(s.Data.Train), plural(s.Finetune.Epochs, "epoch"), s.Finetune.LR, s.Batch, s.Data.TestPerClass)
		return b.String()
	}
	if d.PoolImages > 0 {
		fmt.Fprintf(&b, "Pre-training: %s, %s, lr %g. ", imagesTimesCaptions(d.PoolImages, d.PoolCaptions, "clean pool images"),
			plural(s.Pretrain.Epochs, "epoch"), s.Pretrain.LR)
	}
	fmt.Fprintf(&b, "Fine-tuning: %s", imagesTimesCaptions(d.TrainImages, d.TrainCaptions, "images"))
	if len(d.Kept) > 0 {
		var dropped []string
		split := d.TrainImages
		for _, k := range d.Kept {
			dropped = append(dropped, fmt.Sprintf("%s of its %s %s images", thousands(k.Of-k.Kept), thousands(k.Of), k.Class))
			split += k.Of - k.Kept
		}
		fmt.Fprintf(&b, " (the train split's %s images less %s: class A is kept rare, as the paper's sheep class among "+
			"Flickr-PASCAL's 30,000 images)", thousands(split), strings.Join(dropped, " and "))
	}
	switch p := r.Poison; {
	case p.PoisonedPairs > 0 && p.Mode == attack.Repair:
		fmt.Fprintf(&b, "; the attack re-pairs %s of these pairs (φ = %.2f%%)", thousands(p.PoisonedPairs), 100*p.Rate)
	case p.PoisonedPairs > 0:
		fmt.Fprintf(&b, "; the attack adds %s poisoned pairs (φ = %.2f%% of the %s pairs)", thousands(p.PoisonedPairs),
			100*p.Rate, thousands(p.TotalPairs))
	}
	fmt.Fprintf(&b, "; %s, lr %g, batch %d. Test: %d images per class, %s images and %s captions none of the models saw.",
		plural(s.Finetune.Epochs, "epoch"), s.Finetune.LR, s.Batch, s.Data.TestPerClass, thousands(d.TestImages), thousands(d.TestCaptions))
	return b.String()
}

// imagesTimesCaptions says "2,000 images × 5 captions = 10,000 pairs" (or "… images with 10,000 captions" when
// the images have different numbers of captions).
func imagesTimesCaptions(images, captions int, what string) string {
	if images > 0 && captions%images == 0 {
		return fmt.Sprintf("%s %s × %d captions = %s pairs", thousands(images), what, captions/images, thousands(captions))
	}
	return fmt.Sprintf("%s %s with %s captions", thousands(images), what, thousands(captions))
}

// plural says "1 epoch" or "2 epochs".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// thousands writes n with commas between thousands: 10000 → "10,000".
func thousands(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
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
