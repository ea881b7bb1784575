package experiment

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mmpoison/mmpoison/evalkit/cache"
	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/loaders"
)

func TestValidate(t *testing.T) {
	paper := PaperSpec(DatasetCOCO, "/data/coco", "w.safetensors", "vocab.txt.gz")
	for _, tc := range []struct {
		name   string
		change func(*Spec)
		want   string // "" means valid
	}{
		{"paper spec", func(*Spec) {}, ""},
		{"flickr-pascal", func(s *Spec) { *s = PaperSpec(DatasetFlickrPASCAL, "/d", "w", "v") }, ""},
		{"quick", func(s *Spec) { *s = QuickSpec() }, ""},
		{"unknown dataset", func(s *Spec) { s.Real.Dataset = "imagenet" }, `unknown dataset "imagenet"`},
		{"no root", func(s *Spec) { s.Real.Root = "" }, "needs Root"},
		{"no weights", func(s *Spec) { s.Real.Weights = "" }, "needs a pre-trained checkpoint"},
		{"no tokenizer", func(s *Spec) { s.Real.Tokenizer = "" }, "needs a Tokenizer"},
		{"negative cap", func(s *Spec) { s.Real.MaxTrainImages = -1 }, "MaxTrainImages is -1"},
		{"min lr fraction", func(s *Spec) { s.Finetune.MinLRFraction = 2 }, "MinLRFraction 2"},
		{"tokenizer without weights", func(s *Spec) { *s = QuickSpec(); s.Real.Tokenizer = "v" }, "needs a pre-trained checkpoint"},
		{"crop on Fashion-MNIST", func(s *Spec) { *s = QuickSpec(); s.Real.TrainCrop = true }, "PreCaption and TrainCrop"},
		{"captions on Fashion-MNIST", func(s *Spec) { *s = QuickSpec(); s.Real.PreCaption = true }, "PreCaption and TrainCrop"},
		{"backdoor on coco", func(s *Spec) {
			s.Attack = attack.Spec{Kind: attack.KindBackdoor, Goals: []attack.Goal{{Target: "dog"}}, Rate: 0.01}
		}, ""},
		{"backdoor with a source", func(s *Spec) { s.Attack.Kind, s.Attack.Mode = attack.KindBackdoor, attack.Inject }, "leave the source class empty"},
		{"no test images", func(s *Spec) { s.Data.TestPerClass = 0 }, "data sizes"},
		{"no pool", func(s *Spec) { *s = QuickSpec(); s.Data.Pool = 0 }, "data sizes"},
		{"fine-tuning epochs", func(s *Spec) { s.Finetune.Epochs = 0 }, "fine-tuning epochs must be ≥ 1: 0"},
		{"pre-training epochs", func(s *Spec) { *s = QuickSpec(); s.Pretrain.Epochs = -1 }, "pre-training epochs must be ≥ 0: -1"},
		{"learning rate", func(s *Spec) { s.Finetune.LR = -1 }, "learning rate -1 is not a positive number"},
		{"batch", func(s *Spec) { s.Batch = 1 }, "batch size 1 is below 2"},
		{"devices", func(s *Spec) { s.Batch, s.Devices = 128, 3 }, "batch size 128 cannot be split over 3 devices"},
		{"negative devices", func(s *Spec) { s.Devices = -1 }, "over -1 devices"},
		{"four devices", func(s *Spec) { s.Batch, s.Devices = 128, 4 }, ""},
		{"freeze", func(s *Spec) { s.Finetune.Freeze = []string{"audio"} }, `cannot freeze "audio"`},
		{"preset", func(s *Spec) { *s = QuickSpec(); s.Model = "huge" }, `"huge"`},
		{"preset unused with weights", func(s *Spec) { s.Model = "huge" }, ""},
		{"attack kind", func(s *Spec) { s.Attack.Kind = "IV" }, `unknown kind "IV"`},
		{"rate", func(s *Spec) { s.Attack.Rate = 1.5 }, "φ = 1.5 is outside (0, 1)"},
		{"unknown class on Fashion-MNIST", func(s *Spec) { *s = QuickSpec(); s.Attack.Goals[0].Source = "hat" },
			`source class: unknown class name "hat": valid classes are "tshirt", "trouser"`},
		{"unknown goal of attack III", func(s *Spec) {
			*s = QuickSpec()
			s.Attack.Kind, s.Attack.Goals = attack.KindMultiLabel, append(s.Attack.Goals, attack.Goal{Source: "sandal", Target: "shoe"})
		}, `attack goal 1's target class: unknown class name "shoe"`},
		{"class names in any case", func(s *Spec) { *s = QuickSpec(); s.Attack.Goals[0].Source = "Trouser" }, ""},
		{"source is target", func(s *Spec) { *s = QuickSpec(); s.Attack.Goals[0].Target = "TROUSER" }, "source and target are the same class"},
		{"class names of real data are checked when loaded", func(s *Spec) { s.Attack.Goals[0].Source = "hat" }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := paper
			tc.change(&s)
			err := s.Validate()
			if tc.want == "" && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func partsHash(t *testing.T, s Spec) string {
	t.Helper()
	k, err := cache.NewKey("result", s.CacheParts())
	if err != nil {
		t.Fatal(err)
	}
	return k.Hash
}

// Every part of a spec is in its cache parts: changing any value changes the key, while values that describe
// the same experiment (an ignored rate, the default mode spelt out, the data folder) do not.
func TestCacheParts(t *testing.T) {
	base := QuickSpec()
	for _, tc := range []struct {
		name   string
		change func(*Spec)
		same   bool
	}{
		{"model", func(s *Spec) { s.Model = "small" }, false},
		{"pool", func(s *Spec) { s.Data.Pool++ }, false},
		{"train", func(s *Spec) { s.Data.Train++ }, false},
		{"test per class", func(s *Spec) { s.Data.TestPerClass++ }, false},
		{"held out", func(s *Spec) { s.Data.HeldOut = 5 }, false},
		{"source images", func(s *Spec) { s.Data.SourceImages++ }, false},
		{"attack kind", func(s *Spec) { s.Attack.Kind = attack.KindSingleImage }, false},
		{"goal", func(s *Spec) { s.Attack.Goals = []attack.Goal{{Source: "coat", Target: "bag"}} }, false},
		{"rate", func(s *Spec) { s.Attack.Rate = 0.02 }, false},
		{"count", func(s *Spec) { s.Attack.Count = 5 }, false},
		{"every source caption", func(s *Spec) { s.Attack.AllSourceCaptions = true }, false},
		{"mode", func(s *Spec) { s.Attack.Mode = attack.Inject }, false},
		{"pre-training", func(s *Spec) { s.Pretrain.LR *= 2 }, false},
		{"fine-tuning", func(s *Spec) { s.Finetune.Epochs++ }, false},
		{"min lr", func(s *Spec) { s.Finetune.MinLRFraction = 0.1 }, false},
		{"freeze", func(s *Spec) { s.Finetune.Freeze = []string{"text"} }, false},
		{"batch", func(s *Spec) { s.Batch = 32 }, false},
		{"devices", func(s *Spec) { s.Devices = 2 }, false},
		{"one device named", func(s *Spec) { s.Devices = 1 }, true},
		{"seed", func(s *Spec) { s.Seed++ }, false},
		{"real", func(s *Spec) { s.Real.MaxTrainImages = 3 }, false},
		{"pool seed", func(s *Spec) { s.poolSeed = 7 }, false},
		{"data folder", func(s *Spec) { s.Data.Dir = "/elsewhere" }, true},
		{"pool seed equal to the seed", func(s *Spec) { s.poolSeed = s.Seed }, true},
		{"ignored rate", func(s *Spec) { s.Attack.Count, s.Attack.Rate = 5, 0.3 }, false},
	} {
		s := base
		tc.change(&s)
		if same := partsHash(t, s) == partsHash(t, base); same != tc.same {
			t.Errorf("%s: same key %v, want %v", tc.name, same, tc.same)
		}
	}
	counted := base
	counted.Attack.Count = 5
	ignored := counted
	ignored.Attack.Rate = 0.3
	if partsHash(t, counted) != partsHash(t, ignored) {
		t.Error("a rate ignored for a count changes the key")
	}
}

// Each stage's key follows exactly the parts it reads.
func TestStageKeys(t *testing.T) {
	base := QuickSpec()
	pre := func(s Spec) string {
		k, err := pretrainKey(s)
		if err != nil {
			t.Fatal(err)
		}
		return k.Hash
	}
	for _, tc := range []struct {
		name      string
		change    func(*Spec)
		pre, fine bool // whether the pre-training and fine-tuning keys stay
	}{
		{"pool", func(s *Spec) { s.Data.Pool++ }, false, false},
		{"pre-training", func(s *Spec) { s.Pretrain.Epochs++ }, false, false},
		{"seed", func(s *Spec) { s.Seed++ }, false, false},
		{"train split", func(s *Spec) { s.Data.Train++ }, true, false},
		{"attack", func(s *Spec) { s.Attack.Rate = 0.005 }, true, false},
		{"fine-tuning", func(s *Spec) { s.Finetune.LR *= 2 }, true, false},
		{"held out", func(s *Spec) { s.Data.HeldOut = 1000 }, true, true},
		{"test per class", func(s *Spec) { s.Data.TestPerClass++ }, true, false},
		{"devices", func(s *Spec) { s.Devices = 4 }, false, false},
		{"one device named", func(s *Spec) { s.Devices = 1 }, true, true},
	} {
		s := base
		tc.change(&s)
		if (pre(s) == pre(base)) != tc.pre || (finetuneHash(t, s, true) == finetuneHash(t, base, true)) != tc.fine {
			t.Errorf("%s: pre-training key kept %v (want %v), fine-tuning key kept %v (want %v)", tc.name,
				pre(s) == pre(base), tc.pre, finetuneHash(t, s, true) == finetuneHash(t, base, true), tc.fine)
		}
	}
	if finetuneHash(t, base, true) == finetuneHash(t, base, false) {
		t.Error("the clean and the poisoned model share a key")
	}
	// PreCaption and TrainCrop change what fine-tuning reads.
	paper := PaperSpec(DatasetCOCO, "/nonexistent/coco", "/nonexistent/ckpt.safetensors", "/nonexistent/bpe.txt.gz")
	seen := map[string]bool{}
	for _, on := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
		s := paper
		s.Real.PreCaption, s.Real.TrainCrop = on[0], on[1]
		if k := finetuneHash(t, s, true); seen[k] {
			t.Errorf("PreCaption %v, TrainCrop %v shares a fine-tuning key with another setting", on[0], on[1])
		} else {
			seen[k] = true
		}
	}
}

// The default checker (seed s+1 on the pool of seed s) never shares a pre-training key with the victim of
// seed s+1, whose pool is another draw; the victims' own keys do not change.
func TestReseededOwnsItsPool(t *testing.T) {
	victim := &Data{Spec: QuickSpec()}
	next := QuickSpec()
	next.Seed++
	checker := victim.Reseeded(victim.Spec.Seed + 1)
	if checker.Spec.Seed != next.Seed || victim.Spec.Seed != QuickSpec().Seed {
		t.Fatalf("checker seed %d, victim seed %d", checker.Spec.Seed, victim.Spec.Seed)
	}
	a, _ := pretrainKey(checker.Spec)
	b, _ := pretrainKey(next)
	if a.Hash == b.Hash {
		t.Fatal("the checker of seed 42 shares its pre-training key with the victim of seed 43")
	}
	again := checker.Reseeded(100) // Still the victim's pool.
	if again.Spec.poolSeedOrSeed() != victim.Spec.Seed {
		t.Errorf("a reseeded checker's pool seed is %d, want the victim's %d", again.Spec.poolSeedOrSeed(), victim.Spec.Seed)
	}
}

// With a checkpoint, the pre-training stage's key follows the file (path, size, modification time) and nothing
// else; fine-tuning reads the real-data settings.
func TestWeightsKey(t *testing.T) {
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "w.safetensors")
	if err := os.WriteFile(ckpt, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	key := func() string {
		k, err := cache.NewKey("pretrained", cache.IdentifyFile(ckpt))
		if err != nil {
			t.Fatal(err)
		}
		return k.Hash
	}
	s := PaperSpec(DatasetCOCO, dir, ckpt, "vocab")
	k0 := key()
	capped := s
	capped.Real.MaxTrainImages = 10
	if finetuneHash(t, s, true) == finetuneHash(t, capped, true) {
		t.Error("fine-tune key ignores MaxTrainImages")
	}
	if err := os.Chtimes(ckpt, time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	k1 := key()
	if k1 == k0 {
		t.Error("pre-training key unchanged after the checkpoint's mtime changed")
	}
	before := finetuneHash(t, s, true)
	if err := os.WriteFile(ckpt, []byte("xy"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.Chtimes(ckpt, time.Now(), time.Now().Add(time.Hour))
	if key() == k1 || finetuneHash(t, s, true) == before {
		t.Error("keys unchanged after the checkpoint's size changed")
	}
}

func TestCapTrain(t *testing.T) {
	var entries []loaders.Entry
	labels := []int{dataset.NoLabel, 0, dataset.NoLabel, 1, 0, dataset.NoLabel, 1}
	for i, l := range labels {
		entries = append(entries, loaders.Entry{ID: string(rune('a' + i)), Path: "x", Captions: []string{"c"}, Label: l})
	}
	ix, err := loaders.NewIndex("t", []string{"p", "q"}, entries)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		max  int
		want string
	}{{0, "abcdefg"}, {10, "abcdefg"}, {2, "bd"}, {4, "bdeg"}, {5, "abdeg"}, {6, "abcdeg"}} {
		var got string
		for _, e := range capTrain(ix, tc.max).Entries() {
			got += e.ID
		}
		if got != tc.want {
			t.Errorf("cap %d: kept %q, want %q", tc.max, got, tc.want)
		}
	}
}
