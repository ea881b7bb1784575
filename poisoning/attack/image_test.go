package attack

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// checkPoisoned checks what every attack guarantees about out and m for input in: pair counts per goal and in
// all, φ within rounding of rate (when set), untouched clean pairs, distinct class-A captions paired with class-B
// images of the pair's goal, Verify passing on out and failing on the clean input. goals holds the (source,
// target) labels of the manifest's goals.
func checkPoisoned(t *testing.T, in, out *dataset.PairSet, m *Manifest, mode Mode, rate float64, goals [][2]int, perGoal []int) {
	t.Helper()
	total := 0
	for _, n := range perGoal {
		total += n
	}
	N := len(in.Pairs)
	wantLen := N + total
	if mode == Repair {
		wantLen = N
	}
	if out.NumPoisoned() != total || len(out.Pairs) != wantLen {
		t.Fatalf("%d poisoned of %d pairs, want %d of %d", out.NumPoisoned(), len(out.Pairs), total, wantLen)
	}
	if rate > 0 && math.Abs(out.PoisonRate()-rate) > 1/float64(len(out.Pairs)) {
		t.Errorf("φ achieved %v, requested %v", out.PoisonRate(), rate)
	}
	if len(m.Goals) != len(goals) || len(m.Pairs) != total || m.PoisonedPairs != total || m.TotalPairs != wantLen ||
		m.CleanPairs != wantLen-total || m.Rate != out.PoisonRate() || m.Mode != mode {
		t.Fatalf("manifest header %+v", *m)
	}
	sum := 0
	for g, goal := range m.Goals {
		if goal.Pairs != perGoal[g] || goal.Source != in.Classes[goals[g][0]] || goal.Target != in.Classes[goals[g][1]] {
			t.Errorf("manifest goal %d = %+v, want %s→%s with %d pairs", g, goal, in.Classes[goals[g][0]], in.Classes[goals[g][1]], perGoal[g])
		}
		sum += goal.Pairs
	}
	if sum != m.PoisonedPairs {
		t.Errorf("per-goal pairs sum to %d, manifest has %d poisoned", sum, m.PoisonedPairs)
	}
	for i, p := range out.Pairs {
		if !p.Poisoned && i < N && p != in.Pairs[i] {
			t.Errorf("clean pair %d changed", i)
		}
		if p.Poisoned && mode == Inject && i < N {
			t.Errorf("inject mode poisoned original pair %d", i)
		}
	}
	seen := map[[2]int]bool{}
	counted := make([]int, len(goals))
	last := -1
	for _, e := range m.Pairs {
		if e.Index <= last {
			t.Errorf("manifest pairs not in output order: %d after %d", e.Index, last)
		}
		last = e.Index
		p := out.Pairs[e.Index]
		g := goals[e.Goal]
		counted[e.Goal]++
		ca := in.Images[p.CaptionOf]
		if ca.Label != g[0] || in.Images[p.Image].Label != g[1] || ca.Captions[p.CaptionIndex] != p.Caption ||
			in.Images[in.Pairs[e.SourcePair].Image].Label != g[0] {
			t.Errorf("pair %d (goal %d): caption of %s (label %d) with image label %d", e.Index, e.Goal, ca.ID, ca.Label, in.Images[p.Image].Label)
		}
		key := [2]int{p.CaptionOf, p.CaptionIndex}
		if seen[key] {
			t.Errorf("caption %v used twice", key)
		}
		seen[key] = true
	}
	if !reflect.DeepEqual(counted, perGoal) {
		t.Errorf("manifest pairs per goal %v, want %v", counted, perGoal)
	}
	if err := m.Verify(out); err != nil {
		t.Errorf("manifest does not match its own output: %v", err)
	}
	if err := m.Verify(in); err == nil {
		t.Error("manifest matches the clean input")
	}
}

func TestSingleImageApply(t *testing.T) {
	// toySet(50, 5): 1000 pairs; boot (label 3) images are 3, 7, 11, …; sneaker (label 2) 2, 6, 10, ….
	tests := []struct {
		name   string
		attack SingleImage
		wantN  int
	}{
		{"explicit inject 1%", SingleImage{Source: "sneaker", Target: "boot", TargetImageID: "toy/train/0007", Rate: 0.01, Seed: 1}, 10},
		{"explicit repair 5%", SingleImage{Source: "sneaker", Target: "boot", TargetImageID: "toy/train/0011", Rate: 0.05, Mode: Repair, Seed: 1}, 50},
		{"random inject count", SingleImage{Source: "tshirt", Target: "Trouser", Count: 7, Seed: 2}, 7},
		{"random repair 2%", SingleImage{Source: "boot", Target: "sneaker", Rate: 0.02, Mode: Repair, Seed: 3}, 20},
		{"random more captions than images", SingleImage{Source: "boot", Target: "tshirt", Count: 120, Seed: 4}, 120},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := toySet(50, 5)
			out, m := mustApply(t, tc.attack, in)
			a, _ := dataset.ClassIndex(in.Classes, tc.attack.Source)
			b, _ := dataset.ClassIndex(in.Classes, tc.attack.Target)
			mode, _ := tc.attack.Mode.normalize()
			checkPoisoned(t, in, out, m, mode, tc.attack.Rate, [][2]int{{a, b}}, []int{tc.wantN})
			if m.Attack != SingleImageName || m.AttackID != "I" || m.Attack != tc.attack.Name() {
				t.Errorf("manifest names %q %q", m.Attack, m.AttackID)
			}
			if tc.attack.TargetImageID != "" && m.TargetImageID != tc.attack.TargetImageID {
				t.Errorf("target image %q, asked for %q", m.TargetImageID, tc.attack.TargetImageID)
			}
			target := -1
			for _, p := range out.Pairs {
				if !p.Poisoned {
					continue
				}
				if target >= 0 && p.Image != target {
					t.Fatalf("poisoned pairs point to images %d and %d", target, p.Image)
				}
				target = p.Image
			}
			if out.Images[target].ID != m.TargetImageID || out.Images[target].Label != b {
				t.Errorf("target %s (label %d), manifest says %s", out.Images[target].ID, out.Images[target].Label, m.TargetImageID)
			}
			// Tampering: another class-B image, or a manifest naming another target.
			other := classImages(in.Table(), b)[0]
			if other == target {
				other = classImages(in.Table(), b)[1]
			}
			bad := out.Clone()
			bad.Pairs[m.Pairs[0].Index].Image = other
			if err := m.Verify(bad); err == nil || !strings.Contains(err.Error(), "is paired with image") {
				t.Errorf("other B image: Verify = %v", err)
			}
			wrong := *m
			wrong.TargetImageID = in.Images[other].ID
			if err := wrong.Verify(out); err == nil || !strings.Contains(err.Error(), "not the target image") {
				t.Errorf("other target in manifest: Verify = %v", err)
			}
		})
	}
}

func TestSingleImageSeed(t *testing.T) {
	in := toySet(40, 5)
	for _, mode := range []Mode{Inject, Repair} {
		atk := SingleImage{Source: "sneaker", Target: "boot", Rate: 0.02, Mode: mode, Seed: 7}
		_, m1 := applyDeterministic(t, atk, in, mode)
		// The captions are those Attack II picks with the same seed.
		_, m2b, err := SingleLabel{Source: "sneaker", Target: "boot", Rate: 0.02, Mode: mode, Seed: 7}.Apply(in)
		if err != nil {
			t.Fatal(err)
		}
		for k := range m1.Pairs {
			if m1.Pairs[k].SourcePair != m2b.Pairs[k].SourcePair {
				t.Fatalf("%s: Attack I pair %d uses source pair %d, Attack II %d", mode, k, m1.Pairs[k].SourcePair, m2b.Pairs[k].SourcePair)
			}
		}
	}
	// The random target follows the seed and varies with it.
	targets := map[string]bool{}
	for seed := range int64(20) {
		_, m, err := SingleImage{Source: "sneaker", Target: "boot", Count: 3, Seed: seed}.Apply(in)
		if err != nil {
			t.Fatal(err)
		}
		_, again, _ := SingleImage{Source: "sneaker", Target: "boot", Count: 5, Seed: seed}.Apply(in)
		if again.TargetImageID != m.TargetImageID {
			t.Errorf("seed %d: target %s with 3 pairs, %s with 5", seed, m.TargetImageID, again.TargetImageID)
		}
		targets[m.TargetImageID] = true
	}
	if len(targets) < 8 {
		t.Errorf("20 seeds chose only %d different targets among 40", len(targets))
	}
}

func TestSingleImageErrors(t *testing.T) {
	in := toySet(10, 5) // 200 pairs; images 0..39, label i%4
	dup := deepCopy(in)
	dup.Images[7].ID = dup.Images[3].ID
	unlabeled := deepCopy(in)
	unlabeled.Images[3].Label = dataset.NoLabel
	tests := []struct {
		name    string
		in      *dataset.PairSet
		attack  SingleImage
		wantErr []string
	}{
		{"unknown target image", in, SingleImage{Source: "sneaker", Target: "boot", TargetImageID: "toy/train/9999", Rate: 0.1},
			[]string{`target image "toy/train/9999" is not in "toy/train"`}},
		{"target image of class A", in, SingleImage{Source: "sneaker", Target: "boot", TargetImageID: "toy/train/0002", Rate: 0.1},
			[]string{`"toy/train/0002" has class "sneaker", not the target class "boot"`}},
		{"target image of another class", in, SingleImage{Source: "sneaker", Target: "boot", TargetImageID: "toy/train/0000", Rate: 0.1},
			[]string{`"toy/train/0000" has class "tshirt"`}},
		{"unlabeled target image", unlabeled, SingleImage{Source: "sneaker", Target: "boot", TargetImageID: "toy/train/0003", Rate: 0.1},
			[]string{`"toy/train/0003" has no class label`}},
		{"duplicate target id", dup, SingleImage{Source: "sneaker", Target: "boot", TargetImageID: "toy/train/0003", Rate: 0.1},
			[]string{`"toy/train/0003" occurs 2 times`}},
		{"target class without images", in, SingleImage{Source: "sneaker", Target: "hat", Rate: 0.1}, []string{`class "hat" has no images`}},
		{"source class without images", in, SingleImage{Source: "hat", Target: "boot", TargetImageID: "toy/train/0003", Rate: 0.1},
			[]string{`class "hat" has no images`}},
		{"same class", in, SingleImage{Source: "boot", Target: "Boot", Rate: 0.1}, []string{"same class", `"boot"`}},
		{"unknown class", in, SingleImage{Source: "sandal", Target: "boot", Rate: 0.1}, []string{"source class", `"sandal"`}},
		{"rate NaN", in, SingleImage{Source: "sneaker", Target: "boot", Rate: math.NaN()}, []string{"φ = NaN is outside"}},
		{"rate 1.5", in, SingleImage{Source: "sneaker", Target: "boot", Rate: 1.5}, []string{"φ = 1.5 is outside"}},
		{"zero-pair rate", in, SingleImage{Source: "sneaker", Target: "boot", Rate: 0.002},
			[]string{"0.002 gives 0 poisoned pairs", "one poisoned pair is φ = 0.00497512"}},
		{"more pairs than captions", in, SingleImage{Source: "sneaker", Target: "boot", Count: 51}, []string{"only 50 clean class-sneaker pairs"}},
		{"unknown mode", in, SingleImage{Source: "sneaker", Target: "boot", Rate: 0.1, Mode: "swap"}, []string{`unknown mode "swap"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mustFail(t, tc.attack, tc.in, tc.wantErr)
		})
	}
	if _, _, err := (SingleImage{Source: "a", Target: "b", Rate: 0.1}).Apply(nil); err == nil {
		t.Error("Apply(nil) succeeded")
	}
}

// TestAttackInterface: the three attacks can be handled alike.
func TestAttackInterface(t *testing.T) {
	in := fashionSet(5, 2)
	attacks := []Attack{
		SingleImage{Source: "sneaker", Target: "boot", Count: 2},
		SingleLabel{Source: "sneaker", Target: "boot", Count: 2},
		MultiLabel{Goals: []Goal{{Source: "sneaker", Target: "boot"}, {Source: "coat", Target: "bag"}}, Count: 2},
	}
	want := []struct{ name, id string }{{"single-target-image", "I"}, {"single-target-label", "II"}, {"multiple-target-labels", "III"}}
	for i, a := range attacks {
		out, m, err := a.Apply(in)
		if err != nil {
			t.Fatal(err)
		}
		if a.Name() != want[i].name || m.Attack != a.Name() || m.AttackID != want[i].id || m.Verify(out) != nil {
			t.Errorf("%T: Name %q, manifest %q %q", a, a.Name(), m.Attack, m.AttackID)
		}
	}
}
