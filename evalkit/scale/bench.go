package scale

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/mmpoison/mmpoison/evalkit/bench"
	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/train"
	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/defense"
	"github.com/mmpoison/mmpoison/poisoning/fashionmnist"
	"github.com/mmpoison/mmpoison/poisoning/writers"
)

// BenchSpec configures Bench.
type BenchSpec struct {
	// Pairs is the size of the generated WebDataset.
	Pairs int
	// Dir is where the benchmark's temporary folder is made ("": the system's); Keep leaves it there.
	Dir  string
	Keep bool
	// PerShard is the samples per shard (0: DefaultPerShard).
	PerShard int
	// Preset, Batch and LR are the training stage's model and recipe (one epoch); Seed drives every draw.
	Preset string
	Batch  int
	LR     float64
	Seed   int64
	// Attack is the poisoning stage's attack (its classes are Fashion-MNIST's); Threshold the filter's γ.
	Attack    attack.Spec
	Threshold defense.Threshold
	// Stages are the stages to run after "generate", in order, among "poison", "train" and "filter" (nil: all).
	// Without "train" the filter's checker is a model fresh from its seeded initialisation; "train" and
	// "filter" need "poison".
	Stages []string
	// Log receives progress lines (nil: none).
	Log io.Writer
}

// BenchStages are the stages Bench runs after generating its data.
var BenchStages = []string{"poison", "train", "filter"}

// StageResult is what one stage of Bench measured.
type StageResult struct {
	Stage          string  `json:"stage"`
	Pairs          int     `json:"pairs"`
	Seconds        float64 `json:"seconds"`
	PairsPerSecond float64 `json:"pairs_per_s"`
	// PeakRSSMiB is the process's peak resident memory during the stage (the peak is reset before it).
	PeakRSSMiB float64 `json:"peak_rss_mib"`
}

// Bench measures the streamed stages at scale on a generated WebDataset of spec.Pairs pairs in a temporary
// folder: "generate" writes it (Fashion-MNIST's 60,000 training pictures as 28×28 PNGs, cycled, each sample with
// one of its image's generated captions and its label); "poison" applies the attack and writes the poisoned
// shards (Poison); "train" trains the preset for one epoch on them from scratch (Train); "filter" embeds every
// pair with the model just trained as the checker and writes the pairs it keeps (Filter). Each stage's peak
// resident memory is measured from a reset peak, so the stages' numbers are their own.
func Bench(spec BenchSpec, opts experiment.Options) ([]StageResult, error) {
	if err := CheckStages(spec.Stages); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(spec.Dir, "mmpoison-scale-")
	if err != nil {
		return nil, err
	}
	if !spec.Keep {
		defer os.RemoveAll(tmp)
	}
	logf := func(format string, args ...any) {
		if spec.Log != nil {
			fmt.Fprintf(spec.Log, format+"\n", args...)
		}
	}
	data, poisoned, filtered := filepath.Join(tmp, "data"), filepath.Join(tmp, "poisoned"), filepath.Join(tmp, "filtered")
	checker := filepath.Join(tmp, "checker.safetensors")
	var results []StageResult
	stage := func(name string, run func() (int, error)) error {
		runtime.GC()
		debug.FreeOSMemory()
		resetPeakRSS()
		start := time.Now()
		n, err := run()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		r := StageResult{Stage: name, Pairs: n, Seconds: time.Since(start).Seconds(), PeakRSSMiB: bench.PeakRSSMiB()}
		r.PairsPerSecond = float64(n) / r.Seconds
		logf("%s: %d pairs in %.1f s (%.0f pairs/s), peak RSS %.0f MiB", name, n, r.Seconds, r.PairsPerSecond, r.PeakRSSMiB)
		results = append(results, r)
		return nil
	}
	var shards []string
	if err := stage("generate", func() (int, error) {
		shards, err = Generate(data, spec.Pairs, spec.PerShard, spec.Seed)
		return spec.Pairs, err
	}); err != nil {
		return results, err
	}
	stages := spec.Stages
	if stages == nil {
		stages = BenchStages
	}
	run := map[string]func() (int, error){
		"poison": func() (int, error) {
			in, err := Open(Input{Format: FormatWebDataset, Path: strings.Join(shards, ","), Classes: fashionmnist.ShortNames()})
			if err != nil {
				return 0, err
			}
			defer in.Close()
			exp, _, err := Poison(in, spec.Attack, spec.Seed, Output{Dir: poisoned, Shards: true, PerShard: spec.PerShard})
			if err != nil {
				return 0, err
			}
			return exp.Pairs, nil
		},
		"train": func() (int, error) { return benchTrain(spec, poisoned, checker, opts, logf) },
		"filter": func() (int, error) {
			if !slices.Contains(stages, "train") {
				if err := freshChecker(spec, checker); err != nil {
					return 0, err
				}
			}
			return benchFilter(spec, poisoned, filtered, checker, opts, logf)
		},
	}
	for _, name := range stages {
		if err := stage(name, run[name]); err != nil {
			return results, err
		}
	}
	return results, nil
}

// CheckStages checks a list of Bench's stages (nil: all): poison, then train and/or filter, in that order.
func CheckStages(stages []string) error {
	if stages == nil {
		return nil
	}
	last := -1
	for _, s := range stages {
		i := slices.Index(BenchStages, s)
		if i <= last {
			last = len(BenchStages)
			break
		}
		last = i
	}
	if len(stages) == 0 || stages[0] != "poison" || last == len(BenchStages) {
		return fmt.Errorf("bench stages %q: want poison, then train and/or filter, in that order", stages)
	}
	return nil
}

// benchFilter filters the poisoned shards with the checker.
func benchFilter(spec BenchSpec, poisoned, filtered, checker string, opts experiment.Options, logf func(string, ...any)) (int, error) {
	in, err := Open(Input{Format: FormatWebDataset, Path: poisoned})
	if err != nil {
		return 0, err
	}
	defer in.Close()
	_, rep, err := Filter(in, FilterSpec{Checker: checker, Threshold: spec.Threshold, Seed: spec.Seed},
		Output{Dir: filtered, Shards: true, PerShard: spec.PerShard}, opts)
	if err != nil {
		return 0, err
	}
	logf("filter: γ = %.4f, dropped %d of %d pairs", *rep.Gamma, rep.Dropped, rep.Total)
	return rep.Total, nil
}

// freshChecker saves the preset fresh from its seeded initialisation as the checker.
func freshChecker(spec BenchSpec, path string) error {
	cfg, err := clip.Preset(spec.Preset)
	if err != nil {
		return err
	}
	tok, err := fashionTokenizer(cfg.ContextLength)
	if err != nil {
		return err
	}
	cfg.VocabSize = tok.VocabSize()
	ctx, err := clip.NewContext(cfg, uint64(spec.Seed))
	if err != nil {
		return err
	}
	return clip.Save(path, ctx, cfg)
}

// benchTrain trains the preset for one epoch on the poisoned shards and saves the model as the checker.
func benchTrain(spec BenchSpec, poisoned, checker string, opts experiment.Options, logf func(string, ...any)) (int, error) {
	in, err := Open(Input{Format: FormatWebDataset, Path: poisoned})
	if err != nil {
		return 0, err
	}
	defer in.Close()
	every := max(1, in.Source.Len()/spec.Batch/20)
	ctx, cfg, hist, err := Train(in, TrainSpec{Preset: spec.Preset, Epochs: 1, Batch: spec.Batch, LR: spec.LR, Seed: spec.Seed,
		Progress: func(p train.Progress) {
			if p.Step%every == 0 {
				logf("train: step %d/%d loss %.3f (%.0f s)", p.Step, p.TotalSteps, p.Loss, p.Elapsed.Seconds())
			}
		}}, opts)
	if err != nil {
		return 0, err
	}
	logf("train: mean loss %.3f", hist[0].MeanLoss)
	if err := clip.Save(checker, ctx, cfg); err != nil {
		return 0, err
	}
	return in.Source.Len() / spec.Batch * spec.Batch, nil
}

// resetPeakRSS resets the process's peak resident memory to the current one (Linux; elsewhere nothing).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// Generate writes a WebDataset of n samples into dir/shards (perShard each, 0: DefaultPerShard) and returns
// the shard files: sample k is Fashion-MNIST training picture k mod 60,000 as a 28×28 PNG, caption number
// ⌊k/60,000⌋ mod 5 of that picture (fashionmnist.Captioner with seed), and its label in the json member
// (classes fashionmnist.ShortNames). Memory holds the 60,000 PNGs, not the samples.
func Generate(dir string, n, perShard int, seed int64) ([]string, error) {
	loc, err := fashionmnist.Locate(context.Background(), fashionmnist.Config{})
	if err != nil {
		return nil, err
	}
	imgs, err := fashionmnist.ReadImages(filepath.Join(loc, fashionmnist.TrainImagesFile))
	if err != nil {
		return nil, err
	}
	labels, err := fashionmnist.ReadLabels(filepath.Join(loc, fashionmnist.TrainLabelsFile))
	if err != nil {
		return nil, err
	}
	pngs := make([][]byte, imgs.Count)
	for i := range pngs {
		if pngs[i], err = encodePNG(dataset.Image{Height: imgs.Rows, Width: imgs.Cols, Channels: 1, Pix: imgs.At(i)}); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, ShardsDir), 0o755); err != nil {
		return nil, err
	}
	if perShard <= 0 {
		perShard = DefaultPerShard
	}
	w := writers.NewShardWriter(filepath.Join(dir, ShardsDir), perShard)
	capt := fashionmnist.Captioner{Seed: seed}
	for k := range n {
		i := k % imgs.Count
		id := fmt.Sprintf("fashion-mnist/train/%05d", i)
		img := dataset.Image{Height: imgs.Rows, Width: imgs.Cols, Channels: 1, Pix: imgs.At(i)}
		caps := capt.Captions(id, int(labels[i]), img)
		meta, _ := json.Marshal(map[string]int{"label": int(labels[i])})
		if err := w.Write(writers.Sample{Image: dataset.Encoded{Data: pngs[i], Format: "png"}, ImageID: id,
			Caption: caps[(k/imgs.Count)%len(caps)], Meta: meta}); err != nil {
			return nil, err
		}
	}
	files, err := w.Close()
	var paths []string
	for _, f := range files {
		paths = append(paths, filepath.Join(dir, ShardsDir, f.Path))
	}
	return paths, err
}
