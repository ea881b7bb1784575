package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/gomlx/gomlx/backends"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/scale"
	"github.com/mmpoison/mmpoison/poisoning/atomicfile"
	"github.com/mmpoison/mmpoison/poisoning/defense"
)

// scaleFlagValues are bench's flags of the scale benchmark.
type scaleFlagValues struct {
	pairs, perShard, batch *int
	dir, preset            *string
	keep                   *bool
	seed                   *int64
	stages                 *list
}

// scaleFlags defines bench's scale-benchmark flags.
func scaleFlags(fs *flag.FlagSet) scaleFlagValues {
	return scaleFlagValues{
		pairs: fs.Int("scale", 0, "run the scale benchmark instead: generate a WebDataset of this many pairs in a temporary "+
			"folder, then poison it, train one epoch on it and filter it, all streamed, reporting pairs/s and peak RSS per stage"),
		dir:      fs.String("scale-dir", "", "where the scale benchmark's temporary folder goes (default: the system's)"),
		keep:     fs.Bool("scale-keep", false, "keep the scale benchmark's folder"),
		perShard: fs.Int("per-shard", scale.DefaultPerShard, "samples per WebDataset shard (of the scale benchmark's sets)"),
		preset:   fs.String("scale-preset", "tiny", "model preset the scale benchmark trains"),
		batch:    fs.Int("scale-batch", 64, "batch size of the scale benchmark's training"),
		seed:     seedFlag(fs, 42),
		stages:   listFlag(fs, "scale-stages", scale.BenchStages, "the scale benchmark's stages after generating its data: poison, then train and/or filter"),
	}
}

// scaleBench runs the scale benchmark and prints one RESULT line per stage.
func scaleBench(v scaleFlagValues, b backends.Backend, jsonOut string) error {
	def := experiment.DefaultSpec()
	spec := scale.BenchSpec{Pairs: *v.pairs, Dir: *v.dir, Keep: *v.keep, PerShard: *v.perShard, Preset: *v.preset,
		Batch: *v.batch, LR: def.Pretrain.LR, Seed: *v.seed, Attack: def.Attack,
		Threshold: defense.Threshold{Kind: defense.KindQuantile, Value: 0.99}, Stages: *v.stages, Log: os.Stderr}
	res, err := scale.Bench(spec, experiment.Options{Backend: b})
	for _, r := range res {
		fmt.Printf("RESULT scale=%d stage=%s pairs=%d seconds=%.1f pairs_per_s=%.0f peak_rss_mib=%.0f backend=%q\n",
			spec.Pairs, r.Stage, r.Pairs, r.Seconds, r.PairsPerSecond, r.PeakRSSMiB, b.Name())
	}
	if err != nil {
		return err
	}
	if jsonOut != "" {
		data, err := json.MarshalIndent(struct {
			Pairs   int                 `json:"pairs"`
			Backend string              `json:"backend"`
			Stages  []scale.StageResult `json:"stages"`
		}{spec.Pairs, b.Name(), res}, "", "  ")
		if err != nil {
			return err
		}
		return atomicfile.WriteFile(jsonOut, data)
	}
	return nil
}
