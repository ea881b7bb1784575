package attack

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

func TestRegistryKinds(t *testing.T) {
	if got := Kinds(); !slices.Equal(got[:4], []Kind{KindSingleImage, KindSingleLabel, KindMultiLabel, KindBackdoor}) {
		t.Fatalf("Kinds() = %v", got)
	}
	for kind, want := range map[Kind]struct {
		name string
		ev   Evaluation
	}{
		KindSingleImage: {SingleImageName, TargetImage},
		KindSingleLabel: {SingleLabelName, TargetClass},
		KindMultiLabel:  {MultiLabelName, TargetClass},
		KindBackdoor:    {BackdoorName, TriggeredImages},
	} {
		def, err := Lookup(kind)
		if err != nil {
			t.Fatal(err)
		}
		if def.Name != want.name || def.Evaluation != want.ev || def.Summary == "" {
			t.Errorf("%s: name %q, evaluation %v, summary %q", kind, def.Name, def.Evaluation, def.Summary)
		}
	}
	_, err := Lookup("IV")
	if err == nil || !strings.Contains(err.Error(), `"IV"`) || !strings.Contains(err.Error(), "I, II, III, backdoor") {
		t.Errorf("unknown kind: %v", err)
	}
}

func TestRegisterRefusesBadDefinitions(t *testing.T) {
	good, _ := Lookup(KindSingleLabel)
	for _, tc := range []struct {
		name string
		def  func() Definition
		want string
	}{
		{"duplicate", func() Definition { return good }, "registered twice"},
		{"empty kind", func() Definition { d := good; d.Kind = ""; return d }, "empty kind"},
		{"no constructor", func() Definition { d := good; d.Kind, d.New = "x1", nil; return d }, "needs Name"},
		{"no modes", func() Definition { d := good; d.Kind, d.Modes = "x2", nil; return d }, "needs Name"},
		{"no evaluation", func() Definition { d := good; d.Kind, d.Evaluation = "x3", 0; return d }, "needs Name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(r.(string), tc.want) {
					t.Errorf("panic %v, want one containing %q", r, tc.want)
				}
			}()
			Register(tc.def())
		})
	}
	if slices.Contains(Kinds(), "x1") {
		t.Error("a refused definition was registered")
	}
}

// Spec.New builds exactly the attack the kind's struct does: the same picks for the same seed.
func TestSpecNewMatchesStructs(t *testing.T) {
	in := pixelSet(10, 5, 8, 8, 1)
	goal := []Goal{{Source: "sneaker", Target: "boot"}}
	for _, tc := range []struct {
		spec Spec
		want Attack
	}{
		{Spec{Kind: KindSingleLabel, Goals: goal, Rate: 0.05, Mode: Repair},
			SingleLabel{Source: "sneaker", Target: "boot", Rate: 0.05, Mode: Repair, Seed: 3}},
		{Spec{Kind: KindSingleImage, Goals: goal, Count: 7},
			SingleImage{Source: "sneaker", Target: "boot", Count: 7, Seed: 3}},
		{Spec{Kind: KindMultiLabel, Goals: goalsOf("sneaker", "boot", "coat", "bag"), Rate: 0.04},
			MultiLabel{Goals: goalsOf("sneaker", "boot", "coat", "bag"), Rate: 0.04, Seed: 3}},
		{Spec{Kind: KindBackdoor, Goals: []Goal{{Target: "boot"}}, Rate: 0.02, Trigger: Trigger{Size: 3}},
			Backdoor{Target: "boot", Rate: 0.02, Seed: 3, Trigger: Trigger{Size: 3}}},
	} {
		t.Run(string(tc.spec.Kind), func(t *testing.T) {
			a, err := tc.spec.New(3)
			if err != nil {
				t.Fatal(err)
			}
			got, gm := mustApply(t, a, in)
			want, wm := mustApply(t, tc.want, in)
			if !reflect.DeepEqual(got.Pairs, want.Pairs) || !reflect.DeepEqual(gm, wm) {
				t.Errorf("Spec.New(3) poisons differently from %T", tc.want)
			}
			if a.Name() != tc.want.Name() {
				t.Errorf("name %q, want %q", a.Name(), tc.want.Name())
			}
		})
	}
}

// Every kind refuses, before seeing data, the parameters it does not use or that cannot work, naming them.
func TestSpecValidate(t *testing.T) {
	goal := []Goal{{Source: "trouser", Target: "bag"}}
	bd := []Goal{{Target: "bag"}}
	for _, tc := range []struct {
		name string
		spec Spec
		want string // "" means valid
	}{
		{"II", Spec{Kind: KindSingleLabel, Goals: goal, Rate: 0.01}, ""},
		{"no kind", Spec{Goals: goal, Rate: 0.01}, `unknown kind ""`},
		{"rate too high", Spec{Kind: KindSingleLabel, Goals: goal, Rate: 2}, "φ = 2 is outside (0, 1) (φ is a fraction"},
		{"rate ignored with a count", Spec{Kind: KindSingleLabel, Goals: goal, Rate: 2, Count: 4}, ""},
		{"negative count", Spec{Kind: KindSingleLabel, Goals: goal, Count: -3}, "count -3 is negative"},
		{"count and every caption", Spec{Kind: KindSingleLabel, Goals: goal, Count: 7, AllSourceCaptions: true}, "count 7 and every source caption"},
		{"unknown mode", Spec{Kind: KindSingleLabel, Goals: goal, Rate: 0.01, Mode: "sprinkle"}, `mode "sprinkle" is not supported: use "inject" or "repair"`},
		{"no goal", Spec{Kind: KindSingleLabel, Rate: 0.01}, "needs a goal"},
		{"II with two goals", Spec{Kind: KindSingleLabel, Goals: goalsOf("trouser", "bag", "sandal", "shirt"), Rate: 0.01}, "several goals need attack III"},
		{"III with two goals", Spec{Kind: KindMultiLabel, Goals: goalsOf("trouser", "bag", "sandal", "shirt"), Rate: 0.01}, ""},
		{"II with a target image", Spec{Kind: KindSingleLabel, Goals: goal, Rate: 0.01, TargetImageID: "x"}, `target image "x" needs attack I`},
		{"I with a target image", Spec{Kind: KindSingleImage, Goals: goal, Rate: 0.01, TargetImageID: "x"}, ""},
		{"II with a trigger", Spec{Kind: KindSingleLabel, Goals: goal, Rate: 0.01, Trigger: Trigger{Size: 3}}, "a trigger needs attack backdoor"},
		{"no source", Spec{Kind: KindMultiLabel, Goals: []Goal{{Target: "bag"}}, Rate: 0.01}, "goal 0 (→ bag) has no source class"},
		{"no target", Spec{Kind: KindSingleLabel, Goals: []Goal{{Source: "bag"}}, Rate: 0.01}, "goal 0 has no target class"},
		{"source is target", Spec{Kind: KindSingleLabel, Goals: []Goal{{Source: "Bag", Target: "bag "}}, Rate: 0.01}, `goal 0's source and target are the same class "bag "`},
		{"III goal with source = target", Spec{Kind: KindMultiLabel, Goals: goalsOf("trouser", "bag", "shirt", "shirt"), Rate: 0.01}, "goal 1's source and target are the same class"},
		{"goal with pairs", Spec{Kind: KindMultiLabel, Goals: []Goal{{Source: "a", Target: "b", Pairs: 3}}, Rate: 0.01}, "sets Pairs = 3"},
		{"backdoor", Spec{Kind: KindBackdoor, Goals: bd, Rate: 0.05}, ""},
		{"backdoor with a source", Spec{Kind: KindBackdoor, Goals: goal, Rate: 0.05}, "leave the source class empty"},
		{"backdoor in repair mode", Spec{Kind: KindBackdoor, Goals: bd, Rate: 0.05, Mode: Repair}, `mode "repair" is not supported: use "inject"`},
		{"backdoor with a bad trigger", Spec{Kind: KindBackdoor, Goals: bd, Rate: 0.05, Trigger: Trigger{Pattern: "stripes"}}, `unknown trigger pattern "stripes"`},
		{"backdoor, every source caption", Spec{Kind: KindBackdoor, Goals: bd, AllSourceCaptions: true}, "every source caption needs source classes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.Validate()
			if tc.want == "" && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// Specs that describe the same attack resolve to the same value; others do not.
func TestSpecResolved(t *testing.T) {
	base := Spec{Kind: KindSingleLabel, Goals: []Goal{{Source: "trouser", Target: "bag"}}, Rate: 0.01}
	resolve := func(change func(*Spec)) Spec {
		t.Helper()
		s := base
		change(&s)
		r, err := s.Resolved()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	same := [][2]func(*Spec){
		{func(s *Spec) {}, func(s *Spec) { s.Mode = Inject }},
		{func(s *Spec) { s.Count = 5 }, func(s *Spec) { s.Count, s.Rate = 5, 0.3 }},
		{func(s *Spec) { s.AllSourceCaptions = true }, func(s *Spec) { s.AllSourceCaptions, s.Rate = true, 0 }},
		{func(s *Spec) { s.Kind, s.Goals = KindBackdoor, []Goal{{Target: "bag"}} },
			func(s *Spec) {
				s.Kind, s.Goals, s.Trigger = KindBackdoor, []Goal{{Target: "bag"}}, Trigger{}.Resolved()
			}},
	}
	for i, p := range same {
		if a, b := resolve(p[0]), resolve(p[1]); !reflect.DeepEqual(a, b) {
			t.Errorf("pair %d: %+v and %+v differ", i, a, b)
		}
	}
	if a, b := resolve(func(s *Spec) {}), resolve(func(s *Spec) { s.Mode = Repair }); reflect.DeepEqual(a, b) {
		t.Error("inject and repair resolve alike")
	}
	if a, b := resolve(func(s *Spec) { s.Count = 5 }), resolve(func(s *Spec) { s.Count = 6 }); reflect.DeepEqual(a, b) {
		t.Error("two counts resolve alike")
	}
}

// AllSourceCaptions poisons every clean caption of every goal's source class, whatever Rate says.
func TestSpecAllSourceCaptions(t *testing.T) {
	in := fashionSet(20, 5) // 100 captions per class
	s := Spec{Kind: KindMultiLabel, Goals: goalsOf("sneaker", "boot", "coat", "bag"), AllSourceCaptions: true, Rate: 0.5, Mode: Repair}
	a, err := s.New(9)
	if err != nil {
		t.Fatal(err)
	}
	out, m := mustApply(t, a, in)
	if m.PoisonedPairs != 200 || m.Goals[0].Pairs != 100 || m.Goals[1].Pairs != 100 || a.Name() != MultiLabelName {
		t.Fatalf("%d poisoned pairs (%+v), want all 200 captions of sneaker and coat", m.PoisonedPairs, m.Goals)
	}
	for _, p := range out.Pairs {
		if c := in.Classes[in.Images[p.CaptionOf].Label]; !p.Poisoned && (c == "sneaker" || c == "coat") {
			t.Fatalf("a %s caption stayed clean", c)
		}
	}
	// The same as asking for the count.
	byCount := s
	byCount.AllSourceCaptions, byCount.Count = false, 200
	b, err := byCount.New(9)
	if err != nil {
		t.Fatal(err)
	}
	if _, bm := mustApply(t, b, in); !reflect.DeepEqual(bm, m) {
		t.Error("every source caption differs from the same count")
	}
	none := &dataset.PairSet{Name: "empty", Classes: in.Classes, Images: in.Images[:1], Pairs: in.Pairs[:1]}
	if _, _, err := a.Apply(none); err == nil || !strings.Contains(err.Error(), "no captions of the source classes") {
		t.Errorf("no source captions: %v", err)
	}
}

// Each kind's standard setting, from the Fashion-MNIST default's Attack II, is a valid spec of that kind.
func TestStandardSettings(t *testing.T) {
	base := Spec{Kind: KindSingleLabel, Goals: []Goal{{Source: "trouser", Target: "bag"}}, Rate: 0.01, Mode: Repair}
	for _, kind := range []Kind{KindSingleLabel, KindSingleImage, KindMultiLabel, KindBackdoor} {
		def, _ := Lookup(kind)
		st := def.Standard(base)
		if st.Attack.Kind != kind {
			t.Errorf("%s: standard setting of kind %s", kind, st.Attack.Kind)
		}
		if err := st.Attack.Validate(); err != nil {
			t.Errorf("%s: %v", kind, err)
		}
		if st.Attack.Target() != "bag" {
			t.Errorf("%s: target %q, want base's bag", kind, st.Attack.Target())
		}
	}
	iii, _ := Lookup(KindMultiLabel)
	if s := iii.Standard(base).Attack; len(s.Goals) != 2 || s.Goals[1] != standardSecondGoal || !s.AllSourceCaptions {
		t.Errorf("Attack III standard %+v", s)
	}
	bd, _ := Lookup(KindBackdoor)
	if st := bd.Standard(base); st.FinetuneEpochs != 5 || st.Attack.Trigger.Size != 7 || st.Attack.Rate != 0.05 || st.Attack.Mode != Inject {
		t.Errorf("backdoor standard %+v", st)
	}
}
