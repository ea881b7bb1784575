package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/internal/minidata"
	"github.com/mmpoison/mmpoison/evalkit/report"
	"github.com/mmpoison/mmpoison/kernelext"
	"github.com/mmpoison/mmpoison/poisoning/atomicfile"
)

// paperUsage is printed by "mmpoison paper -h".
const paperUsage = `usage: mmpoison paper -dataset coco|flickr-pascal -root DIR -weights W.safetensors -tokenizer VOCAB
       [-source A -target B -rate φ -epochs N -max-train N -batch N -test-per-class N -seed N -out DIR]
   or: mmpoison paper -mini DIR -tokenizer VOCAB [-dataset coco|flickr-pascal] [-prepare]

The paper's setup (Yang et al., ICML 2023): a pre-trained CLIP fine-tuned on COCO or Flickr-PASCAL, clean and
poisoned by Attack II in re-pair mode (COCO: boat → dog at φ = 0.24%; Flickr-PASCAL: sheep → aeroplane at
φ = 0.085%), 10 epochs, AdamW lr 1e-5 on a cosine schedule to 1e-6, weight decay 0.2, batch 128; then the attack
table, the utility table and the paper's numbers beside this run's, and a report folder (report.md,
results.json, poison_manifest.json, figures). Every stage is cached (the converted checkpoint by its path, size
and modification time), so a re-run with the same settings loads instead of training.

Data processing is the official code's: every caption (train and test) is lower-cased, stripped of
punctuation and cut to 77 words before the attack and the tokenizer see it; every time a batch draws a
training image it is a new RandomResizedCrop (scale 0.9–1.0, ratio 3/4–4/3, bicubic) of the file at full size,
seeded by -seed; test images are resized and centre-cropped.

Layouts under -root:
  coco           annotations/captions_train2014.json, instances_train2014.json (and val2014; or the 2017
                 files), images in train2014/ and val2014/
  flickr-pascal  dataset_flickr30k.json, flickr30k-images/, pascal/dataset/<class>/*.jpg and
                 pascal/sentence/<class>/*.txt (PASCAL-sentences as the UIUC download script saves it)

-weights is OpenAI/open_clip or HuggingFace safetensors (HuggingFace's config.json beside it); -tokenizer is
OpenAI's bpe_simple_vocab_16e6.txt.gz or a HuggingFace vocab.json with merges.txt beside it.

Memory: images are held at the model's resolution S, S·S·3 bytes each (the training crops are decoded from the
files per batch): about 150 KB per image at 224 (COCO's 119,000 training images ≈ 18 GB). -max-train caps the
training images (labelled ones first, then unlabelled Flickr30k ones).

-mini DIR writes a generated miniature of the dataset and a random tiny checkpoint into DIR and runs the
pipeline on them with small settings (1 epoch, batch 8): what CI runs. With -prepare it only writes them and
the spec of the run as DIR/spec.json (notebooks/pretrained.ipynb reads it).

flags:
`

// paper implements "mmpoison paper".
func paper(args []string) error {
	fs := newFlags("paper", paperUsage)
	dataset := fs.String("dataset", experiment.DatasetCOCO, "coco or flickr-pascal")
	root := fs.String("root", "", "dataset folder (see the layouts above)")
	weightsPath := fs.String("weights", "", "pre-trained CLIP checkpoint (.safetensors)")
	tok := fs.String("tokenizer", "", "bpe_simple_vocab_16e6.txt.gz, or a HuggingFace vocab.json with merges.txt beside it (required; default: $"+vocabEnv+")")
	mini := fs.String("mini", "", "write a generated miniature dataset and a random checkpoint into this folder and run on them")
	prepare := fs.Bool("prepare", false, "with -mini: only write the miniature, the checkpoint and spec.json")
	source := fs.String("source", "", "class A whose captions are poisoned (default: the paper's, boat or sheep)")
	target := fs.String("target", "", "class B whose images class-A captions should retrieve (default: dog or aeroplane)")
	rate := fs.Float64("rate", 0, "poisoning rate φ in (0, 1), in pairs of the whole training set (default: the paper's)")
	epochs := fs.Int("epochs", 0, "fine-tuning epochs (default: the paper's 10)")
	maxTrain := fs.Int("max-train", 0, "at most this many training images (0: all)")
	batch := batchFlag(fs, experiment.PaperBatchSize, "fine-tuning")
	devices := devicesFlag(fs)
	testPerClass := fs.Int("test-per-class", 0, "test images per class (default: the paper's, 50 for COCO, 25 for Flickr-PASCAL)")
	seed := seedFlag(fs, experiment.PaperSeed)
	out := outFlag(fs, "mmpoison-paper", "report.md, results.json, figures")
	quiet := quietFlag(fs)
	if help, err := parse(fs, args); help || err != nil {
		return err
	}
	if err := checkPaperFlags(fs, *prepare, *mini); err != nil {
		return fmt.Errorf("paper: %w", err)
	}
	if err := findVocab(tok, *mini != ""); err != nil {
		return fmt.Errorf("paper: %w", err)
	}
	spec := experiment.PaperSpec(*dataset, *root, *weightsPath, *tok)
	if *mini != "" {
		var err error
		if spec, err = minidata.PaperSpec(*dataset, *mini, *tok); err != nil {
			return fmt.Errorf("paper: %w", err)
		}
	}
	for name, set := range map[string]func(){
		"source": func() { spec.Attack.Goals[0].Source = *source }, "target": func() { spec.Attack.Goals[0].Target = *target },
		"rate": func() { spec.Attack.Rate = *rate }, "epochs": func() { spec.Finetune.Epochs = *epochs },
		"max-train": func() { spec.Real.MaxTrainImages = *maxTrain }, "batch": func() { spec.Batch = *batch },
		"devices":        func() { spec.Devices = *devices },
		"test-per-class": func() { spec.Data.TestPerClass = *testPerClass }, "seed": func() { spec.Seed = *seed },
	} {
		if wasSet(fs, name) && len(spec.Attack.Goals) > 0 {
			set()
		}
	}
	if wasSet(fs, "rate") {
		if err := checkRate(*rate); err != nil {
			return fmt.Errorf("paper: %w", err)
		}
	}
	if err := spec.Validate(); err != nil {
		return fmt.Errorf("paper: %w (see mmpoison paper -h)", err)
	}
	if !*prepare {
		if err := writableOut(*out); err != nil {
			return fmt.Errorf("paper: %w", err)
		}
	}
	if *prepare {
		return writeSpec(*mini, spec)
	}
	res, err := experiment.Run(spec, experiment.Options{Quiet: *quiet})
	if err != nil {
		return err
	}
	kernelext.ShowTable(report.AttackTable(res))
	kernelext.ShowTable(report.UtilityTable(res))
	kernelext.ShowTable(report.PaperComparison(res))
	if n := len(res.Data.Skipped); n > 0 {
		fmt.Printf("skipped %d corrupt images, the first: %s\n", n, res.Data.Skipped[0])
	}
	files, err := report.Write(*out, res)
	if err != nil {
		return err
	}
	fmt.Printf("report: %d files in %s (report.md, results.json, figures); total %.0f s\n", len(files), *out, res.Timings["total"])
	return nil
}

// checkPaperFlags checks paper's flags that need no spec: -prepare goes with -mini, the numbers' ranges, and
// that -mini's folder can be written.
func checkPaperFlags(fs *flag.FlagSet, prepare bool, mini string) error {
	if prepare && mini == "" {
		return errors.New("-prepare needs -mini DIR")
	}
	if err := checkMinimums(fs, minimum{"batch", 2}, minimum{"epochs", 1}, minimum{"max-train", 0},
		minimum{"test-per-class", 1}, minimum{"devices", 1}); err != nil {
		return err
	}
	if mini != "" {
		return writableDir("mini", mini)
	}
	return nil
}

// vocabEnv names the environment variable that points to the CLIP vocabulary, the default of -tokenizer.
const vocabEnv = "MMPOISON_CLIP_VOCAB"

// findVocab sets an empty -tokenizer from $MMPOISON_CLIP_VOCAB and checks that the file is there; with need, a
// vocabulary must be given.
func findVocab(tok *string, need bool) error {
	how := "pass -tokenizer or set $" + vocabEnv + " to OpenAI's bpe_simple_vocab_16e6.txt.gz " +
		"(https://github.com/openai/CLIP/raw/main/clip/bpe_simple_vocab_16e6.txt.gz) or a HuggingFace vocab.json with merges.txt beside it"
	from := "-tokenizer"
	if *tok == "" {
		*tok, from = os.Getenv(vocabEnv), "$"+vocabEnv
	}
	switch {
	case *tok == "" && need:
		return errors.New("no CLIP vocabulary given: " + how)
	case *tok == "":
		return nil
	}
	if st, err := os.Stat(*tok); err != nil || st.IsDir() {
		return fmt.Errorf("CLIP vocabulary not found: looked for %s (%s); %s", *tok, from, how)
	}
	return nil
}

// writeSpec writes spec as dir/spec.json, for "paper -mini DIR -prepare".
func writeSpec(dir string, spec experiment.Spec) error {
	data, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "spec.json")
	if err := atomicfile.WriteFile(path, data); err != nil {
		return err
	}
	fmt.Printf("paper: miniature, checkpoint and %s written\n", path)
	return nil
}
