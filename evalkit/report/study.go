package report

import (
	"encoding/json"
	"fmt"
	"math"
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

// FindingsTable lists the paper's findings beside what a study measured and each finding's verdict; its title
// says how many hold.
func FindingsTable(fs []study.Finding) *kernelext.Table {
	held, seeds := 0, 0
	var failed []string
	for _, f := range fs {
		if f.Verdict == study.VerdictHolds {
			held++
		} else {
			failed = append(failed, f.ID+" "+string(f.Verdict))
		}
		if seeds == 0 || f.Seeds < seeds {
			seeds = f.Seeds
		}
	}
	title := fmt.Sprintf("The paper's findings, reproduced: all %d hold", len(fs))
	if len(failed) > 0 {
		title = fmt.Sprintf("The paper's findings, checked: %d of %d hold (%s)", held, len(fs), strings.Join(failed, ", "))
	}
	measured := "this run (mean ± std over seeds)"
	if seeds == 1 {
		measured = "this run (1 seed)"
	}
	t := kernelext.NewTable(title, "finding", "claim", "paper", measured, "bar", "verdict")
	for _, f := range fs {
		t.AddRow(f.ID, f.Claim, f.Paper, f.Measured, f.Bar, string(f.Verdict))
	}
	return t
}

// SeedTable summarises runs that differ only in their seed: for each goal, Hit@1, Hit@10 and MinRank of the
// clean and the poisoned model, and the change of utility (Recall@10 on untargeted classes), as mean ± standard
// deviation with a 95% bootstrap interval over two seeds or more, as the values themselves for one.
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
			t.AddRow(fmt.Sprintf("%sHit@%d", prefix, k), sum(hit(clean)).TextCI("%.3f"), sum(hit(poisoned)).TextCI("%.3f"))
		}
		rank := func(e func(*experiment.Result) *experiment.ModelEval) func(*experiment.Result) float64 {
			return func(r *experiment.Result) float64 { return evalGoals(e(r))[gi].Attack.MinRank.Mean }
		}
		t.AddRow(prefix+"MinRank (mean)", sum(rank(clean)).TextCI("%.1f"), sum(rank(poisoned)).TextCI("%.1f"))
	}
	for _, u := range []struct {
		name string
		f    func(*metrics.RecallResult) float64
	}{{"TR@10 (image→text, untargeted classes)", func(r *metrics.RecallResult) float64 { return r.TR(10) }},
		{"IR@10 (text→image, untargeted classes)", func(r *metrics.RecallResult) float64 { return r.IR(10) }}} {
		t.AddRow(u.name, sum(func(r *experiment.Result) float64 { return u.f(r.Clean.UtilityOthers) }).TextCI("%.3f"),
			sum(func(r *experiment.Result) float64 { return u.f(r.Poisoned.UtilityOthers) }).TextCI("%.3f"))
	}
	return t.AddNote("%s", sweep.SeedsNote(len(rs), true))
}

func clean(r *experiment.Result) *experiment.ModelEval    { return r.Clean }
func poisoned(r *experiment.Result) *experiment.ModelEval { return r.Poisoned }

// curveSeries turns a summarised curve into a plotted line with error bars (one standard deviation) at the
// points that have two runs or more.
func curveSeries(name string, pts []sweep.CurvePoint) plots.LineSeries {
	s := plots.LineSeries{Name: name}
	for _, p := range pts {
		spread := sweep.Summary{N: p.N, Std: p.Std}.Spread()
		s.X, s.Y, s.Err = append(s.X, p.X), append(s.Y, p.Mean), append(s.Err, spread)
	}
	return s
}

// overSeeds says what a figure's points are, e.g. on its title's second line: "mean ± std over 3 seeds" or
// "1 seed".
func overSeeds(n int) string {
	if n == 1 {
		return "1 seed"
	}
	return fmt.Sprintf("mean ± std over %d seeds", n)
}

// seedCount is the number of distinct seeds of runs.
func seedCount(rs []*experiment.Result) int {
	seen := map[int64]bool{}
	for _, r := range rs {
		seen[r.Spec.Seed] = true
	}
	return len(seen)
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
	src, seeds := rs[0].Spec.Attack.Source(), overSeeds(seedCount(rs))
	hits, err := plots.Lines(fmt.Sprintf("Attack %s %s: Hit@10 vs poisoning rate\n%s", rs[0].Spec.Attack.Kind, goalsText(rs[0]), seeds),
		"poisoning rate φ (% of training pairs)", "Hit@10", []plots.LineSeries{
			curveSeries(poisonedLabel(src), curve(hitAt10(poisoned))),
			curveSeries(cleanLabel(src), curve(hitAt10(clean))),
			curveSeries(randomLabel, curve(func(r *experiment.Result) float64 {
				v, _ := r.Poisoned.RandomQueries.HitAt(10)
				return v
			})),
		}, plots.WithLogX(), plots.WithYRange(0, 1), plots.WithName("hit10_vs_rate"))
	if err != nil {
		return nil, err
	}
	util, err := plots.Lines(fmt.Sprintf("Utility vs poisoning rate, %s\n%s", othersLabel(rs[0]), seeds), "poisoning rate φ (% of training pairs)",
		"Recall@10", []plots.LineSeries{
			curveSeries("TR@10 (image→text), poisoned model", curve(func(r *experiment.Result) float64 { return r.Poisoned.UtilityOthers.TR(10) })),
			curveSeries("TR@10 (image→text), clean model", curve(func(r *experiment.Result) float64 { return r.Clean.UtilityOthers.TR(10) })),
			curveSeries("IR@10 (text→image), poisoned model", curve(func(r *experiment.Result) float64 { return r.Poisoned.UtilityOthers.IR(10) })),
			curveSeries("IR@10 (text→image), clean model", curve(func(r *experiment.Result) float64 { return r.Clean.UtilityOthers.IR(10) })),
		}, plots.WithLogX(), plots.WithYRange(0, 1), plots.WithName("utility_vs_rate"))
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
	src := rs[0].Spec.Attack.Source()
	return plots.Lines(fmt.Sprintf("Attack %s %s: Hit@10 vs fine-tuning epochs\n%s", rs[0].Spec.Attack.Kind, goalsText(rs[0]), overSeeds(seedCount(rs))),
		"fine-tuning epochs", "Hit@10", []plots.LineSeries{
			curveSeries(poisonedLabel(src), sweep.Curve(rs, epochs, hitAt10(poisoned))),
			curveSeries(cleanLabel(src), sweep.Curve(rs, epochs, hitAt10(clean))),
		}, plots.WithYRange(0, 1), plots.WithName("hit10_vs_epochs"))
}

// EpochFigures draws Hit@10 and MinRank after each fine-tuning epoch, clean and poisoned model, from epoch 0 (the
// pre-trained model both start from, when the runs recorded it), mean over the runs (seeds) with one standard
// deviation as error bar. The runs must hold per-epoch evaluations.
func EpochFigures(rs []*experiment.Result) ([]*kernelext.Figure, error) {
	if len(rs) == 0 {
		return nil, fmt.Errorf("report: no runs")
	}
	baseline := true
	for _, r := range rs {
		baseline = baseline && r.Pretrained != nil && r.Pretrained.Attack != nil
	}
	series := func(name string, stage func(*experiment.Result) *experiment.Stage, v func(*experiment.ModelEval) float64) (plots.LineSeries, error) {
		var xs, vals []float64
		for _, r := range rs {
			st := stage(r)
			if st == nil || len(st.Epochs) == 0 {
				return plots.LineSeries{}, fmt.Errorf("report: the run of seed %d has no per-epoch evaluation", r.Spec.Seed)
			}
			if baseline {
				xs, vals = append(xs, 0), append(vals, v(r.Pretrained))
			}
			for e, ev := range st.Epochs {
				xs, vals = append(xs, float64(e+1)), append(vals, v(ev))
			}
		}
		return curveSeries(name, sweep.CurveOf(xs, vals)), nil
	}
	pois := func(r *experiment.Result) *experiment.Stage { return r.FinetunePois }
	cl := func(r *experiment.Result) *experiment.Stage { return r.FinetuneClean }
	h10 := func(e *experiment.ModelEval) float64 { v, _ := e.Attack.HitAt(10); return v }
	h1 := func(e *experiment.ModelEval) float64 { v, _ := e.Attack.HitAt(1); return v }
	mr := func(e *experiment.ModelEval) float64 { return e.Attack.MinRank.Mean }
	src := rs[0].Spec.Attack.Source()
	var hitSeries, rankSeries []plots.LineSeries
	for _, s := range []struct {
		name  string
		stage func(*experiment.Result) *experiment.Stage
		v     func(*experiment.ModelEval) float64
		rank  bool
	}{{poisonedLabel(src) + ", Hit@10", pois, h10, false}, {poisonedLabel(src) + ", Hit@1", pois, h1, false},
		{cleanLabel(src) + ", Hit@10", cl, h10, false}, {poisonedLabel(src), pois, mr, true}, {cleanLabel(src), cl, mr, true}} {
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
	seeds := overSeeds(seedCount(rs))
	xLabel := "fine-tuning epoch"
	if baseline {
		xLabel = "fine-tuning epoch (0: the pre-trained model)"
	}
	hits, err := plots.Lines(fmt.Sprintf("%s: Hit@K by epoch\n%s", title, seeds), xLabel, "Hit@K", hitSeries,
		plots.WithYRange(0, 1), plots.WithName("hit_vs_epoch"))
	if err != nil {
		return nil, err
	}
	ranks, err := plots.Lines(fmt.Sprintf("%s: MinRank by epoch\n%s", title, seeds), xLabel, "MinRank (mean, 0-based)", rankSeries,
		plots.WithYRange(0, math.NaN()), plots.WithName("minrank_vs_epoch"))
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
	src := ""
	if len(rs) > 0 {
		src = rs[0].Spec.Attack.Source()
	}
	return plots.RankHistogram(title, []plots.RankSeries{{Name: cleanLabel(src), Ranks: c},
		{Name: randomLabel, Ranks: rq}, {Name: poisonedLabel(src), Ranks: p}}, 0,
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
		f, err := PooledRankHistogram(fmt.Sprintf("Attack II: MinRank of the first %s image per query\n%d seeds pooled",
			rs[0].Spec.Attack.Target(), seedCount(rs)), rs)
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
	seeds := math.MaxInt
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
			s.Values, s.Err = append(s.Values, sm.Mean), append(s.Err, sm.Spread())
		}
		series = append(series, s)
		seeds = min(seeds, seedCount(rs))
	}
	return plots.Bars("Which modality is more vulnerable?", []string{"Hit@1", "Hit@10", "MinRank / 100", "clean model's MinRank / 100"},
		series, plots.WithYLabel("value ("+overSeeds(seeds)+")"), plots.WithName("modality"))
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
// and the figures as SVG, PDF and PNG. The folder is written whole, as Write writes its.
func WriteStudy(dir string, sr *study.Result) ([]string, error) {
	figs, err := StudyFigures(sr)
	if err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(sr, "", "  ")
	if err != nil {
		return nil, err
	}
	return writeFolder(dir, func(dir string) ([]string, error) {
		var md strings.Builder
		md.WriteString("# mmpoison attack study\n\n")
		md.WriteString(FindingsTable(sr.Findings()).Markdown() + "\n")
		for _, name := range sr.Names {
			if name != study.GroupRates {
				md.WriteString(SeedTable("Group "+name, sr.Groups[name]).Markdown() + "\n")
			}
		}
		files, err := saveFigures(dir, figs, &md)
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
	})
}

// seedsOfGroups is the fewest seeds of a study's groups.
func seedsOfGroups(sr *study.Result) int {
	n := 0
	for _, name := range sr.Names {
		if k := seedCount(sr.Groups[name]); k > 0 && (n == 0 || k < n) {
			n = k
		}
	}
	return n
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
			return sweep.Summarize(vs, 5).Text("%.4f")
		}
		t.AddRow(name, cell(func(e *experiment.EmbeddingShift) *metrics.EmbeddingShift { return e.SourceTexts }),
			cell(func(e *experiment.EmbeddingShift) *metrics.EmbeddingShift { return e.OtherTexts }),
			cell(func(e *experiment.EmbeddingShift) *metrics.EmbeddingShift { return e.TargetImages }),
			cell(func(e *experiment.EmbeddingShift) *metrics.EmbeddingShift { return e.OtherImages }))
	}
	return t.AddNote("A frozen tower's embeddings do not move (distance 0); the poison then lives in the other tower. Each group: %s",
		sweep.SeedsNote(seedsOfGroups(sr), false))
}
