package experiment_test

import (
	"fmt"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
)

// A spec declares one experiment; Run executes it (see the quickstart notebook for the stage-by-stage API).
func ExampleDefaultSpec() {
	spec := experiment.DefaultSpec()
	spec.Rate = 0.02
	fmt.Println(spec.Source, "→", spec.Target, spec.Mode, spec.Validate())
	spec.Rate = 1.5
	fmt.Println(spec.Validate())
	// Output:
	// trouser → bag repair <nil>
	// poisoning rate φ = 1.5 is outside (0, 1)
}

// A study declares the paper's attack study as groups of specs; Run (with a Sweep) trains them, resumably, and
// Findings checks F1–F6 on the results.
func ExampleStudy_Groups() {
	st := experiment.DefaultStudy()
	groups, names := st.Groups()
	for _, name := range names {
		fmt.Println(name, len(groups[name]), "runs")
	}
	// Output:
	// attack-II 3 runs
	// attack-I 3 runs
	// attack-III 3 runs
	// frozen-visual 3 runs
	// frozen-text 3 runs
	// rates 12 runs
}

// The defense × attack matrix runs every defense against every attack over seeds, one cell each.
func ExampleDefenseMatrix_Cells() {
	spec := experiment.QuickSpec()
	spec.HeldOutSize = 1000
	m := experiment.DefenseMatrix{Attacks: []experiment.Spec{spec}, Seeds: []int64{1, 2}}
	for _, c := range m.Cells()[:5] {
		fmt.Println("seed", c.Spec.Seed, c.Defense)
	}
	fmt.Println(len(m.Cells()), "cells")
	// Output:
	// seed 1 none
	// seed 1 filter
	// seed 1 clean-finetune
	// seed 1 kdistance
	// seed 1 cleanclip
	// 10 cells
}
