package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/poisoning/atomicfile"
	"github.com/mmpoison/mmpoison/poisoning/attack"
)

// usageOut receives usage texts (-h and flag errors).
var usageOut io.Writer = os.Stderr

// newFlags returns the flag set of the named command of the table, whose usage is "usage: mmpoison NAME
// [flags]", the command's summary and its flags, or head (when not empty) followed by the flags.
func newFlags(name, head string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(usageOut)
	fs.Usage = func() {
		if head == "" {
			head = fmt.Sprintf("usage: mmpoison %s [flags]\n\n%s.\n\nflags:\n", name, summaryOf(name))
		}
		fmt.Fprint(fs.Output(), head)
		fs.PrintDefaults()
	}
	if flagSets != nil {
		flagSets[name] = fs
	}
	return fs
}

// flagSets, when not nil, collects every command's flag set (for tests).
var flagSets map[string]*flag.FlagSet

// parse parses args; help is true (and err nil) when they asked for -h, which printed the usage. Arguments left
// after the flags are an error.
func parse(fs *flag.FlagSet, args []string) (help bool, err error) {
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return true, nil
	} else if err != nil {
		return false, err
	}
	if fs.NArg() > 0 {
		return false, fmt.Errorf("%s: unexpected argument %q (flags come first; see mmpoison %s -h)", fs.Name(), fs.Arg(0), fs.Name())
	}
	return false, nil
}

// wasSet reports whether the command line set the named flag.
func wasSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// list is a flag.Value holding a comma-separated list; empty items are dropped.
type list []string

func (l *list) String() string { return strings.Join(*l, ",") }

func (l *list) Set(v string) error {
	*l = splitList(v)
	return nil
}

// splitList splits a comma-separated value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// listFlag defines a list flag with a default.
func listFlag(fs *flag.FlagSet, name string, def []string, usage string) *list {
	l := list(def)
	fs.Var(&l, name, usage)
	return &l
}

// numbers is a flag.Value holding a comma-separated list of values, each read and checked by parse.
type numbers[T any] struct {
	values []T
	parse  func(string) (T, error)
}

func (n *numbers[T]) String() string {
	if n == nil {
		return ""
	}
	var parts []string
	for _, v := range n.values {
		parts = append(parts, fmt.Sprint(v))
	}
	return strings.Join(parts, ",")
}

func (n *numbers[T]) Set(s string) error {
	var values []T
	seen := map[string]bool{}
	for _, item := range splitList(s) {
		v, err := n.parse(item)
		if err != nil {
			return fmt.Errorf("%q: %w", item, err)
		}
		if key := fmt.Sprint(v); seen[key] {
			return fmt.Errorf("%q: given twice", item)
		} else {
			seen[key] = true
		}
		values = append(values, v)
	}
	n.values = values
	return nil
}

// numbersFlag defines a comma-separated list flag with a default, each value read and checked by parse.
func numbersFlag[T any](fs *flag.FlagSet, name string, def []T, parse func(string) (T, error), usage string) *[]T {
	n := &numbers[T]{values: def, parse: parse}
	fs.Var(n, name, usage)
	return &n.values
}

// parseSeed reads a seed.
func parseSeed(s string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errors.New("not an integer")
	}
	return v, nil
}

// parseRate reads a poisoning rate φ in (0, 1).
func parseRate(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || !(v > 0 && v < 1) {
		return 0, errors.New("not a rate in (0, 1) (φ is a fraction: 2% is 0.02)")
	}
	return v, nil
}

// parseBatch reads a batch size of at least 2.
func parseBatch(s string) (int, error) {
	v, err := strconv.Atoi(s)
	if err != nil || v < 2 {
		return 0, errors.New("not a batch size of at least 2")
	}
	return v, nil
}

// The flags several commands share, each with one name and one meaning everywhere.

// seedFlag is -seed, the one seed of a run.
func seedFlag(fs *flag.FlagSet, def int64) *int64 {
	return fs.Int64("seed", def, "seed for data splits, captions, poison selection, initialisation and data order")
}

// checkSeeds refuses an empty -seeds list.
func checkSeeds(seeds []int64) error {
	if len(seeds) == 0 {
		return errors.New("-seeds is empty: give at least one seed, e.g. -seeds 42 (statistics over seeds need two or more)")
	}
	return nil
}

// checkResumable checks, before any work, the flags every resumable command (study, defenses) shares: the
// seeds, the model preset, the report folder of -out and the -runs folder (when given).
func checkResumable(seeds []int64, preset, out, runs string) error {
	if err := checkSeeds(seeds); err != nil {
		return err
	}
	if err := checkPresets("preset", preset); err != nil {
		return err
	}
	if err := writableOut(out); err != nil {
		return err
	}
	if runs == "" {
		return nil
	}
	return writableDir("runs", runs)
}

// seedsFlag is -seeds, the seeds each run of a resumable command is repeated with.
func seedsFlag(fs *flag.FlagSet, def []int64) *[]int64 {
	return numbersFlag(fs, "seeds", def, parseSeed, "comma-separated seeds; every run is repeated once per seed")
}

// writableOut checks, before any work, that the report folder of -out can be written whole (the report
// replaces it: it must be absent, empty or a report folder mmpoison wrote, and its parent writable).
func writableOut(dir string) error {
	if _, err := atomicfile.CheckDir(dir); err != nil {
		return fmt.Errorf("-out: %w", err)
	}
	return nil
}

// writableDir checks, before any work, that files can be written into the folder dir of the flag name: dir
// itself when it exists, else the nearest folder above it that exists (nothing is created).
func writableDir(name, dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("-%s %s: %w", name, dir, err)
	}
	for p := abs; ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		switch {
		case err == nil && !st.IsDir():
			return fmt.Errorf("-%s %s: %s is a file, not a folder", name, dir, p)
		case err == nil:
			f, err := os.CreateTemp(p, ".mmpoison-write-test-*")
			if err != nil {
				return fmt.Errorf("-%s %s: cannot write in %s: %w", name, dir, p, err)
			}
			f.Close()
			return os.Remove(f.Name())
		case p == filepath.Dir(p):
			return fmt.Errorf("-%s %s: %w", name, dir, err)
		}
	}
}

// minimum is the smallest value of an int flag.
type minimum struct {
	flag string
	min  int
}

// checkMinimums refuses, naming the flag, the int flags the command line set below their minimum.
func checkMinimums(fs *flag.FlagSet, mins ...minimum) error {
	for _, m := range mins {
		f := fs.Lookup(m.flag)
		if f == nil || !wasSet(fs, m.flag) {
			continue
		}
		if v, err := strconv.Atoi(f.Value.String()); err == nil && v < m.min {
			return fmt.Errorf("-%s %d: want %d or more", m.flag, v, m.min)
		}
	}
	return nil
}

// checkPresets refuses, before any work, a model preset that does not exist (the error lists those that do).
func checkPresets(name string, presets ...string) error {
	for _, p := range presets {
		if _, err := clip.Preset(p); err != nil {
			return fmt.Errorf("-%s: %w", name, err)
		}
	}
	return nil
}

// checkRate checks the value of a -rate flag: φ is a fraction in (0, 1).
func checkRate(v float64) error {
	if _, err := parseRate(strconv.FormatFloat(v, 'g', -1, 64)); err != nil {
		return fmt.Errorf("-rate %v: %w", v, err)
	}
	return nil
}

// outFlag is -out, the output folder.
func outFlag(fs *flag.FlagSet, def, holds string) *string {
	return fs.String("out", def, "output folder ("+holds+")")
}

// quietFlag is -quiet.
func quietFlag(fs *flag.FlagSet) *bool { return fs.Bool("quiet", false, "no training progress") }

// quickFlag is -quick.
func quickFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("quick", false, "experiment.QuickSpec sizes (about a third of the demo's data) instead of the demo's")
}

// presetFlag is -preset, the CLIP model preset.
func presetFlag(fs *flag.FlagSet, def string) *string {
	return fs.String("preset", def, "CLIP model preset (tiny, small, …; see clip.Presets)")
}

// batchFlag is -batch, one batch size.
func batchFlag(fs *flag.FlagSet, def int, what string) *int {
	return fs.Int("batch", def, "batch size ("+what+")")
}

// devicesFlag is -devices, the devices every training splits its batches over.
func devicesFlag(fs *flag.FlagSet) *int {
	return fs.Int("devices", 1, "devices every training splits each batch over, data-parallel (XLA only: GPUs, or host devices an XLA CPU plugin simulates)")
}

// runsFlag is -runs, the cache folder of a resumable command.
func runsFlag(fs *flag.FlagSet, holds string) *string {
	return fs.String("runs", "", "cache folder keeping every finished run, so an interrupted command resumes ("+holds+"; default: the model cache)")
}

// baseSpec is the spec a command starts from: experiment.QuickSpec with -quick, else experiment.DefaultSpec.
func baseSpec(quick bool) experiment.Spec {
	if quick {
		return experiment.QuickSpec()
	}
	return experiment.DefaultSpec()
}

// attackKinds lists the registered attack kinds with their summaries, one a line, for flag help.
func attackKinds() string {
	var b strings.Builder
	for _, k := range attack.Kinds() {
		def, _ := attack.Lookup(k)
		fmt.Fprintf(&b, "\n  %-9s %s", k, def.Summary)
	}
	return b.String()
}

// goals parses attack goals "A:B,C:D" for the flag name.
func goals(name string, items []string) ([]attack.Goal, error) {
	var out []attack.Goal
	for _, g := range items {
		a, b, ok := strings.Cut(g, ":")
		if !ok || a == "" || b == "" {
			return nil, fmt.Errorf("-%s: %q is not of the form A:B", name, g)
		}
		out = append(out, attack.Goal{Source: a, Target: b})
	}
	return out, nil
}
