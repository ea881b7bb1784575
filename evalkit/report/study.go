package report

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/metrics"
	"github.com/mmpoison/mmpoison/evalkit/plots"
	"github.com/mmpoison/mmpoison/evalkit/study"
	"github.com/mmpoison/mmpoison/evalkit/sweep"
	"github.com/mmpoison/mmpoison/kernelext"
	"github.com/mmpoison/mmpoison/poisoning/atomicfile"
)

// FindingsTable lists the paper's findings beside what a study measured and whether its bar holds.
func FindingsTable(fs []study.Finding) *kernelext.Table {
	t := kernelext.NewTable("The paper's findings, reproduced", "finding", "claim", "paper", "this run (mean ± std over seeds)", "bar", "holds")
	for _, f := range fs {
		holds := "no"
		if f.Holds {
			holds = "yes"
		}
		t.AddRow(f.ID, f.Claim, f.Paper, f.Measured, f.Bar, holds)
	}
	return t
}

// summaryCell formats a bootstrap summary as "mean ± std [lo, hi]".
func summaryCell(s sweep.Summary, format string) string {
	if s.N == 0 {
		return "–"
	}
	return fmt.Sprintf(format+" ± "+format+" ["+format+", "+format+"]", s.Mean, s.Std, s.Lo, s.Hi)
}

// SeedTable summarises runs that differ only in their seed: for each goal, Hit@1, Hit@10 and MinRank of the
// clean and the poisoned model, and the change of utility (Recall@10 on untargeted classes), as mean ± standard
// deviation with a 95% bootstrap interval.
func SeedTable(title string, rs []*experiment.Result) *kernelext.Table {
	t := kernelext.NewTable(title, "metric", "clean model", "poisoned model")
	if len(rs) == 0 {
		return t.AddNote("no runs")
	}
	sum := func(f func(*experiment.Result) float64) sweep.Summary {
		vs := make([]float64, len(rs))
		for i, r := range rs {
			vs[i] = f(r)
		}
		return sweep.Summarize(vs, 7)
	}
	goals := len(evalGoals(rs[0].Poisoned))
	for gi := range goals {
		prefix := ""
		if goals > 1 {
			g := evalGoals(rs[0].Poisoned)[gi]
			prefix = fmt.Sprintf("goal %d %s → %s: ", gi+1, g.Source, g.Target)
		}
		for _, k := range []int{1, 10} {
			hit := func(e func(*experiment.Result) *experiment.ModelEval) func(*experiment.Result) float64 {
				return func(r *experiment.Result) float64 { v, _ := evalGoals(e(r))[gi].Attack.HitAt(k); return v }
			}
			t.AddRow(fmt.Sprintf("%sHit@%d", prefix, k), summaryCell(sum(hit(clean)), "%.3f"), summaryCell(sum(hit(poisoned)), "%.3f"))
		}
		rank := func(e func(*experiment.Result) *experiment.ModelEval) func(*experiment.Result) float64 {
			return func(r *experiment.Result) float64 { return evalGoals(e(r))[gi].Attack.MinRank.Mean }
		}
		t.AddRow(prefix+"MinRank (mean)", summaryCell(sum(rank(clean)), "%.1f"), summaryCell(sum(rank(poisoned)), "%.1f"))
	}
	for _, u := range []struct {
		name string
		f    func(*metrics.RecallResult) float64
	}{{"TR@10 (untargeted classes)", func(r *metrics.RecallResult) float64 { return r.TR(10) }},
		{"IR@10 (untargeted classes)", func(r *metrics.RecallResult) float64 { return r.IR(10) }}} {
		t.AddRow(u.name, summaryCell(sum(func(r *experiment.Result) float64 { return u.f(r.Clean.UtilityOthers) }), "%.3f"),
			summaryCell(sum(func(r *experiment.Result) float64 { return u.f(r.Poisoned.UtilityOthers) }), "%.3f"))
	}
	return t.AddNote("%d seeds; mean ± standard deviation [95%% bootstrap interval of the mean].", len(rs))
}

func clean(r *experiment.Result) *experiment.ModelEval    { return r.Clean }
func poisoned(r *experiment.Result) *experiment.ModelEval { return r.Poisoned }

// curveSeries turns a summarised curve into a plotted line with error bars (one standard deviation).
func curveSeries(name string, pts []sweep.CurvePoint) plots.LineSeries {
	s := plots.LineSeries{Name: name}
	for _, p := range pts {
		s.X, s.Y, s.Err = append(s.X, p.X), append(s.Y, p.Mean), append(s.Err, p.Std)
	}
	return s
}

// hitAt10 returns a result's Hit@10 for goal 0 of the chosen model.
func hitAt10(e func(*experiment.Result) *experiment.ModelEval) func(*experiment.Result) float64 {
	return func(r *experiment.Result) float64 { v, _ := e(r).Attack.HitAt(10); return v }
}

// RateFigures draws the rate sweep: Hit@10 against φ (poisoned model, clean baseline, random queries) and utility
// Recall@10 against φ, each point the mean over seeds with one standard deviation as error bar.
func RateFigures(rs []*experiment.Result) ([]*kernelext.Figure, error) {
	if len(rs) == 0 {
		return nil, fmt.Errorf("report: no runs in the rate sweep")
	}
	percent := func(r *experiment.Result) float64 { return 100 * r.Spec.Attack.Rate }
	curve := func(f func(*experiment.Result) float64) []sweep.CurvePoint {
		return sweep.Curve(rs, percent, f)
	}
	hits, err := plots.Lines(fmt.Sprintf("Attack %s %s: Hit@10 vs poisoning rate", rs[0].Spec.Attack.Kind, goalsText(rs[0])),
		"poisoning rate φ (% of training pairs)", "Hit@10", []plots.LineSeries{
			curveSeries("poisoned model", curve(hitAt10(poisoned))),
			curveSeries("clean model", curve(hitAt10(clean))),
			curveSeries("poisoned, random queries", curve(func(r *experiment.Result) float64 {
				v, _ := r.Poisoned.RandomQueries.HitAt(10)
				return v
			})),
		}, plots.WithLogX(), plots.WithYRange(0, 1), plots.WithName("hit10_vs_rate"))
	if err != nil {
		return nil, err
	}
	util, err := plots.Lines("Utility vs poisoning rate (untargeted classes)", "poisoning rate φ (% of training pairs)",
		"Recall@10", []plots.LineSeries{
			curveSeries("TR@10 poisoned", curve(func(r *experiment.Result) float64 { return r.Poisoned.UtilityOthers.TR(10) })),
			curveSeries("TR@10 clean", curve(func(r *experiment.Result) float64 { return r.Clean.UtilityOthers.TR(10) })),
			curveSeries("IR@10 poisoned", curve(func(r *experiment.Result) float64 { return r.Poisoned.UtilityOthers.IR(10) })),
			curveSeries("IR@10 clean", curve(func(r *experiment.Result) float64 { return r.Clean.UtilityOthers.IR(10) })),
		}, plots.WithLogX(), plots.WithYRange(0, 1), plots.WithLegend(false, false), plots.WithName("utility_vs_rate"))
	if err != nil {
		return nil, err
	}
	return []*kernelext.Figure{hits, util}, nil
}

// EpochsSweepFigure draws Hit@10 of the poisoned and the clean model against the number of fine-tuning epochs,
// over runs that differ in Spec.Finetune.Epochs (each with its own cosine schedule), mean over seeds ± std.
func EpochsSweepFigure(rs []*experiment.Result) (*kernelext.Figure, error) {
	if len(rs) == 0 {
		return nil, fmt.Errorf("report: no runs in the epochs sweep")
	}
	epochs := func(r *experiment.Result) float64 { return float64(r.Spec.Finetune.Epochs) }
	return plots.Lines(fmt.Sprintf("Attack %s %s: Hit@10 vs fine-tuning epochs", rs[0].Spec.Attack.Kind, goalsText(rs[0])),
		"fine-tuning epochs", "Hit@10", []plots.LineSeries{
			curveSeries("poisoned model", sweep.Curve(rs, epochs, hitAt10(poisoned))),
			curveSeries("clean model", sweep.Curve(rs, epochs, hitAt10(clean))),
		}, plots.WithYRange(0, 1), plots.WithName("hit10_vs_epochs"))
}

// EpochFigures draws Hit@10 and MinRank after each fine-tuning epoch, clean and poisoned model, mean over the
// runs (seeds) with one standard deviation as error bar. The runs must hold per-epoch evaluations.
func EpochFigures(rs []*experiment.Result) ([]*kernelext.Figure, error) {
	series := func(name string, stage func(*experiment.Result) *experiment.Stage, v func(*experiment.ModelEval) float64) (plots.LineSeries, error) {
		var xs, vals []float64
		for _, r := range rs {
			st := stage(r)
			if st == nil || len(st.Epochs) == 0 {
				return plots.LineSeries{}, fmt.Errorf("report: the run of seed %d has no per-epoch evaluation", r.Spec.Seed)
			}
			for e, ev := range st.Epochs {
				xs, vals = append(xs, float64(e+1)), append(vals, v(ev))
			}
		}
		return curveSeries(name, sweep.CurveOf(xs, vals)), nil
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("report: no runs")
	}
	pois := func(r *experiment.Result) *experiment.Stage { return r.FinetunePois }
	cl := func(r *experiment.Result) *experiment.Stage { return r.FinetuneClean }
	h10 := func(e *experiment.ModelEval) float64 { v, _ := e.Attack.HitAt(10); return v }
	h1 := func(e *experiment.ModelEval) float64 { v, _ := e.Attack.HitAt(1); return v }
	mr := func(e *experiment.ModelEval) float64 { return e.Attack.MinRank.Mean }
	var hitSeries, rankSeries []plots.LineSeries
	for _, s := range []struct {
		name  string
		stage func(*experiment.Result) *experiment.Stage
		v     func(*experiment.ModelEval) float64
		rank  bool
	}{{"poisoned, Hit@10", pois, h10, false}, {"poisoned, Hit@1", pois, h1, false}, {"clean, Hit@10", cl, h10, false},
		{"poisoned", pois, mr, true}, {"clean", cl, mr, true}} {
		ls, err := series(s.name, s.stage, s.v)
		if err != nil {
			return nil, err
		}
		if s.rank {
			rankSeries = append(rankSeries, ls)
		} else {
			hitSeries = append(hitSeries, ls)
		}
	}
	title := fmt.Sprintf("Attack %s %s", rs[0].Spec.Attack.Kind, goalsText(rs[0]))
	hits, err := plots.Lines(title+": Hit@K by epoch", "fine-tuning epoch", "Hit@K", hitSeries,
		plots.WithYRange(0, 1), plots.WithName("hit_vs_epoch"))
	if err != nil {
		return nil, err
	}
	ranks, err := plots.Lines(title+": MinRank by epoch", "fine-tuning epoch", "MinRank (mean, 0-based)", rankSeries,
		plots.WithYRange(0, math.NaN()), plots.WithLegend(true, false), plots.WithName("minrank_vs_epoch"))
	if err != nil {
		return nil, err
	}
	return []*kernelext.Figure{hits, ranks}, nil
}

// PooledRankHistogram draws the MinRank distributions of the clean and poisoned models pooled over runs (seeds).
func PooledRankHistogram(title string, rs []*experiment.Result) (*kernelext.Figure, error) {
	var c, p, rq []int
	for _, r := range rs {
		c = append(c, r.Clean.Attack.MinRanks...)
		p = append(p, r.Poisoned.Attack.MinRanks...)
		rq = append(rq, r.Poisoned.RandomQueries.MinRanks...)
	}
	return plots.RankHistogram(title, []plots.RankSeries{{Name: "clean model", Ranks: c},
		{Name: "poisoned, random queries", Ranks: rq}, {Name: "poisoned model", Ranks: p}}, 0,
		plots.WithName("minrank_distribution_pooled"))
}

// GoalMatrixFigure draws the paper's goal matrix: one Attack II run per ordered pair of classes (A, B), the cell
// at row A, column B holding the poisoned model's Hit@10 minus the clean model's (mean over seeds).
func GoalMatrixFigure(rs []*experiment.Result, classes []string) (*kernelext.Figure, [][]float64, error) {
	idx := map[string]int{}
	for i, c := range classes {
		idx[c] = i
	}
	sums := make([][]float64, len(classes))
	counts := make([][]int, len(classes))
	for i := range sums {
		sums[i], counts[i] = make([]float64, len(classes)), make([]int, len(classes))
	}
	for _, r := range rs {
		a, okA := idx[r.Spec.Attack.Source()]
		b, okB := idx[r.Spec.Attack.Target()]
		if !okA || !okB {
			return nil, nil, fmt.Errorf("report: goal %s → %s is not among the classes %s", r.Spec.Attack.Source(), r.Spec.Attack.Target(), strings.Join(classes, ", "))
		}
		sums[a][b] += hitAt10(poisoned)(r) - hitAt10(clean)(r)
		counts[a][b]++
	}
	for a := range sums {
		for b := range sums[a] {
			if counts[a][b] == 0 {
				sums[a][b] = math.NaN()
			} else {
				sums[a][b] /= float64(counts[a][b])
			}
		}
	}
	fig, err := plots.Heatmap("Goal matrix: Hit@10 gain over the clean model", "target class B", "source class A",
		classes, classes, sums, 0, 1, plots.WithName("goal_matrix"))
	return fig, sums, err
}

// StudyFigures renders a study's figures: pooled MinRank distributions and per-epoch curves of Attack II, the
// rate sweep, and the frozen-tower comparison.
func StudyFigures(sr *study.Result) ([]*kernelext.Figure, error) {
	var figs []*kernelext.Figure
	if rs := sr.Groups[study.GroupAttackII]; len(rs) > 0 {
		f, err := PooledRankHistogram("Attack II: MinRank over all seeds", rs)
		if err != nil {
			return nil, err
		}
		figs = append(figs, f)
		ef, err := EpochFigures(rs)
		if err != nil {
			return nil, err
		}
		figs = append(figs, ef...)
	}
	if rs := sr.Groups[study.GroupRates]; len(rs) > 0 {
		rf, err := RateFigures(rs)
		if err != nil {
			return nil, err
		}
		figs = append(figs, rf...)
	}
	if f, err := ModalityFigure(sr); err != nil {
		return nil, err
	} else if f != nil {
		figs = append(figs, f)
	}
	return figs, nil
}

// ModalityFigure compares Hit@1, Hit@10 and MinRank/100 of the poisoned model when fine-tuning trains both
// towers, only the text tower (image tower frozen) or only the image tower (text tower frozen); nil when the
// study has no frozen-tower groups.
func ModalityFigure(sr *study.Result) (*kernelext.Figure, error) {
	groups := []struct{ name, label string }{{study.GroupAttackII, "both towers trained"},
		{study.GroupFrozenVisual, "image tower frozen"}, {study.GroupFrozenText, "text tower frozen"}}
	var series []plots.BarSeries
	for _, g := range groups {
		rs := sr.Groups[g.name]
		if len(rs) == 0 {
			if g.name == study.GroupAttackII {
				continue
			}
			return nil, nil
		}
		s := plots.BarSeries{Name: g.label}
		for _, f := range []func(*experiment.Result) float64{
			func(r *experiment.Result) float64 { v, _ := r.Poisoned.Attack.HitAt(1); return v },
			hitAt10(poisoned),
			func(r *experiment.Result) float64 { return r.Poisoned.Attack.MinRank.Mean / 100 },
			func(r *experiment.Result) float64 { return r.Clean.Attack.MinRank.Mean / 100 },
		} {
			vs := make([]float64, len(rs))
			for i, r := range rs {
				vs[i] = f(r)
			}
			sm := sweep.Summarize(vs, 3)
			s.Values, s.Err = append(s.Values, sm.Mean), append(s.Err, sm.Std)
		}
		series = append(series, s)
	}
	return plots.Bars("Which modality is more vulnerable?", []string{"Hit@1", "Hit@10", "MinRank / 100", "clean MinRank / 100"},
		series, plots.WithYLabel("value (mean ± std over seeds)"), plots.WithName("modality"))
}

// ShowStudy displays a study's findings, seed tables and figures (inline in a notebook, as text elsewhere).
func ShowStudy(sr *study.Result) error {
	kernelext.ShowTable(FindingsTable(sr.Findings()))
	for _, name := range sr.Names {
		if name == study.GroupRates {
			continue
		}
		kernelext.ShowTable(SeedTable("Group "+name, sr.Groups[name]))
	}
	return showFigures(StudyFigures(sr))
}

// WriteStudy writes a study's report folder: study.md (findings and seed tables), study.json (every result)
// and the figures as SVG, PDF and PNG, each file atomically.
func WriteStudy(dir string, sr *study.Result) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("report folder: %w", err)
	}
	figs, err := StudyFigures(sr)
	if err != nil {
		return nil, err
	}
	var files []string
	var md strings.Builder
	md.WriteString("# mmpoison attack study\n\n")
	md.WriteString(FindingsTable(sr.Findings()).Markdown() + "\n")
	for _, name := range sr.Names {
		if name != study.GroupRates {
			md.WriteString(SeedTable("Group "+name, sr.Groups[name]).Markdown() + "\n")
		}
	}
	saved, err := saveFigures(dir, figs, &md)
	files = append(files, saved...)
	if err != nil {
		return files, err
	}
	data, err := json.MarshalIndent(sr, "", "  ")
	if err != nil {
		return files, err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"study.json", data}, {"study.md", []byte(md.String())}} {
		p := filepath.Join(dir, f.name)
		if err := atomicfile.WriteFile(p, f.data); err != nil {
			return files, err
		}
		files = append(files, p)
	}
	return files, nil
}

// BackdoorTable shows the backdoor's effect: for test images of every class but the target, with and without
// the trigger, the share whose top-1 zero-shot class is the target and the share with a target-class caption
// among their top K captions (Hit@K), clean model vs poisoned model.
func BackdoorTable(r *experiment.Result) *kernelext.Table {
	headers := []string{"model / images", "zero-shot → target"}
	for _, k := range metrics.DefaultKs {
		headers = append(headers, fmt.Sprintf("Hit@%d", k))
	}
	headers = append(headers, "MinRank mean")
	b := r.Poisoned.Backdoor
	t := kernelext.NewTable(fmt.Sprintf("Backdoor → %s, φ = %.2f%% (%d of %d pairs), trigger %d×%d %s %s", r.Spec.Attack.Target(),
		100*r.Poison.Rate, r.Poison.PoisonedPairs, r.Poison.TotalPairs, r.Spec.Attack.Trigger.Resolved().Size,
		r.Spec.Attack.Trigger.Resolved().Size, r.Spec.Attack.Trigger.Resolved().Pattern, r.Spec.Attack.Trigger.Resolved().Position), headers...)
	row := func(name string, zs *metrics.ZeroShotRate, a *metrics.AttackResult) {
		vals := []any{name, "–"}
		if zs != nil {
			vals[1] = fmt.Sprintf("%.3f", zs.Rate)
		}
		for _, k := range metrics.DefaultKs {
			h, _ := a.HitAt(k)
			vals = append(vals, fmt.Sprintf("%.3f", h))
		}
		t.AddRow(append(vals, fmt.Sprintf("%.1f", a.MinRank.Mean))...)
	}
	if c := r.Clean.Backdoor; c != nil {
		row("clean model, triggered images", &c.ZeroShot.Triggered, c.Retrieval.Triggered)
	}
	row("poisoned model, images without trigger", b.ZeroShot.Clean, b.Retrieval.Clean)
	row("poisoned model, triggered images", &b.ZeroShot.Triggered, b.Retrieval.Triggered)
	return t.AddNote("%d test images of the classes other than %s; Hit@K: a %s caption among the image's top K of %d test captions.",
		b.Retrieval.Triggered.NumQueries, r.Spec.Attack.Target(), r.Spec.Attack.Target(), b.Retrieval.NumGallery)
}

// EmbeddingShiftTable shows, for each group of a study, how far poisoning moved each tower's embeddings of the
// same test inputs (mean 1 − cos between the clean and the poisoned model, over seeds).
func EmbeddingShiftTable(sr *study.Result) *kernelext.Table {
	t := kernelext.NewTable("Clean vs poisoned embeddings: mean cosine distance per tower", "group",
		"text: class-A captions", "text: other captions", "image: class-B images", "image: other images")
	for _, name := range sr.Names {
		rs := sr.Groups[name]
		if len(rs) == 0 || rs[0].EmbeddingShift == nil {
			continue
		}
		cell := func(f func(*experiment.EmbeddingShift) *metrics.EmbeddingShift) string {
			var vs []float64
			for _, r := range rs {
				if r.EmbeddingShift != nil && f(r.EmbeddingShift) != nil {
					vs = append(vs, f(r.EmbeddingShift).Mean)
				}
			}
			s := sweep.Summarize(vs, 5)
			if s.N == 0 {
				return "–"
			}
			return fmt.Sprintf("%.4f ± %.4f", s.Mean, s.Std)
		}
		t.AddRow(name, cell(func(e *experiment.EmbeddingShift) *metrics.EmbeddingShift { return e.SourceTexts }),
			cell(func(e *experiment.EmbeddingShift) *metrics.EmbeddingShift { return e.OtherTexts }),
			cell(func(e *experiment.EmbeddingShift) *metrics.EmbeddingShift { return e.TargetImages }),
			cell(func(e *experiment.EmbeddingShift) *metrics.EmbeddingShift { return e.OtherImages }))
	}
	return t.AddNote("A frozen tower's embeddings do not move (distance 0); the poison then lives in the other tower.")
}

// backdoorSuccess returns the zero-shot share of triggered images classified as the target (NaN without a
// backdoor evaluation).
func backdoorSuccess(e *experiment.ModelEval) float64 {
	if e == nil || e.Backdoor == nil {
		return math.NaN()
	}
	return e.Backdoor.ZeroShot.Triggered.Rate
}

// BackdoorRateFigure draws the backdoor's success (zero-shot share of triggered images classified as the
// target) against φ for the poisoned model, the clean model, and the poisoned model without the trigger; mean
// over seeds ± one standard deviation.
func BackdoorRateFigure(rs []*experiment.Result) (*kernelext.Figure, error) {
	if len(rs) == 0 {
		return nil, fmt.Errorf("report: no backdoor runs")
	}
	percent := func(r *experiment.Result) float64 { return 100 * r.Spec.Attack.Rate }
	curve := func(f func(*experiment.Result) float64) plots.LineSeries {
		return curveSeries("", sweep.Curve(rs, percent, f))
	}
	pois := curve(func(r *experiment.Result) float64 { return backdoorSuccess(r.Poisoned) })
	pois.Name = "poisoned model, triggered"
	cl := curve(func(r *experiment.Result) float64 { return backdoorSuccess(r.Clean) })
	cl.Name = "clean model, triggered"
	base := curve(func(r *experiment.Result) float64 {
		if b := r.Poisoned.Backdoor; b != nil && b.ZeroShot.Clean != nil {
			return b.ZeroShot.Clean.Rate
		}
		return math.NaN()
	})
	base.Name = "poisoned model, no trigger"
	return plots.Lines("Backdoor → "+rs[0].Spec.Attack.Target()+": success vs poisoning rate", "poisoning rate φ (% of training pairs)",
		"triggered images classified as target", []plots.LineSeries{pois, cl, base}, plots.WithLogX(), plots.WithYRange(0, 1),
		plots.WithName("backdoor_vs_rate"))
}

// BackdoorComparison puts the backdoor runs (e.g. over seeds) beside Carlini & Terzis (ICLR 2022).
func BackdoorComparison(rs []*experiment.Result) *kernelext.Table {
	t := kernelext.NewTable("Backdoor beside Carlini & Terzis (ICLR 2022)", "metric", "paper (CLIP on Conceptual Captions 3M)", "this run (mean ± std over seeds)")
	sum := func(f func(*experiment.Result) float64) string {
		vs := make([]float64, len(rs))
		for i, r := range rs {
			vs[i] = f(r)
		}
		s := sweep.Summarize(vs, 11)
		if s.N == 0 {
			return "–"
		}
		return fmt.Sprintf("%.3f ± %.3f", s.Mean, s.Std)
	}
	t.AddRow("poisoning rate φ", "0.01% (300 of 3M pairs)", sum(func(r *experiment.Result) float64 { return 100 * r.Poison.Rate })+" %")
	t.AddRow("triggered images → target (zero-shot top-1), poisoned model", "most of them (backdoor succeeds)",
		sum(func(r *experiment.Result) float64 { return backdoorSuccess(r.Poisoned) }))
	t.AddRow("the same, clean model", "chance", sum(func(r *experiment.Result) float64 { return backdoorSuccess(r.Clean) }))
	t.AddRow("Recall@10 change (TR / IR), untargeted classes", "small", sum(func(r *experiment.Result) float64 {
		return r.Poisoned.UtilityOthers.TR(10) - r.Clean.UtilityOthers.TR(10)
	})+" / "+sum(func(r *experiment.Result) float64 {
		return r.Poisoned.UtilityOthers.IR(10) - r.Clean.UtilityOthers.IR(10)
	}))
	return t.AddNote("The paper's exact success rates depend on model and data scale; compare the shape: near-chance without the trigger, near-certain with it.")
}
