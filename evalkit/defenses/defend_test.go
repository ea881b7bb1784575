package defenses

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/internal/testenv"
	"github.com/mmpoison/mmpoison/models/train"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/defense"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func requireData(t *testing.T) { testenv.RequireFashionMNIST(t) }

// testVocab returns the real CLIP BPE vocabulary, or skips the test.
func testVocab(t *testing.T) string { return testenv.Vocab(t, "../../..") }

// quickAttackII runs Attack II at QuickSpec size with 1,000 held-out images (cached across the tests) and
// loads its data.
func quickAttackII(t *testing.T, opts experiment.Options) (*experiment.Result, *experiment.Data) {
	t.Helper()
	spec := experiment.QuickSpec()
	spec.Data.HeldOut = 1000
	res, err := experiment.Run(spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	d, err := experiment.LoadData(spec)
	if err != nil {
		t.Fatal(err)
	}
	return res, d
}

// pairDistances embeds every pair of ps with the model at path (its own config, the spec's tokenizer) and
// returns 1 − cos(image, caption) per pair.
func pairDistances(d *experiment.Data, path string, ps *dataset.PairSet, opts experiment.Options) ([]float64, error) {
	img, txt, _, err := CheckerSpec{}.embedPairs(d, path, ps, opts)
	if err != nil {
		return nil, err
	}
	return defense.PairDistances(img, txt)
}

// TestDefensesUndoAttackII runs the paper's two defenses against Attack II at QuickSpec size and asserts their
// effect: the pre-training filter (γ from a labelled sample, independent clean model) removes most of the poison
// and at most 10% of the clean pairs, and brings Hit@10 back near the clean baseline; clean fine-tuning on
// held-out clean data lowers Hit@10 within 2 epochs. Utility on the untargeted classes stays within 0.05.
func TestDefensesUndoAttackII(t *testing.T) {
	if testing.Short() {
		t.Skip("trains several models")
	}
	requireData(t)
	res, d := quickAttackII(t, experiment.Options{Quiet: true})
	clean, _ := res.Clean.Attack.HitAt(10)
	pois, _ := res.Poisoned.Attack.HitAt(10)

	f, err := Filter(d, CheckerSpec{}, FilterSpec{Threshold: defense.Threshold{Kind: defense.KindLabelled, MaxCleanDrop: 0.05}}, experiment.Options{Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	filtered, _ := f.Eval.Attack.HitAt(10)
	t.Logf("filter: γ=%.3f dropped %d (recall %v, clean dropped %v); Hit@10 clean %.3f poisoned %.3f filtered %.3f",
		f.Gamma, f.Report.Dropped, deref(f.Report.Recall), deref(f.Report.CleanDroppedFraction), clean, pois, filtered)
	if r := f.Report.Recall; r == nil || *r < 0.8 {
		t.Errorf("filter caught too little poison: recall %v", deref(r))
	}
	if c := f.Report.CleanDroppedFraction; c == nil || *c > 0.10 {
		t.Errorf("filter dropped too many clean pairs: %v", deref(c))
	}
	if filtered-clean > 0.1 {
		t.Errorf("after the filter Hit@10 is %.3f, more than 0.1 above the clean %.3f", filtered, clean)
	}

	evals, _, err := CleanFinetune(d, res.FinetunePois, 2, experiment.Options{Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	last, _ := evals[len(evals)-1].Attack.HitAt(10)
	t.Logf("clean fine-tuning: Hit@10 %.3f → %.3f after %d epochs", pois, last, len(evals))
	if last > pois-0.3 {
		t.Errorf("clean fine-tuning left Hit@10 at %.3f (poisoned %.3f)", last, pois)
	}
	for name, ev := range map[string]*experiment.ModelEval{"filter": f.Eval, "clean fine-tuning": evals[len(evals)-1]} {
		if dIR := ev.UtilityOthers.IR(10) - res.Clean.UtilityOthers.IR(10); dIR < -0.05 {
			t.Errorf("%s: IR@10 on untargeted classes fell by %.3f", name, -dIR)
		}
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

var beyondCompare = flag.Bool("beyond.compare", false,
	"TestBeyondDefensesAttackII also runs the paper's filter and clean fine-tuning, for comparison")

// TestBeyondDefensesAttackII runs the two defenses beyond the paper against Attack II at QuickSpec size and
// asserts their effect, logging Hit@10 before and after, utility, data removed and time:
//
//   - the k-distance (neighbour-caption) detector, γ from a labelled sample as in the filter test, removes most
//     of the poison and at most 10% of the clean pairs, and brings Hit@10 back near the clean baseline;
//   - CleanCLIP fine-tuning on the held-out clean data lowers Hit@10 by at least 0.3 within 2 epochs.
//
// Utility (IR@10 on the untargeted classes) stays within 0.05 of the clean model's. With -beyond.compare it also
// runs the paper's filter and clean fine-tuning on the same models. MMPOISON_BEYOND_CACHE, when set, is used as
// the model cache instead of the package tests' temporary one (to re-run without retraining).
func TestBeyondDefensesAttackII(t *testing.T) {
	if testing.Short() {
		t.Skip("trains several models")
	}
	requireData(t)
	if dir := os.Getenv("MMPOISON_BEYOND_CACHE"); dir != "" {
		t.Setenv("MMPOISON_CACHE", dir)
	}
	opts := experiment.Options{Quiet: true}
	start := time.Now()
	res, d := quickAttackII(t, opts)
	clean, _ := res.Clean.Attack.HitAt(10)
	pois, _ := res.Poisoned.Attack.HitAt(10)
	t.Logf("attack (%.0fs): Hit@10 clean %.3f, poisoned %.3f; MinRank clean %.1f, poisoned %.1f; IR@10/TR@10 others clean %.3f/%.3f, poisoned %.3f/%.3f",
		time.Since(start).Seconds(), clean, pois, res.Clean.Attack.MinRank.Mean, res.Poisoned.Attack.MinRank.Mean,
		res.Clean.UtilityOthers.IR(10), res.Clean.UtilityOthers.TR(10),
		res.Poisoned.UtilityOthers.IR(10), res.Poisoned.UtilityOthers.TR(10))
	utility := func(name string, ev *experiment.ModelEval) {
		t.Helper()
		if dIR := ev.UtilityOthers.IR(10) - res.Clean.UtilityOthers.IR(10); dIR < -0.05 {
			t.Errorf("%s: IR@10 on untargeted classes fell by %.3f", name, -dIR)
		}
	}

	// The embedding-space detector.
	start = time.Now()
	kd, err := KDistance(d, CheckerSpec{}, KDistanceSpec{Threshold: defense.Threshold{Kind: defense.KindLabelled, MaxCleanDrop: 0.05}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	r := kd.Report
	hit, _ := kd.Eval.Attack.HitAt(10)
	t.Logf("k-distance detector (%.0fs; scoring %.2fs, fine-tuning %.0fs): γ=%.3f dropped %d/%d (%.2f%%), precision %v recall %v clean dropped %v; Hit@10 %.3f → %.3f (clean %.3f), MinRank %.1f; IR@10/TR@10 others %.3f/%.3f",
		time.Since(start).Seconds(), kd.Seconds, kd.Model.Seconds, kd.Gamma, r.Dropped, r.Total, 100*r.FractionRemoved,
		deref(r.Precision), deref(r.Recall), deref(r.CleanDroppedFraction), pois, hit, clean,
		kd.Eval.Attack.MinRank.Mean, kd.Eval.UtilityOthers.IR(10), kd.Eval.UtilityOthers.TR(10))
	if r.Labels != defense.LabelsFromManifest || r.Poisoned != res.Poison.PoisonedPairs {
		t.Errorf("report labels %q with %d poisoned pairs, want the manifest's %d", r.Labels, r.Poisoned, res.Poison.PoisonedPairs)
	}
	if rc := r.Recall; rc == nil || *rc < 0.8 {
		t.Errorf("detector caught too little poison: recall %v", deref(rc))
	}
	if c := r.CleanDroppedFraction; c == nil || *c > 0.10 {
		t.Errorf("detector dropped too many clean pairs: %v", deref(c))
	}
	if hit-clean > 0.1 {
		t.Errorf("after the detector Hit@10 is %.3f, more than 0.1 above the clean %.3f", hit, clean)
	}
	utility("k-distance detector", kd.Eval)
	// Detection only (no fine-tuning): every score kind with quantile thresholds (the top 1% and 2% dropped),
	// against the paper's distance on the same checker.
	poisonedSet, _, err := experiment.Poison(d)
	if err != nil {
		t.Fatal(err)
	}
	dist, err := pairDistances(d, kd.Checker.Path, poisonedSet, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []float64{0.99, 0.98} {
		th := defense.Threshold{Kind: defense.KindQuantile, Value: q}
		gamma, err := defense.ChooseGamma(dist, th, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, r := defense.Filter(poisonedSet, dist, gamma)
		t.Logf("quantile %.2f, paper's distance: dropped %d, precision %.2f recall %.2f", q, r.Dropped, *r.Precision, *r.Recall)
		for _, kind := range []string{defense.ScoreNeighbourContrast, defense.ScoreNeighbourCaptions,
			defense.ScoreJointKDistance, defense.ScoreJointLOF} {
			det, err := Detect(d, CheckerSpec{}, KDistanceSpec{Score: defense.KDistanceOptions{Kind: kind}, Threshold: th}, opts)
			if err != nil {
				t.Fatal(err)
			}
			r := det.Report
			t.Logf("quantile %.2f, %s (%.1fs): dropped %d, precision %.2f recall %.2f", q, kind, det.Seconds,
				r.Dropped, *r.Precision, *r.Recall)
		}
	}

	// CleanCLIP fine-tuning.
	start = time.Now()
	evals, stages, err := CleanCLIP(d, res.FinetunePois, 2, CleanCLIPSpec{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range evals {
		h, _ := ev.Attack.HitAt(10)
		t.Logf("CleanCLIP epoch %d (%.0fs, final loss %.3f): Hit@10 %.3f, MinRank %.1f; IR@10/TR@10 others %.3f/%.3f",
			i+1, stages[i].Seconds, stages[i].History[len(stages[i].History)-1].MeanLoss, h, ev.Attack.MinRank.Mean,
			ev.UtilityOthers.IR(10), ev.UtilityOthers.TR(10))
	}
	last, _ := evals[len(evals)-1].Attack.HitAt(10)
	t.Logf("CleanCLIP (%.0fs): Hit@10 %.3f → %.3f after %d epochs", time.Since(start).Seconds(), pois, last, len(evals))
	if last > pois-0.3 {
		t.Errorf("CleanCLIP left Hit@10 at %.3f (poisoned %.3f)", last, pois)
	}
	utility("CleanCLIP", evals[len(evals)-1])

	if !*beyondCompare {
		return
	}
	start = time.Now()
	f, err := Filter(d, CheckerSpec{}, FilterSpec{Threshold: defense.Threshold{Kind: defense.KindLabelled, MaxCleanDrop: 0.05}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	fh, _ := f.Eval.Attack.HitAt(10)
	t.Logf("paper's filter (%.0fs): γ=%.3f dropped %d (%.2f%%), precision %v recall %v clean dropped %v; Hit@10 %.3f, MinRank %.1f; IR@10/TR@10 others %.3f/%.3f",
		time.Since(start).Seconds(), f.Gamma, f.Report.Dropped, 100*f.Report.FractionRemoved, deref(f.Report.Precision),
		deref(f.Report.Recall), deref(f.Report.CleanDroppedFraction), fh, f.Eval.Attack.MinRank.Mean,
		f.Eval.UtilityOthers.IR(10), f.Eval.UtilityOthers.TR(10))
	start = time.Now()
	cf, cfStages, err := CleanFinetune(d, res.FinetunePois, 2, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range cf {
		h, _ := ev.Attack.HitAt(10)
		t.Logf("paper's clean fine-tuning epoch %d (%.0fs): Hit@10 %.3f, MinRank %.1f; IR@10/TR@10 others %.3f/%.3f",
			i+1, cfStages[i].Seconds, h, ev.Attack.MinRank.Mean, ev.UtilityOthers.IR(10), ev.UtilityOthers.TR(10))
	}
	t.Logf("paper's clean fine-tuning total %.0fs", time.Since(start).Seconds())
}

// TestCleanCLIPSpecDefaults: the zero spec is CleanCLIP's recipe; explicit values are kept.
func TestCleanCLIPSpecDefaults(t *testing.T) {
	z := CleanCLIPSpec{}.resolved()
	if z.MultimodalWeight != 1 || z.UnimodalWeight != 1 || z.Text.SynonymRate != defense.DefaultEDA().SynonymRate ||
		z.Image != train.DefaultImageAugment() {
		t.Errorf("zero spec resolves to %+v", z)
	}
	only := CleanCLIPSpec{MultimodalWeight: 0, UnimodalWeight: 2, Text: defense.EDA{SwapRate: 0.3}}.resolved()
	if only.MultimodalWeight != 0 || only.UnimodalWeight != 2 || only.Text.SwapRate != 0.3 || only.Text.SynonymRate != 0 {
		t.Errorf("explicit spec resolves to %+v", only)
	}
	if fmt.Sprint(z) == fmt.Sprint(CleanCLIPSpec{UnimodalWeight: 2}.resolved()) {
		t.Error("different CleanCLIP settings resolve alike")
	}
}

// TestBeyondDefensesErrors: the runners refuse bad settings before training anything.
func TestBeyondDefensesErrors(t *testing.T) {
	requireData(t)
	spec := experiment.QuickSpec()
	noHeldOut, err := experiment.LoadData(spec)
	if err != nil {
		t.Fatal(err)
	}
	spec.Data.HeldOut = 50
	d, err := experiment.LoadData(spec)
	if err != nil {
		t.Fatal(err)
	}
	quiet := experiment.Options{Quiet: true}
	cases := []struct {
		name   string
		d      *experiment.Data
		from   *experiment.Stage
		epochs int
		cs     CleanCLIPSpec
		want   string
	}{
		{"no held-out data", noHeldOut, &experiment.Stage{}, 1, CleanCLIPSpec{}, "set Data.HeldOut"},
		{"zero epochs", d, &experiment.Stage{}, 0, CleanCLIPSpec{}, "epochs must be ≥ 1, got 0"},
		{"no poisoned model", d, nil, 1, CleanCLIPSpec{}, "poisoned model's stage"},
		{"custom synonyms", d, &experiment.Stage{}, 1,
			CleanCLIPSpec{Text: defense.EDA{Synonyms: map[string][]string{"a": {"b"}}, SwapRate: 0.1}}, "custom synonym tables"},
		{"bad EDA rate", d, &experiment.Stage{}, 1, CleanCLIPSpec{Text: defense.EDA{SwapRate: 3}}, "SwapRate must be in [0, 1]"},
	}
	for _, c := range cases {
		if _, _, err := CleanCLIP(c.d, c.from, c.epochs, c.cs, quiet); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
		if c.cs.Text.Synonyms != nil || c.cs.Text.SwapRate != 0 {
			continue // CleanCLIP's own settings
		}
		if _, _, err := CleanFinetune(c.d, c.from, c.epochs, quiet); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("clean fine-tuning, %s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}
