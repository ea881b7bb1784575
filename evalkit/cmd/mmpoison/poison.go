package main

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/scale"
	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/defense"
)

// inputFlagValues are the input flags of poison and filter.
type inputFlagValues struct {
	format, path, labelKey *string
	classes                *list
	testPerClass           *int
}

// inputFlags defines the flags that choose a dataset.
func inputFlags(fs *flag.FlagSet, defFormat string) inputFlagValues {
	return inputFlagValues{
		format: fs.String("data", defFormat, "input format: "+strings.Join(scale.Formats, ", ")),
		path: fs.String("in", "", "the input (a dataset folder: coco, flickr-pascal, pascal, flickr; a CSV/TSV file; "+
			"comma-separated WebDataset shard patterns; or a folder written by poison or filter)"),
		classes:      listFlag(fs, "classes", nil, "class names of a CSV's label column or a WebDataset's cls/json labels"),
		labelKey:     fs.String("label-key", "", "label column of a CSV input"),
		testPerClass: fs.Int("test-per-class", 0, "test images per class (left out of coco and flickr-pascal; 0: the paper's)"),
	}
}

// input returns the chosen input.
func (v inputFlagValues) input(seed int64) scale.Input {
	return scale.Input{Format: *v.format, Path: *v.path, Classes: *v.classes, LabelKey: *v.labelKey, Seed: seed,
		TestPerClass: *v.testPerClass}
}

// outputFlagValues are the output flags of poison and filter.
type outputFlagValues struct {
	out, sep *string
	formats  *list
	perShard *int
	verify   *bool
}

// outputFlags defines the flags that say how a set is written.
func outputFlags(fs *flag.FlagSet) outputFlagValues {
	return outputFlagValues{
		out:      outFlag(fs, "", "the set: shards/, train.tsv or train.csv with images/, poison_manifest.json, export.json; must not exist"),
		formats:  listFlag(fs, "format", []string{"shards"}, "what to write: shards (WebDataset), csv (open_clip), or shards,csv"),
		perShard: fs.Int("per-shard", scale.DefaultPerShard, "samples per WebDataset shard (of the written set)"),
		sep:      fs.String("csv-separator", "tab", "separator of the CSV (open_clip's --csv-separator): tab (train.tsv) or comma (train.csv)"),
		verify:   fs.Bool("verify", true, "read the written set back and verify it against export.json and the manifest"),
	}
}

// output returns the chosen output, or an error naming a bad flag value.
func (v outputFlagValues) output() (scale.Output, error) {
	o := scale.Output{Dir: *v.out, PerShard: *v.perShard}
	if o.Dir == "" {
		return o, errors.New("-out: give the folder to write")
	}
	for _, f := range *v.formats {
		switch f {
		case "shards":
			o.Shards = true
		case "csv":
			o.CSV = true
		default:
			return o, fmt.Errorf("-format: %q is neither shards nor csv", f)
		}
	}
	switch *v.sep {
	case "tab":
		o.Separator = '\t'
	case "comma":
		o.Separator = ','
	default:
		return o, fmt.Errorf("-csv-separator: %q is neither tab nor comma", *v.sep)
	}
	return o, nil
}

// poisonCommand implements "mmpoison poison".
func poisonCommand(args []string) error {
	fs := newFlags("poison", "")
	def := experiment.DefaultSpec()
	in := inputFlags(fs, scale.FormatFashionMNIST)
	kind := fs.String("attack", string(def.Attack.Kind), "attack kind, run in its standard setting unless other flags change it:"+attackKinds()+"\n")
	a := attackFlags(fs, def.Attack)
	seed := seedFlag(fs, def.Seed)
	out := outputFlags(fs)
	if help, err := parse(fs, args); help || err != nil {
		return err
	}
	if err := checkMinimums(fs, minimum{"count", 0}, minimum{"trigger-size", 0}, minimum{"per-shard", 1},
		minimum{"test-per-class", 0}); err != nil {
		return err
	}
	spec := def.Attack
	if wasSet(fs, "attack") {
		d, err := attack.Lookup(attack.Kind(*kind))
		if err != nil {
			return fmt.Errorf("-attack: %w", err)
		}
		spec = d.Standard(def.Attack).Attack
	}
	if err := a.apply(fs, &spec); err != nil {
		return err
	}
	if err := spec.Validate(); err != nil {
		return err
	}
	o, src, err := open(out, in, *seed)
	if err != nil {
		return err
	}
	defer src.Close()
	exp, m, err := scale.Poison(src, spec, *seed, o)
	if err != nil {
		return err
	}
	fmt.Printf("poison: %d pairs, %d poisoned (φ = %.4g, %s %s) written to %s\n", exp.Pairs, m.PoisonedPairs, m.Rate, m.Attack, m.Mode, o.Dir)
	return verified(o.Dir, *out.verify)
}

// open checks the output flags and folder, then opens the input: a bad output is an error before the input
// is read.
func open(out outputFlagValues, in inputFlagValues, seed int64) (scale.Output, *scale.Opened, error) {
	o, err := out.output()
	if err != nil {
		return o, nil, err
	}
	if err := o.Check(); err != nil {
		return o, nil, err
	}
	src, err := scale.Open(in.input(seed))
	return o, src, err
}

// verified verifies a written folder when asked to and says so.
func verified(dir string, verify bool) error {
	if !verify {
		return nil
	}
	if err := scale.VerifyExport(dir); err != nil {
		return err
	}
	fmt.Printf("verified: every file's SHA-256 and the set against its poison manifest (%s)\n", dir)
	return nil
}

// filterCommand implements "mmpoison filter".
func filterCommand(args []string) error {
	fs := newFlags("filter", "")
	in := inputFlags(fs, scale.FormatWebDataset)
	checker := fs.String("checker", "", "the independent clean checker: an mmpoison checkpoint or OpenAI/open_clip/HuggingFace safetensors")
	tok := fs.String("tokenizer", "", "bpe_simple_vocab_16e6.txt.gz, or a HuggingFace vocab.json with merges.txt beside it "+
		"(the checker's CLIP BPE vocabulary; default: the Fashion-MNIST word vocabulary of the presets)")
	threshold := fs.String("threshold", "quantile:0.99", "how γ is chosen: fixed:γ, quantile:q (drop the top 1−q) or labelled:max-clean-drop")
	labelled := fs.Int("labelled-pairs", 200, "pairs of the labelled sample of a labelled threshold")
	seed := seedFlag(fs, experiment.DefaultSpec().Seed)
	quiet := quietFlag(fs)
	out := outputFlags(fs)
	if help, err := parse(fs, args); help || err != nil {
		return err
	}
	if err := checkMinimums(fs, minimum{"labelled-pairs", 1}, minimum{"per-shard", 1}, minimum{"test-per-class", 0}); err != nil {
		return err
	}
	th, err := parseThreshold(*threshold)
	if err != nil {
		return err
	}
	spec := scale.FilterSpec{Checker: *checker, Tokenizer: *tok, Threshold: th, LabelledPairs: *labelled, Seed: *seed}
	if err := spec.Validate(); err != nil {
		return err
	}
	o, src, err := open(out, in, *seed)
	if err != nil {
		return err
	}
	defer src.Close()
	_, rep, err := scale.Filter(src, spec, o, experiment.Options{Quiet: *quiet})
	if err != nil {
		return err
	}
	fmt.Printf("filter: γ = %.4f, kept %d of %d pairs, dropped %d (%d of %d poisoned) written to %s\n",
		*rep.Gamma, rep.Kept, rep.Total, rep.Dropped, rep.TruePositives, rep.Poisoned, o.Dir)
	return verified(o.Dir, *out.verify)
}

// parseThreshold reads -threshold.
func parseThreshold(s string) (defense.Threshold, error) {
	kind, value, ok := strings.Cut(s, ":")
	v, err := strconv.ParseFloat(value, 64)
	if !ok || err != nil {
		return defense.Threshold{}, fmt.Errorf("-threshold: %q is not fixed:γ, quantile:q or labelled:max-clean-drop", s)
	}
	t := defense.Threshold{Kind: kind, Value: v}
	if kind == defense.KindLabelled {
		t.Value, t.MaxCleanDrop = 0, v
	}
	return t, nil
}

// verifyCommand implements "mmpoison verify".
func verifyCommand(args []string) error {
	fs := newFlags("verify", "")
	dir := fs.String("in", "", "the input (a folder written by poison or filter)")
	if help, err := parse(fs, args); help || err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("-in: give the folder to verify")
	}
	return verified(*dir, true)
}
