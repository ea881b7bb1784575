package experiment

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/mmpoison/mmpoison/models/train"
	"github.com/mmpoison/mmpoison/poisoning/fuzzcheck"
)

// FuzzStageFile reads arbitrary bytes as a stage's JSON (stage.json of a cached model, and of a saved training
// state). Properties: no panic; at most 64 times the input's size allocated; an accepted stage re-encodes to one
// that reads back the same.
func FuzzStageFile(f *testing.F) {
	st := &Stage{History: []train.EpochStats{{Epoch: 1, MeanLoss: 2.5, LogitScale: 14.2, Seconds: 3}}, Seconds: 4,
		Epochs: []*ModelEval{nil}}
	data, err := json.Marshal(st)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(`{"history": [{"epoch": -1, "mean_loss": 1e308}], "epochs": [{"attack": {"hits": [{"k": 10}]}}]}`))
	dir := f.TempDir()
	path, again := filepath.Join(dir, stageFile), filepath.Join(dir, "again.json")
	f.Fuzz(func(t *testing.T, in []byte) {
		if err := os.WriteFile(path, in, 0o644); err != nil {
			t.Fatal(err)
		}
		var got Stage
		var err error
		fuzzcheck.Within(t, "readStageFile", 64*uint64(len(in)), func() { err = readStageFile(path, &got) })
		if err != nil {
			return
		}
		out, err := json.Marshal(&got)
		if err != nil {
			t.Fatalf("an accepted stage does not encode: %v", err)
		}
		if err := os.WriteFile(again, out, 0o644); err != nil {
			t.Fatal(err)
		}
		var back Stage
		if err := readStageFile(again, &back); err != nil {
			t.Fatalf("an accepted stage, re-encoded, is refused: %v", err)
		}
		if redo, _ := json.Marshal(&back); string(redo) != string(out) {
			t.Fatal("an accepted stage changes when re-encoded and read back")
		}
	})
}
