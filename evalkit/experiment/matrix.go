package experiment

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

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

// AllDefenses lists every defense of the matrix, the undefended model first.
var AllDefenses = []string{DefenseNone, DefenseFilter, DefenseCleanFinetune, DefenseKDistance, DefenseCleanCLIP}

// DefenseMatrix runs every defense against every attack over seeds: one cell per (attack, seed, defense). Each
// finished cell is kept in Dir under a hash of what it depends on, so an interrupted matrix resumes without
// recomputing finished cells (and every trained model is cached as usual).
type DefenseMatrix struct {
	// Attacks are the attacked specs (each needs HeldOutSize > 0 for the fine-tuning defenses).
	Attacks []Spec `json:"attacks"`
	// Seeds repeat every attack (each spec's Seed is replaced).
	Seeds []int64 `json:"seeds"`
	// Defenses to run (default AllDefenses).
	Defenses []string `json:"defenses"`
	// Filter and KDistance configure the data-side defenses, their checker included (CheckerSeed,
	// CheckerPreset, CheckerWeights, CheckerTokenizer); CleanCLIP the CleanCLIP objective.
	Filter    FilterSpec    `json:"filter"`
	KDistance KDistanceSpec `json:"kdistance"`
	CleanCLIP CleanCLIPSpec `json:"cleanclip"`
	// RepairEpochs is the number of epochs of the post-training defenses (default 2).
	RepairEpochs int `json:"repair_epochs"`
	// Dir keeps one JSON file per finished cell.
	Dir string `json:"-"`
	// Progress, when set, is told about each cell before it runs (cached: loaded from Dir).
	Progress func(i, n int, c MatrixCell, cached bool) `json:"-"`
	// run computes one cell (runCell; tests replace it).
	run func(MatrixCell, Options) (*DefenseOutcome, error)
}

// MatrixCell identifies one cell of the matrix.
type MatrixCell struct {
	Spec    Spec   `json:"spec"`
	Defense string `json:"defense"`
}

// DefenseOutcome is one cell's result: the defended model's metrics beside the undefended and the clean
// baseline, and what the defense cost.
type DefenseOutcome struct {
	MatrixCell
	// Defended is the model after the defense (for DefenseNone: the poisoned model); Poisoned the undefended
	// poisoned model and Clean the clean baseline, for reference.
	Defended *ModelEval `json:"defended"`
	Poisoned *ModelEval `json:"poisoned"`
	Clean    *ModelEval `json:"clean"`
	// PerEpoch holds the evaluations after each epoch of a post-training defense.
	PerEpoch []*ModelEval `json:"per_epoch,omitempty"`
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
func (m DefenseMatrix) Cells() []MatrixCell {
	defs := m.Defenses
	if len(defs) == 0 {
		defs = AllDefenses
	}
	var out []MatrixCell
	for _, a := range m.Attacks {
		seeds := m.Seeds
		if len(seeds) == 0 {
			seeds = []int64{a.Seed}
		}
		for _, s := range WithSeeds(a, seeds...) {
			for _, d := range defs {
				out = append(out, MatrixCell{Spec: s, Defense: d})
			}
		}
	}
	return out
}

func (m DefenseMatrix) repairEpochs() int {
	if m.RepairEpochs < 1 {
		return 2
	}
	return m.RepairEpochs
}

// cellPath is where a finished cell is kept: its hash covers the spec, the defense and that defense's settings.
func (m DefenseMatrix) cellPath(c MatrixCell) string {
	var settings any
	switch c.Defense {
	case DefenseFilter:
		settings = withCheckerFiles(m.Filter, m.Filter.checker())
	case DefenseKDistance:
		settings = withCheckerFiles(m.KDistance, m.KDistance.checker())
	case DefenseCleanCLIP:
		settings = struct {
			CleanCLIP CleanCLIPSpec
			Epochs    int
		}{m.CleanCLIP, m.repairEpochs()}
	case DefenseCleanFinetune:
		settings = m.repairEpochs()
	}
	return filepath.Join(m.Dir, fmt.Sprintf("cell-%s-%s.json", c.Defense, hash(struct {
		Cell     MatrixCell
		Settings any
	}{c, settings})))
}

// Run computes every cell not already in Dir and returns all outcomes in Cells order. It stops at the first
// error; finished cells stay in Dir.
func (m DefenseMatrix) Run(opts Options) ([]*DefenseOutcome, error) {
	if m.Dir == "" {
		return nil, errors.New("defense matrix: no Dir to keep finished cells in")
	}
	if err := os.MkdirAll(m.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("defense matrix folder: %w", err)
	}
	cells := m.Cells()
	for _, c := range cells {
		if !isDefense(c.Defense) {
			return nil, fmt.Errorf("defense matrix: unknown defense %q (known: %v)", c.Defense, AllDefenses)
		}
		if err := c.Spec.Validate(); err != nil {
			return nil, fmt.Errorf("defense matrix: %w", err)
		}
		var err error
		switch c.Defense {
		case DefenseFilter:
			err = m.Filter.checker().validate(c.Spec)
		case DefenseKDistance:
			err = m.KDistance.checker().validate(c.Spec)
		}
		if err != nil {
			return nil, fmt.Errorf("defense matrix, defense %s: %w", c.Defense, err)
		}
	}
	var out []*DefenseOutcome
	for i, c := range cells {
		path := m.cellPath(c)
		o, err := readOutcome(path)
		cached := err == nil
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return out, fmt.Errorf("defense matrix: unreadable cell %s (remove it to recompute): %w", path, err)
		}
		if m.Progress != nil {
			m.Progress(i, len(cells), c, cached)
		}
		if !cached {
			run := m.run
			if run == nil {
				run = m.runCell
			}
			if o, err = run(c, opts); err != nil {
				return out, fmt.Errorf("defense matrix, attack %s %s→%s seed %d, defense %s: %w", c.Spec.AttackKind(),
					c.Spec.Source, c.Spec.Target, c.Spec.Seed, c.Defense, err)
			}
			data, err := json.MarshalIndent(o, "", "  ")
			if err != nil {
				return out, err
			}
			if err := atomicfile.WriteFile(path, data); err != nil {
				return out, err
			}
		}
		out = append(out, o)
	}
	return out, nil
}

func isDefense(name string) bool {
	for _, d := range AllDefenses {
		if d == name {
			return true
		}
	}
	return false
}

func readOutcome(path string) (*DefenseOutcome, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var o DefenseOutcome
	if err := json.Unmarshal(data, &o); err != nil {
		return nil, fmt.Errorf("%s: malformed cell JSON: %w", path, err)
	}
	if o.Defended == nil || o.Poisoned == nil || o.Clean == nil {
		return nil, fmt.Errorf("%s: cell has no evaluation", path)
	}
	return &o, nil
}

// runCell runs one defense against one attacked spec.
func (m DefenseMatrix) runCell(c MatrixCell, opts Options) (*DefenseOutcome, error) {
	d, err := LoadData(c.Spec)
	if err != nil {
		return nil, err
	}
	pre, err := Pretrain(d, opts)
	if err != nil {
		return nil, err
	}
	cleanStage, err := Finetune(d, pre, false, opts)
	if err != nil {
		return nil, err
	}
	poisStage, err := Finetune(d, pre, true, opts)
	if err != nil {
		return nil, err
	}
	o := &DefenseOutcome{MatrixCell: c}
	if o.Clean, err = Evaluate(d, cleanStage.Path, opts); err != nil {
		return nil, err
	}
	if o.Poisoned, err = Evaluate(d, poisStage.Path, opts); err != nil {
		return nil, err
	}
	start := time.Now()
	switch c.Defense {
	case DefenseNone:
		o.Defended = o.Poisoned
	case DefenseFilter:
		f, err := Filter(d, m.Filter, opts)
		if err != nil {
			return nil, err
		}
		o.Defended, o.Report, o.CheckerSeconds, o.Checker = f.Eval, f.Report, f.Checker.Seconds, f.CheckerModel
		o.Seconds = f.Model.Seconds
	case DefenseKDistance:
		k, err := KDistanceFilter(d, m.KDistance, opts)
		if err != nil {
			return nil, err
		}
		o.Defended, o.Report, o.CheckerSeconds, o.Checker = k.Eval, k.Report, k.Checker.Seconds, k.CheckerModel
		o.Seconds = k.Seconds + k.Model.Seconds
	case DefenseCleanFinetune, DefenseCleanCLIP:
		var evals []*ModelEval
		var stages []*Stage
		if c.Defense == DefenseCleanFinetune {
			evals, stages, err = CleanFinetune(d, poisStage, m.repairEpochs(), opts)
		} else {
			evals, stages, err = CleanCLIP(d, poisStage, m.repairEpochs(), m.CleanCLIP, opts)
		}
		if err != nil {
			return nil, err
		}
		o.PerEpoch, o.Defended = evals, evals[len(evals)-1]
		for _, st := range stages {
			o.Seconds += st.Seconds
		}
	}
	if o.Seconds == 0 {
		o.Seconds = time.Since(start).Seconds()
	}
	return o, nil
}

// BackdoorSpec turns base into the backdoor that takes hold on the embedded default: a 7×7 checkerboard (one
// whole patch of the tiny ViT) in the bottom-right corner → bag, inject mode, φ = 5%, five fine-tuning epochs.
// With a 4×4 patch, φ = 1% and two epochs it barely takes hold (4.9% of triggered images to bag vs 3.6% clean).
func BackdoorSpec(base Spec) Spec {
	s := base
	s.Attack, s.Source, s.Target, s.Mode, s.Rate, s.FinetuneEpochs = AttackBackdoor, "", "bag", attack.Inject, 0.05, 5
	s.Trigger = attack.Trigger{Size: 7, Position: attack.BottomRight, Pattern: attack.Checkerboard}
	return s
}

// MatrixAttacks returns base attacked each named way, for a DefenseMatrix: "II" (base's goal), "I" (one target
// image), "III" (base's goal plus sandal → shirt, every source caption re-paired) and "backdoor" (BackdoorSpec).
func MatrixAttacks(base Spec, kinds ...string) ([]Spec, error) {
	var out []Spec
	for _, k := range kinds {
		s := base
		switch k {
		case "I", "II":
			s.Attack = k
		case "III":
			s.Attack, s.AllSourceCaptions = "III", true
			s.ExtraGoals = []attack.Goal{{Source: "sandal", Target: "shirt"}}
		case AttackBackdoor:
			s = BackdoorSpec(base)
		default:
			return nil, fmt.Errorf("unknown attack %q: use II, I, III or %s", k, AttackBackdoor)
		}
		out = append(out, s)
	}
	return out, nil
}
