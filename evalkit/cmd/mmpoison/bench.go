package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/mmpoison/mmpoison/evalkit/bench"
	"github.com/mmpoison/mmpoison/evalkit/scale"
	"github.com/mmpoison/mmpoison/kernelext"
	"github.com/mmpoison/mmpoison/models/backend"
	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/poisoning/atomicfile"
)

// benchCommand implements "mmpoison bench".
func benchCommand(args []string) error {
	fs := newFlags("bench", "")
	presets := listFlag(fs, "presets", []string{"tiny", "small"}, "comma-separated CLIP model presets")
	batches := numbersFlag(fs, "batches", []int{64, 256}, parseBatch, "comma-separated batch sizes")
	steps := fs.Int("steps", 10, "timed training steps per case (after warm-up); 0 with -warmup 0 skips training")
	warmup := fs.Int("warmup", 3, "untimed warm-up steps per case (the first compiles)")
	embed := fs.Int("embed", 1000, "pairs to embed and rank per case (0: skip)")
	jsonOut := fs.String("json", "", "also write the measurements to this JSON file")
	sc := scaleFlags(fs)
	if help, err := parse(fs, args); help || err != nil {
		return err
	}
	if err := checkMinimums(fs, minimum{"steps", 0}, minimum{"warmup", 0}, minimum{"embed", 0}, minimum{"scale", 0},
		minimum{"per-shard", 1}, minimum{"scale-batch", 2}); err != nil {
		return err
	}
	if err := scale.CheckStages(*sc.stages); err != nil {
		return fmt.Errorf("-scale-stages: %w", err)
	}
	if err := checkPresets("presets", *presets...); err != nil {
		return err
	}
	if *jsonOut != "" {
		if err := writableDir("json", filepath.Dir(*jsonOut)); err != nil {
			return err
		}
	}
	b, err := backend.Default()
	if err != nil {
		return err
	}
	if *sc.pairs > 0 {
		return scaleBench(sc, b, *jsonOut)
	}
	var ms []*bench.Measurement
	for _, p := range *presets {
		for _, n := range *batches {
			c := bench.Case{Preset: p, Batch: n, VocabSize: 1000}
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
		data, err := json.MarshalIndent(ms, "", "  ")
		if err != nil {
			return err
		}
		return atomicfile.WriteFile(*jsonOut, data)
	}
	return nil
}
