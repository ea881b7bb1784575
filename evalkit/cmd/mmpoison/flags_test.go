package main

import (
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// badFlag is a command line with one bad flag and what its error must say.
type badFlag struct {
	args []string
	want string
}

// badFlags lists, for every command, bad values of its numeric flags (out of range, NaN, infinite), enums and
// output folders. file is a regular file (a folder above it cannot be made), full a folder holding a file
// mmpoison did not write.
func badFlags(file, full string) []badFlag {
	under := filepath.Join(file, "x")
	embed := func(extra ...string) []string {
		return append(append([]string{"embed"}, extra...), "--weights", file, "--captions", file, "--out", filepath.Join(filepath.Dir(file), "npy"), "img.png")
	}
	return []badFlag{
		{[]string{"demo", "-batch", "1"}, "-batch 1: want 2 or more"},
		{[]string{"demo", "-devices", "0"}, "-devices 0: want 1 or more"},
		{[]string{"paper", "-devices", "-2"}, "paper: -devices -2: want 1 or more"},
		{[]string{"study", "-devices", "0"}, "-devices 0: want 1 or more"},
		{[]string{"defenses", "-devices", "-1"}, "-devices -1: want 1 or more"},
		{[]string{"demo", "-count", "-5"}, "-count -5: want 0 or more"},
		{[]string{"demo", "-trigger-size", "-3"}, "-trigger-size -3: want 0 or more"},
		{[]string{"demo", "-pool", "-1"}, "-pool -1: want 1 or more"},
		{[]string{"demo", "-train", "0"}, "-train 0: want 1 or more"},
		{[]string{"demo", "-test-per-class", "0"}, "-test-per-class 0: want 1 or more"},
		{[]string{"demo", "-source-images", "-1"}, "-source-images -1: want 0 or more"},
		{[]string{"demo", "-pretrain-epochs", "-2"}, "-pretrain-epochs -2: want 0 or more"},
		{[]string{"demo", "-epochs", "0"}, "-epochs 0: want 1 or more"},
		{[]string{"demo", "-rate", "NaN"}, "-rate NaN: not a rate in (0, 1)"},
		{[]string{"demo", "-rate", "Inf"}, "-rate +Inf: not a rate in (0, 1)"},
		{[]string{"demo", "-rate", "1.5"}, "-rate 1.5: not a rate in (0, 1)"},
		{[]string{"demo", "-preset", "huge"}, `unknown model preset "huge": known presets are "RN50"`},
		{[]string{"demo", "-mode", "swap"}, `mode "swap" is not supported: use "inject" or "repair"`},
		{[]string{"demo", "-out", under}, "is a file, not a folder"},
		{[]string{"demo", "-out", full}, "holds files but no " + ".mmpoison-folder"},
		{[]string{"study", "-rates", "NaN"}, `"NaN": not a rate in (0, 1)`},
		{[]string{"study", "-rates", "0.01,Inf"}, `"Inf": not a rate in (0, 1)`},
		{[]string{"study", "-preset", "huge"}, `-preset: unknown model preset "huge": known presets are`},
		{[]string{"study", "-second-goal", "x:y"}, `unknown class name "x": valid classes are "tshirt"`},
		{[]string{"study", "-out", full}, "holds files but no .mmpoison-folder"},
		{[]string{"study", "-runs", under}, "-runs " + under + ": " + file + " is a file, not a folder"},
		{[]string{"defenses", "-quantile", "NaN"}, "-quantile NaN: want a fraction in (0, 1)"},
		{[]string{"defenses", "-quantile", "-Inf"}, "-quantile -Inf: want a fraction in (0, 1)"},
		{[]string{"defenses", "-quantile", "1.5"}, "-quantile 1.5: want a fraction in (0, 1)"},
		{[]string{"defenses", "-held-out", "-5"}, "-held-out -5: want 1 or more"},
		{[]string{"defenses", "-repair-epochs", "-3"}, "-repair-epochs -3: want at least 1"},
		{[]string{"defenses", "-attacks", "IV"}, `unknown kind "IV": known kinds are I, II, III, backdoor`},
		{[]string{"defenses", "-defenses", "magic"}, `unknown defense "magic" (known: [none filter clean-finetune kdistance cleanclip])`},
		{[]string{"defenses", "-checker-preset", "huge"}, `checker (CheckerSpec.Preset): unknown model preset "huge": known presets are`},
		{[]string{"defenses", "-checker-weights", "/dev/zero"}, "checker checkpoint (CheckerSpec.Weights) /dev/zero is not a regular file"},
		{[]string{"defenses", "-out", under}, "is a file, not a folder"},
		{[]string{"defenses", "-runs", under}, "is a file, not a folder"},
		{[]string{"bench", "-steps", "-1"}, "-steps -1: want 0 or more"},
		{[]string{"bench", "-warmup", "-1"}, "-warmup -1: want 0 or more"},
		{[]string{"bench", "-embed", "-1"}, "-embed -1: want 0 or more"},
		{[]string{"bench", "-batches", "64,1"}, `"1": not a batch size of at least 2`},
		{[]string{"bench", "-presets", "tiny,huge"}, `-presets: unknown model preset "huge"`},
		{[]string{"bench", "-json", filepath.Join(under, "b.json")}, "is a file, not a folder"},
		{embed("--batch", "-3"), "--batch -3 is negative"},
		{embed("--vision-heads", "-1"), "-vision-heads -1: want 0 or more"},
		{embed("--text-heads", "-2"), "-text-heads -2: want 0 or more"},
		{[]string{"embed", "--weights", file, "--captions", file, "--out", under, "img.png"}, "-out " + under + ": " + file + " is a file"},
		{[]string{"embed", "--weights", "/dev/zero", "--captions", file, "--out", filepath.Dir(file), "img.png"}, "reading checkpoint: /dev/zero is not a regular file"},
		{[]string{"embed", "--weights", file, "--captions", "/dev/zero", "--out", filepath.Dir(file), "img.png"}, "reading captions: /dev/zero is not a regular file"},
		{[]string{"bench", "-scale", "-1"}, "-scale -1: want 0 or more"},
		{[]string{"bench", "-per-shard", "0"}, "-per-shard 0: want 1 or more"},
		{[]string{"bench", "-scale-batch", "1"}, "-scale-batch 1: want 2 or more"},
		{[]string{"bench", "-scale-stages", "train,poison"}, `-scale-stages: bench stages ["train" "poison"]: want poison, then`},
		{[]string{"poison", "-count", "-5"}, "-count -5: want 0 or more"},
		{[]string{"poison", "-trigger-size", "-3"}, "-trigger-size -3: want 0 or more"},
		{[]string{"poison", "-per-shard", "0"}, "-per-shard 0: want 1 or more"},
		{[]string{"poison", "-test-per-class", "-1"}, "-test-per-class -1: want 0 or more"},
		{[]string{"poison", "-rate", "NaN"}, "-rate NaN: not a rate in (0, 1)"},
		{[]string{"poison", "-out", under}, "cannot be written"},
		{[]string{"filter", "-labelled-pairs", "0"}, "-labelled-pairs 0: want 1 or more"},
		{[]string{"filter", "-per-shard", "0"}, "-per-shard 0: want 1 or more"},
		{[]string{"filter", "-test-per-class", "-1"}, "-test-per-class -1: want 0 or more"},
		{[]string{"filter", "-threshold", "quantile:1.5", "-checker", file}, "quantile must be in (0, 1)"},
		{[]string{"filter", "-checker", "/dev/zero"}, "checker /dev/zero is not a regular file"},
		{[]string{"paper", "-batch", "-3"}, "paper: -batch -3: want 2 or more"},
		{[]string{"paper", "-epochs", "0"}, "paper: -epochs 0: want 1 or more"},
		{[]string{"paper", "-max-train", "-1"}, "paper: -max-train -1: want 0 or more"},
		{[]string{"paper", "-test-per-class", "0"}, "paper: -test-per-class 0: want 1 or more"},
		{[]string{"paper", "-rate", "NaN", "-mini", filepath.Dir(file), "-tokenizer", file}, "-rate NaN: not a rate in (0, 1)"},
		{[]string{"paper", "-dataset", "imagenet", "-tokenizer", file}, `unknown dataset "imagenet": use "" (Fashion-MNIST), "coco" or "flickr-pascal"`},
		{[]string{"paper", "-mini", under, "-tokenizer", file}, "paper: -mini " + under + ": " + file + " is a file"},
		{[]string{"paper", "-out", full, "-mini", filepath.Dir(file), "-tokenizer", file}, "holds files but no .mmpoison-folder"},
	}
}

// Every numeric flag of every command is checked for its range (NaN and infinities included), every enum names
// the allowed values and every output folder is checked for writing, before any work: each bad command line
// fails at once with an error naming the flag and value.
func TestBadFlagsOfEveryCommand(t *testing.T) {
	captureUsage(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	full := filepath.Join(dir, "thesis")
	os.WriteFile(file, []byte("a caption\n"), 0o644)
	os.Mkdir(full, 0o755)
	os.WriteFile(filepath.Join(full, "thesis.tex"), nil, 0o644)
	for _, tc := range badFlags(file, full) {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			start := time.Now()
			err := run(tc.args)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v: not refused before the work", d)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(full, "thesis.tex")); err != nil {
		t.Error("a refused -out folder lost its file")
	}
}

// Every numeric flag of every command (but the seeds, where any integer is one) has a bad value in badFlags.
func TestBadFlagsCoverEveryNumericFlag(t *testing.T) {
	out := captureUsage(t)
	flagSets = map[string]*flag.FlagSet{}
	defer func() { flagSets = nil }()
	for _, c := range commands {
		if err := run([]string{c.name, "-h"}); err != nil {
			t.Fatal(err)
		}
	}
	out.Reset()
	covered := map[string]bool{}
	for _, b := range badFlags("f", "d") {
		for _, a := range b.args[1:] {
			covered[b.args[0]+" "+strings.TrimLeft(a, "-")] = true
		}
	}
	for name, fs := range flagSets {
		fs.VisitAll(func(f *flag.Flag) {
			_, numeric := strconv.ParseFloat(f.DefValue, 64)
			isList := strings.Contains(f.DefValue, ",") // -rates, -batches, -seeds
			if (numeric == nil || isList) && !strings.Contains(f.Name, "seed") && !covered[name+" "+f.Name] {
				t.Errorf("%s -%s (default %q) has no bad value in badFlags", name, f.Name, f.DefValue)
			}
		})
	}
}
