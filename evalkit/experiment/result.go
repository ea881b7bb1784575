package experiment

import (
	"encoding/json"
	"fmt"
	"os"
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

// ReadResult loads a result written by Result.WriteJSON.
func ReadResult(path string) (*Result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: malformed result JSON: %w", path, err)
	}
	if r.Clean == nil || r.Poisoned == nil || r.Clean.Attack == nil || r.Poisoned.Attack == nil {
		return nil, fmt.Errorf("%s: result has no evaluation", path)
	}
	return &r, nil
}

// WriteJSON writes the result as indented JSON, atomically.
func (r *Result) WriteJSON(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data)
}
