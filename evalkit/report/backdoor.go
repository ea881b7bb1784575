package report

import (
	"fmt"
	"math"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/metrics"
	"github.com/mmpoison/mmpoison/evalkit/plots"
	"github.com/mmpoison/mmpoison/evalkit/sweep"
	"github.com/mmpoison/mmpoison/kernelext"
)

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
	t := kernelext.NewTable(fmt.Sprintf("Backdoor → %s, φ = %.2f%% (%s of %s pairs), trigger %d×%d %s %s", r.Spec.Attack.Target(),
		100*r.Poison.Rate, thousands(r.Poison.PoisonedPairs), thousands(r.Poison.TotalPairs), r.Spec.Attack.Trigger.Resolved().Size,
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
	return plots.Lines(fmt.Sprintf("Backdoor → %s: success vs poisoning rate\n%s", rs[0].Spec.Attack.Target(), overSeeds(seedCount(rs))), "poisoning rate φ (% of training pairs)",
		"triggered images classified as target", []plots.LineSeries{pois, cl, base}, plots.WithLogX(), plots.WithYRange(0, 1),
		plots.WithName("backdoor_vs_rate"))
}

// BackdoorComparison puts the backdoor runs (e.g. over seeds) beside Carlini & Terzis (ICLR 2022).
func BackdoorComparison(rs []*experiment.Result) *kernelext.Table {
	t := kernelext.NewTable("Backdoor beside Carlini & Terzis (ICLR 2022)", "metric", "paper (CLIP on Conceptual Captions 3M)",
		"this run ("+overSeeds(len(rs))+")")
	sum := func(f func(*experiment.Result) float64) string {
		vs := make([]float64, len(rs))
		for i, r := range rs {
			vs[i] = f(r)
		}
		return sweep.Summarize(vs, 11).Text("%.3f")
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
