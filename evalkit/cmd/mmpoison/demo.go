package main

import (
	"errors"
	"flag"
	"fmt"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/report"
	"github.com/mmpoison/mmpoison/kernelext"
	"github.com/mmpoison/mmpoison/poisoning/attack"
)

// demo implements "mmpoison demo".
func demo(args []string) error {
	spec, out, quiet, err := demoSpec(args)
	if err != nil || out == "" {
		return err
	}
	res, err := experiment.Run(spec, experiment.Options{Quiet: quiet})
	var short *experiment.FitError
	if errors.As(err, &short) {
		return errors.New(short.CommandLine())
	} else if err != nil {
		return err
	}
	fmt.Println(report.Setup(res))
	fmt.Println()
	kernelext.ShowTable(report.AttackTable(res))
	kernelext.ShowTable(report.UtilityTable(res))
	files, err := report.Write(out, res)
	if err != nil {
		return err
	}
	fmt.Printf("report: %d files in %s (report.md, results.json, figures); total %.0f s\n", len(files), out, res.Timings["total"])
	return nil
}

// demoSpec reads demo's command line into a validated spec, the report folder and -quiet; out is "" after -h.
//
// The spec starts from experiment.DefaultSpec (experiment.QuickSpec with -quick); -attack K replaces its
// attack by K's standard setting (experiment.Spec.StandardAttack), and every flag given explicitly then
// overrides its part.
func demoSpec(args []string) (spec experiment.Spec, out string, quiet bool, err error) {
	fs := newFlags("demo", "")
	def := experiment.DefaultSpec()
	outDir := outFlag(fs, "mmpoison-report", "report.md, results.json, poison_manifest.json, figures")
	quick := quickFlag(fs)
	q := quietFlag(fs)
	kind := fs.String("attack", string(def.Attack.Kind), "attack kind, run in its standard setting unless other flags change it:"+attackKinds()+"\n")
	a := attackFlags(fs, def.Attack)
	preset := presetFlag(fs, def.Model)
	seed := seedFlag(fs, def.Seed)
	batch := batchFlag(fs, def.Batch, "every training")
	devices := devicesFlag(fs)
	freeze := listFlag(fs, "freeze", nil, "tower(s) kept fixed while fine-tuning: visual, text, or visual,text")
	data := dataFlags(fs, def.Data)
	pretrainEpochs := fs.Int("pretrain-epochs", def.Pretrain.Epochs, "pre-training epochs")
	epochs := fs.Int("epochs", def.Finetune.Epochs, "fine-tuning epochs")
	if help, err := parse(fs, args); help || err != nil {
		return spec, "", false, err
	}
	if err := checkMinimums(fs, minimum{"batch", 2}, minimum{"count", 0}, minimum{"trigger-size", 0},
		minimum{"pool", 1}, minimum{"train", 1}, minimum{"test-per-class", 1}, minimum{"source-images", 0},
		minimum{"pretrain-epochs", 0}, minimum{"epochs", 1}, minimum{"devices", 1}); err != nil {
		return spec, "", false, err
	}
	spec = baseSpec(*quick)
	if wasSet(fs, "attack") {
		if spec, err = spec.StandardAttack(attack.Kind(*kind)); err != nil {
			return spec, "", false, fmt.Errorf("-attack: %w", err)
		}
	}
	if err := a.apply(fs, &spec.Attack); err != nil {
		return spec, "", false, err
	}
	data.apply(fs, &spec.Data)
	for _, o := range []struct {
		name string
		set  func()
	}{
		{"preset", func() { spec.Model = *preset }}, {"seed", func() { spec.Seed = *seed }},
		{"batch", func() { spec.Batch = *batch }}, {"devices", func() { spec.Devices = *devices }},
		{"freeze", func() { spec.Finetune.Freeze = *freeze }},
		{"pretrain-epochs", func() { spec.Pretrain.Epochs = *pretrainEpochs }}, {"epochs", func() { spec.Finetune.Epochs = *epochs }},
	} {
		if wasSet(fs, o.name) {
			o.set()
		}
	}
	if err := spec.Validate(); err != nil {
		return spec, "", false, err
	}
	return spec, *outDir, *q, writableOut(*outDir)
}

// attackFlagValues are the attack flags of demo.
type attackFlagValues struct {
	source, target, mode, targetImage *string
	rate                              *float64
	count, triggerSize                *int
	goals                             *list
}

// attackFlags defines demo's attack flags, with def's values as defaults.
func attackFlags(fs *flag.FlagSet, def attack.Spec) attackFlagValues {
	return attackFlagValues{
		source:      fs.String("source", def.Source(), "class A whose captions are poisoned (the first goal's source)"),
		target:      fs.String("target", def.Target(), "class B whose images class-A captions should retrieve (the first goal's target)"),
		rate:        fs.Float64("rate", def.Rate, "poisoning rate φ in (0, 1), in pairs of the whole training set (φ is a fraction: 2% is 0.02)"),
		count:       fs.Int("count", 0, "poison exactly this many pairs instead of -rate"),
		mode:        fs.String("mode", string(def.Mode), "inject (add poisoned pairs) or repair (re-pair existing class-A captions)"),
		goals:       listFlag(fs, "goals", nil, "further goals besides -source → -target, as A:B,C:D (attack III)"),
		targetImage: fs.String("target-image", "", "id of the class-B training image x* (attack I; default: chosen by the seed)"),
		triggerSize: fs.Int("trigger-size", 0, "side of the square trigger patch in pixels (backdoor; 0: its standard setting's)"),
	}
}

// apply sets the parts of s whose flags were given.
func (v attackFlagValues) apply(fs *flag.FlagSet, s *attack.Spec) error {
	if len(s.Goals) == 0 {
		s.Goals = []attack.Goal{{}}
	}
	s.Goals = append([]attack.Goal(nil), s.Goals...)
	if wasSet(fs, "source") {
		s.Goals[0].Source = *v.source
	}
	if wasSet(fs, "target") {
		s.Goals[0].Target = *v.target
	}
	if wasSet(fs, "goals") {
		extra, err := goals("goals", *v.goals)
		if err != nil {
			return err
		}
		s.Goals = append(s.Goals[:1], extra...)
	}
	if wasSet(fs, "rate") && wasSet(fs, "count") {
		return errors.New("-rate and -count both set the number of poisoned pairs: give one of them")
	}
	if wasSet(fs, "rate") {
		if err := checkRate(*v.rate); err != nil {
			return err
		}
		s.Rate, s.Count, s.AllSourceCaptions = *v.rate, 0, false
	}
	if wasSet(fs, "count") {
		s.Count, s.AllSourceCaptions = *v.count, false
	}
	if wasSet(fs, "mode") {
		s.Mode = attack.Mode(*v.mode)
	}
	if wasSet(fs, "target-image") {
		s.TargetImageID = *v.targetImage
	}
	if wasSet(fs, "trigger-size") {
		s.Trigger.Size = *v.triggerSize
	}
	return nil
}

// dataFlagValues are the data-size flags of demo.
type dataFlagValues struct {
	pool, train, testPerClass, sourceImages *int
	dir                                     *string
}

// dataFlags defines demo's data flags, with def's values as defaults.
func dataFlags(fs *flag.FlagSet, def experiment.DataSpec) dataFlagValues {
	return dataFlagValues{
		pool:         fs.Int("pool", def.Pool, "images in the clean pre-training pool"),
		train:        fs.Int("train", def.Train, "images in the fine-tuning train split"),
		testPerClass: fs.Int("test-per-class", def.TestPerClass, "test images per class"),
		sourceImages: fs.Int("source-images", def.SourceImages, "images of each source class the fine-tuning split keeps (0: all)"),
		dir: fs.String("data-dir", "", "folder holding the four Fashion-MNIST .gz files (default: /usr/share/datasets/fashion-mnist, "+
			"else ~/.cache/mmpoison/fashion-mnist, downloading the official files there if missing)"),
	}
}

// apply sets the parts of d whose flags were given.
func (v dataFlagValues) apply(fs *flag.FlagSet, d *experiment.DataSpec) {
	for name, set := range map[string]func(){
		"pool": func() { d.Pool = *v.pool }, "train": func() { d.Train = *v.train },
		"test-per-class": func() { d.TestPerClass = *v.testPerClass }, "source-images": func() { d.SourceImages = *v.sourceImages },
		"data-dir": func() { d.Dir = *v.dir },
	} {
		if wasSet(fs, name) {
			set()
		}
	}
}
