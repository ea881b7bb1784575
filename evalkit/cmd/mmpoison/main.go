// Command mmpoison runs mmpoison's experiments from the command line.
//
//	mmpoison demo [flags]   pre-train (or load from the cache) a clean tiny CLIP on Fashion-MNIST captions,
//	                        run Attack II, evaluate, print the results and write a report folder.
//
// Run "mmpoison demo -h" for the flags.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mmpoison/mmpoison/evalkit/bench"
	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/report"
	"github.com/mmpoison/mmpoison/kernelext"
	"github.com/mmpoison/mmpoison/models/backend"
	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/poisoning/atomicfile"
	"github.com/mmpoison/mmpoison/poisoning/attack"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mmpoison:", err)
		os.Exit(1)
	}
}

const usage = `usage: mmpoison <command> [flags]

commands:
  demo      Attack II on the embedded Fashion-MNIST default: pre-train (cached), poison, fine-tune, evaluate, report
  study     the paper's attack study (findings F1–F6): Attacks I, II, III, frozen towers and a rate sweep
            over several seeds, with the findings table, seed tables and figures (resumable)
  defenses  the defense × attack matrix: the paper's filter and clean fine-tuning, the k-distance detector
            and CleanCLIP, against Attacks I, II, III and the backdoor over several seeds (resumable)
  bench     speed of a training step and of embedding, per preset and batch size, on the current backend
  embed     CLIP features and logits of images and captions with a safetensors checkpoint, written as .npy files
  paper     the paper's setup end to end: a pre-trained CLIP fine-tuned on a poisoned COCO or Flickr-PASCAL folder
`

func run(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Print(usage)
		return nil
	}
	switch args[0] {
	case "demo":
		return demo(args[1:])
	case "study":
		return study(args[1:])
	case "defenses":
		return defenses(args[1:])
	case "bench":
		return benchmark(args[1:])
	case "embed":
		return embedCommand(args[1:])
	case "paper":
		return paper(args[1:])
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}

func demo(args []string) error {
	spec := experiment.DefaultSpec()
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	out := fs.String("out", "mmpoison-report", "report folder (results.json, report.md, figures)")
	fs.StringVar(&spec.Preset, "preset", spec.Preset, "CLIP model preset (tiny, small)")
	fs.StringVar(&spec.Source, "source", spec.Source, "class A whose captions are poisoned")
	fs.StringVar(&spec.Target, "target", spec.Target, "class B whose images class-A captions should retrieve")
	fs.Float64Var(&spec.Rate, "rate", spec.Rate, "poisoning rate φ in (0, 1), in pairs of the whole training set")
	fs.IntVar(&spec.PoisonCount, "count", 0, "poison exactly this many pairs instead of -rate (0: use -rate)")
	mode := fs.String("mode", string(spec.Mode), "inject (add poisoned pairs) or repair (re-pair existing class-A captions)")
	fs.StringVar(&spec.Attack, "attack", "II", "attack: I (single target image), II (single target label), III (several goals), backdoor (patch trigger → -target; inject mode)")
	fs.IntVar(&spec.Trigger.Size, "trigger-size", 0, "backdoor: side of the square trigger patch in pixels (0: 4)")
	quick := fs.Bool("quick", false, "QuickSpec sizes (about a third of the data) instead of the demo's")
	fs.StringVar(&spec.TargetImageID, "target-image", "", "attack I: id of the class-B training image x* (default: chosen by the seed)")
	extraGoals := fs.String("goals", "", "attack III: further goals besides -source → -target, as A:B,C:D")
	freeze := fs.String("freeze", "", "tower(s) kept fixed while fine-tuning: visual, text, or visual,text")
	fs.Int64Var(&spec.Seed, "seed", spec.Seed, "seed for data, poison selection, initialisation and data order")
	fs.IntVar(&spec.PoolSize, "pool", spec.PoolSize, "images in the clean pre-training pool")
	fs.IntVar(&spec.TrainSize, "train", spec.TrainSize, "images in the fine-tuning train split")
	fs.IntVar(&spec.TestPerClass, "test-per-class", spec.TestPerClass, "test images per class")
	fs.IntVar(&spec.PretrainEpochs, "pretrain-epochs", spec.PretrainEpochs, "pre-training epochs")
	fs.IntVar(&spec.FinetuneEpochs, "epochs", spec.FinetuneEpochs, "fine-tuning epochs")
	fs.StringVar(&spec.DataDir, "data-dir", "", "directory holding the Fashion-MNIST .gz files (default: search)")
	quiet := fs.Bool("quiet", false, "no training progress")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	spec.Mode = attack.Mode(*mode)
	modeSet := false
	fs.Visit(func(f *flag.Flag) { modeSet = modeSet || f.Name == "mode" })
	if spec.Attack == experiment.AttackBackdoor {
		spec.Source = "" // The trigger goes on images of every class but the target.
		if !modeSet {
			spec.Mode = attack.Inject // The backdoor adds pairs.
		}
	}
	if *quick {
		q := experiment.QuickSpec()
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["pool"] {
			spec.PoolSize = q.PoolSize
		}
		if !set["train"] {
			spec.TrainSize = q.TrainSize
		}
		spec.SourceTrainImages = q.SourceTrainImages
	}
	for _, g := range splitList(*extraGoals) {
		a, b, ok := strings.Cut(g, ":")
		if !ok || a == "" || b == "" {
			return fmt.Errorf("-goals: %q is not of the form A:B", g)
		}
		spec.ExtraGoals = append(spec.ExtraGoals, attack.Goal{Source: a, Target: b})
	}
	spec.Freeze = splitList(*freeze)
	if err := spec.Validate(); err != nil {
		return err
	}
	res, err := experiment.Run(spec, experiment.Options{Quiet: *quiet})
	if err != nil {
		return err
	}
	kernelext.ShowTable(report.AttackTable(res))
	kernelext.ShowTable(report.UtilityTable(res))
	files, err := report.Write(*out, res)
	if err != nil {
		return err
	}
	fmt.Printf("report: %d files in %s (report.md, results.json, figures); total %.0f s\n", len(files), *out, res.Timings["total"])
	return nil
}

func study(args []string) error {
	fs := flag.NewFlagSet("study", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "QuickSpec sizes (about a third of the demo's data) instead of the demo's")
	seeds := fs.String("seeds", "42,43,44", "comma-separated seeds")
	rates := fs.String("rates", "0.0025,0.005,0.0075,0.01", "comma-separated poisoning rates of the F6 sweep (empty: none)")
	second := fs.String("second-goal", "sandal:shirt", "Attack III's second goal A:B (empty: no Attack III)")
	modality := fs.Bool("modality", true, "include the frozen-tower runs (F5)")
	out := fs.String("out", "mmpoison-study", "report folder (study.md, study.json, figures)")
	dir := fs.String("runs", "", "folder keeping one result per finished run, so an interrupted study resumes (default: <cache>/study)")
	quiet := fs.Bool("quiet", false, "no training progress")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	st := experiment.DefaultStudy()
	if *quick {
		st = experiment.QuickStudy()
	}
	st.Modality = *modality
	st.Seeds, st.Rates = nil, nil
	var err error
	if st.Seeds, err = parseSeeds(*seeds); err != nil {
		return err
	}
	for _, s := range splitList(*rates) {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || !(v > 0 && v < 1) {
			return fmt.Errorf("-rates: %q is not a rate in (0, 1)", s)
		}
		st.Rates = append(st.Rates, v)
	}
	st.SecondGoal = attack.Goal{}
	if *second != "" {
		a, b, ok := strings.Cut(*second, ":")
		if !ok || a == "" || b == "" {
			return fmt.Errorf("-second-goal: %q is not of the form A:B", *second)
		}
		st.SecondGoal = attack.Goal{Source: a, Target: b}
	}
	if *dir, err = cacheSubdir(*dir, "study"); err != nil {
		return err
	}
	sw := &experiment.Sweep{Dir: *dir, Options: experiment.Options{Quiet: *quiet},
		Progress: func(i, n int, spec experiment.Spec, cached bool) {
			state := "running"
			if cached {
				state = "loaded"
			}
			rate := fmt.Sprintf("φ=%.2f%%", 100*spec.Rate)
			if spec.AllSourceCaptions {
				rate = "every source caption"
			}
			fmt.Printf("run %d/%d (%s): attack %s %s→%s %s seed %d freeze %v\n", i+1, n, state,
				spec.AttackKind(), spec.Goals()[0].Source, spec.Target, rate, spec.Seed, spec.Freeze)
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

func benchmark(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	presets := fs.String("presets", "tiny,small", "comma-separated model presets")
	batches := fs.String("batch", "64,256", "comma-separated batch sizes")
	steps := fs.Int("steps", 10, "timed training steps per case (after warm-up); 0 with -warmup 0 skips training")
	warmup := fs.Int("warmup", 3, "untimed warm-up steps per case (the first compiles)")
	embed := fs.Int("embed", 1000, "pairs to embed and rank per case (0: skip)")
	jsonOut := fs.String("json", "", "also write the measurements to this JSON file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	b, err := backend.Default()
	if err != nil {
		return err
	}
	var ms []*bench.Measurement
	for _, p := range strings.Split(*presets, ",") {
		for _, bs := range strings.Split(*batches, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(bs))
			if err != nil || n < 2 {
				return fmt.Errorf("invalid batch size %q", bs)
			}
			c := bench.Case{Preset: strings.TrimSpace(p), Batch: n, VocabSize: 1000}
			if cfg, err := clip.Preset(c.Preset); err == nil && cfg.VocabSize > 0 {
				c.VocabSize = cfg.VocabSize // Presets of real models keep their vocabulary.
			}
			m, err := bench.Run(b, c, *warmup, *steps, *embed)
			if err != nil {
				return err
			}
			fmt.Println(m.Result())
			ms = append(ms, m)
		}
	}
	kernelext.ShowTable(bench.Table(ms))
	if *jsonOut != "" {
		data, _ := json.MarshalIndent(ms, "", "  ")
		if err := os.MkdirAll(filepath.Dir(*jsonOut), 0o755); err != nil {
			return err
		}
		return atomicfile.WriteFile(*jsonOut, data)
	}
	return nil
}

// parseSeeds parses the comma-separated -seeds flag.
func parseSeeds(list string) ([]int64, error) {
	var out []int64
	for _, s := range splitList(list) {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("-seeds: %q is not an integer", s)
		}
		out = append(out, v)
	}
	return out, nil
}

// cacheSubdir returns dir, or the named folder in the model cache when dir is empty (where resumable commands
// keep their finished runs).
func cacheSubdir(dir, name string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	cache, err := experiment.CacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(cache, name), nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
