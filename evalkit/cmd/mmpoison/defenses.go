package main

import (
	"fmt"
	"math"
	"slices"

	"github.com/mmpoison/mmpoison/evalkit/defenses"
	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/report"
	"github.com/mmpoison/mmpoison/kernelext"
	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/defense"
)

// defensesCommand implements "mmpoison defenses": the defense × attack matrix over seeds.
func defensesCommand(args []string) error {
	fs := newFlags("defenses", "")
	quick := quickFlag(fs)
	preset := presetFlag(fs, experiment.DefaultSpec().Model)
	seeds := seedsFlag(fs, []int64{42, 43, 44})
	devices := devicesFlag(fs)
	var kinds []string
	for _, k := range attack.Kinds() {
		kinds = append(kinds, string(k))
	}
	attacks := listFlag(fs, "attacks", kinds, "comma-separated attack kinds to defend against, each in its standard setting:"+attackKinds()+"\n")
	which := listFlag(fs, "defenses", defenses.All, "defenses (none is the undefended model)")
	quantile := fs.Float64("quantile", 0.95, "data-side defenses drop the pairs above this quantile of their scores, in (0, 1)")
	heldOut := fs.Int("held-out", 1000, "clean held-out images for the post-training defenses")
	epochs := fs.Int("repair-epochs", 2, "epochs of the post-training defenses")
	out := outFlag(fs, "mmpoison-defenses", "defenses.md, figures")
	runs := runsFlag(fs, "one entry per cell of the matrix")
	var ck defenses.CheckerSpec
	fs.Int64Var(&ck.Seed, "checker-seed", 0, "seed of the data-side defenses' independent clean checker when it is pre-trained here (0: each attack's seed + 1)")
	fs.StringVar(&ck.Preset, "checker-preset", "", "pre-train the checker with this model preset (e.g. small) instead of the victim's, on the same clean pool")
	fs.StringVar(&ck.Weights, "checker-weights", "", "use this checkpoint as the checker: an mmpoison checkpoint, or OpenAI/open_clip/HuggingFace CLIP safetensors")
	fs.StringVar(&ck.Tokenizer, "checker-tokenizer", "", "the CLIP BPE vocabulary of -checker-weights (bpe_simple_vocab_16e6.txt.gz or vocab.json); default: the victim's tokenizer")
	quiet := quietFlag(fs)
	if help, err := parse(fs, args); help || err != nil {
		return err
	}
	switch {
	case !(*quantile > 0 && *quantile < 1) || math.IsNaN(*quantile):
		return fmt.Errorf("-quantile %v: want a fraction in (0, 1)", *quantile)
	case *epochs < 1:
		return fmt.Errorf("-repair-epochs %d: want at least 1", *epochs)
	}
	if err := checkMinimums(fs, minimum{"held-out", 1}, minimum{"devices", 1}); err != nil {
		return err
	}
	if err := checkResumable(*seeds, *preset, *out, *runs); err != nil {
		return err
	}
	base := baseSpec(*quick)
	base.Model, base.Data.HeldOut = *preset, *heldOut
	if wasSet(fs, "devices") {
		base.Devices = *devices
	}
	th := defense.Threshold{Kind: defense.KindQuantile, Value: *quantile}
	m := defenses.Matrix{Defenses: slices.Clone(*which), RepairEpochs: *epochs, Checker: ck, Seeds: *seeds, Dir: *runs,
		Filter: defenses.FilterSpec{Threshold: th}, KDistance: defenses.KDistanceSpec{Threshold: th}}
	var ks []attack.Kind
	for _, k := range *attacks {
		ks = append(ks, attack.Kind(k))
	}
	var err error
	if m.Attacks, err = defenses.StandardAttacks(base, ks...); err != nil {
		return fmt.Errorf("-attacks: %w", err)
	}
	m.Progress = func(i, n int, c defenses.Cell, cached bool) {
		fmt.Printf("cell %d/%d (%s): %s, defense %s\n", i+1, n, runState(cached), describe(c.Spec), c.Defense)
	}
	outs, err := m.Run(experiment.Options{Quiet: *quiet})
	if err != nil {
		return err
	}
	kernelext.ShowTable(report.DefenseMatrixTable(outs))
	kernelext.ShowTable(report.DefenseComparison(outs))
	if _, err := report.WriteDefenses(*out, outs); err != nil {
		return err
	}
	fmt.Printf("defenses report: %s\n", *out)
	return nil
}
