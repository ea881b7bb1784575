package experiment

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mmpoison/mmpoison/poisoning/atomicfile"
	"github.com/mmpoison/mmpoison/poisoning/attack"
)

// Result is everything one experiment produced. It re-loads from JSON (ReadResult) and re-renders the same
// tables and figures.
type Result struct {
	Spec    Spec   `json:"spec"`
	Backend string `json:"backend"`
	// Data describes the real dataset and loaded checkpoint (nil for the Fashion-MNIST default).
	Data *DataSummary `json:"data,omitempty"`
	// Poison summarises the poisoned training set; the full manifest is written beside the result.
	Poison PoisonSummary `json:"poison"`
	// Clean is the model fine-tuned on the clean train split (the paper's clean baseline); Poisoned the one
	// fine-tuned on the poisoned split; Pretrained the pre-trained model both start from (epoch 0 of the
	// per-epoch evaluations; nil in results written before it was recorded).
	Clean      *ModelEval `json:"clean"`
	Poisoned   *ModelEval `json:"poisoned"`
	Pretrained *ModelEval `json:"pretrained,omitempty"`
	// EmbeddingShift is the cosine distance between the clean and the poisoned model's embeddings of the same
	// test inputs, per tower (the paper's measure of where the poison lives).
	EmbeddingShift *EmbeddingShift `json:"embedding_shift,omitempty"`
	// Training histories and timings in seconds.
	Pretrain      *Stage             `json:"pretrain"`
	FinetuneClean *Stage             `json:"finetune_clean"`
	FinetunePois  *Stage             `json:"finetune_poisoned"`
	Timings       map[string]float64 `json:"timings"`
	Finished      time.Time          `json:"finished"`
}

// PoisonSummary describes the poisoned training set.
type PoisonSummary struct {
	// Attack names the attack as its manifest does, e.g. "II (single-target-label)"; Source and Target are
	// its first goal.
	Attack        string      `json:"attack"`
	Source        string      `json:"source"`
	Target        string      `json:"target"`
	Mode          attack.Mode `json:"mode"`
	TotalPairs    int         `json:"total_pairs"`
	PoisonedPairs int         `json:"poisoned_pairs"`
	// Rate is φ = poisoned pairs / all pairs of the training set.
	Rate float64 `json:"rate"`
	// TargetImageID is the target image x* of an attack evaluated on attack.TargetImage.
	TargetImageID string `json:"target_image_id,omitempty"`
}

// Run executes the whole experiment: load data and check that the attack fits it (Data.Check), pre-train (or
// load) the clean model, fine-tune it on the clean and on the poisoned train split, and evaluate both.
func Run(spec Spec, opts Options) (*Result, error) {
	timings := map[string]float64{}
	tick := time.Now()
	lap := func(name string) {
		timings[name] = time.Since(tick).Seconds()
		tick = time.Now()
	}
	start := time.Now()
	d, err := LoadData(spec)
	if err != nil {
		return nil, err
	}
	if err := d.Check(); err != nil {
		return nil, err
	}
	lap("load_data")
	b, err := opts.backend(spec.Devices)
	if err != nil {
		return nil, err
	}
	res := &Result{Spec: d.Spec, Backend: b.Name(), Timings: timings, Data: d.summary()}
	if res.Pretrain, err = Pretrain(d, opts); err != nil {
		return nil, err
	}
	lap("pretrain")
	if res.FinetuneClean, err = Finetune(d, res.Pretrain, false, opts); err != nil {
		return nil, err
	}
	lap("finetune_clean")
	if res.FinetunePois, err = Finetune(d, res.Pretrain, true, opts); err != nil {
		return nil, err
	}
	lap("finetune_poisoned")
	m := res.FinetunePois.Manifest
	res.Poison = PoisonSummary{Attack: m.AttackID + " (" + m.Attack + ")", Source: d.Spec.Attack.Source(), Target: d.Spec.Attack.Target(),
		Mode: m.Mode, TotalPairs: m.TotalPairs, PoisonedPairs: m.PoisonedPairs, Rate: m.Rate, TargetImageID: m.TargetImageID}
	var cleanEmb, poisEmb *testEmbeddings
	if res.Clean, cleanEmb, err = evaluatePath(d, res.FinetuneClean.Path, opts); err != nil {
		return nil, err
	}
	if res.Poisoned, poisEmb, err = evaluatePath(d, res.FinetunePois.Path, opts); err != nil {
		return nil, err
	}
	if res.EmbeddingShift, err = embeddingShift(d, cleanEmb, poisEmb); err != nil {
		return nil, err
	}
	if res.Pretrained, err = evaluatePretrained(d, res.Pretrain, opts); err != nil {
		return nil, err
	}
	lap("evaluate")
	timings["total"] = time.Since(start).Seconds()
	res.Finished = time.Now().UTC()
	return res, nil
}

// MaxResultFile bounds the size of a result JSON ReadResult reads: 256 MiB.
const MaxResultFile = 256 << 20

// ReadResult loads a result written by Result.WriteJSON: a regular file of at most MaxResultFile bytes, holding
// what the tables and figures read (see Result.Check).
func ReadResult(path string) (*Result, error) {
	data, err := atomicfile.ReadFile(path, MaxResultFile)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: malformed result JSON: %w", path, err)
	}
	if err := r.Check(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// Check reports whether r holds what its tables and figures read: both models' evaluations, complete (see
// ModelEval.Check), with as many goals in each.
func (r *Result) Check() error {
	if r.Clean == nil || r.Poisoned == nil {
		return errors.New("result has no evaluation")
	}
	if len(r.Clean.Goals) != len(r.Poisoned.Goals) {
		return fmt.Errorf("result has %d goals for the clean model, %d for the poisoned one", len(r.Clean.Goals),
			len(r.Poisoned.Goals))
	}
	if err := r.Clean.Check(); err != nil {
		return fmt.Errorf("clean model: %w", err)
	}
	if err := r.Poisoned.Check(); err != nil {
		return fmt.Errorf("poisoned model: %w", err)
	}
	return nil
}

// Check reports whether e, read back from JSON, holds every metric Evaluate computes: the attack metrics (every
// goal's), the utility, and complete backdoor metrics where there are any.
func (e *ModelEval) Check() error {
	if e.Attack == nil || e.RandomQueries == nil || e.Utility == nil || e.UtilityOthers == nil {
		return errors.New("evaluation without its attack or utility metrics")
	}
	for i, g := range e.Goals {
		if g.Attack == nil || g.RandomQueries == nil {
			return fmt.Errorf("evaluation without the metrics of goal %d", i+1)
		}
	}
	if b := e.Backdoor; b != nil && (b.ZeroShot == nil || b.Retrieval == nil || b.Retrieval.Triggered == nil ||
		b.Retrieval.Clean == nil) {
		return errors.New("evaluation with incomplete backdoor metrics")
	}
	return nil
}

// WriteJSON writes the result as indented JSON, atomically.
func (r *Result) WriteJSON(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data)
}
