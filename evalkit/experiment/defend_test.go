package experiment

import (
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/defense"
)

// TestDefensesUndoAttackII runs the paper's two defenses against Attack II at QuickSpec size and asserts their
// effect: the pre-training filter (γ from a labelled sample, independent clean model) removes most of the poison
// and at most 10% of the clean pairs, and brings Hit@10 back near the clean baseline; clean fine-tuning on
// held-out clean data lowers Hit@10 within 2 epochs. Utility on the untargeted classes stays within 0.05.
func TestDefensesUndoAttackII(t *testing.T) {
	if testing.Short() {
		t.Skip("trains several models")
	}
	requireData(t)
	spec := QuickSpec()
	spec.HeldOutSize = 1000
	res, err := Run(spec, Options{Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	d, err := LoadData(spec)
	if err != nil {
		t.Fatal(err)
	}
	clean, _ := res.Clean.Attack.HitAt(10)
	pois, _ := res.Poisoned.Attack.HitAt(10)

	f, err := Filter(d, FilterSpec{Threshold: defense.Threshold{Kind: defense.KindLabelled, MaxCleanDrop: 0.05}}, Options{Quiet: true})
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

	evals, _, err := CleanFinetune(d, res.FinetunePois, 2, Options{Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	last, _ := evals[len(evals)-1].Attack.HitAt(10)
	t.Logf("clean fine-tuning: Hit@10 %.3f → %.3f after %d epochs", pois, last, len(evals))
	if last > pois-0.3 {
		t.Errorf("clean fine-tuning left Hit@10 at %.3f (poisoned %.3f)", last, pois)
	}
	for name, ev := range map[string]*ModelEval{"filter": f.Eval, "clean fine-tuning": evals[len(evals)-1]} {
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
