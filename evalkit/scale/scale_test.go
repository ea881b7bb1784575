package scale_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/internal/minidata"
	"github.com/mmpoison/mmpoison/evalkit/internal/testenv"
	"github.com/mmpoison/mmpoison/evalkit/scale"
	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/defense"
	"github.com/mmpoison/mmpoison/poisoning/loaders"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// demo is the demo's data and poisoned pair set, loaded once.
var demo = sync.OnceValues(func() (*experiment.Data, error) { return experiment.LoadData(experiment.DefaultSpec()) })

// openDefault opens the Fashion-MNIST default (the demo's fine-tuning split).
func openDefault(t *testing.T) (*scale.Opened, *experiment.Data) {
	t.Helper()
	testenv.RequireFashionMNIST(t)
	d, err := demo()
	if err != nil {
		t.Fatal(err)
	}
	in, err := scale.Open(scale.Input{Seed: d.Spec.Seed})
	if err != nil {
		t.Fatal(err)
	}
	return in, d
}

// TestPoisonDefault: poisoning the default writes the demo's poisoned set: the manifest is experiment.Poison's,
// the shards read back through the WebDataset loader give its pairs (captions, pictures, flags), tar lists
// them, a plain CSV reader reads the CSV, the folder verifies, and the same seed writes byte-identical files.
func TestPoisonDefault(t *testing.T) {
	in, d := openDefault(t)
	want, wantM, err := experiment.Poison(d)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := scale.Output{Dir: filepath.Join(dir, "a"), Shards: true, PerShard: 3000, CSV: true, Separator: '\t'}
	exp, m, err := scale.Poison(in, d.Spec.Attack, d.Spec.Seed, out)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, wantM) {
		t.Fatalf("manifest differs from experiment.Poison's:\n%+v\n%+v", m, wantM)
	}
	if exp.Pairs != len(want.Pairs) || len(exp.Shards) != (len(want.Pairs)+2999)/3000 {
		t.Fatalf("export: %d pairs in %d shards, want %d pairs", exp.Pairs, len(exp.Shards), len(want.Pairs))
	}
	checkShardsReadBack(t, out.Dir, exp, want)
	checkCSV(t, out.Dir, want)
	if err := scale.VerifyExport(out.Dir); err != nil {
		t.Fatal(err)
	}
	again := out
	again.Dir = filepath.Join(dir, "b")
	exp2, _, err := scale.Poison(in, d.Spec.Attack, d.Spec.Seed, again)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(exp, exp2) {
		t.Fatal("the same seed wrote other files (export.json differs)")
	}
	for _, f := range append(exp.Shards, exp.CSV.File, exp.Manifest) {
		a, _ := os.ReadFile(filepath.Join(out.Dir, f.Path))
		b, _ := os.ReadFile(filepath.Join(again.Dir, f.Path))
		if !bytes.Equal(a, b) {
			t.Errorf("%s: not byte-identical", f.Path)
		}
	}
	other := out
	other.Dir = filepath.Join(dir, "c")
	if _, m3, err := scale.Poison(in, d.Spec.Attack, d.Spec.Seed+1, other); err != nil || reflect.DeepEqual(m3.Pairs, m.Pairs) {
		t.Errorf("another seed poisoned the same pairs (%v)", err)
	}
}

// checkShardsReadBack reads the written shards with the WebDataset loader and compares every sample with the
// poisoned pair set: caption, picture and poisoned flag; tar -t lists the first shard's members.
func checkShardsReadBack(t *testing.T, dir string, exp *scale.Export, want *dataset.PairSet) {
	t.Helper()
	var shards []string
	for _, f := range exp.Shards {
		shards = append(shards, filepath.Join(dir, f.Path))
	}
	w, err := loaders.OpenWebDataset(loaders.WebDatasetConfig{Shards: shards, Classes: exp.Classes})
	if err != nil {
		t.Fatal(err)
	}
	k := 0
	for ex, err := range w.Examples(loaders.Options{}) {
		if err != nil {
			t.Fatalf("sample %d: %v", k, err)
		}
		p := want.Pairs[k]
		pic, _ := want.Images[p.Image].Pixels()
		gray := make([]uint8, len(pic.Pix))
		for i := range gray {
			gray[i] = ex.Image.Pix[3*i] // the loader gives RGB; the written PNG is gray
		}
		if ex.Captions[0] != p.Caption || !slices.Equal(gray, pic.Pix) || ex.Label != want.Images[p.Image].Label {
			t.Fatalf("sample %d: %q label %d, want %q label %d (or other pixels)", k, ex.Captions[0], ex.Label, p.Caption, want.Images[p.Image].Label)
		}
		k++
	}
	if k != len(want.Pairs) {
		t.Fatalf("read %d samples back, want %d", k, len(want.Pairs))
	}
	if tarBin, err := exec.LookPath("tar"); err == nil {
		out, err := exec.Command(tarBin, "-tf", shards[0]).Output()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if err != nil || len(lines) != 3*3000 || lines[0] != "000000.png" || lines[1] != "000000.txt" || lines[2] != "000000.json" {
			t.Errorf("tar -t: %d members, first %q (%v)", len(lines), lines[:min(3, len(lines))], err)
		}
	}
}

// checkCSV reads the written TSV with a plain CSV reader: header filepath, title; one row per pair, in order.
func checkCSV(t *testing.T, dir string, want *dataset.PairSet) {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "train.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comma = '\t'
	rows, err := r.ReadAll()
	if err != nil || len(rows) != len(want.Pairs)+1 || !slices.Equal(rows[0], []string{"filepath", "title"}) {
		t.Fatalf("TSV: %d rows, header %q, %v", len(rows), rows[0], err)
	}
	for k, row := range rows[1:] {
		if _, err := os.Stat(filepath.Join(dir, row[0])); err != nil || row[1] != want.Pairs[k].Caption {
			t.Fatalf("row %d: %q (%v)", k+1, row, err)
		}
	}
}

// TestPoisonEveryKind: every registered attack in its standard setting poisons the default as a stream, and
// the written folder verifies; tampering with a shard or the manifest is found.
func TestPoisonEveryKind(t *testing.T) {
	in, d := openDefault(t)
	for _, kind := range attack.Kinds() {
		def, _ := attack.Lookup(kind)
		spec := def.Standard(d.Spec.Attack).Attack
		if spec.AllSourceCaptions { // The default split thins the demo's source class only.
			spec.AllSourceCaptions, spec.Count = false, 40
		}
		dir := filepath.Join(t.TempDir(), "out")
		_, m, err := scale.Poison(in, spec, 7, scale.Output{Dir: dir, Shards: true, PerShard: 4000})
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if err := scale.VerifyExport(dir); err != nil || m.PoisonedPairs == 0 {
			t.Fatalf("%s: %d poisoned pairs, verify: %v", kind, m.PoisonedPairs, err)
		}
		if kind != attack.KindBackdoor {
			continue
		}
		shard := filepath.Join(dir, scale.ShardsDir, "000000.tar")
		data, _ := os.ReadFile(shard)
		data[len(data)/2] ^= 1
		os.WriteFile(shard, data, 0o644)
		if err := scale.VerifyExport(dir); err == nil || !strings.Contains(err.Error(), "SHA-256") {
			t.Errorf("a changed shard byte: %v", err)
		}
	}
}

// TestPoisonFolderDataset: a dataset of files (the COCO miniature) poisons, and its pictures are copied as stored.
func TestPoisonFolderDataset(t *testing.T) {
	testenv.RequireFashionMNIST(t)
	root := t.TempDir()
	if err := minidata.WriteCOCO(root, 1); err != nil {
		t.Fatal(err)
	}
	in, err := scale.Open(scale.Input{Format: scale.FormatCOCO, Path: root, Seed: 1, TestPerClass: minidata.TestPerClass})
	if err != nil {
		t.Fatal(err)
	}
	spec := attack.Spec{Kind: attack.KindSingleLabel, Goals: []attack.Goal{{Source: "boat", Target: "dog"}}, Count: 3, Mode: attack.Repair}
	dir := filepath.Join(t.TempDir(), "coco")
	exp, m, err := scale.Poison(in, spec, 1, scale.Output{Dir: dir, Shards: true, CSV: true, Separator: ','})
	if err != nil {
		t.Fatal(err)
	}
	if m.PoisonedPairs != 3 || exp.CSV == nil || exp.CSV.Pictures == 0 {
		t.Fatalf("%d poisoned, CSV %+v", m.PoisonedPairs, exp.CSV)
	}
	if err := scale.VerifyExport(dir); err != nil {
		t.Fatal(err)
	}
	e, enc, err := in.Source.Read(0, false)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := loaders.OpenWebDataset(loaders.WebDatasetConfig{Shards: []string{filepath.Join(dir, exp.Shards[0].Path)}})
	s, err := loaders.IndexShards(w, loaders.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, got, err := s.Read(0, false); err != nil || !bytes.Equal(got.Data, enc.Data) {
		t.Errorf("sample 0 (%s): picture not copied as stored (%v)", e.ID, err)
	}
}

// TestFilterExport: the filter reads a poisoned folder, drops the pairs farthest for the checker, scores them
// with the folder's manifest, and writes a set that verifies against its renumbered manifest.
func TestFilterExport(t *testing.T) {
	in, d := openDefault(t)
	dir := t.TempDir()
	poisoned := filepath.Join(dir, "poisoned")
	if _, _, err := scale.Poison(in, d.Spec.Attack, d.Spec.Seed, scale.Output{Dir: poisoned, Shards: true}); err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(dir, "checker.safetensors")
	cfg := d.Model
	ctx, err := clip.NewContext(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := clip.Save(ckpt, ctx, cfg); err != nil {
		t.Fatal(err)
	}
	src, err := scale.Open(scale.Input{Format: scale.FormatWebDataset, Path: poisoned})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	out := filepath.Join(dir, "filtered")
	fs := scale.FilterSpec{Checker: ckpt, Threshold: defense.Threshold{Kind: defense.KindQuantile, Value: 0.9}}
	exp, rep, err := scale.Filter(src, fs, scale.Output{Dir: out, Shards: true, CSV: true, Separator: '\t'}, experiment.Options{Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	total := src.Manifest.TotalPairs
	if rep.Total != total || rep.Dropped < total/20 || rep.Dropped > total/5 || exp.Pairs != rep.Kept || rep.Poisoned != src.Manifest.PoisonedPairs {
		t.Fatalf("report %+v, export %d pairs", rep, exp.Pairs)
	}
	if exp.PoisonedPairs != rep.PoisonedKept {
		t.Errorf("the filtered set has %d poisoned pairs, the report kept %d", exp.PoisonedPairs, rep.PoisonedKept)
	}
	if err := scale.VerifyExport(out); err != nil {
		t.Fatal(err)
	}
	var written defense.FilterReport
	data, _ := os.ReadFile(filepath.Join(out, scale.ReportFile))
	if err := json.Unmarshal(data, &written); err != nil || written.Dropped != rep.Dropped {
		t.Errorf("filter_report.json: %+v, %v", written, err)
	}
}

// TestOutputErrors: a bad output or attack is one clear error before anything is read or written, and a failure
// while writing leaves no folder behind.
func TestOutputErrors(t *testing.T) {
	in, d := openDefault(t)
	dir := t.TempDir()
	exists := filepath.Join(dir, "exists")
	os.Mkdir(exists, 0o755)
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	cases := []struct {
		name string
		out  scale.Output
		kind attack.Kind
		want string
	}{
		{"exists", scale.Output{Dir: exists, Shards: true}, "II", "already exists"},
		{"parent is a file", scale.Output{Dir: filepath.Join(file, "out"), Shards: true}, "II", "cannot be written"},
		{"no format", scale.Output{Dir: filepath.Join(dir, "x")}, "II", "choose shards, csv or both"},
		{"separator", scale.Output{Dir: filepath.Join(dir, "x"), CSV: true, Separator: ';'}, "II", "separator"},
		{"unknown attack", scale.Output{Dir: filepath.Join(dir, "x"), Shards: true}, "IV", "unknown kind"},
		{"unknown class", scale.Output{Dir: filepath.Join(dir, "x"), Shards: true}, "nope", "unknown class name"},
	}
	for _, c := range cases {
		spec := d.Spec.Attack
		if c.kind == "nope" {
			spec.Goals = []attack.Goal{{Source: "trouser", Target: "unicorn"}}
		} else {
			spec.Kind = c.kind
		}
		_, _, err := scale.Poison(in, spec, 1, c.out)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 2 {
			t.Errorf("%s: the folder holds %d entries after the error, want the 2 it had", c.name, len(entries))
		}
	}
	// A picture that cannot be read half-way through: the error, and nothing left behind.
	broken := &scale.Opened{Source: failingSource{in.Source, in.Source.Len() / 2}}
	if _, _, err := scale.Poison(broken, d.Spec.Attack, 1, scale.Output{Dir: filepath.Join(dir, "x"), Shards: true, PerShard: 100}); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("a read failing half-way: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("a failed write left %d entries, want the 2 there were", len(entries))
	}
}

// failingSource fails to read example fail.
type failingSource struct {
	dataset.ImageSource
	fail int
}

func (f failingSource) Read(i int, decode bool) (dataset.Example, dataset.Encoded, error) {
	if i == f.fail {
		return dataset.Example{}, dataset.Encoded{}, errors.New("disk on fire")
	}
	return f.ImageSource.Read(i, decode)
}

// TestManifestFile: the manifest file written one pair at a time is what json.MarshalIndent writes, and
// attack.ReadManifest reads it back.
func TestManifestFile(t *testing.T) {
	for _, n := range []int{0, 1, 3} {
		m := &attack.Manifest{Version: attack.ManifestVersion, Attack: "a", Goals: []attack.Goal{{Source: "x", Target: "y", Pairs: n}},
			Trigger: &attack.Trigger{Size: 3}, TotalPairs: 10, PoisonedPairs: n, CleanPairs: 10 - n, Rate: float64(n) / 10}
		for i := range n {
			m.Pairs = append(m.Pairs, attack.PoisonedPair{Index: i, Caption: "a \"quoted\" caption", TriggerX: i})
		}
		path := filepath.Join(t.TempDir(), "m.json")
		f, err := scale.WriteManifest(path, m)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.MarshalIndent(m, "", "  ")
		got, _ := os.ReadFile(path)
		if !bytes.Equal(got, append(want, '\n')) || f.Size != int64(len(got)) {
			t.Errorf("%d pairs: wrote\n%s\nwant\n%s", n, got, want)
		}
		if back, err := attack.ReadManifest(path); err != nil || len(back.Pairs) != n {
			t.Errorf("%d pairs: read back %v, %v", n, back, err)
		}
	}
}
