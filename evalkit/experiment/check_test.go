package experiment

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/mmpoison/mmpoison/evalkit/cache"
	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// fakeData is Data for spec on a generated split of the demo's shape (perClass images of each of the ten
// Fashion-MNIST classes, five captions each, blank 28×28 images): what resolveGoals and the checks read.
func fakeData(spec Spec, perClass int) *Data {
	classes := []string{"tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"}
	train := &dataset.Dataset{Name: "fake/train", Classes: classes}
	for i := range perClass * len(classes) {
		ex := dataset.Example{ID: fmt.Sprint(i), Label: i % len(classes), Image: dataset.Image{Height: 28, Width: 28, Channels: 1, Pix: make([]uint8, 28*28)}}
		for k := range 5 {
			ex.Captions = append(ex.Captions, fmt.Sprintf("%s %d %d", classes[ex.Label], i, k))
		}
		train.Examples = append(train.Examples, ex)
	}
	return &Data{Spec: spec, Splits: &dataset.Splits{Train: train, Pool: train}}
}

// The checks after loading catch an attack the fine-tuning split cannot hold, a class kept larger than it is and
// a batch larger than a split, and name what would work; each suggestion is checked by running the check again
// with it.
func TestCheckAfterLoading(t *testing.T) {
	bd := attack.Spec{Kind: attack.KindBackdoor, Goals: []attack.Goal{{Target: "bag"}}, Count: 2000}
	for _, tc := range []struct {
		name   string
		change func(*Spec)
		want   *FitError // nil: no FitError
		text   []string  // in CommandLine (a FitError) or Error
	}{
		{"the demo fits", func(*Spec) {}, nil, nil},
		{"rate 0.02", func(s *Spec) { s.Attack.Rate = 0.02 }, &FitError{MaxRate: 0.01, MaxCount: 100, SourceImages: 41},
			[]string{"-rate 0.02 asks for 200 poisoned pairs (φ = 2% of the 10000 fine-tuning pairs, re-paired in repair mode)",
				"keeps 20 of its 220 trouser images (-source-images 20), so it has only 100 trouser captions",
				"What would work: -rate 0.01 or lower; -count 100 or fewer; -source-images 41 or more (of 220)"}},
		{"rate 0.5", func(s *Spec) { s.Attack.Rate = 0.5 }, &FitError{MaxRate: 0.01, MaxCount: 100}, []string{"-rate 0.01 or lower; -count 100 or fewer"}},
		{"count 5000", func(s *Spec) { s.Attack.Count = 5000 }, &FitError{MaxRate: 0.01, MaxCount: 100},
			[]string{"-count 5000 asks for 5000 poisoned pairs", "What would work: -count 100 or fewer; -rate 0.01 or lower"}},
		{"inject at the default rate", func(s *Spec) { s.Attack.Mode = attack.Inject },
			&FitError{MaxRate: 0.0099, MaxCount: 100, Mode: attack.Repair, SourceImages: 21},
			[]string{"-rate 0.01 in inject mode asks for 101 poisoned pairs", "-rate 0.0099 or lower; -count 100 or fewer; -mode repair; -source-images 21 or more"}},
		{"all trousers kept", func(s *Spec) { s.Data.SourceImages, s.Attack.Rate = 0, 0.5 }, &FitError{MaxRate: 0.1, MaxCount: 1100},
			[]string{"-rate 0.5 asks for 5500 poisoned pairs (φ = 50% of the 11000 fine-tuning pairs", "has only 1100 trouser captions", "-rate 0.1 or lower"}},
		{"backdoor carriers", func(s *Spec) { s.Attack = bd; s.Data.SourceImages = 0 }, &FitError{MaxRate: 0.152, MaxCount: 1980},
			[]string{"only 1980 images outside class \"bag\" to carry the trigger", "-count 1980 or fewer"}},
		{"more source images than the split has", func(s *Spec) { s.Data.SourceImages = 221 }, nil,
			[]string{`221 images of class "trouser" asked to be kept in the fine-tuning split (Data.SourceImages), but it has only 220`}},
		{"batch larger than the split", func(s *Spec) { s.Batch = 20000 }, nil, []string{"batch size 20000 is larger than the 10000 fine-tuning pairs"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := DefaultSpec()
			tc.change(&spec)
			d := fakeData(spec, 220)
			err := d.resolveGoals()
			if err == nil {
				err = d.Check()
			}
			var fe *FitError
			if tc.want == nil {
				if errors.As(err, &fe) || (err == nil) != (tc.text == nil) {
					t.Fatalf("error %v", err)
				}
			} else if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FitError", err)
			} else if fe.MaxRate != tc.want.MaxRate || fe.MaxCount != tc.want.MaxCount || fe.Mode != tc.want.Mode || fe.SourceImages != tc.want.SourceImages {
				t.Errorf("got rate %v, count %d, mode %q, source images %d; want %v, %d, %q, %d", fe.MaxRate, fe.MaxCount, fe.Mode, fe.SourceImages,
					tc.want.MaxRate, tc.want.MaxCount, tc.want.Mode, tc.want.SourceImages)
			}
			text := fmt.Sprint(err)
			if fe != nil {
				text = fe.CommandLine()
			}
			for _, w := range tc.text {
				if !strings.Contains(text, w) {
					t.Errorf("message lacks %q:\n%s", w, text)
				}
			}
		})
	}
}

// Goals name their classes as the dataset spells them once loaded: "-source Trouser" runs and reports "trouser".
func TestGoalsSpelledAsTheDataset(t *testing.T) {
	spec := DefaultSpec()
	spec.Attack.Goals = []attack.Goal{{Source: " Trouser", Target: "BAG"}}
	d := fakeData(spec, 30)
	if err := d.resolveGoals(); err != nil {
		t.Fatal(err)
	}
	if g := d.Spec.Attack.Goals[0]; g.Source != "trouser" || g.Target != "bag" || spec.Attack.Goals[0].Source != " Trouser" {
		t.Errorf("goal %+v (the caller's spec: %+v)", g, spec.Attack.Goals[0])
	}
}

// Options.CacheDir keeps a run's models in its own cache, so that a fresh folder trains every stage anew.
func TestOptionsCacheDir(t *testing.T) {
	dir := t.TempDir()
	key, err := cache.NewKey("pretrain", "cache-dir-test")
	if err != nil {
		t.Fatal(err)
	}
	produced := 0
	produce := func(st *Stage) (*context.Context, clip.Config, error) {
		produced++
		cfg, err := clip.Preset("tiny")
		if err != nil {
			return nil, cfg, err
		}
		cfg.VocabSize = 64
		ctx, err := clip.NewContext(cfg, 1)
		return ctx, cfg, err
	}
	for i, want := range []bool{false, true} {
		st, err := cachedStage(Options{CacheDir: dir}, key, produce)
		if err != nil {
			t.Fatal(err)
		}
		if st.Cached != want || !strings.HasPrefix(st.Path, dir) {
			t.Errorf("call %d: cached %v, path %s (want under %s)", i, st.Cached, st.Path, dir)
		}
	}
	if produced != 1 {
		t.Errorf("produced %d times", produced)
	}
}
