package main

import (
	"fmt"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/report"
	"github.com/mmpoison/mmpoison/evalkit/study"
	"github.com/mmpoison/mmpoison/evalkit/sweep"
	"github.com/mmpoison/mmpoison/kernelext"
	"github.com/mmpoison/mmpoison/poisoning/attack"
)

// studyCommand implements "mmpoison study".
func studyCommand(args []string) error {
	fs := newFlags("study", "")
	def := study.Default()
	quick := quickFlag(fs)
	preset := presetFlag(fs, def.Base.Model)
	seeds := seedsFlag(fs, def.Seeds)
	devices := devicesFlag(fs)
	rates := numbersFlag(fs, "rates", def.Rates, parseRate, "comma-separated poisoning rates φ of the F6 sweep (empty: none)")
	second := fs.String("second-goal", def.SecondGoal.Source+":"+def.SecondGoal.Target, "Attack III's second goal A:B (empty: no Attack III)")
	modality := fs.Bool("modality", def.Modality, "include the frozen-tower runs (F5)")
	out := outFlag(fs, "mmpoison-study", "study.md, study.json, figures")
	runs := runsFlag(fs, "one result per run")
	quiet := quietFlag(fs)
	if help, err := parse(fs, args); help || err != nil {
		return err
	}
	if err := checkResumable(*seeds, *preset, *out, *runs); err != nil {
		return err
	}
	if err := checkMinimums(fs, minimum{"devices", 1}); err != nil {
		return err
	}
	st := def
	if *quick {
		st = study.Quick()
	}
	st.Base.Model, st.Seeds, st.Rates, st.Modality = *preset, *seeds, *rates, *modality
	if wasSet(fs, "devices") {
		st.Base.Devices = *devices
	}
	st.SecondGoal = attack.Goal{}
	if *second != "" {
		g, err := goals("second-goal", []string{*second})
		if err != nil {
			return err
		}
		st.SecondGoal = g[0]
	}
	sw := &sweep.Sweep{Dir: *runs, Options: experiment.Options{Quiet: *quiet},
		Progress: func(i, n int, spec experiment.Spec, cached bool) {
			fmt.Printf("run %d/%d (%s): %s\n", i+1, n, runState(cached), describe(spec))
		}}
	sr, err := st.Run(sw)
	if err != nil {
		return err
	}
	kernelext.ShowTable(report.FindingsTable(sr.Findings()))
	files, err := report.WriteStudy(*out, sr)
	if err != nil {
		return err
	}
	fmt.Printf("study report: %d files in %s\n", len(files), *out)
	return nil
}

// runState says whether a run was loaded from the cache or is running.
func runState(cached bool) string {
	if cached {
		return "loaded"
	}
	return "running"
}

// describe names a spec's run in a progress line, e.g. "attack II trouser→bag φ=1.00% seed 42".
func describe(spec experiment.Spec) string {
	a := spec.Attack
	rate := fmt.Sprintf("φ=%.2f%%", 100*a.Rate)
	switch {
	case a.AllSourceCaptions:
		rate = "every source caption"
	case a.Count > 0:
		rate = fmt.Sprintf("%d pairs", a.Count)
	}
	s := fmt.Sprintf("attack %s %s→%s %s seed %d", a.Kind, a.Source(), a.Target(), rate, spec.Seed)
	if len(spec.Finetune.Freeze) > 0 {
		s += fmt.Sprintf(" freeze %v", spec.Finetune.Freeze)
	}
	return s
}
