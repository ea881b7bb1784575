package attack

// Validation common to all four attacks, checked on each of them alike: the rate φ, rates too small for one
// pair (and the minimum φ the error names), target classes without images, inject and re-pair modes each with
// a manifest that survives a round trip through a file.

import (
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// attackCase builds one attack of each kind with a given rate, count and mode, so that one table covers all.
type attackCase struct {
	name  string
	goals int
	modes []Mode
	make  func(rate float64, count int, mode Mode) Attack
}

var allAttacks = []attackCase{
	{"I", 1, []Mode{Inject, Repair}, func(r float64, c int, m Mode) Attack {
		return SingleImage{Source: "sneaker", Target: "boot", Rate: r, Count: c, Mode: m, Seed: 3}
	}},
	{"II", 1, []Mode{Inject, Repair}, func(r float64, c int, m Mode) Attack {
		return SingleLabel{Source: "sneaker", Target: "boot", Rate: r, Count: c, Mode: m, Seed: 3}
	}},
	{"III", 2, []Mode{Inject, Repair}, func(r float64, c int, m Mode) Attack {
		return MultiLabel{Goals: goalsOf("sneaker", "boot", "coat", "bag"), Rate: r, Count: c, Mode: m, Seed: 3}
	}},
	{"BD", 1, []Mode{Inject}, func(r float64, c int, m Mode) Attack {
		return Backdoor{Target: "boot", Rate: r, Count: c, Mode: m, Seed: 3, Trigger: Trigger{Size: 2, Position: RandomPosition}}
	}},
}

func TestRateValidationAllAttacks(t *testing.T) {
	in := pixelSet(10, 5, 4, 4, 1) // 500 pairs
	for _, ac := range allAttacks {
		for _, mode := range ac.modes {
			for _, rate := range []float64{0, -0.01, -1, 1, 1.0000001, 2, math.NaN(), math.Inf(1), math.Inf(-1)} {
				want := "φ = " + strconv.FormatFloat(rate, 'g', -1, 64) + " is outside (0, 1)"
				if math.IsInf(rate, 1) {
					want = "φ = +Inf is outside (0, 1)"
				}
				t.Run(ac.name+"/"+string(mode)+"/"+strconv.FormatFloat(rate, 'g', -1, 64), func(t *testing.T) {
					mustFail(t, ac.make(rate, 0, mode), in, []string{want})
				})
			}
			t.Run(ac.name+"/"+string(mode)+"/negative count", func(t *testing.T) {
				mustFail(t, ac.make(0, -2, mode), in, []string{"count -2 is negative"})
			})
			t.Run(ac.name+"/"+string(mode)+"/rate and count", func(t *testing.T) {
				mustFail(t, ac.make(0.1, 4, mode), in, []string{"either Rate (0.1) or Count (4), not both"})
			})
		}
	}
}

var (
	minRateRe = regexp.MustCompile(`poisoned pairs? is φ = ([0-9.e+-]+) \(rates from ([0-9.e+-]+) round up to it\)`)
	minSetRe  = regexp.MustCompile(`needs a training set of at least ([0-9]+) pairs`)
)

// TestZeroPairRateNamesMinimum: a rate that yields fewer poisoned pairs than goals fails with an error that names
// the smallest rate giving one pair per goal, the smallest rate that rounds up to it and the smallest training
// set at which the requested rate would do; each of these numbers is checked by applying the attack with it.
func TestZeroPairRateNamesMinimum(t *testing.T) {
	for _, ac := range allAttacks {
		for _, mode := range ac.modes {
			for _, perClass := range []int{10, 37} {
				in := pixelSet(perClass, 5, 4, 4, 1)
				N := len(in.Pairs)
				rate := 0.4 / float64(N) // less than half a pair
				t.Run(ac.name+"/"+string(mode)+"/"+strconv.Itoa(N), func(t *testing.T) {
					out, m, err := ac.make(rate, 0, mode).Apply(in)
					if err == nil {
						t.Fatalf("rate %v gave %d pairs", rate, m.PoisonedPairs)
					}
					if out != nil || m != nil {
						t.Error("results returned with an error")
					}
					msg := err.Error()
					if !strings.Contains(msg, "over "+strconv.Itoa(N)+" pairs in "+string(mode)+" mode") {
						t.Errorf("error %q does not name the set size and mode", msg)
					}
					sub := minRateRe.FindStringSubmatch(msg)
					set := minSetRe.FindStringSubmatch(msg)
					if sub == nil || set == nil {
						t.Fatalf("error %q names no minimum rate or set size", msg)
					}
					smallest, _ := strconv.ParseFloat(sub[1], 64)
					roundsUp, _ := strconv.ParseFloat(sub[2], 64)
					minSet, _ := strconv.Atoi(set[1])
					// The named rates give exactly one pair per goal; just below the round-up rate gives an error.
					for _, r := range []float64{smallest, roundsUp} {
						_, m, err := ac.make(r, 0, mode).Apply(in)
						if err != nil || m.PoisonedPairs != ac.goals {
							t.Errorf("named rate %v: %v pairs, %v; want %d", r, m, err, ac.goals)
						}
					}
					if _, _, err := ac.make(roundsUp*(1-1e-4), 0, mode).Apply(in); err == nil {
						t.Errorf("rate just below %v succeeded", roundsUp)
					}
					// The named set size is the smallest at which the requested rate gives one pair per goal.
					if got := pairsAt(mode, rate, minSet); got < ac.goals {
						t.Errorf("at %d pairs rate %v gives %d pairs", minSet, rate, got)
					}
					if got := pairsAt(mode, rate, minSet-1); got >= ac.goals {
						t.Errorf("already at %d pairs rate %v gives %d pairs", minSet-1, rate, got)
					}
				})
			}
		}
	}
}

func TestSetSizeHint(t *testing.T) {
	for _, mode := range []Mode{Inject, Repair} {
		for _, goals := range []int{1, 2, 5} {
			for _, rate := range []float64{1e-6, 0.0004, 0.001, 1.0 / 3, 0.0049751243781, 0.5, 0.99} {
				hint := setSizeHint(mode, rate, goals)
				sub := minSetRe.FindStringSubmatch(hint)
				if sub == nil {
					t.Fatalf("setSizeHint(%s, %v, %d) = %q", mode, rate, goals, hint)
				}
				m, _ := strconv.Atoi(sub[1])
				if pairsAt(mode, rate, m) < goals || (m > 1 && pairsAt(mode, rate, m-1) >= goals) {
					t.Errorf("%s φ=%v goals=%d: hint %d pairs, giving %d (and %d at one less)", mode, rate, goals, m,
						pairsAt(mode, rate, m), pairsAt(mode, rate, m-1))
				}
			}
		}
	}
	if h := setSizeHint(Inject, 1e-300, 1); h != "" {
		t.Errorf("astronomic set size hinted: %q", h)
	}
}

// TestTargetClassWithoutImages: every attack names a target (and, for Attacks I to III, a source) class without
// images, whichever goal it belongs to.
func TestTargetClassWithoutImages(t *testing.T) {
	in := pixelSet(5, 2, 4, 4, 1) // no "hat" images
	attacks := []Attack{
		SingleImage{Source: "sneaker", Target: "hat", Count: 1},
		SingleImage{Source: "hat", Target: "boot", Count: 1},
		SingleLabel{Source: "sneaker", Target: "hat", Count: 1},
		SingleLabel{Source: "hat", Target: "sneaker", Count: 1, Mode: Repair},
		MultiLabel{Goals: goalsOf("sneaker", "boot", "coat", "hat"), Count: 2},
		MultiLabel{Goals: goalsOf("hat", "boot", "coat", "bag"), Count: 2, Mode: Repair},
		Backdoor{Target: "hat", Count: 1},
		Backdoor{Target: "hat", Count: 1, CaptionTemplates: []string{"a {class}"}},
	}
	for _, a := range attacks {
		mustFail(t, a, in, []string{`class "hat" has no images in "fashion/train"`})
	}
	// Images without captions are as good as none for the captions' class.
	mute := deepCopy(in)
	for i := range mute.Images {
		if mute.Images[i].Label == 7 { // sneaker
			mute.Images[i].Captions = nil
		}
	}
	mute.Pairs = nil
	for _, d := range []*dataset.PairSet{mute} {
		for i, ex := range d.Images {
			for j, c := range ex.Captions {
				d.Pairs = append(d.Pairs, dataset.Pair{Image: i, Caption: c, CaptionOf: i, CaptionIndex: j})
			}
		}
	}
	for _, a := range []Attack{
		SingleLabel{Source: "sneaker", Target: "boot", Count: 1},
		SingleImage{Source: "sneaker", Target: "boot", Count: 1, Mode: Repair},
		MultiLabel{Goals: goalsOf("coat", "bag", "sneaker", "boot"), Count: 2},
	} {
		mustFail(t, a, mute, []string{`class "sneaker" has no clean captioned pairs in "fashion/train"`})
	}
}

// TestGoalsSharingClasses: Attack III rejects goals that share a class in any role, naming both goals.
func TestGoalsSharingClasses(t *testing.T) {
	in := fashionSet(10, 2)
	tests := []struct {
		goals   []Goal
		wantErr string
	}{
		{goalsOf("sneaker", "boot", "coat", "sneaker"), `goals 0 and 1 share class "sneaker" (source of goal 0, target of goal 1)`},
		{goalsOf("sneaker", "boot", "boot", "coat"), `goals 0 and 1 share class "boot" (target of goal 0, source of goal 1)`},
		{goalsOf("sneaker", "boot", "coat", "bag", "dress", "Bag"), `goals 1 and 2 share class "bag" (target of goal 1, target of goal 2)`},
		{goalsOf("sneaker", "boot", "coat", "bag", "dress", "shirt", "Coat", "sandal"), `goals 1 and 3 share class "coat" (source of goal 1, source of goal 3)`},
		{goalsOf("sneaker", "boot", "sneaker", "boot"), `goals 0 and 1 share class "sneaker"`},
		{goalsOf("dress", "dress"), `same class "dress"`},
	}
	for _, tc := range tests {
		for _, mode := range []Mode{Inject, Repair} {
			mustFail(t, MultiLabel{Goals: tc.goals, Count: 10, Mode: mode}, in, []string{tc.wantErr})
		}
	}
}

// TestSingleImageRandomTarget: without TargetImageID, x* is a class-B image drawn by the seed alone (not by the
// mode or the pair count), and naming that image explicitly gives the same poisoned set.
func TestSingleImageRandomTarget(t *testing.T) {
	in := fashionSet(30, 3)
	boot, _ := dataset.ClassIndex(in.Classes, "boot")
	counts := map[string]int{}
	for seed := range int64(300) {
		var first *Manifest
		for _, mode := range []Mode{Inject, Repair} {
			for _, n := range []int{1, 4} {
				out, m, err := SingleImage{Source: "sneaker", Target: "boot", Count: n, Mode: mode, Seed: seed}.Apply(in)
				if err != nil {
					t.Fatal(err)
				}
				if first == nil {
					first = m
					counts[m.TargetImageID]++
				} else if m.TargetImageID != first.TargetImageID {
					t.Fatalf("seed %d: target %s in %s mode with %d pairs, %s before", seed, m.TargetImageID, mode, n, first.TargetImageID)
				}
				if seed < 5 {
					named, mn, err := SingleImage{Source: "sneaker", Target: "boot", TargetImageID: m.TargetImageID,
						Count: n, Mode: mode, Seed: seed}.Apply(in)
					if err != nil || !reflect.DeepEqual(named, out) || !reflect.DeepEqual(mn, m) {
						t.Errorf("seed %d: naming the drawn target %s changed the result (%v)", seed, m.TargetImageID, err)
					}
				}
			}
		}
		if n, err := idNumber(first.TargetImageID); err != nil || in.Images[n].Label != boot {
			t.Fatalf("seed %d: target %s is not a boot image", seed, first.TargetImageID)
		}
	}
	// 300 uniform draws over 30 boot images: each about 10 times; all drawn, none more than 25 times.
	if len(counts) != 30 {
		t.Errorf("300 seeds drew %d of the 30 boot images", len(counts))
	}
	for id, c := range counts {
		if c > 25 {
			t.Errorf("%s drawn %d times of 300", id, c)
		}
	}
	// A given ID outside class B is an error naming it and its class.
	mustFail(t, SingleImage{Source: "sneaker", Target: "boot", TargetImageID: "fashion/train/0008", Count: 1}, in,
		[]string{`target image "fashion/train/0008" has class "bag", not the target class "boot"`})
	mustFail(t, SingleImage{Source: "sneaker", Target: "boot", TargetImageID: "fashion/train/0007", Count: 1}, in,
		[]string{`target image "fashion/train/0007" has class "sneaker"`})
	mustFail(t, SingleImage{Source: "sneaker", Target: "boot", TargetImageID: "elsewhere/9", Count: 1}, in,
		[]string{`target image "elsewhere/9" is not in "fashion/train"`})
}

// idNumber parses the number at the end of an image ID like "fashion/train/0042".
func idNumber(id string) (int, error) {
	return strconv.Atoi(id[strings.LastIndexByte(id, '/')+1:])
}

// TestModesAndManifestsAllAttacks: every attack works in each of its modes, and its manifest survives a round trip
// through a file, matches the poisoned set and not the clean one, and carries the attack's own fields only.
func TestModesAndManifestsAllAttacks(t *testing.T) {
	in := pixelSet(20, 5, 4, 4, 1) // 1000 pairs
	dir := t.TempDir()
	for _, ac := range allAttacks {
		for _, mode := range []Mode{Inject, Repair} {
			t.Run(ac.name+"/"+string(mode), func(t *testing.T) {
				a := ac.make(0.02, 0, mode)
				if !slices.Contains(ac.modes, mode) {
					mustFail(t, a, in, []string{string(mode)})
					return
				}
				out, m := mustApply(t, a, in)
				wantLen := len(in.Pairs)
				if mode == Inject {
					wantLen += m.PoisonedPairs
				}
				if m.Mode != mode || len(out.Pairs) != wantLen || m.PoisonedPairs != out.NumPoisoned() || m.PoisonedPairs < ac.goals ||
					math.Abs(m.Rate-0.02) > 1/float64(len(out.Pairs)) || m.Attack != a.Name() {
					t.Fatalf("manifest %s %s: %d of %d pairs, φ %v", m.Attack, m.Mode, m.PoisonedPairs, len(out.Pairs), m.Rate)
				}
				path := filepath.Join(dir, ac.name+"-"+string(mode)+".json")
				if err := m.WriteFile(path); err != nil {
					t.Fatal(err)
				}
				back, err := ReadManifest(path)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(back, m) {
					t.Fatalf("round trip changed the manifest")
				}
				if err := back.Verify(out); err != nil {
					t.Errorf("Verify: %v", err)
				}
				if err := back.Verify(in); err == nil {
					t.Error("manifest matches the clean input")
				}
				data, _ := json.Marshal(m)
				var generic map[string]any
				json.Unmarshal(data, &generic)
				for key, want := range map[string]bool{"target_image_id": ac.name == "I", "trigger": ac.name == "BD"} {
					if _, ok := generic[key]; ok != want {
						t.Errorf("manifest JSON has %q: %v, want %v", key, ok, want)
					}
				}
				if len(m.Goals) != ac.goals {
					t.Errorf("%d goals, want %d", len(m.Goals), ac.goals)
				}
			})
		}
	}
}

// TestShortageError: asking for more poisoned pairs than the set has class-A captions (Attacks I–III) or
// images outside the target class (the backdoor) fails with a ShortageError that counts both.
func TestShortageError(t *testing.T) {
	in := pixelSet(10, 5, 4, 4, 1) // 50 captions per class, 90 images outside each class
	for _, tc := range []struct {
		name       string
		attack     Attack
		need, have int
		class      string
		carriers   bool
	}{
		{"I", SingleImage{Source: "sneaker", Target: "boot", Count: 51, Seed: 1}, 51, 50, "sneaker", false},
		{"II repair", SingleLabel{Source: "sneaker", Target: "boot", Count: 60, Mode: Repair}, 60, 50, "sneaker", false},
		{"III second goal", MultiLabel{Goals: goalsOf("sneaker", "boot", "coat", "bag"), Count: 102}, 51, 50, "sneaker", false},
		{"backdoor", Backdoor{Target: "bag", Count: 91, Trigger: Trigger{Size: 2}}, 91, 90, "bag", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := tc.attack.Apply(in)
			var short *ShortageError
			if !errors.As(err, &short) {
				t.Fatalf("error %v is not a ShortageError", err)
			}
			if short.Need != tc.need || short.Have != tc.have || short.Class != tc.class || short.Carriers != tc.carriers {
				t.Errorf("got %+v, want need %d, have %d, class %q, carriers %v", short, tc.need, tc.have, tc.class, tc.carriers)
			}
		})
	}
}
