package attack

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// TestManifestMatchesPoisonedDataset: a poison manifest matches the poisoned dataset, survives a round trip
// through a file, and stops matching once the dataset is tampered with.
func TestManifestMatchesPoisonedDataset(t *testing.T) {
	in := toySet(30, 5)
	for _, mode := range []Mode{Inject, Repair} {
		t.Run(string(mode), func(t *testing.T) {
			out, m, err := SingleLabel{Source: "sneaker", Target: "boot", Rate: 0.05, Mode: mode, Seed: 3}.Apply(in)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "manifest.json")
			if err := m.WriteFile(path); err != nil {
				t.Fatal(err)
			}
			back, err := ReadManifest(path)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, m) {
				t.Fatalf("round trip changed the manifest:\n%+v\n%+v", back, m)
			}
			if err := back.Verify(out); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			entries, _ := os.ReadDir(filepath.Dir(path))
			if len(entries) != 1 {
				t.Errorf("WriteFile left %d files", len(entries))
			}

			poisoned := m.Pairs[0].Index
			clean := 0
			for out.Pairs[clean].Poisoned {
				clean++
			}
			otherBoot := -1
			for i, ex := range out.Images {
				if ex.Label == 3 && i != out.Pairs[poisoned].Image {
					otherBoot = i
					break
				}
			}
			tamper := []struct {
				name    string
				change  func(ps *dataset.PairSet)
				wantErr string
			}{
				{"clean input", nil, "poisoned pairs"},
				{"other B image", func(ps *dataset.PairSet) { ps.Pairs[poisoned].Image = otherBoot }, "is paired with image"},
				{"other caption", func(ps *dataset.PairSet) { ps.Pairs[poisoned].Caption += " x" }, "has caption"},
				{"unflagged poison", func(ps *dataset.PairSet) { ps.Pairs[poisoned].Poisoned = false }, "not marked Poisoned"},
				{"extra poison", func(ps *dataset.PairSet) { ps.Pairs[clean].Poisoned = true }, "poisoned pairs"},
				{"extra pair", func(ps *dataset.PairSet) { ps.Pairs = append(ps.Pairs, ps.Pairs[clean]) }, "pairs, manifest says"},
				{"pairs reordered", func(ps *dataset.PairSet) {
					q := m.Pairs[1].Index
					ps.Pairs[poisoned], ps.Pairs[q] = ps.Pairs[q], ps.Pairs[poisoned]
				}, "has caption"},
			}
			for _, tc := range tamper {
				ps := in
				if tc.change != nil {
					ps = out.Clone()
					tc.change(ps)
				}
				err := m.Verify(ps)
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("%s: Verify = %v, want an error containing %q", tc.name, err, tc.wantErr)
				}
			}
			if err := m.Verify(out); err != nil {
				t.Errorf("tampering with clones changed out: %v", err)
			}
			// A manifest whose goal names another target class does not match either.
			wrong := *back
			wrong.Goals = []Goal{{Source: "sneaker", Target: "tshirt", Pairs: m.Goals[0].Pairs}}
			if err := wrong.Verify(out); err == nil || !strings.Contains(err.Error(), "not of target class") {
				t.Errorf("wrong goal: Verify = %v", err)
			}
			wrong = *back
			wrong.TargetImageID = "toy/train/0003"
			if err := wrong.Verify(out); err == nil || !strings.Contains(err.Error(), "not the target image") {
				t.Errorf("wrong target image: Verify = %v", err)
			}
		})
	}
}

func TestManifestJSON(t *testing.T) {
	_, m, err := SingleLabel{Source: "tshirt", Target: "trouser", Count: 2, Seed: 9}.Apply(toySet(5, 2))
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	json.Unmarshal(data, &generic)
	for _, key := range []string{"version", "attack", "attack_id", "dataset", "goals", "mode", "seed", "requested_count",
		"rate", "total_pairs", "poisoned_pairs", "clean_pairs", "pairs"} {
		if _, ok := generic[key]; !ok {
			t.Errorf("manifest JSON lacks %q: %s", key, data)
		}
	}
	for _, key := range []string{"requested_rate", "target_image_id"} {
		if _, ok := generic[key]; ok {
			t.Errorf("manifest JSON has empty %q", key)
		}
	}
	pair := generic["pairs"].([]any)[0].(map[string]any)
	for _, key := range []string{"index", "goal", "source_pair", "caption", "caption_image_id", "caption_index",
		"original_image_id", "poisoned_image_id"} {
		if _, ok := pair[key]; !ok {
			t.Errorf("pair JSON lacks %q", key)
		}
	}
	if !strings.Contains(string(data), `"goals":[{"source":"tshirt","target":"trouser","pairs":2}]`) ||
		!strings.Contains(string(data), `"mode":"inject"`) {
		t.Errorf("unexpected JSON %s", data)
	}
}

func TestReadManifestErrors(t *testing.T) {
	_, m, err := SingleLabel{Source: "tshirt", Target: "trouser", Count: 2}.Apply(toySet(5, 2))
	if err != nil {
		t.Fatal(err)
	}
	good, _ := json.Marshal(m)
	dir := t.TempDir()
	tests := []struct {
		name, content, wantErr string
	}{
		{"not json", "{", "unexpected EOF"},
		{"unknown field", strings.Replace(string(good), `"seed"`, `"sead"`, 1), `unknown field "sead"`},
		{"other version", strings.Replace(string(good), `"version":1`, `"version":2`, 1), "version 2"},
		{"inconsistent counts", strings.Replace(string(good), `"poisoned_pairs":2`, `"poisoned_pairs":3`, 1), "inconsistent counts"},
	}
	for _, tc := range tests {
		path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".json")
		os.WriteFile(path, []byte(tc.content), 0o644)
		if _, err := ReadManifest(path); err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: ReadManifest = %v, want an error naming the file and containing %q", tc.name, err, tc.wantErr)
		}
	}
	if _, err := ReadManifest(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("ReadManifest of a missing file succeeded")
	}
	// WriteFile replaces an existing file and fails cleanly in a missing directory.
	path := filepath.Join(dir, "m.json")
	os.WriteFile(path, []byte("old"), 0o644)
	if err := m.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	if back, err := ReadManifest(path); err != nil || back.PoisonedPairs != 2 {
		t.Errorf("after overwrite: %v, %v", back, err)
	}
	if err := m.WriteFile(filepath.Join(dir, "no", "such", "m.json")); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}
}
