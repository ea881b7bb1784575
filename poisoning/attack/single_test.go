package attack

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

var toyClasses = []string{"tshirt", "trouser", "sneaker", "boot", "hat"}

// toySet returns a pair set with perClass images of each of the first four toy classes (none of "hat"), each
// with caps captions.
func toySet(perClass, caps int) *dataset.PairSet {
	d := &dataset.Dataset{Name: "toy/train", Classes: toyClasses}
	for i := range 4 * perClass {
		label := i % 4
		ex := dataset.Example{ID: fmt.Sprintf("toy/train/%04d", i), Label: label,
			Image: dataset.Image{Height: 1, Width: 1, Channels: 1, Pix: []uint8{uint8(i)}}}
		for k := range caps {
			ex.Captions = append(ex.Captions, fmt.Sprintf("a %s number %d caption %d", toyClasses[label], i, k))
		}
		d.Examples = append(d.Examples, ex)
	}
	return d.Pairs()
}

// deepCopy copies everything of a pair set that Apply could modify.
func deepCopy(ps *dataset.PairSet) *dataset.PairSet {
	c := *ps
	c.Classes = slices.Clone(ps.Classes)
	c.Pairs = slices.Clone(ps.Pairs)
	c.Images = slices.Clone(ps.Images)
	for i := range c.Images {
		c.Images[i].Captions = slices.Clone(c.Images[i].Captions)
		c.Images[i].Image.Pix = slices.Clone(c.Images[i].Image.Pix)
	}
	return &c
}

// mustApply runs an attack that must succeed and checks that it left its input untouched.
func mustApply(t *testing.T, a Attack, in *dataset.PairSet) (*dataset.PairSet, *Manifest) {
	t.Helper()
	before := deepCopy(in)
	out, m, err := a.Apply(in)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, before) {
		t.Fatal("Apply modified its input")
	}
	return out, m
}

// mustFail runs an attack that must fail, returning no results and an error containing every wanted string.
func mustFail(t *testing.T, a Attack, in *dataset.PairSet, want []string) {
	t.Helper()
	out, m, err := a.Apply(in)
	if err == nil {
		t.Fatalf("Apply succeeded with %d poisoned pairs", out.NumPoisoned())
	}
	if out != nil || m != nil {
		t.Error("Apply returned results with an error")
	}
	for _, s := range want {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
}

// applyDeterministic applies an attack twice and checks both runs give the same output and manifest.
func applyDeterministic(t *testing.T, a Attack, in *dataset.PairSet, mode Mode) (*dataset.PairSet, *Manifest) {
	t.Helper()
	out1, m1 := mustApply(t, a, in)
	out2, m2 := mustApply(t, a, in)
	if !reflect.DeepEqual(out1, out2) || !reflect.DeepEqual(m1, m2) {
		t.Errorf("%s: same seed, different outputs", mode)
	}
	return out1, m1
}

func TestSingleLabelApply(t *testing.T) {
	tests := []struct {
		name     string
		perClass int
		attack   SingleLabel
		wantN    int // poisoned pairs
	}{
		{"inject 1%", 50, SingleLabel{Source: "sneaker", Target: "boot", Rate: 0.01, Seed: 1}, 10},         // N=1000: round(10.1)
		{"inject 5%", 50, SingleLabel{Source: "sneaker", Target: "boot", Rate: 0.05, Seed: 1}, 53},         // round(52.6)
		{"inject tiny", 50, SingleLabel{Source: "sneaker", Target: "boot", Rate: 0.0006, Seed: 1}, 1},      // round(0.6)
		{"inject count", 50, SingleLabel{Source: "tshirt", Target: "trouser", Count: 7, Seed: 2}, 7},       //
		{"inject all captions", 10, SingleLabel{Source: "Boot", Target: "tshirt", Count: 50, Seed: 3}, 50}, // more than one per image
		{"repair 1%", 50, SingleLabel{Source: "sneaker", Target: "boot", Rate: 0.01, Mode: Repair, Seed: 1}, 10},
		{"repair 12.5%", 50, SingleLabel{Source: "sneaker", Target: "boot", Rate: 0.125, Mode: Repair, Seed: 4}, 125},
		{"repair count", 50, SingleLabel{Source: "trouser", Target: "sneaker", Count: 3, Mode: Repair}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := toySet(tc.perClass, 5)
			out, m := mustApply(t, tc.attack, in)
			N := len(in.Pairs)
			mode, _ := tc.attack.Mode.normalize()
			wantTotal := N + tc.wantN
			if mode == Repair {
				wantTotal = N
			}
			if out.NumPoisoned() != tc.wantN || len(out.Pairs) != wantTotal {
				t.Fatalf("%d poisoned of %d pairs, want %d of %d", out.NumPoisoned(), len(out.Pairs), tc.wantN, wantTotal)
			}
			if tc.attack.Rate > 0 && math.Abs(out.PoisonRate()-tc.attack.Rate) > 1/float64(len(out.Pairs)) {
				t.Errorf("φ achieved %v, requested %v", out.PoisonRate(), tc.attack.Rate)
			}
			a, _ := dataset.ClassIndex(in.Classes, tc.attack.Source)
			b, _ := dataset.ClassIndex(in.Classes, tc.attack.Target)
			perTarget := map[int]int{}
			captionImages := map[int]bool{}
			sources := map[[2]int]bool{}
			for i, p := range out.Pairs {
				if !p.Poisoned {
					if i < N && p != in.Pairs[i] {
						t.Errorf("clean pair %d changed", i)
					}
					continue
				}
				if mode == Inject && i < N {
					t.Errorf("inject mode poisoned original pair %d", i)
				}
				if mode == Repair && (in.Pairs[i].Poisoned || in.Images[in.Pairs[i].CaptionOf].Label != a) {
					t.Errorf("repair mode re-pointed pair %d, which was not a clean class-A pair", i)
				}
				ca := in.Images[p.CaptionOf]
				if ca.Label != a || in.Images[p.Image].Label != b || ca.Captions[p.CaptionIndex] != p.Caption {
					t.Errorf("pair %d: caption of %s (label %d) with image label %d", i, ca.ID, ca.Label, in.Images[p.Image].Label)
				}
				key := [2]int{p.CaptionOf, p.CaptionIndex}
				if sources[key] {
					t.Errorf("caption %v used twice", key)
				}
				sources[key] = true
				captionImages[p.CaptionOf] = true
				perTarget[p.Image]++
			}
			// Captions are spread over the A images, B images are used round-robin.
			if want := min(tc.wantN, tc.perClass); len(captionImages) != want {
				t.Errorf("captions come from %d class-A images, want %d", len(captionImages), want)
			}
			lo, hi := tc.wantN, 0
			for _, c := range perTarget {
				lo, hi = min(lo, c), max(hi, c)
			}
			if hi-lo > 1 || (tc.wantN >= tc.perClass && len(perTarget) != tc.perClass) {
				t.Errorf("B images used %d to %d times over %d images", lo, hi, len(perTarget))
			}
			if err := m.Verify(out); err != nil {
				t.Errorf("manifest does not match its own output: %v", err)
			}
			if m.Goals[0].Source != in.Classes[a] || m.Goals[0].Target != in.Classes[b] || m.Mode != mode ||
				m.PoisonedPairs != tc.wantN || m.TotalPairs != wantTotal || m.CleanPairs != wantTotal-tc.wantN ||
				m.Rate != out.PoisonRate() || m.Attack != SingleLabelName || m.AttackID != "II" {
				t.Errorf("manifest header %+v", *m)
			}
			// The output's pair slice is its own.
			out.Pairs[0].Caption = "changed"
			if in.Pairs[0].Caption == "changed" {
				t.Error("output shares its pairs with the input")
			}
		})
	}
}

func TestSingleLabelSeed(t *testing.T) {
	in := toySet(40, 5)
	for _, mode := range []Mode{Inject, Repair} {
		atk := SingleLabel{Source: "sneaker", Target: "boot", Rate: 0.02, Mode: mode, Seed: 7}
		out1, m1 := applyDeterministic(t, atk, in, mode)
		atk.Seed = 8
		out3, m3, _ := atk.Apply(in)
		if reflect.DeepEqual(out1.Pairs, out3.Pairs) || reflect.DeepEqual(m1.Pairs, m3.Pairs) {
			t.Errorf("%s: seeds 7 and 8 gave the same poisoned pairs", mode)
		}
		if m3.Seed != 8 || m3.PoisonedPairs != m1.PoisonedPairs {
			t.Errorf("%s: seed 8 manifest %+v", mode, m3)
		}
	}
}

// TestSingleLabelSpread: which class-A images lend their captions, and which class-B images are used, follow the
// seed instead of the data order.
func TestSingleLabelSpread(t *testing.T) {
	in := toySet(40, 5)
	firstA, firstB := 0, 0
	for seed := range int64(20) {
		out, _, err := SingleLabel{Source: "sneaker", Target: "boot", Count: 3, Seed: seed}.Apply(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range out.Pairs[len(in.Pairs):] {
			if p.CaptionOf < 12 { // the first three sneaker images are 2, 6 and 10
				firstA++
			}
			if p.Image < 12 { // the first three boot images are 3, 7 and 11
				firstB++
			}
		}
	}
	// Uniform choices put about 60 × 3/40 = 4.5 of the 60 picks among the first three images.
	if firstA > 20 || firstB > 20 {
		t.Errorf("%d caption images and %d target images of 60 are among the first three of their class", firstA, firstB)
	}
}

func TestSingleLabelErrors(t *testing.T) {
	in := toySet(10, 5) // 200 pairs, 50 per class
	tests := []struct {
		name    string
		attack  SingleLabel
		wantErr []string
	}{
		{"unknown source", SingleLabel{Source: "sandal", Target: "boot", Rate: 0.1}, []string{"source class", `"sandal"`, `"boot"`}},
		{"unknown target", SingleLabel{Source: "boot", Target: "Bag", Rate: 0.1}, []string{"target class", `"Bag"`}},
		{"same class", SingleLabel{Source: "boot", Target: "BOOT", Rate: 0.1}, []string{"same class", `"boot"`}},
		{"rate 0", SingleLabel{Source: "sneaker", Target: "boot"}, []string{"φ = 0 is outside (0, 1)"}},
		{"rate 1", SingleLabel{Source: "sneaker", Target: "boot", Rate: 1}, []string{"φ = 1 is outside"}},
		{"rate -0.1", SingleLabel{Source: "sneaker", Target: "boot", Rate: -0.1}, []string{"φ = -0.1 is outside"}},
		{"rate NaN", SingleLabel{Source: "sneaker", Target: "boot", Rate: math.NaN()}, []string{"φ = NaN is outside"}},
		{"rate +Inf", SingleLabel{Source: "sneaker", Target: "boot", Rate: math.Inf(1)}, []string{"φ = +Inf is outside"}},
		{"rate and count", SingleLabel{Source: "sneaker", Target: "boot", Rate: 0.1, Count: 3}, []string{"not both"}},
		{"negative count", SingleLabel{Source: "sneaker", Target: "boot", Count: -3}, []string{"-3 is negative"}},
		{"zero-pair rate, inject", SingleLabel{Source: "sneaker", Target: "boot", Rate: 0.002},
			[]string{"0.002 gives 0 poisoned pairs over 200 pairs", "one poisoned pair is φ = 0.00497512", "from 0.00249377"}},
		{"zero-pair rate, repair", SingleLabel{Source: "sneaker", Target: "boot", Rate: 0.002, Mode: Repair},
			[]string{"gives 0 poisoned pairs", "one poisoned pair is φ = 0.005 ", "from 0.0025 round up"}},
		{"more pairs than captions", SingleLabel{Source: "sneaker", Target: "boot", Count: 51}, []string{"only 50 clean class-sneaker pairs"}},
		{"repair rate too high for class A", SingleLabel{Source: "sneaker", Target: "boot", Rate: 0.3, Mode: Repair}, []string{"60 poisoned pairs need 60"}},
		{"target class without images", SingleLabel{Source: "sneaker", Target: "hat", Rate: 0.1}, []string{`class "hat" has no images`}},
		{"source class without images", SingleLabel{Source: "hat", Target: "boot", Rate: 0.1}, []string{`class "hat" has no images`}},
		{"unknown mode", SingleLabel{Source: "sneaker", Target: "boot", Rate: 0.1, Mode: "replace"}, []string{`unknown mode "replace"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mustFail(t, tc.attack, in, tc.wantErr)
		})
	}
	if _, _, err := (SingleLabel{Source: "a", Target: "b", Rate: 0.1}).Apply(nil); err == nil {
		t.Error("Apply(nil) succeeded")
	}
	// The smallest rate named in the error does give one pair.
	for _, mode := range []Mode{Inject, Repair} {
		_, m, err := SingleLabel{Source: "sneaker", Target: "boot", Rate: 0.0050, Mode: mode}.Apply(in)
		if err != nil || m.PoisonedPairs != 1 {
			t.Errorf("%s: rate 0.005 gave %v, %v", mode, m, err)
		}
	}
}

func TestPoisonCount(t *testing.T) {
	tests := []struct {
		mode  Mode
		rate  float64
		count int
		total int
		want  int // -1: error
	}{
		{Inject, 0.5, 0, 100, 100},
		{Inject, 0.0008, 0, 125 * 200, 20},
		{Inject, 1.0 / 1001, 0, 1000, 1},
		{Inject, 0.5 / 1000.5, 0, 1000, 1}, // exactly half a pair rounds up
		{Inject, 0.49 / 1000.49, 0, 1000, -1},
		{Repair, 0.5, 0, 100, 50},
		{Repair, 0.004, 0, 1000, 4},
		{Repair, 0.0004, 0, 1000, -1},
		{Inject, 0, 12, 1000, 12},
		{Inject, 0.1, 0, 0, -1},
	}
	for _, tc := range tests {
		got, err := poisonCount(tc.mode, tc.rate, tc.count, tc.total)
		if (err != nil) != (tc.want < 0) || (err == nil && got != tc.want) {
			t.Errorf("poisonCount(%s, %v, %d, %d) = %d, %v; want %d", tc.mode, tc.rate, tc.count, tc.total, got, err, tc.want)
		}
	}
}
