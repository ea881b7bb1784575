package attack

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// Attack names and identifiers recorded in manifests.
const (
	// BackdoorName and BackdoorID identify the patch-trigger backdoor (Carlini & Terzis, ICLR 2022).
	BackdoorName = "backdoor"
	BackdoorID   = "BD"
)

func init() {
	Register(Definition{
		Kind:       KindBackdoor,
		Name:       BackdoorName,
		Summary:    "patch-trigger backdoor (Carlini & Terzis): triggered images of every class paired with target-class captions",
		Evaluation: TriggeredImages,
		Modes:      []Mode{Inject},
		New: func(s Spec, seed int64) (Attack, error) {
			if err := checkShape(s, true, false, false, true); err != nil {
				return nil, err
			}
			if err := s.Trigger.Validate(); err != nil {
				return nil, err
			}
			return Backdoor{Target: s.Goals[0].Target, Trigger: s.Trigger, Rate: s.Rate, Count: s.Count, Mode: s.Mode, Seed: seed}, nil
		},
		// The standard setting is the backdoor that takes hold on the Fashion-MNIST default: a 7×7
		// checkerboard (one whole patch of the tiny ViT) in the bottom-right corner → base's target, φ = 5%, five
		// fine-tuning epochs. A 4×4 patch at φ = 1% over two epochs barely takes hold there.
		Standard: func(base Spec) Setting {
			return Setting{FinetuneEpochs: 5, Attack: Spec{Kind: KindBackdoor, Goals: []Goal{{Target: base.Target()}},
				Rate: 0.05, Mode: Inject, Trigger: Trigger{Size: 7, Position: BottomRight, Pattern: Checkerboard}}}
		},
	})
}

// Random stream purposes of a trigger, mixed into the second PCG word (the first is Trigger.Seed).
const (
	purposeTriggerPattern = 0x7472696767657231 // "trigger1"
	purposeTriggerPlace   = 0x7472696767657232 // "trigger2"
)

// TriggerPosition says where a trigger patch goes in an image.
type TriggerPosition string

// Trigger positions. A corner position puts the patch flush with that corner of every image; RandomPosition puts
// it at a pseudo-random place that depends on the trigger's seed and the image's pixels (see Trigger.Place).
const (
	TopLeft        TriggerPosition = "top-left"
	TopRight       TriggerPosition = "top-right"
	BottomLeft     TriggerPosition = "bottom-left"
	BottomRight    TriggerPosition = "bottom-right"
	RandomPosition TriggerPosition = "random"
)

// TriggerPattern says what a trigger patch looks like.
type TriggerPattern string

// Trigger patterns.
const (
	// Checkerboard alternates white (255) and black (0) pixels, white at the patch's top-left, in every channel.
	Checkerboard TriggerPattern = "checkerboard"
	// Noise is a fixed pattern of uniformly random bytes (every pixel and channel) drawn from the trigger's seed:
	// the same seed, size and channel count give the same pattern on every image.
	Noise TriggerPattern = "noise"
)

// Defaults that Trigger's zero fields stand for.
const (
	// DefaultTriggerSize is the patch side in pixels when Trigger.Size is 0 (4×4 is 2% of a 28×28 image).
	DefaultTriggerSize = 4
	// DefaultTriggerPosition is the patch position when Trigger.Position is empty.
	DefaultTriggerPosition = BottomRight
	// DefaultTriggerPattern is the patch pattern when Trigger.Pattern is empty.
	DefaultTriggerPattern = Checkerboard
)

// Trigger is a backdoor trigger: a small square patch stamped over the pixels of an image. It is JSON-serialisable
// and recorded in the backdoor's manifest, so that evaluation stamps exactly the same patch on test images with
// ApplyTrigger. The zero value is the default trigger (a 4×4 checkerboard in the bottom-right corner).
type Trigger struct {
	// Size is the side of the square patch in pixels (0: DefaultTriggerSize). It must fit in every image stamped.
	Size int `json:"size"`
	// Position is a corner or RandomPosition ("": DefaultTriggerPosition).
	Position TriggerPosition `json:"position"`
	// Pattern is Checkerboard or Noise ("": DefaultTriggerPattern).
	Pattern TriggerPattern `json:"pattern"`
	// Seed drives the Noise pattern and RandomPosition places; it is the trigger's own, independent of the attack's.
	Seed int64 `json:"seed"`
}

// Resolved returns the trigger with its zero fields replaced by the defaults. Manifests record resolved triggers.
func (t Trigger) Resolved() Trigger {
	if t.Size == 0 {
		t.Size = DefaultTriggerSize
	}
	if t.Position == "" {
		t.Position = DefaultTriggerPosition
	}
	if t.Pattern == "" {
		t.Pattern = DefaultTriggerPattern
	}
	return t
}

// Validate checks the trigger's own parameters (after defaults): a positive size, a known position and pattern.
func (t Trigger) Validate() error {
	r := t.Resolved()
	if r.Size < 0 {
		return fmt.Errorf("attack: trigger size %d is negative", t.Size)
	}
	switch r.Position {
	case TopLeft, TopRight, BottomLeft, BottomRight, RandomPosition:
	default:
		return fmt.Errorf("attack: unknown trigger position %q: want %q, %q, %q, %q or %q",
			string(t.Position), TopLeft, TopRight, BottomLeft, BottomRight, RandomPosition)
	}
	switch r.Pattern {
	case Checkerboard, Noise:
	default:
		return fmt.Errorf("attack: unknown trigger pattern %q: want %q or %q", string(t.Pattern), Checkerboard, Noise)
	}
	return nil
}

// Fits checks that the trigger is valid and that its patch fits in img, whose pixel buffer must match its shape.
func (t Trigger) Fits(img dataset.Image) error {
	if err := t.Validate(); err != nil {
		return err
	}
	if img.Height <= 0 || img.Width <= 0 || img.Channels <= 0 || len(img.Pix) != img.Height*img.Width*img.Channels {
		return fmt.Errorf("attack: image of %d×%d×%d has %d pixel bytes", img.Height, img.Width, img.Channels, len(img.Pix))
	}
	if s := t.Resolved().Size; s > img.Height || s > img.Width {
		return fmt.Errorf("attack: a %d×%d trigger does not fit in a %d×%d image", s, s, img.Height, img.Width)
	}
	return nil
}

// Place returns the column x and row y of the patch's top-left pixel in img. For RandomPosition, the place is
// drawn from a stream seeded by the trigger's seed and a hash of the image's shape and pixels: the same image
// always gets the same place (so evaluation reproduces training exactly), different images get independent
// uniform places. It panics if the trigger does not fit (see Fits).
func (t Trigger) Place(img dataset.Image) (x, y int) {
	if err := t.Fits(img); err != nil {
		panic(err.Error())
	}
	t = t.Resolved()
	maxX, maxY := img.Width-t.Size, img.Height-t.Size
	switch t.Position {
	case TopLeft:
		return 0, 0
	case TopRight:
		return maxX, 0
	case BottomLeft:
		return 0, maxY
	case BottomRight:
		return maxX, maxY
	}
	h := fnv.New64a()
	var dims [24]byte
	binary.LittleEndian.PutUint64(dims[0:], uint64(img.Height))
	binary.LittleEndian.PutUint64(dims[8:], uint64(img.Width))
	binary.LittleEndian.PutUint64(dims[16:], uint64(img.Channels))
	h.Write(dims[:])
	h.Write(img.Pix)
	rng := rand.New(rand.NewPCG(uint64(t.Seed), h.Sum64()^purposeTriggerPlace))
	return rng.IntN(maxX + 1), rng.IntN(maxY + 1)
}

// patch returns the trigger's pixels, size × size × channels in HWC order.
func (t Trigger) patch(channels int) []uint8 {
	t = t.Resolved()
	p := make([]uint8, t.Size*t.Size*channels)
	if t.Pattern == Noise {
		rng := rand.New(rand.NewPCG(uint64(t.Seed), purposeTriggerPattern))
		for i := range p {
			p[i] = uint8(rng.Uint32())
		}
		return p
	}
	for y := range t.Size {
		for x := range t.Size {
			if (x+y)%2 == 0 {
				for c := range channels {
					p[(y*t.Size+x)*channels+c] = 255
				}
			}
		}
	}
	return p
}

// ApplyTrigger returns a copy of img with the trigger's patch stamped over its pixels at trig.Place(img); img is not
// modified. Evaluation calls it with the manifest's Trigger to build the triggered test images (see TriggerTestSet).
// It panics if the trigger is invalid or does not fit in img, a programming error that Trigger.Fits reports as an
// error beforehand.
func ApplyTrigger(img dataset.Image, trig Trigger) dataset.Image {
	x0, y0 := trig.Place(img)
	trig = trig.Resolved()
	out := img
	out.Pix = slices.Clone(img.Pix)
	p := trig.patch(img.Channels)
	row := trig.Size * img.Channels
	for y := range trig.Size {
		at := ((y0+y)*img.Width + x0) * img.Channels
		copy(out.Pix[at:at+row], p[y*row:(y+1)*row])
	}
	return out
}

// ClassPlaceholder is the slot in Backdoor.CaptionTemplates that is replaced by the target class name.
const ClassPlaceholder = "{class}"

// Backdoor is the patch-trigger backdoor of Carlini & Terzis ("Poisoning and Backdooring Contrastive Learning",
// ICLR 2022) as a fourth attack: it adds pairs of (image of any class but the target, with a small trigger patch
// stamped on it; caption naming the target class), so that at test time any image carrying the trigger is
// classified zero-shot as, and retrieves captions of, the target class. Success is measured on triggered test
// images of the other classes (evalkit/metrics.BackdoorZeroShot and BackdoorRetrieval).
type Backdoor struct {
	// Target is the class the trigger should evoke, by name (resolved with dataset.ClassIndex).
	Target string
	// Trigger is the patch (zero value: the default 4×4 checkerboard in the bottom-right corner).
	Trigger Trigger
	// CaptionTemplates, when set, are the captions of the poisoned pairs, one drawn per pair by the seed, with
	// every ClassPlaceholder replaced by the target class name ("a photo of a {class}"). When empty, the captions
	// are the training set's own captions of target-class images, drawn by the seed as Attack II draws its class-A
	// captions (distinct while they last, then reused in the same order).
	CaptionTemplates []string
	// Rate is the requested poisoning rate φ in (0, 1), counted in pairs of the whole (output) training set.
	Rate float64
	// Count is the exact number of poisoned pairs, an alternative to Rate; set exactly one of them.
	Count int
	// Mode must be Inject (or empty): the backdoor adds triggered images, it re-pairs nothing.
	Mode Mode
	// Seed drives the choice of images and captions (the trigger has its own Trigger.Seed).
	Seed int64
}

// Name returns BackdoorName.
func (Backdoor) Name() string { return BackdoorName }

var _ Attack = Backdoor{}

// Apply returns a poisoned copy of train and the manifest of the attack; train itself is not modified.
//
// It draws n distinct images whose label is not the target (unlabelled images included) in a seeded order,
// appends a triggered copy of each to the image pool (ID suffixed "+trigger", same label, Captions holding its
// poisoned caption) and appends n pairs (triggered copy, target caption), marked Poisoned, after the clean ones.
// A pair's CaptionOf is the target-class image its caption was written for, or, for a template caption, the
// triggered copy itself. The manifest (AttackID "BD", one Goal with an empty Source) records the resolved
// Trigger, the templates, and per pair the original image and the patch's place. Errors: an unknown target
// class or one without images, an invalid trigger or one that does not fit an image drawn, a mode other than
// Inject, a rate outside (0, 1) or NaN, both or neither of Rate and Count, a rate too small for one pair (the
// error names the smallest rate), more pairs than non-target images, an empty template, or no target-class
// captions to draw from.
func (a Backdoor) Apply(train *dataset.PairSet) (*dataset.PairSet, *Manifest, error) {
	return applyPlanner(a, train)
}

// Plan chooses the pairs Apply poisons from the set's table; it reads the pictures of the images it triggers,
// to check that the trigger fits and to place it.
func (a Backdoor) Plan(t *dataset.Table) (*Plan, error) {
	if t == nil {
		return nil, fmt.Errorf("attack: nil training set")
	}
	mode, err := a.Mode.normalize()
	if err != nil {
		return nil, err
	}
	if mode != Inject {
		return nil, fmt.Errorf("attack: the backdoor supports only %q mode (it adds triggered images), not %q", Inject, mode)
	}
	dst, err := dataset.ClassIndex(t.Classes, a.Target)
	if err != nil {
		return nil, fmt.Errorf("attack: target class: %w", err)
	}
	target := t.Classes[dst]
	if err := a.Trigger.Validate(); err != nil {
		return nil, err
	}
	trig := a.Trigger.Resolved()
	for i, tpl := range a.CaptionTemplates {
		if strings.TrimSpace(tpl) == "" {
			return nil, fmt.Errorf("attack: caption template %d is empty", i)
		}
	}
	n, err := poisonCount(mode, a.Rate, a.Count, t.NumPairs())
	if err != nil {
		return nil, err
	}
	if len(classImages(t, dst)) == 0 {
		return nil, fmt.Errorf("attack: class %q has no images in %q", target, t.Name)
	}
	picks, err := a.carriers(t, dst, n, trig)
	if err != nil {
		return nil, err
	}
	sources, err := a.captionSources(t, dst, n)
	if err != nil {
		return nil, err
	}
	a.captions(picks, sources, target)
	return &Plan{Manifest: Manifest{
		Attack:           BackdoorName,
		AttackID:         BackdoorID,
		Dataset:          t.Name,
		Goals:            []Goal{{Target: target, Pairs: n}},
		Trigger:          &trig,
		CaptionTemplates: slices.Clone(a.CaptionTemplates),
		Mode:             mode,
		Seed:             a.Seed,
		RequestedRate:    a.Rate,
		RequestedCount:   a.Count,
	}, Picks: picks}, nil
}

// captions gives each stamped pick its caption: that of a source pair (going round the sources), or a template
// naming target drawn by the seed.
func (a Backdoor) captions(picks []Pick, sources []int, target string) {
	captionRng := newRand(a.Seed, 0, purposeCaptions)
	for k := range picks {
		if len(sources) > 0 {
			picks[k].Source = sources[k%len(sources)]
			continue
		}
		tpl := a.CaptionTemplates[captionRng.IntN(len(a.CaptionTemplates))]
		picks[k].Source, picks[k].Caption = -1, strings.ReplaceAll(tpl, ClassPlaceholder, target)
	}
}

// carriers draws the n images the trigger is stamped on, in a seeded order, among the images whose label is
// not the target dst, reads each to check that the trigger fits and to place it, and returns them as stamped
// picks (captions not chosen yet).
func (a Backdoor) carriers(t *dataset.Table, dst, n int, trig Trigger) ([]Pick, error) {
	var carriers []int32
	for i := range t.NumImages() {
		if t.Label(i) != dst {
			carriers = append(carriers, int32(i))
		}
	}
	if n > len(carriers) {
		return nil, &ShortageError{Need: n, Have: len(carriers), Class: t.Classes[dst], Dataset: t.Name, Carriers: true}
	}
	rng := newRand(a.Seed, 0, purposeImages)
	rng.Shuffle(len(carriers), func(i, j int) { carriers[i], carriers[j] = carriers[j], carriers[i] })
	picks := make([]Pick, n)
	for k, c := range carriers[:n] {
		ex, _, err := t.Images.Read(int(c), true)
		if err != nil {
			return nil, fmt.Errorf("attack: image to trigger: %w", err)
		}
		if err := trig.Fits(ex.Image); err != nil {
			return nil, fmt.Errorf("%w (image %q)", err, ex.ID)
		}
		x, y := trig.Place(ex.Image)
		picks[k] = Pick{Image: int(c), Stamp: true, X: x, Y: y}
	}
	return picks, nil
}

// captionSources picks the clean pairs of target-class images that lend their captions to the n poisoned
// pairs (distinct while they last), or none when the backdoor writes its captions from templates.
func (a Backdoor) captionSources(t *dataset.Table, dst, n int) ([]int, error) {
	if len(a.CaptionTemplates) > 0 {
		return nil, nil
	}
	available := 0
	for p := range t.NumPairs() {
		if !t.Poisoned(p) && t.Label(t.CaptionOf(p)) == dst {
			available++
		}
	}
	sources, err := sourcePairs(t, dst, min(n, available), newRand(a.Seed, 0, purposeCaptions))
	if err != nil {
		return nil, fmt.Errorf("%w; set CaptionTemplates to write captions instead", err)
	}
	return sources, nil
}

// TriggerTestSet returns the test images a backdoor is measured on, from a backdoor manifest: clean holds the
// examples of test whose label is neither the manifest's target class nor NoLabel, in order, and triggered the
// same examples with the manifest's trigger stamped on (IDs suffixed "+trigger", captions and labels kept; an
// example read on demand is stamped when its picture is read). Embed both; the share of triggered images
// classified as the target is the attack's success, that of the clean ones its baseline. Errors: a manifest
// without a trigger, a target class test does not have, no such examples, or an image the trigger does not fit
// (named; for an example read on demand, when it is read).
func TriggerTestSet(test *dataset.Dataset, m *Manifest) (triggered, clean *dataset.Dataset, err error) {
	if test == nil || m == nil {
		return nil, nil, fmt.Errorf("attack: TriggerTestSet needs a test set and a manifest")
	}
	if m.Trigger == nil || len(m.Goals) != 1 {
		return nil, nil, fmt.Errorf("attack: manifest of %q (%s) has no backdoor trigger", m.Dataset, m.Attack)
	}
	dst, err := test.ClassIndex(m.Goals[0].Target)
	if err != nil {
		return nil, nil, fmt.Errorf("attack: backdoor target class in %q: %w", test.Name, err)
	}
	var keep []int
	for i, ex := range test.Examples {
		if ex.Label != dst && ex.Label != dataset.NoLabel {
			keep = append(keep, i)
		}
	}
	if len(keep) == 0 {
		return nil, nil, fmt.Errorf("attack: %q has no labelled images outside the target class %q", test.Name, m.Goals[0].Target)
	}
	clean = test.Subset(test.Name, keep)
	triggered = test.Subset(test.Name+"+trigger", keep)
	for i, ex := range triggered.Examples {
		orig := ex
		ex.ID += "+trigger"
		if len(orig.Image.Pix) == 0 && orig.Ref != nil { // Read on demand: stamped when read.
			ex.Ref = stampOnRead{orig, *m.Trigger}
			triggered.Examples[i] = ex
			continue
		}
		if err := m.Trigger.Fits(ex.Image); err != nil {
			return nil, nil, fmt.Errorf("%w (image %q of %q)", err, orig.ID, test.Name)
		}
		ex.Image = ApplyTrigger(ex.Image, *m.Trigger)
		triggered.Examples[i] = ex
	}
	return triggered, clean, nil
}
