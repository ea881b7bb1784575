package experiment_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/report"
)

// The paper's setup on COCO: Attack II boat → dog in re-pair mode, fine-tuned 10 epochs from a pre-trained
// checkpoint at lr 1e-5 → 1e-6, batch 128.
func ExamplePaperSpec() {
	s := experiment.PaperSpec(experiment.DatasetCOCO, "/data/coco", "ViT-B-32.safetensors", "bpe_simple_vocab_16e6.txt.gz")
	fmt.Println(s.Dataset, s.Source, "→", s.Target, s.Mode, s.Rate, s.TestPerClass, "test images per class")
	fmt.Printf("%d epochs, lr %.0e → %.0e, batch %d, %v\n", s.FinetuneEpochs, s.FinetuneLR, s.FinetuneLR*s.MinLRFraction, s.BatchSize, s.Validate())
	// Output:
	// coco boat → dog repair 0.0024 50 test images per class
	// 10 epochs, lr 1e-05 → 1e-06, batch 128, <nil>
}

// The whole paper pipeline on generated miniatures of COCO and Flickr-PASCAL and a random checkpoint in OpenAI
// naming: load, convert the checkpoint (the pre-training stage), fine-tune clean and poisoned, evaluate, and
// render every table, figure and the report folder. A second run finds every stage in the cache.
func TestPaperPipeline(t *testing.T) {
	vocab, err := experiment.FindCLIPVocab("../../../shared/data/clip/bpe_simple_vocab_16e6.txt.gz")
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	t.Setenv("MMPOISON_CACHE", filepath.Join(dir, "cache"))
	for _, tc := range []struct {
		dataset         string
		train, test     int
		goal, paperGoal string
		paperMinRank    string
	}{
		{experiment.DatasetCOCO, 38, 24, "boat → dog", "COCO boat → dog", "123.1 → 15.3"},
		{experiment.DatasetFlickrPASCAL, 64, 80, "sheep → aeroplane", "Flickr-PASCAL sheep → aeroplane", "51.0 → 2.19"},
	} {
		t.Run(tc.dataset, func(t *testing.T) {
			spec, err := experiment.MiniPaperSpec(tc.dataset, dir, vocab)
			if err != nil {
				t.Fatal(err)
			}
			ckpt := spec.Weights
			res, err := experiment.Run(spec, experiment.Options{Quiet: true})
			if err != nil {
				t.Fatal(err)
			}
			d := res.Data
			if d == nil || d.TrainImages != tc.train || d.TestImages != tc.test || !strings.Contains(d.Model, "mini-rgb") {
				t.Fatalf("data summary %+v", d)
			}
			if len(res.Pretrain.History) != 0 {
				t.Errorf("the pre-training stage trained (%d epochs) instead of converting the checkpoint", len(res.Pretrain.History))
			}
			if res.Poison.PoisonedPairs == 0 || res.Poison.TotalPairs != d.TrainCaptions {
				t.Errorf("poison %+v, want poisoned pairs among all %d train captions (re-pair mode)", res.Poison, d.TrainCaptions)
			}
			a := res.Poisoned.Attack
			if a.NumQueries != experiment.MiniTestPerClass*5 || a.NumTargets != experiment.MiniTestPerClass || a.NumGallery != tc.test {
				t.Errorf("attack queries %d, targets %d, gallery %d", a.NumQueries, a.NumTargets, a.NumGallery)
			}
			if len(res.FinetunePois.History) != 1 || len(res.FinetunePois.Epochs) != 1 {
				t.Errorf("poisoned fine-tuning: %d epochs of history, %d evaluations; want 1", len(res.FinetunePois.History), len(res.FinetunePois.Epochs))
			}
			source := strings.Fields(tc.goal)[0]
			for _, tab := range []struct {
				name, text string
				want       []string
			}{
				{"attack", report.AttackTable(res).Text(), []string{tc.goal, "class-" + source + " captions", "Hit@10", "MinRank"}},
				{"utility", report.UtilityTable(res).Text(), []string{"TR@10", "IR@10", "classes other than " + source}},
				{"paper", report.PaperComparison(res).Text(), []string{tc.paperGoal, tc.paperMinRank, "this run: " + tc.dataset + " " + tc.goal}},
			} {
				for _, w := range tab.want {
					if !strings.Contains(tab.text, w) {
						t.Errorf("%s table lacks %q:\n%s", tab.name, w, tab.text)
					}
				}
			}
			out := filepath.Join(dir, "report-"+tc.dataset)
			files, err := report.Write(out, res)
			if err != nil {
				t.Fatal(err)
			}
			md, err := os.ReadFile(filepath.Join(out, "report.md"))
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range []string{"pre-trained checkpoint " + ckpt, "fine-tuned on " + tc.dataset,
				fmt.Sprintf("%d train images", tc.train), "Utility on the test split"} {
				if !strings.Contains(string(md), w) {
					t.Errorf("report.md lacks %q:\n%s", w, md)
				}
			}
			if len(files) < 5 {
				t.Errorf("report wrote %d files: %v", len(files), files)
			}

			again, err := experiment.Run(spec, experiment.Options{Quiet: true})
			if err != nil {
				t.Fatal(err)
			}
			if !again.Pretrain.Cached || !again.FinetuneClean.Cached || !again.FinetunePois.Cached {
				t.Errorf("second run retrained: cached %v %v %v", again.Pretrain.Cached, again.FinetuneClean.Cached, again.FinetunePois.Cached)
			}
			if again.Poisoned.Attack.MinRank.Mean != res.Poisoned.Attack.MinRank.Mean {
				t.Errorf("cached MinRank %v differs from %v", again.Poisoned.Attack.MinRank.Mean, res.Poisoned.Attack.MinRank.Mean)
			}
		})
	}
}
