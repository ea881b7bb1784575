package attack

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// Kind names an attack kind, as experiments and the command line give it: "I", "II", "III", "backdoor", or
// the kind of any attack registered with Register.
type Kind string

// Kinds of the attacks of this package (each registers itself in its own file).
const (
	KindSingleImage Kind = "I"
	KindSingleLabel Kind = "II"
	KindMultiLabel  Kind = "III"
	KindBackdoor    Kind = "backdoor"
)

// Evaluation says how an attack's success is measured. Evaluation code switches on it, never on the kind.
type Evaluation int

const (
	// TargetClass: each goal's class-A test captions query the test images; the targets are the class-B test
	// images (Hit@K, MinRank).
	TargetClass Evaluation = iota + 1
	// TargetImage: class-A test captions query the test images plus the one target image x* of the manifest
	// (Manifest.TargetImageID, a training image added to the gallery), which is the only target.
	TargetImage
	// TriggeredImages: the manifest's Trigger is stamped on the test images of every class but the target, and
	// zero-shot classification and image-to-text retrieval are measured with and without it.
	TriggeredImages
)

// String names the evaluation.
func (e Evaluation) String() string {
	switch e {
	case TargetClass:
		return "target class"
	case TargetImage:
		return "target image"
	case TriggeredImages:
		return "triggered images"
	}
	return fmt.Sprintf("Evaluation(%d)", int(e))
}

// Definition is a registry entry: everything the rest of mmpoison needs to run an attack without naming it.
type Definition struct {
	// Kind is the attack's kind, unique in the registry.
	Kind Kind
	// Name is the attack's name as its manifests record it (Manifest.Attack), e.g. "single-target-label".
	Name string
	// Summary describes the attack in one line, for command-line help.
	Summary string
	// Evaluation is how its success is measured.
	Evaluation Evaluation
	// Modes are the modes the attack supports; the first is the default (Spec.Mode empty).
	Modes []Mode
	// New returns the attack that Spec s (mode and rate resolved, see Spec.Resolved) and seed describe. It
	// checks every parameter that needs no data and names the bad one; Apply checks the rest against the
	// training set. Spec.AllSourceCaptions never reaches it: Spec.New counts the captions and sets Count.
	New func(s Spec, seed int64) (Attack, error)
	// Standard returns the attack's standard setting, derived from base (another kind's spec, typically an
	// experiment's default): what the defense matrix and "mmpoison demo -attack K" run when only the kind is given.
	Standard func(base Spec) Setting
}

// Setting is an attack's standard setting.
type Setting struct {
	// Attack is the attack's spec.
	Attack Spec
	// FinetuneEpochs is the number of fine-tuning epochs the attack needs to take hold (0: the experiment's own).
	FinetuneEpochs int
}

var registry = struct {
	sync.RWMutex
	defs map[Kind]Definition
}{defs: map[Kind]Definition{}}

// Register adds an attack kind to the registry; each attack's file calls it from an init function. It panics
// when the kind is empty or already registered, or when the definition lacks its name, summary, evaluation,
// modes, constructor or standard setting.
func Register(def Definition) {
	switch {
	case def.Kind == "":
		panic("attack: Register with an empty kind")
	case def.Name == "" || def.Summary == "" || def.Evaluation == 0 || len(def.Modes) == 0 || def.New == nil || def.Standard == nil:
		panic(fmt.Sprintf("attack: Register(%q): the definition needs Name, Summary, Evaluation, Modes, New and Standard", def.Kind))
	}
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.defs[def.Kind]; dup {
		panic(fmt.Sprintf("attack: kind %q registered twice", def.Kind))
	}
	def.Modes = slices.Clone(def.Modes)
	registry.defs[def.Kind] = def
}

// Lookup returns the definition of a registered kind, or an error naming the kind and listing the known ones.
func Lookup(kind Kind) (Definition, error) {
	registry.RLock()
	def, ok := registry.defs[kind]
	registry.RUnlock()
	if !ok {
		return Definition{}, fmt.Errorf("attack: unknown kind %q: known kinds are %s", kind, kindList())
	}
	return def, nil
}

// Kinds returns the registered kinds in sorted order ("I", "II", "III", "backdoor", then any others).
func Kinds() []Kind {
	registry.RLock()
	defer registry.RUnlock()
	kinds := make([]Kind, 0, len(registry.defs))
	for k := range registry.defs {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	return kinds
}

// kindList is the registered kinds for messages, e.g. "I, II, III, backdoor".
func kindList() string {
	var names []string
	for _, k := range Kinds() {
		names = append(names, string(k))
	}
	return strings.Join(names, ", ")
}

// Spec declares one attack: its kind and the parameters every kind draws from. The zero values of Mode and
// Trigger are the kind's defaults; a kind refuses parameters it does not use.
type Spec struct {
	// Kind is a registered attack kind.
	Kind Kind `json:"kind"`
	// Goals are the source→target class pairs, by class name. Attacks I and II take one, Attack III one or
	// more; the backdoor takes one with an empty Source (its triggered images come from every other class).
	Goals []Goal `json:"goals"`
	// Rate is φ in (0, 1), in pairs of the whole training set. Ignored when Count or AllSourceCaptions is set.
	Rate float64 `json:"rate,omitempty"`
	// Count, when positive, is the exact number of poisoned pairs (the paper states its attacks both ways).
	Count int `json:"count,omitempty"`
	// AllSourceCaptions poisons every clean caption of every goal's source class (the official code's
	// poisoned_ratio = 1): the number of pairs follows from the data and the manifest gives the resulting φ.
	AllSourceCaptions bool `json:"all_source_captions,omitempty"`
	// Mode is how poisoned pairs enter the set ("": the kind's default).
	Mode Mode `json:"mode,omitempty"`
	// TargetImageID is the target image x* of an attack evaluated on TargetImage ("": chosen by the seed).
	TargetImageID string `json:"target_image_id,omitempty"`
	// Trigger is the patch of an attack evaluated on TriggeredImages (zero value: the default trigger).
	Trigger Trigger `json:"trigger,omitzero"`
}

// Source returns the first goal's source class ("" without goals).
func (s Spec) Source() string {
	if len(s.Goals) == 0 {
		return ""
	}
	return s.Goals[0].Source
}

// Target returns the first goal's target class ("" without goals).
func (s Spec) Target() string {
	if len(s.Goals) == 0 {
		return ""
	}
	return s.Goals[0].Target
}

// Resolved returns the spec as its attack reads it: the kind's default mode for an empty one, the resolved
// trigger for an attack evaluated on TriggeredImages, and Rate cleared when Count or AllSourceCaptions decides
// the number of pairs. Two specs that describe the same attack resolve to the same value. Errors: an unknown
// kind, a mode the kind does not support, a negative count, Count together with AllSourceCaptions, or (when
// the rate decides) a rate outside (0, 1).
func (s Spec) Resolved() (Spec, error) {
	def, err := Lookup(s.Kind)
	if err != nil {
		return s, err
	}
	if s.Mode == "" {
		s.Mode = def.Modes[0]
	}
	if !slices.Contains(def.Modes, s.Mode) {
		return s, fmt.Errorf("attack %s: mode %q is not supported: use %s", s.Kind, s.Mode, modeList(def.Modes))
	}
	switch {
	case s.Count < 0:
		return s, fmt.Errorf("attack %s: poison count %d is negative", s.Kind, s.Count)
	case s.Count > 0 && s.AllSourceCaptions:
		return s, fmt.Errorf("attack %s: poison count %d and every source caption both set the number of poisoned pairs: choose one", s.Kind, s.Count)
	case s.Count > 0 || s.AllSourceCaptions:
		s.Rate = 0
	case math.IsNaN(s.Rate) || s.Rate <= 0 || s.Rate >= 1:
		return s, fmt.Errorf("attack %s: poisoning rate φ = %v is outside (0, 1) (φ is a fraction: 2%% is 0.02; or set a count)", s.Kind, s.Rate)
	}
	if def.Evaluation == TriggeredImages {
		s.Trigger = s.Trigger.Resolved()
	}
	s.Goals = slices.Clone(s.Goals)
	return s, nil
}

func modeList(modes []Mode) string {
	var q []string
	for _, m := range modes {
		q = append(q, fmt.Sprintf("%q", m))
	}
	return strings.Join(q, " or ")
}

// Validate checks everything about the spec that needs no data, naming the bad value.
func (s Spec) Validate() error {
	_, err := s.New(0)
	return err
}

// New returns the attack the spec describes, with its choices driven by seed: the registered kind's
// constructor on the resolved spec. With AllSourceCaptions the attack counts, when applied, the clean captions
// of every goal's source class and poisons them all.
func (s Spec) New(seed int64) (Attack, error) {
	r, err := s.Resolved()
	if err != nil {
		return nil, err
	}
	def, _ := Lookup(r.Kind)
	if !r.AllSourceCaptions {
		return def.New(r, seed)
	}
	for i, g := range r.Goals {
		if g.Source == "" {
			return nil, fmt.Errorf("attack %s: every source caption needs source classes, but goal %d (→ %s) has none", r.Kind, i, g.Target)
		}
	}
	probe := r // The constructor checks the other parameters with a stand-in count.
	probe.AllSourceCaptions, probe.Count = false, max(1, len(r.Goals))
	if _, err := def.New(probe, seed); err != nil {
		return nil, err
	}
	return everySourceCaption{def: def, spec: r, seed: seed}, nil
}

// everySourceCaption is an attack with Spec.AllSourceCaptions: it counts the clean pairs whose image is of a
// goal's source class and builds the kind's attack for exactly that many pairs.
type everySourceCaption struct {
	def  Definition
	spec Spec
	seed int64
}

// Name returns the kind's manifest name.
func (a everySourceCaption) Name() string { return a.def.Name }

// Apply counts the source captions and applies the kind's attack to them all.
func (a everySourceCaption) Apply(train *dataset.PairSet) (*dataset.PairSet, *Manifest, error) {
	if train == nil {
		return nil, nil, fmt.Errorf("attack: nil training set")
	}
	at, err := a.counted(train.Table())
	if err != nil {
		return nil, nil, err
	}
	return at.Apply(train)
}

// Plan counts the source captions and plans the kind's attack on them all; the kind's attack must be a Planner.
func (a everySourceCaption) Plan(t *dataset.Table) (*Plan, error) {
	if t == nil {
		return nil, fmt.Errorf("attack: nil training set")
	}
	at, err := a.counted(t)
	if err != nil {
		return nil, err
	}
	p, ok := at.(Planner)
	if !ok {
		return nil, fmt.Errorf("attack %s cannot plan on a table: it needs the pair set in memory (Apply)", a.spec.Kind)
	}
	return p.Plan(t)
}

// counted returns the kind's attack for exactly as many pairs as t has pairs showing an image of a goal's
// source class.
func (a everySourceCaption) counted(t *dataset.Table) (Attack, error) {
	sources := map[int]bool{}
	for i, g := range a.spec.Goals {
		label, err := dataset.ClassIndex(t.Classes, g.Source)
		if err != nil {
			return nil, fmt.Errorf("attack %s: source class of goal %d: %w", a.spec.Kind, i, err)
		}
		sources[label] = true
	}
	n := 0
	for p := range t.NumPairs() {
		if sources[t.Label(t.ImageOf(p))] {
			n++
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("attack %s: poison every source caption: %q has no captions of the source classes", a.spec.Kind, t.Name)
	}
	s := a.spec
	s.AllSourceCaptions, s.Count = false, n
	return a.def.New(s, a.seed)
}

// checkShape checks the goals and the kind-specific parameters of s for a kind that takes one goal (oneGoal)
// or several, needs a source class in each goal (sources) or none, and may or may not use a target image or a
// trigger.
func checkShape(s Spec, oneGoal, sources, targetImage, trigger bool) error {
	switch {
	case len(s.Goals) == 0:
		return fmt.Errorf("attack %s needs a goal (source → target), got none", s.Kind)
	case oneGoal && len(s.Goals) > 1:
		return fmt.Errorf("attack %s takes one goal, got %d: several goals need attack %s", s.Kind, len(s.Goals), KindMultiLabel)
	case !targetImage && s.TargetImageID != "":
		return fmt.Errorf("attack %s has no target image: target image %q needs attack %s", s.Kind, s.TargetImageID, KindSingleImage)
	case !trigger && s.Trigger != (Trigger{}):
		return fmt.Errorf("attack %s has no trigger: a trigger needs attack %s", s.Kind, KindBackdoor)
	}
	for i, g := range s.Goals {
		switch {
		case strings.TrimSpace(g.Target) == "":
			return fmt.Errorf("attack %s: goal %d has no target class", s.Kind, i)
		case sources && strings.TrimSpace(g.Source) == "":
			return fmt.Errorf("attack %s: goal %d (→ %s) has no source class", s.Kind, i, g.Target)
		case !sources && g.Source != "":
			return fmt.Errorf("attack %s triggers images of every class but the target: leave the source class empty, not %q", s.Kind, g.Source)
		case sources && strings.EqualFold(strings.TrimSpace(g.Source), strings.TrimSpace(g.Target)):
			return fmt.Errorf("attack %s: goal %d's source and target are the same class %q: class-A captions must retrieve another class", s.Kind, i, g.Target)
		case g.Pairs != 0:
			return fmt.Errorf("attack %s: goal %d (%s→%s) sets Pairs = %d; per-goal counts follow from Rate or Count", s.Kind, i, g.Source, g.Target, g.Pairs)
		}
	}
	return nil
}

// reduced returns base as a spec of kind: its first goal, rate, count, every-source-caption choice and mode,
// without the parameters only some kinds use (target image, trigger).
func (base Spec) reduced(kind Kind) Spec {
	s := Spec{Kind: kind, Rate: base.Rate, Count: base.Count, AllSourceCaptions: base.AllSourceCaptions, Mode: base.Mode}
	if len(base.Goals) > 0 {
		s.Goals = []Goal{{Source: base.Goals[0].Source, Target: base.Goals[0].Target}}
	}
	return s
}
