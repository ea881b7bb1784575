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
	"strconv"
	"strings"

	"github.com/mmpoison/mmpoison/evalkit/bench"
	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/report"
	"github.com/mmpoison/mmpoison/kernelext"
	"github.com/mmpoison/mmpoison/models/backend"
	"github.com/mmpoison/mmpoison/models/clip"
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
  demo   Attack II on the embedded Fashion-MNIST default: pre-train (cached), poison, fine-tune, evaluate, report
  bench  speed of a training step and of embedding, per preset and batch size, on the current backend
  embed  CLIP features and logits of images and captions with a safetensors checkpoint, written as .npy files
`

func run(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Print(usage)
		return nil
	}
	switch args[0] {
	case "demo":
		return demo(args[1:])
	case "bench":
		return benchmark(args[1:])
	case "embed":
		return embedCommand(args[1:])
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
	mode := fs.String("mode", string(spec.Mode), "inject (add poisoned pairs) or repair (re-pair existing class-A captions)")
	fs.StringVar(&spec.Attack, "attack", "II", "attack: I (single target image), II (single target label), III (several goals)")
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
			fmt.Printf("RESULT preset=%s batch=%d step_median_s=%.4f embed_pairs_per_s=%.1f gflops=%.2f peak_rss_mib=%.0f\n",
				m.Preset, m.Batch, m.StepMedian, m.EmbedPairsPerS, m.TrainGFLOPS, m.PeakRSSMiB)
			ms = append(ms, m)
		}
	}
	kernelext.ShowTable(bench.Table(ms))
	if *jsonOut != "" {
		data, _ := json.MarshalIndent(ms, "", "  ")
		return kernelext.WriteFileAtomic(*jsonOut, data)
	}
	return nil
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
