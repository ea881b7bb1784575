// Package study declares and checks the paper's attack study: the findings F1–F6 of Yang et al.'s attack
// section (Attacks I, II and III, utility, frozen towers, the rate sweep) as named groups of experiments that
// differ only in what each finding varies, run through a sweep (so an interrupted study resumes) and checked
// by Findings against stated bars.
package study

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/sweep"
	"github.com/mmpoison/mmpoison/poisoning/attack"
)

// Study declares the paper's attack study (findings F1–F6 of its attack section) around one base spec, as named
// groups of specs that differ only in what each finding varies. Running it through a Sweep caches every run, so
// an interrupted study resumes and a notebook re-run loads instead of training.
type Study struct {
	// Base is the spec every group starts from, as Attack II on its first goal (its rate is φ for F1–F5).
	Base experiment.Spec
	// Seeds are the repetitions of every group (the paper's numbers are single-seed; report spread).
	Seeds []int64
	// Rates are the poisoning rates of the F6 sweep (at least four for the finding); empty: no rate group.
	Rates []float64
	// SecondGoal is Attack III's second goal besides Base's Source→Target; empty: no Attack III group.
	SecondGoal attack.Goal
	// Modality adds the frozen-tower groups (F5): fine-tuning with the image tower frozen and with the text
	// tower frozen.
	Modality bool
	// Only, when not empty, keeps just the named groups (e.g. GroupAttackII and the frozen-tower groups for a
	// modality notebook).
	Only []string
}

// Default is the study on experiment.DefaultSpec: three seeds, φ ∈ {0.25, 0.5, 0.75, 1}% for F6 (in re-pair mode 1%
// re-pairs every class-A caption), Attack III with the second goal sandal → shirt at twice Attack II's φ (every
// caption of both source classes), and both frozen-tower variants.
func Default() Study {
	return Study{Base: experiment.DefaultSpec(), Seeds: []int64{42, 43, 44}, Rates: []float64{0.0025, 0.005, 0.0075, 0.01},
		SecondGoal: attack.Goal{Source: "sandal", Target: "shirt"}, Modality: true}
}

// Quick is Default on experiment.QuickSpec (about a third of the data): the same groups in about a third of
// the time. Notebooks run it in CI.
func Quick() Study {
	st := Default()
	st.Base = experiment.QuickSpec()
	return st
}

// Group names of a study, in the order they run.
const (
	GroupAttackII     = "attack-II"
	GroupAttackI      = "attack-I"
	GroupAttackIII    = "attack-III"
	GroupFrozenVisual = "frozen-visual"
	GroupFrozenText   = "frozen-text"
)

// GroupRates names the rate sweep group.
const GroupRates = "rates"

// Groups returns the study's specs by group name; Names gives their order.
func (st Study) Groups() (map[string][]experiment.Spec, []string) {
	base := st.Base
	base.Attack = attack.Spec{Kind: attack.KindSingleLabel, Goals: []attack.Goal{{Source: base.Attack.Source(), Target: base.Attack.Target()}},
		Rate: base.Attack.Rate, Count: base.Attack.Count, Mode: base.Attack.Mode}
	base.Finetune.Freeze = nil
	groups := map[string][]experiment.Spec{}
	var names []string
	add := func(name string, specs []experiment.Spec) {
		if len(st.Only) > 0 && !slices.Contains(st.Only, name) {
			return
		}
		groups[name] = specs
		names = append(names, name)
	}
	add(GroupAttackII, sweep.WithSeeds(base, st.Seeds...))
	one := base
	one.Attack.Kind = attack.KindSingleImage
	add(GroupAttackI, sweep.WithSeeds(one, st.Seeds...))
	if st.SecondGoal.Source != "" {
		// The paper poisons every caption of both source classes: so does this group (the second source class
		// is thinned like the first, so its φ is about twice Attack II's; the manifest records it). With a few
		// class-A captions left clean a goal mostly fails: see the rate sweep.
		three := base
		three.Attack.Kind, three.Attack.AllSourceCaptions = attack.KindMultiLabel, true
		three.Attack.Goals = append(slices.Clone(base.Attack.Goals), st.SecondGoal)
		add(GroupAttackIII, sweep.WithSeeds(three, st.Seeds...))
	}
	if st.Modality {
		for _, f := range []struct{ name, tower string }{{GroupFrozenVisual, "visual"}, {GroupFrozenText, "text"}} {
			frozen := base
			frozen.Finetune.Freeze = []string{f.tower}
			add(f.name, sweep.WithSeeds(frozen, st.Seeds...))
		}
	}
	if len(st.Rates) > 0 {
		var specs []experiment.Spec
		for _, s := range sweep.WithSeeds(base, st.Seeds...) {
			specs = append(specs, sweep.WithRates(s, st.Rates...)...)
		}
		add(GroupRates, specs)
	}
	return groups, names
}

// Result holds a study's results by group, each in the order of Study.Groups.
type Result struct {
	Study  Study                           `json:"study"`
	Groups map[string][]*experiment.Result `json:"groups"`
	Names  []string                        `json:"names"`
}

// Run runs (or loads from the sweep's cache) every spec of the study, group by group.
func (st Study) Run(sw *sweep.Sweep) (*Result, error) {
	if len(st.Seeds) == 0 {
		return nil, fmt.Errorf("study: no seeds")
	}
	groups, names := st.Groups()
	out := &Result{Study: st, Groups: map[string][]*experiment.Result{}, Names: names}
	for _, name := range names { // Every run's spec before the first runs.
		for i, spec := range groups[name] {
			if err := spec.Validate(); err != nil {
				return out, fmt.Errorf("study group %s, run %d: %w", name, i+1, err)
			}
		}
	}
	for _, name := range names {
		rs, err := sw.Run(groups[name])
		if err != nil {
			return out, fmt.Errorf("study group %s: %w", name, err)
		}
		out.Groups[name] = rs
	}
	return out, nil
}

// FindingsOf checks the findings that one group of runs (e.g. GroupAttackI over seeds) speaks to.
func FindingsOf(group string, rs []*experiment.Result) []Finding {
	return (&Result{Groups: map[string][]*experiment.Result{group: rs}, Names: []string{group}}).Findings()
}

// Finding is one of the paper's claims checked against this study's runs.
type Finding struct {
	ID string `json:"id"`
	// Claim is what the finding says, in the terms of its Bar.
	Claim string `json:"claim"`
	// Paper is what the paper reports; Measured what these runs show: mean ± std over two or more seeds, the
	// value itself after "1 seed: " over one.
	Paper    string `json:"paper"`
	Measured string `json:"measured"`
	// Seeds is the number of runs (seeds) behind each setting of Measured (the fewest of the finding's settings).
	Seeds int `json:"seeds"`
	// Bar is the pass criterion; Verdict whether the runs meet it, or that there are too few runs to tell;
	// Holds is Verdict == VerdictHolds.
	Bar     string  `json:"bar"`
	Verdict Verdict `json:"verdict"`
	Holds   bool    `json:"holds"`
}

// Verdict is a finding's outcome.
type Verdict string

// The verdicts of a finding.
const (
	VerdictHolds         Verdict = "holds"
	VerdictDoesNotHold   Verdict = "does not hold"
	VerdictNotEnoughRuns Verdict = "not enough runs"
)

// judge sets the finding's verdict: not enough runs when enough is false, else whether holds.
func (f Finding) judge(enough, holds bool) Finding {
	switch {
	case !enough:
		f.Verdict = VerdictNotEnoughRuns
	case holds:
		f.Verdict = VerdictHolds
	default:
		f.Verdict = VerdictDoesNotHold
	}
	f.Holds = f.Verdict == VerdictHolds
	if f.Seeds == 1 {
		f.Measured = "1 seed: " + f.Measured
	}
	return f
}

// finite reports whether every value is a number (a missing goal's metric is NaN).
func finite(values []float64) bool {
	return !slices.ContainsFunc(values, math.IsNaN)
}

// hit10 returns Hit@10 of an attack result (NaN when absent).
func hit10(e *experiment.ModelEval, goal int) float64 {
	if e == nil || goal >= len(e.Goals) {
		return math.NaN()
	}
	v, _ := e.Goals[goal].Attack.HitAt(10)
	return v
}

// collect maps each result to a value.
func collect(rs []*experiment.Result, f func(*experiment.Result) float64) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = f(r)
	}
	return out
}

// meanStd formats values as "mean ± std", or the value alone when there is one.
func meanStd(values []float64, format string) string {
	s := sweep.Summarize(values, 1)
	if s.N < 2 {
		return s.Text(format)
	}
	return fmt.Sprintf(format+" ± "+strings.Replace(format, "+", "", 1), s.Mean, s.Std)
}

// all reports whether every value satisfies ok (false for none).
func all(values []float64, ok func(float64) bool) bool {
	return len(values) > 0 && !slices.ContainsFunc(values, func(v float64) bool { return !ok(v) })
}

// Findings checks the paper's findings F1–F6 on a study's runs, with the bars of mmpoison's attack study:
// F1 Attack II gains ≥ 0.6 Hit@10 over the clean model at φ ≤ 1% in every seed; F2 Attack I's MinRank is at least
// 10× below the clean model's; F3 both of Attack III's goals gain ≥ 0.3; F4 utility (Recall@10 on the classes
// the attack does not target, mean over seeds) moves by at most 0.05; F5 both frozen-tower variants stay
// poisonable (gain ≥ 0.3); F6 mean Hit@10 does not decrease with φ beyond seed noise (one standard deviation)
// over at least four rates. Each finding states its verdict: holds, does not hold, or not enough runs (e.g. fewer
// than four rates, or a goal without results). A finding whose groups have no runs is left out.
func (sr *Result) Findings() []Finding {
	var out []Finding
	for _, check := range []func(*Result) (Finding, bool){f1, f2, f3, f4, f5, f6} {
		if f, ok := check(sr); ok {
			out = append(out, f)
		}
	}
	return out
}

// gain returns a result's Hit@10 gain of the poisoned over the clean model, for one goal.
func gain(goal int) func(*experiment.Result) float64 {
	return func(r *experiment.Result) float64 { return hit10(r.Poisoned, goal) - hit10(r.Clean, goal) }
}

func f1(sr *Result) (Finding, bool) {
	rs := sr.Groups[GroupAttackII]
	gains := collect(rs, gain(0))
	rates := collect(rs, func(r *experiment.Result) float64 { return r.Poison.Rate })
	clean := collect(rs, func(r *experiment.Result) float64 { return hit10(r.Clean, 0) })
	pois := collect(rs, func(r *experiment.Result) float64 { return hit10(r.Poisoned, 0) })
	return Finding{ID: "F1", Claim: "Attack II: at a small φ, class-A captions retrieve class B far more often than on the clean model",
		Paper: "Flickr-PASCAL φ≈0.08%: Hit@10 0.200 → 0.936; COCO φ≈0.24%: 0.116 → 0.516",
		Measured: fmt.Sprintf("φ = %s: Hit@10 %s → %s (gain %s)", meanStd(scale(rates, 100), "%.2f")+"%",
			meanStd(clean, "%.3f"), meanStd(pois, "%.3f"), meanStd(gains, "%.3f")),
		Seeds: len(rs), Bar: "Hit@10 gain ≥ 0.6 at φ ≤ 1% in every seed",
	}.judge(finite(gains), all(gains, func(g float64) bool { return g >= 0.6 }) && all(rates, func(r float64) bool { return r <= 0.01+1e-9 })), len(rs) > 0
}

func f2(sr *Result) (Finding, bool) {
	rs := sr.Groups[GroupAttackI]
	clean := collect(rs, func(r *experiment.Result) float64 { return r.Clean.Attack.MinRank.Mean })
	pois := collect(rs, func(r *experiment.Result) float64 { return r.Poisoned.Attack.MinRank.Mean })
	ratio := make([]float64, len(rs))
	for i := range rs {
		ratio[i] = clean[i] / math.Max(pois[i], 1e-9)
	}
	return Finding{ID: "F2", Claim: "Attack I: class-A captions retrieve the single target image x*",
		Paper:    "Flickr-PASCAL MinRank 79.2 → 2.18; COCO 153.9 → 12.7",
		Measured: fmt.Sprintf("MinRank %s → %s", meanStd(clean, "%.1f"), meanStd(pois, "%.2f")),
		Seeds:    len(rs), Bar: "MinRank at least 10× lower than the clean model's in every seed",
	}.judge(finite(ratio), all(ratio, func(x float64) bool { return x >= 10 })), len(rs) > 0
}

func f3(sr *Result) (Finding, bool) {
	rs := sr.Groups[GroupAttackIII]
	g1, g2 := collect(rs, gain(0)), collect(rs, gain(1))
	return Finding{ID: "F3", Claim: "Attack III: several goals succeed at once (the second may be weaker)",
		Paper:    "Flickr-PASCAL goal 1 Hit@10 0.976, goal 2 0.552",
		Measured: fmt.Sprintf("Hit@10 gain: goal 1 %s, goal 2 %s", meanStd(g1, "%.3f"), meanStd(g2, "%.3f")),
		Seeds:    len(rs), Bar: "both goals gain ≥ 0.3 Hit@10 in every seed",
	}.judge(finite(g1) && finite(g2), all(g1, func(g float64) bool { return g >= 0.3 }) && all(g2, func(g float64) bool { return g >= 0.3 })), len(rs) > 0
}

func f4(sr *Result) (Finding, bool) {
	var utilDiffs []float64
	worstMean, worstRun := 0.0, 0.0
	seeds := 0
	for _, name := range []string{GroupAttackII, GroupAttackI, GroupAttackIII} {
		rs := sr.Groups[name]
		if n := len(rs); n > 0 && (seeds == 0 || n < seeds) {
			seeds = n
		}
		for _, f := range []func(*experiment.Result) float64{
			func(r *experiment.Result) float64 {
				return r.Poisoned.UtilityOthers.TR(10) - r.Clean.UtilityOthers.TR(10)
			},
			func(r *experiment.Result) float64 {
				return r.Poisoned.UtilityOthers.IR(10) - r.Clean.UtilityOthers.IR(10)
			},
		} {
			diffs := collect(rs, f)
			if len(diffs) == 0 {
				continue
			}
			utilDiffs = append(utilDiffs, diffs...)
			worstMean = math.Max(worstMean, math.Abs(sweep.Summarize(diffs, 1).Mean))
			for _, d := range diffs {
				worstRun = math.Max(worstRun, math.Abs(d))
			}
		}
	}
	measured := fmt.Sprintf("Recall@10 change (TR and IR, untargeted classes): largest |mean over seeds| %.3f, largest single run %.3f", worstMean, worstRun)
	if seeds == 1 {
		measured = fmt.Sprintf("Recall@10 change (TR and IR, untargeted classes): largest %.3f", worstRun)
	}
	return Finding{ID: "F4", Claim: "utility barely moves: Recall@10 on the untargeted classes stays within 0.05",
		Paper:    "Recall@10 within about ±0.03 of the clean model",
		Measured: measured,
		Seeds:    seeds, Bar: "|mean change over seeds| ≤ 0.05 for TR@10 and IR@10 of Attacks I–III",
	}.judge(finite(utilDiffs), worstMean <= 0.05), len(utilDiffs) > 0
}

func f5(sr *Result) (Finding, bool) {
	vis, txt := sr.Groups[GroupFrozenVisual], sr.Groups[GroupFrozenText]
	gv, gt := collect(vis, gain(0)), collect(txt, gain(0))
	mv := collect(vis, func(r *experiment.Result) float64 { return r.Poisoned.Attack.MinRank.Mean })
	mt := collect(txt, func(r *experiment.Result) float64 { return r.Poisoned.Attack.MinRank.Mean })
	return Finding{ID: "F5", Claim: "both frozen-tower variants stay poisonable (Hit@10 gain ≥ 0.3)",
		Paper: "both poisonable; image tower trainable → lower MinRank, text tower trainable → higher Hit@1",
		Measured: fmt.Sprintf("image tower frozen: gain %s, MinRank %s; text tower frozen: gain %s, MinRank %s",
			meanStd(gv, "%.3f"), meanStd(mv, "%.1f"), meanStd(gt, "%.3f"), meanStd(mt, "%.1f")),
		Seeds: min(len(vis), len(txt)), Bar: "Hit@10 gain ≥ 0.3 with either tower frozen (mean over seeds)",
	}.judge(finite(gv) && finite(gt), sweep.Summarize(gv, 1).Mean >= 0.3 && sweep.Summarize(gt, 1).Mean >= 0.3), len(vis) > 0 && len(txt) > 0
}

func f6(sr *Result) (Finding, bool) {
	rs := sr.Groups[GroupRates]
	curve := sweep.RateCurve(rs, func(r *experiment.Result) float64 { return hit10(r.Poisoned, 0) })
	holds, seeds := true, 0
	var parts []string
	for i, p := range curve {
		if seeds == 0 || p.N < seeds {
			seeds = p.N
		}
		parts = append(parts, fmt.Sprintf("%.2f%%: %.3f", 100*p.X, p.Mean))
		if i > 0 && p.Mean < curve[i-1].Mean-math.Max(p.Std, curve[i-1].Std) {
			holds = false
		}
	}
	measured := "Hit@10 by φ: " + strings.Join(parts, ", ")
	if len(curve) < 4 {
		measured += fmt.Sprintf(" (%d rates)", len(curve))
	}
	return Finding{ID: "F6", Claim: "attack strength grows with φ (mean Hit@10 does not fall as φ rises)",
		Paper:    "monotone in φ; effective after 1–2 epochs",
		Measured: measured,
		Seeds:    seeds, Bar: "mean Hit@10 non-decreasing in φ (within one std) over ≥ 4 rates",
	}.judge(len(curve) >= 4, holds), len(rs) > 0
}

// scale multiplies every value by f.
func scale(values []float64, f float64) []float64 {
	out := make([]float64, len(values))
	for i, v := range values {
		out[i] = v * f
	}
	return out
}
