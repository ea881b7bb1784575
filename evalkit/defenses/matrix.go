package defenses

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/mmpoison/mmpoison/evalkit/cache"
	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/sweep"
	"github.com/mmpoison/mmpoison/poisoning/atomicfile"
	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/defense"
)

// Defense names of the defense × attack matrix.
const (
	// DefenseNone is the undefended poisoned model.
	DefenseNone = "none"
	// DefenseFilter is the paper's pre-training filter (an independent clean model's image-caption distance).
	DefenseFilter = "filter"
	// DefenseCleanFinetune is the paper's post-training clean fine-tuning on held-out data.
	DefenseCleanFinetune = "clean-finetune"
	// DefenseKDistance is the embedding-space detector before training (beyond the paper).
	DefenseKDistance = "kdistance"
	// DefenseCleanCLIP is CleanCLIP-style fine-tuning after training (beyond the paper).
	DefenseCleanCLIP = "cleanclip"
)

// All lists every defense of the matrix, the undefended model first.
var All = []string{DefenseNone, DefenseFilter, DefenseCleanFinetune, DefenseKDistance, DefenseCleanCLIP}

// StandardAttacks returns base attacked each kind's standard way (experiment.Spec.StandardAttack), for a Matrix.
func StandardAttacks(base experiment.Spec, kinds ...attack.Kind) ([]experiment.Spec, error) {
	var out []experiment.Spec
	for _, k := range kinds {
		s, err := base.StandardAttack(k)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Matrix runs every defense against every attack over seeds: one cell per (attack, seed, defense). Each
// finished cell is a cache entry keyed by what it depends on, so an interrupted matrix resumes without
// recomputing finished cells (and every trained model is cached as usual).
type Matrix struct {
	// Attacks are the attacked specs (each needs Data.HeldOut > 0 for the post-training defenses).
	Attacks []experiment.Spec `json:"attacks"`
	// Seeds repeat every attack (each spec's Seed is replaced; empty: each spec's own).
	Seeds []int64 `json:"seeds"`
	// Defenses to run (default All).
	Defenses []string `json:"defenses"`
	// Checker is the independent clean model of both data-side defenses; Filter and KDistance configure
	// them, CleanCLIP the CleanCLIP objective.
	Checker   CheckerSpec   `json:"checker"`
	Filter    FilterSpec    `json:"filter"`
	KDistance KDistanceSpec `json:"kdistance"`
	CleanCLIP CleanCLIPSpec `json:"cleanclip"`
	// RepairEpochs is the number of epochs of the post-training defenses (default 2).
	RepairEpochs int `json:"repair_epochs"`
	// Dir is the cache root folder keeping the finished cells ("": the model cache, cache.Root()).
	Dir string `json:"-"`
	// Progress, when set, is told about each cell before it runs (cached: loaded instead).
	Progress func(i, n int, c Cell, cached bool) `json:"-"`
	// run computes one cell (runCell; tests replace it).
	run func(Cell, experiment.Options) (*Outcome, error)
}

// Cell identifies one cell of the matrix.
type Cell struct {
	Spec    experiment.Spec `json:"spec"`
	Defense string          `json:"defense"`
}

// Outcome is one cell's result: the defended model's metrics beside the undefended and the clean baseline,
// and what the defense cost.
type Outcome struct {
	Cell
	// Defended is the model after the defense (for DefenseNone: the poisoned model); Poisoned the undefended
	// poisoned model and Clean the clean baseline, for reference.
	Defended *experiment.ModelEval `json:"defended"`
	Poisoned *experiment.ModelEval `json:"poisoned"`
	Clean    *experiment.ModelEval `json:"clean"`
	// PerEpoch holds the evaluations after each epoch of a post-training defense.
	PerEpoch []*experiment.ModelEval `json:"per_epoch,omitempty"`
	// Report describes the data removed by a data-side defense (fraction removed, poison precision and recall).
	Report *defense.FilterReport `json:"report,omitempty"`
	// Seconds is the defense's training cost: for the data-side defenses the detection plus the fine-tuning on
	// the kept pairs (which replaces the victim's own fine-tuning), for the post-training ones the extra epochs.
	// CheckerSeconds is the independent clean model's pre-training (shared by both data-side defenses).
	Seconds        float64 `json:"seconds"`
	CheckerSeconds float64 `json:"checker_seconds,omitempty"`
	// Checker describes a data-side defense's independent clean model (FilterOutcome.CheckerModel).
	Checker string `json:"checker,omitempty"`
}

// Cells returns the matrix's cells in run order: attack by attack, seed by seed, defense by defense.
func (m Matrix) Cells() []Cell {
	defs := m.Defenses
	if len(defs) == 0 {
		defs = All
	}
	var out []Cell
	for _, a := range m.Attacks {
		seeds := m.Seeds
		if len(seeds) == 0 {
			seeds = []int64{a.Seed}
		}
		for _, s := range sweep.WithSeeds(a, seeds...) {
			for _, d := range defs {
				out = append(out, Cell{Spec: s, Defense: d})
			}
		}
	}
	return out
}

func (m Matrix) repairEpochs() int {
	if m.RepairEpochs < 1 {
		return 2
	}
	return m.RepairEpochs
}

// cellKey is a cell's cache key: its spec, its defense and that defense's settings.
func (m Matrix) cellKey(c Cell) (cache.Key, error) {
	var settings any
	switch c.Defense {
	case DefenseFilter:
		settings = struct{ Checker, Filter any }{m.Checker.parts(c.Spec), m.Filter}
	case DefenseKDistance:
		settings = struct{ Checker, KDistance any }{m.Checker.parts(c.Spec), m.KDistance}
	case DefenseCleanCLIP:
		settings = struct {
			CleanCLIP CleanCLIPSpec
			Epochs    int
		}{m.CleanCLIP, m.repairEpochs()}
	case DefenseCleanFinetune:
		settings = m.repairEpochs()
	}
	return cache.NewKey("cell-"+c.Defense, struct {
		Spec     any
		Defense  string
		Settings any
	}{c.Spec.CacheParts(), c.Defense, settings})
}

// Run computes every cell not already in the cache and returns all outcomes in Cells order. Every cell is
// checked before anything runs. It stops at the first error; finished cells stay in the cache.
func (m Matrix) Run(opts experiment.Options) ([]*Outcome, error) {
	cells := m.Cells()
	if err := m.validate(cells); err != nil {
		return nil, err
	}
	c, err := cache.Open(m.Dir)
	if err != nil {
		return nil, err
	}
	run := m.run
	if run == nil {
		run = m.runCell
	}
	var out []*Outcome
	for i, cell := range cells {
		o, err := m.cell(c, cell, func(cached bool) {
			if m.Progress != nil {
				m.Progress(i, len(cells), cell, cached)
			}
		}, run, opts)
		if err != nil {
			return out, err
		}
		out = append(out, o)
	}
	return out, nil
}

// validate checks every cell's defense, spec and checker, naming the bad one.
func (m Matrix) validate(cells []Cell) error {
	for _, c := range cells {
		if !slices.Contains(All, c.Defense) {
			return fmt.Errorf("defense matrix: unknown defense %q (known: %v)", c.Defense, All)
		}
		if err := c.Spec.Validate(); err != nil {
			return fmt.Errorf("defense matrix: %w", err)
		}
		if c.Defense == DefenseFilter || c.Defense == DefenseKDistance {
			if err := m.Checker.Validate(c.Spec); err != nil {
				return fmt.Errorf("defense matrix, defense %s: %w", c.Defense, err)
			}
		}
		if _, err := m.cellKey(c); err != nil {
			return fmt.Errorf("defense matrix, defense %s: %w", c.Defense, err)
		}
	}
	return nil
}

// cellFile is the file of a cell's cache entry.
const cellFile = "cell.json"

// cell returns one cell's outcome from the cache, or runs it and publishes it; progress is told first.
func (m Matrix) cell(c *cache.Cache, cell Cell, progress func(cached bool), run func(Cell, experiment.Options) (*Outcome, error),
	opts experiment.Options) (*Outcome, error) {
	key, err := m.cellKey(cell)
	if err != nil {
		return nil, err
	}
	dir, cached, err := c.Get(key, func(dir string) error {
		progress(false)
		o, err := run(cell, opts)
		if err != nil {
			return fmt.Errorf("defense matrix, attack %s %s→%s seed %d, defense %s: %w", cell.Spec.Attack.Kind,
				cell.Spec.Attack.Source(), cell.Spec.Attack.Target(), cell.Spec.Seed, cell.Defense, err)
		}
		data, err := json.MarshalIndent(o, "", "  ")
		if err != nil {
			return err
		}
		return atomicfile.WriteFile(filepath.Join(dir, cellFile), data)
	})
	if err != nil {
		return nil, err
	}
	if cached {
		progress(true)
	}
	return readOutcome(filepath.Join(dir, cellFile))
}

// readOutcome reads a cell's JSON: a regular file of at most experiment.MaxResultFile bytes holding every
// evaluation the matrix's tables and figures read.
func readOutcome(path string) (*Outcome, error) {
	data, err := atomicfile.ReadFile(path, experiment.MaxResultFile)
	if err != nil {
		return nil, err
	}
	var o Outcome
	if err := json.Unmarshal(data, &o); err != nil {
		return nil, fmt.Errorf("%s: malformed cell JSON: %w", path, err)
	}
	if o.Defended == nil || o.Poisoned == nil || o.Clean == nil {
		return nil, fmt.Errorf("%s: cell has no evaluation", path)
	}
	for _, e := range append([]*experiment.ModelEval{o.Defended, o.Poisoned, o.Clean}, o.PerEpoch...) {
		if e == nil {
			return nil, fmt.Errorf("%s: cell has no evaluation for an epoch", path)
		}
		if err := e.Check(); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return &o, nil
}

// runCell runs one defense against one attacked spec.
func (m Matrix) runCell(c Cell, opts experiment.Options) (*Outcome, error) {
	d, err := experiment.LoadData(c.Spec)
	if err != nil {
		return nil, err
	}
	pre, err := experiment.Pretrain(d, opts)
	if err != nil {
		return nil, err
	}
	cleanStage, err := experiment.Finetune(d, pre, false, opts)
	if err != nil {
		return nil, err
	}
	poisStage, err := experiment.Finetune(d, pre, true, opts)
	if err != nil {
		return nil, err
	}
	o := &Outcome{Cell: c}
	if o.Clean, err = experiment.Evaluate(d, cleanStage.Path, opts); err != nil {
		return nil, err
	}
	if o.Poisoned, err = experiment.Evaluate(d, poisStage.Path, opts); err != nil {
		return nil, err
	}
	start := time.Now()
	if err := m.defend(d, o, poisStage, opts); err != nil {
		return nil, err
	}
	if o.Seconds == 0 {
		o.Seconds = time.Since(start).Seconds()
	}
	return o, nil
}

// defend runs the cell's defense on the poisoned model and fills in the outcome's defended model and cost.
func (m Matrix) defend(d *experiment.Data, o *Outcome, poisStage *experiment.Stage, opts experiment.Options) error {
	switch o.Defense {
	case DefenseNone:
		o.Defended = o.Poisoned
	case DefenseFilter:
		f, err := Filter(d, m.Checker, m.Filter, opts)
		if err != nil {
			return err
		}
		o.Defended, o.Report, o.CheckerSeconds, o.Checker = f.Eval, f.Report, f.Checker.Seconds, f.CheckerModel
		o.Seconds = f.Model.Seconds
	case DefenseKDistance:
		k, err := KDistance(d, m.Checker, m.KDistance, opts)
		if err != nil {
			return err
		}
		o.Defended, o.Report, o.CheckerSeconds, o.Checker = k.Eval, k.Report, k.Checker.Seconds, k.CheckerModel
		o.Seconds = k.Seconds + k.Model.Seconds
	case DefenseCleanFinetune, DefenseCleanCLIP:
		var evals []*experiment.ModelEval
		var stages []*experiment.Stage
		var err error
		if o.Defense == DefenseCleanFinetune {
			evals, stages, err = CleanFinetune(d, poisStage, m.repairEpochs(), opts)
		} else {
			evals, stages, err = CleanCLIP(d, poisStage, m.repairEpochs(), m.CleanCLIP, opts)
		}
		if err != nil {
			return err
		}
		o.PerEpoch, o.Defended = evals, evals[len(evals)-1]
		for _, st := range stages {
			o.Seconds += st.Seconds
		}
	}
	return nil
}
