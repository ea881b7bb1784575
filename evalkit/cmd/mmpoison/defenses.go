package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/report"
	"github.com/mmpoison/mmpoison/kernelext"
	"github.com/mmpoison/mmpoison/poisoning/defense"
)

// defenses implements "mmpoison defenses": the defense × attack matrix over seeds.
func defenses(args []string) error {
	fs := flag.NewFlagSet("defenses", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "QuickSpec sizes (about a third of the demo's data) instead of the demo's")
	seeds := fs.String("seeds", "42,43,44", "comma-separated seeds")
	attacks := fs.String("attacks", "II,I,III,backdoor", "attacks to defend against: II, I, III (+ sandal → shirt, every source caption), backdoor (7×7 trigger → bag, φ = 5%, 5 epochs)")
	which := fs.String("defenses", strings.Join(experiment.AllDefenses, ","), "defenses (none is the undefended model)")
	quantile := fs.Float64("quantile", 0.95, "data-side defenses drop the pairs above this quantile of their scores")
	heldOut := fs.Int("held-out", 1000, "clean held-out images for the post-training defenses")
	epochs := fs.Int("repair-epochs", 2, "epochs of the post-training defenses")
	out := fs.String("out", "mmpoison-defenses", "report folder (defenses.md, figures)")
	dir := fs.String("runs", "", "folder keeping one file per finished cell, so an interrupted matrix resumes (default: <cache>/defenses)")
	checkerSeed := fs.Int64("checker-seed", 0, "seed of the data-side defenses' independent clean checker when it is pre-trained here (0: each attack's seed + 1)")
	checkerPreset := fs.String("checker-preset", "", "pre-train the checker with this model preset (e.g. small) instead of the victim's, on the same clean pool")
	checkerWeights := fs.String("checker-weights", "", "use this checkpoint as the checker: an mmpoison checkpoint, or OpenAI/open_clip/HuggingFace CLIP safetensors")
	checkerTokenizer := fs.String("checker-tokenizer", "", "the CLIP BPE vocabulary of -checker-weights (bpe_simple_vocab_16e6.txt.gz or vocab.json); default: the victim's tokenizer")
	quiet := fs.Bool("quiet", false, "no training progress")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	base := experiment.DefaultSpec()
	if *quick {
		base = experiment.QuickSpec()
	}
	base.HeldOutSize = *heldOut
	th := defense.Threshold{Kind: defense.KindQuantile, Value: *quantile}
	m := experiment.DefenseMatrix{Defenses: splitList(*which), RepairEpochs: *epochs,
		Filter: experiment.FilterSpec{Threshold: th, CheckerSeed: *checkerSeed, CheckerPreset: *checkerPreset,
			CheckerWeights: *checkerWeights, CheckerTokenizer: *checkerTokenizer},
		KDistance: experiment.KDistanceSpec{Threshold: th, CheckerSeed: *checkerSeed, CheckerPreset: *checkerPreset,
			CheckerWeights: *checkerWeights, CheckerTokenizer: *checkerTokenizer}}
	var err error
	if m.Attacks, err = experiment.MatrixAttacks(base, splitList(*attacks)...); err != nil {
		return fmt.Errorf("-attacks: %w", err)
	}
	if m.Seeds, err = parseSeeds(*seeds); err != nil {
		return err
	}
	if m.Dir, err = cacheSubdir(*dir, "defenses"); err != nil {
		return err
	}
	m.Progress = func(i, n int, c experiment.MatrixCell, cached bool) {
		state := "running"
		if cached {
			state = "loaded"
		}
		fmt.Printf("cell %d/%d (%s): attack %s seed %d, defense %s\n", i+1, n, state, c.Spec.AttackKind(), c.Spec.Seed, c.Defense)
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
