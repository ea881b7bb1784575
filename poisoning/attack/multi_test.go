package attack

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

var fashionClasses = []string{"tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot", "hat"}

// fashionSet returns a pair set with perClass images of each of the first ten fashion classes (none of "hat"),
// each with caps captions: 10·perClass·caps pairs. Image i has label i%10.
func fashionSet(perClass, caps int) *dataset.PairSet {
	d := &dataset.Dataset{Name: "fashion/train", Classes: fashionClasses}
	for i := range 10 * perClass {
		label := i % 10
		ex := dataset.Example{ID: fmt.Sprintf("fashion/train/%04d", i), Label: label}
		for k := range caps {
			ex.Captions = append(ex.Captions, fmt.Sprintf("a %s number %d caption %d", fashionClasses[label], i, k))
		}
		d.Examples = append(d.Examples, ex)
	}
	return d.Pairs()
}

func goalsOf(pairs ...string) []Goal {
	var g []Goal
	for i := 0; i < len(pairs); i += 2 {
		g = append(g, Goal{Source: pairs[i], Target: pairs[i+1]})
	}
	return g
}

func TestMultiLabelApply(t *testing.T) {
	// fashionSet(20, 5): 1000 pairs, 100 per class.
	tests := []struct {
		name    string
		attack  MultiLabel
		perGoal []int
	}{
		{"two goals inject 2%", MultiLabel{Goals: goalsOf("sneaker", "boot", "coat", "bag"), Rate: 0.02, Seed: 1}, []int{10, 10}}, // round(20.4)
		{"three goals count with remainder", MultiLabel{Goals: goalsOf("sneaker", "boot", "coat", "bag", "Dress", "tshirt"), Count: 8, Seed: 2}, []int{3, 3, 2}},
		{"two goals repair 5%", MultiLabel{Goals: goalsOf("sneaker", "boot", "coat", "bag"), Rate: 0.05, Mode: Repair, Seed: 3}, []int{25, 25}},
		{"three goals repair 10%", MultiLabel{Goals: goalsOf("sandal", "shirt", "trouser", "pullover", "bag", "coat"), Rate: 0.1, Mode: Repair, Seed: 4}, []int{34, 33, 33}},
		{"one goal", MultiLabel{Goals: goalsOf("sneaker", "boot"), Rate: 0.01, Seed: 5}, []int{10}},
		{"one pair per goal", MultiLabel{Goals: goalsOf("sneaker", "boot", "coat", "bag", "dress", "tshirt"), Rate: 3.0 / 1003, Seed: 6}, []int{1, 1, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := fashionSet(20, 5)
			out, m := mustApply(t, tc.attack, in)
			var labels [][2]int
			classes := map[int]bool{}
			for _, g := range tc.attack.Goals {
				a, _ := dataset.ClassIndex(in.Classes, g.Source)
				b, _ := dataset.ClassIndex(in.Classes, g.Target)
				labels = append(labels, [2]int{a, b})
				if classes[a] || classes[b] {
					t.Fatalf("test goals are not disjoint")
				}
				classes[a], classes[b] = true, true
			}
			mode, _ := tc.attack.Mode.normalize()
			checkPoisoned(t, in, out, m, mode, tc.attack.Rate, labels, tc.perGoal)
			if m.Attack != MultiLabelName || m.AttackID != "III" || m.TargetImageID != "" {
				t.Errorf("manifest names %q %q %q", m.Attack, m.AttackID, m.TargetImageID)
			}
			if mode == Inject {
				// Appended goal by goal.
				for k := 1; k < len(m.Pairs); k++ {
					if m.Pairs[k].Goal < m.Pairs[k-1].Goal {
						t.Fatalf("inject: goal %d pair after goal %d pair", m.Pairs[k].Goal, m.Pairs[k-1].Goal)
					}
				}
			}
			// Tampering: a goal-0 caption paired with a goal-1 target image, or a manifest with goals swapped.
			if len(labels) > 1 {
				bad := out.Clone()
				bad.Pairs[m.Pairs[0].Index].Image = classImages(in.Table(), labels[1][1])[0]
				if err := m.Verify(bad); err == nil || !strings.Contains(err.Error(), "is paired with image") {
					t.Errorf("image of another goal: Verify = %v", err)
				}
				wrong := *m
				wrong.Goals = []Goal{m.Goals[1], m.Goals[0]}
				wrong.Goals = append(wrong.Goals, m.Goals[2:]...)
				if err := wrong.Verify(out); err == nil || !strings.Contains(err.Error(), "not of source class") {
					t.Errorf("goals swapped: Verify = %v", err)
				}
			}
		})
	}
}

// TestMultiLabelGoalStreams: each goal's picks depend on the seed and its index only, so adding a goal keeps the
// earlier goals' picks, and goal 0 picks what Attack II picks.
func TestMultiLabelGoalStreams(t *testing.T) {
	in := fashionSet(20, 5)
	for _, mode := range []Mode{Inject, Repair} {
		two := MultiLabel{Goals: goalsOf("sneaker", "boot", "coat", "bag"), Count: 12, Mode: mode, Seed: 9}
		three := MultiLabel{Goals: goalsOf("sneaker", "boot", "coat", "bag", "sandal", "shirt"), Count: 18, Mode: mode, Seed: 9}
		_, m2, err := two.Apply(in)
		if err != nil {
			t.Fatal(err)
		}
		_, m3, err := three.Apply(in)
		if err != nil {
			t.Fatal(err)
		}
		key := func(e PoisonedPair) [2]string { return [2]string{e.Caption, e.PoisonedImageID} }
		picks := func(m *Manifest, goal int) [][2]string {
			var out [][2]string
			for _, e := range m.Pairs {
				if e.Goal == goal {
					out = append(out, key(e))
				}
			}
			return out
		}
		for g := range 2 {
			if a, b := picks(m2, g), picks(m3, g); len(a) != 6 || !reflect.DeepEqual(a, b) {
				t.Errorf("%s: goal %d picks changed when a goal was added:\n%v\n%v", mode, g, a, b)
			}
		}
		_, single, err := SingleLabel{Source: "sneaker", Target: "boot", Count: 6, Mode: mode, Seed: 9}.Apply(in)
		if err != nil {
			t.Fatal(err)
		}
		var s [][2]string
		for _, e := range single.Pairs {
			s = append(s, key(e))
		}
		if !reflect.DeepEqual(s, picks(m2, 0)) {
			t.Errorf("%s: goal 0 differs from Attack II with the same seed", mode)
		}
		// Goal 1 does not simply reuse goal 0's stream: its caption images are not in the same seeded order.
		if reflect.DeepEqual(classPositions(picks(m2, 0)), classPositions(picks(m2, 1))) {
			t.Errorf("%s: goals 0 and 1 picked images in the same positions", mode)
		}
	}
}

// classPositions returns the positions within their class of the picks' target images (ID number / 10).
func classPositions(p [][2]string) []int {
	var out []int
	for _, k := range p {
		var n int
		fmt.Sscanf(k[1], "fashion/train/%d", &n)
		out = append(out, n/10)
	}
	return out
}

func TestMultiLabelSeed(t *testing.T) {
	in := fashionSet(20, 5)
	for _, mode := range []Mode{Inject, Repair} {
		atk := MultiLabel{Goals: goalsOf("sneaker", "boot", "coat", "bag"), Rate: 0.03, Mode: mode, Seed: 7}
		out1, m1 := applyDeterministic(t, atk, in, mode)
		atk.Seed = 8
		out3, m3, _ := atk.Apply(in)
		if reflect.DeepEqual(out1.Pairs, out3.Pairs) || reflect.DeepEqual(m1.Pairs, m3.Pairs) || m3.Seed != 8 {
			t.Errorf("%s: seeds 7 and 8 gave the same poisoned pairs", mode)
		}
	}
}

func TestMultiLabelErrors(t *testing.T) {
	in := fashionSet(10, 5) // 500 pairs, 50 per class
	two := goalsOf("sneaker", "boot", "coat", "bag")
	three := goalsOf("sneaker", "boot", "coat", "bag", "dress", "tshirt")
	tests := []struct {
		name    string
		attack  MultiLabel
		wantErr []string
	}{
		{"no goals", MultiLabel{Rate: 0.1}, []string{"at least one goal"}},
		{"empty goals", MultiLabel{Goals: []Goal{}, Rate: 0.1}, []string{"at least one goal"}},
		{"target of one is source of another", MultiLabel{Goals: goalsOf("sneaker", "boot", "boot", "bag"), Rate: 0.1},
			[]string{`goals 0 and 1 share class "boot"`, "target of goal 0, source of goal 1"}},
		{"same target twice", MultiLabel{Goals: goalsOf("sneaker", "boot", "coat", "Boot"), Rate: 0.1},
			[]string{`share class "boot"`, "target of goal 0, target of goal 1"}},
		{"same source twice", MultiLabel{Goals: goalsOf("sneaker", "boot", "coat", "bag", "SNEAKER", "dress"), Rate: 0.1},
			[]string{`goals 0 and 2 share class "sneaker"`, "source of goal 0, source of goal 2"}},
		{"source equals target", MultiLabel{Goals: goalsOf("sneaker", "boot", "coat", "coat"), Rate: 0.1},
			[]string{`same class "coat"`, "goal 1: coat→coat"}},
		{"unknown class", MultiLabel{Goals: goalsOf("sneaker", "boot", "coat", "sack"), Rate: 0.1},
			[]string{"target class", `"sack"`, "goal 1"}},
		{"target class without images", MultiLabel{Goals: goalsOf("sneaker", "boot", "coat", "hat"), Rate: 0.1},
			[]string{`class "hat" has no images`, "goal 1: coat→hat"}},
		{"source class without images", MultiLabel{Goals: goalsOf("hat", "boot"), Rate: 0.1},
			[]string{`class "hat" has no images`, "goal 0: hat→boot"}},
		{"goal with pairs", MultiLabel{Goals: []Goal{{Source: "sneaker", Target: "boot", Pairs: 4}}, Rate: 0.1},
			[]string{"goal 0 (sneaker→boot) sets Pairs = 4"}},
		{"rate NaN", MultiLabel{Goals: two, Rate: math.NaN()}, []string{"φ = NaN is outside (0, 1)"}},
		{"rate 0", MultiLabel{Goals: two}, []string{"φ = 0 is outside (0, 1)"}},
		{"rate 1", MultiLabel{Goals: two, Rate: 1}, []string{"φ = 1 is outside (0, 1)"}},
		{"rate -0.2", MultiLabel{Goals: two, Rate: -0.2}, []string{"φ = -0.2 is outside (0, 1)"}},
		{"rate and count", MultiLabel{Goals: two, Rate: 0.1, Count: 4}, []string{"not both"}},
		{"zero pairs for a goal, inject", MultiLabel{Goals: three, Rate: 0.004},
			[]string{"φ = 0.004 gives 2 poisoned pairs over 500 pairs in inject mode", "each of 3 goals",
				"3 poisoned pairs is φ = 0.00596421", "from 0.00497513 round up"}},
		{"zero pairs for a goal, repair", MultiLabel{Goals: three, Rate: 0.004, Mode: Repair},
			[]string{"gives 2 poisoned pairs", "3 poisoned pairs is φ = 0.006 ", "from 0.005 round up"}},
		{"zero pairs at all", MultiLabel{Goals: two, Rate: 0.0001},
			[]string{"gives 0 poisoned pairs", "each of 2 goals", "2 poisoned pairs is φ = 0.00398406"}},
		{"count below goals", MultiLabel{Goals: three, Count: 2}, []string{"count 2 is fewer than one pair for each of 3 goals"}},
		{"more pairs than captions", MultiLabel{Goals: two, Count: 101},
			[]string{"51 poisoned pairs", "only 50 clean class-sneaker pairs", "goal 0: sneaker→boot"}},
		{"unknown mode", MultiLabel{Goals: two, Rate: 0.1, Mode: "both"}, []string{`unknown mode "both"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mustFail(t, tc.attack, in, tc.wantErr)
		})
	}
	if _, _, err := (MultiLabel{Goals: two, Rate: 0.1}).Apply(nil); err == nil {
		t.Error("Apply(nil) succeeded")
	}
	// The smallest rates named in the errors do give one pair per goal.
	for _, tc := range []struct {
		mode Mode
		rate float64
	}{{Inject, 0.00596421}, {Inject, 0.00497513}, {Repair, 0.006}, {Repair, 0.005}} {
		_, m, err := MultiLabel{Goals: three, Rate: tc.rate, Mode: tc.mode}.Apply(in)
		if err != nil || m.PoisonedPairs != 3 {
			t.Errorf("%s: rate %v gave %v, %v", tc.mode, tc.rate, m, err)
		}
	}
}

func TestAtLeast6(t *testing.T) {
	for _, x := range []float64{1.0 / 401, 0.5 / 200, 5.0 / 1005, 1.0 / 3, 2.0 / 3, 1e-7 / 3, 0.0099999999} {
		s := atLeast6(x)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v < x || v > x*(1+2e-5) {
			t.Errorf("atLeast6(%v) = %s", x, s)
		}
	}
}
