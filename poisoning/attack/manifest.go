package attack

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/mmpoison/mmpoison/poisoning/atomicfile"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// ManifestVersion is the version of the manifest format this package writes and reads.
const ManifestVersion = 1

// Manifest records what an attack did to a training set, so that a poisoned set can be audited, reproduced and
// matched against its manifest (Verify). It is JSON-serialisable; Attacks I, II and III share it.
type Manifest struct {
	// Version is ManifestVersion.
	Version int `json:"version"`
	// Attack is the attack's name (e.g. "single-target-label") and AttackID its number in the paper ("II").
	Attack   string `json:"attack"`
	AttackID string `json:"attack_id"`
	// Dataset is the name of the clean input pair set.
	Dataset string `json:"dataset"`
	// Goals are the source→target class pairs (one for Attacks I and II, several for Attack III).
	Goals []Goal `json:"goals"`
	// TargetImageID is the single target image of Attack I; empty for the others.
	TargetImageID string `json:"target_image_id,omitempty"`
	// Trigger is the backdoor's trigger, defaults resolved, so that evaluation can stamp the same patch on test
	// images (ApplyTrigger, TriggerTestSet); nil for the other attacks.
	Trigger *Trigger `json:"trigger,omitempty"`
	// CaptionTemplates are the backdoor's caption templates; empty for the other attacks and for a backdoor whose
	// captions came from the training set.
	CaptionTemplates []string `json:"caption_templates,omitempty"`
	// Mode is how the poisoned pairs entered the set.
	Mode Mode `json:"mode"`
	// Seed drove the attack's choices.
	Seed int64 `json:"seed"`
	// RequestedRate and RequestedCount are what the attack was asked for (one of them is zero).
	RequestedRate  float64 `json:"requested_rate,omitempty"`
	RequestedCount int     `json:"requested_count,omitempty"`
	// Rate is φ achieved: PoisonedPairs / TotalPairs.
	Rate float64 `json:"rate"`
	// TotalPairs, PoisonedPairs and CleanPairs count the pairs of the poisoned set.
	TotalPairs    int `json:"total_pairs"`
	PoisonedPairs int `json:"poisoned_pairs"`
	CleanPairs    int `json:"clean_pairs"`
	// Pairs lists every poisoned pair, in output order.
	Pairs []PoisonedPair `json:"pairs"`
}

// Goal is one source→target class pair of an attack.
type Goal struct {
	// Source is class A, whose captions are re-paired; Target is class B, whose images they are paired with.
	// For the backdoor, Target is the class its captions name and Source is empty: the triggered images come
	// from every other class.
	Source string `json:"source"`
	Target string `json:"target"`
	// Pairs is the number of poisoned pairs serving this goal.
	Pairs int `json:"pairs"`
}

// PoisonedPair describes one poisoned pair of the output pair set.
type PoisonedPair struct {
	// Index is the pair's position in the poisoned PairSet.Pairs.
	Index int `json:"index"`
	// Goal indexes Manifest.Goals.
	Goal int `json:"goal"`
	// SourcePair is the position, in the clean input, of the pair whose caption was used (Repair: re-pointed);
	// -1 for a backdoor caption written from a template.
	SourcePair int `json:"source_pair"`
	// Caption is the caption text, CaptionImageID the image it was written for (a class-A image; for the
	// backdoor a target-class image, or the triggered image itself for a template caption) and CaptionIndex its
	// position among that image's captions.
	Caption        string `json:"caption"`
	CaptionImageID string `json:"caption_image_id"`
	CaptionIndex   int    `json:"caption_index"`
	// OriginalImageID is the image the caption was paired with in the clean input (the class-A image); for the
	// backdoor, the clean image the trigger was stamped on.
	OriginalImageID string `json:"original_image_id"`
	// PoisonedImageID is the image the caption is paired with now (a class-B image; for the backdoor, the
	// triggered copy of OriginalImageID, a new image of the pool).
	PoisonedImageID string `json:"poisoned_image_id"`
	// TriggerX and TriggerY are the column and row of the trigger patch's top-left pixel in the poisoned image
	// (backdoor only; Trigger.Place of the original image).
	TriggerX int `json:"trigger_x,omitempty"`
	TriggerY int `json:"trigger_y,omitempty"`
}

// maxManifestBytes bounds the manifest file ReadManifest accepts: 256 MiB, room for more than half a million
// poisoned pairs (WriteFile spends about 400 bytes on one). Decoding takes memory of the order of the file's size.
const maxManifestBytes = 256 << 20

// WriteFile writes the manifest as indented JSON to path atomically: it writes a temporary file in the same
// directory and renames it over path, so readers never see a partial manifest. Every text must be valid UTF-8
// (JSON would replace the other bytes, and the manifest would no longer match its pair set) and every rate
// finite; the error names the first text that is not.
func (m *Manifest) WriteFile(path string) error {
	data, err := m.encode()
	if err != nil {
		return fmt.Errorf("attack: encoding manifest %s: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, data); err != nil {
		return fmt.Errorf("attack: manifest: %w", err)
	}
	return nil
}

// encode returns the bytes WriteFile writes.
func (m *Manifest) encode() ([]byte, error) {
	if err := m.checkUTF8(); err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// checkUTF8 reports the first text of the manifest that is not valid UTF-8.
func (m *Manifest) checkUTF8() error {
	check := func(what string, texts ...string) error {
		for _, s := range texts {
			if !utf8.ValidString(s) {
				return fmt.Errorf("%s holds text that is not valid UTF-8: %q", what, s)
			}
		}
		return nil
	}
	errs := []error{check("the header", m.Attack, m.AttackID, m.Dataset, m.TargetImageID),
		check("the caption templates", m.CaptionTemplates...)}
	for i, g := range m.Goals {
		errs = append(errs, check(fmt.Sprintf("goal %d", i), g.Source, g.Target))
	}
	for _, p := range m.Pairs {
		errs = append(errs, check(fmt.Sprintf("pair %d", p.Index), p.Caption, p.CaptionImageID, p.OriginalImageID, p.PoisonedImageID))
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// ReadManifest reads a manifest written by WriteFile. It rejects unknown fields, other format versions,
// manifests whose counts disagree with each other and invalid backdoor triggers, files that are not regular or
// exceed 256 MiB, and data after the manifest. Errors name the file.
func ReadManifest(path string) (*Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("attack: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("attack: %w", err)
	}
	switch {
	case !st.Mode().IsRegular():
		return nil, fmt.Errorf("attack: manifest %s is not a regular file (%v)", path, st.Mode().Type())
	case st.Size() > maxManifestBytes:
		return nil, fmt.Errorf("attack: manifest %s has %d bytes, more than the %d a manifest may take", path, st.Size(), maxManifestBytes)
	}
	return readManifest(io.LimitReader(f, maxManifestBytes), path)
}

// readManifest decodes and checks a manifest from r; path names it in errors.
func readManifest(r io.Reader, path string) (*Manifest, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("attack: manifest %s: %w", path, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("attack: manifest %s: data after the manifest's JSON object", path)
	}
	if m.Version != ManifestVersion {
		return nil, fmt.Errorf("attack: manifest %s has version %d, want %d", path, m.Version, ManifestVersion)
	}
	if m.CleanPairs+m.PoisonedPairs != m.TotalPairs || len(m.Pairs) != m.PoisonedPairs {
		return nil, fmt.Errorf("attack: manifest %s: inconsistent counts: %d clean + %d poisoned ≠ %d total, or %d listed pairs",
			path, m.CleanPairs, m.PoisonedPairs, m.TotalPairs, len(m.Pairs))
	}
	if m.Trigger != nil {
		if err := m.Trigger.Validate(); err != nil {
			return nil, fmt.Errorf("manifest %s: %w", path, err)
		}
	}
	return &m, nil
}

// maxProblems is how many mismatches Verify reports before it summarises.
const maxProblems = 10

// Verify checks that ps is exactly the poisoned set the manifest describes: the pair counts and φ, and for every
// listed pair its position, Poisoned flag, caption, caption image, caption index and poisoned image, the goal
// classes of the caption and poisoned images, (Attack I) the target image, and (backdoor) that each poisoned
// image is its non-target original with the manifest's trigger stamped where recorded, and each template caption
// one of the manifest's templates. Since the listed positions are
// distinct, poisoned and as many as ps has poisoned pairs, no unlisted pair is poisoned. The error lists the
// first mismatches.
func (m *Manifest) Verify(ps *dataset.PairSet) error {
	if ps == nil {
		return errors.New("attack: verify: nil pair set")
	}
	var problems []error
	add := func(format string, args ...any) {
		problems = append(problems, fmt.Errorf(format, args...))
	}
	if len(ps.Pairs) != m.TotalPairs {
		add("pair set has %d pairs, manifest says %d", len(ps.Pairs), m.TotalPairs)
	}
	if n := ps.NumPoisoned(); n != m.PoisonedPairs || len(m.Pairs) != n {
		add("pair set has %d poisoned pairs, manifest says %d and lists %d", n, m.PoisonedPairs, len(m.Pairs))
	}
	if m.CleanPairs != m.TotalPairs-m.PoisonedPairs {
		add("manifest counts %d clean + %d poisoned pairs, not %d", m.CleanPairs, m.PoisonedPairs, m.TotalPairs)
	}
	if r := ps.PoisonRate(); math.Abs(r-m.Rate) > 1e-12 {
		add("pair set has φ = %v, manifest says %v", r, m.Rate)
	}
	goals := make([]goalLabels, len(m.Goals))
	for i, g := range m.Goals {
		s, err1 := dataset.ClassIndex(ps.Classes, g.Source)
		if m.Trigger != nil && g.Source == "" {
			s, err1 = -1, nil // the backdoor's images come from every class but the target
		}
		t, err2 := dataset.ClassIndex(ps.Classes, g.Target)
		if err := errors.Join(err1, err2); err != nil {
			add("goal %d: %v", i, err)
		}
		goals[i] = goalLabels{s, t}
	}
	labelOf := make(map[string]int, len(ps.Images))
	indexOf := make(map[string]int, len(ps.Images))
	for i, ex := range ps.Images {
		labelOf[ex.ID] = ex.Label
		indexOf[ex.ID] = i
	}
	if m.Trigger != nil {
		if err := m.Trigger.Validate(); err != nil {
			add("%v", err)
		}
	}
	seen := make(map[int]bool, len(m.Pairs))
	for k, e := range m.Pairs {
		m.verifyEntry(ps, k, e, seen, goals, labelOf, indexOf, add)
	}
	if len(problems) == 0 {
		return nil
	}
	more := len(problems) - maxProblems
	if more > 0 {
		problems = append(problems[:maxProblems], fmt.Errorf("… and %d more", more))
	}
	return fmt.Errorf("attack: poisoned set %q does not match its %s manifest: %w", ps.Name, m.Attack, errors.Join(problems...))
}

// goalLabels are a goal's source and target class labels in a pair set (source -1 for the backdoor's).
type goalLabels struct{ source, target int }

// verifyEntry checks entry k of the manifest against ps, reporting every mismatch through add.
func (m *Manifest) verifyEntry(ps *dataset.PairSet, k int, e PoisonedPair, seen map[int]bool, goals []goalLabels,
	labelOf, indexOf map[string]int, add func(format string, args ...any)) {
	if e.Index < 0 || e.Index >= len(ps.Pairs) {
		add("entry %d: index %d out of range", k, e.Index)
		return
	}
	if seen[e.Index] {
		add("entry %d: index %d listed twice", k, e.Index)
	}
	seen[e.Index] = true
	p := ps.Pairs[e.Index]
	at := func(i int) string {
		if i < 0 || i >= len(ps.Images) {
			return fmt.Sprintf("<image %d out of range>", i)
		}
		return ps.Images[i].ID
	}
	switch {
	case !p.Poisoned:
		add("pair %d is listed as poisoned but not marked Poisoned", e.Index)
	case p.Caption != e.Caption:
		add("pair %d has caption %q, manifest says %q", e.Index, p.Caption, e.Caption)
	case at(p.CaptionOf) != e.CaptionImageID || p.CaptionIndex != e.CaptionIndex:
		add("pair %d has caption %d of %s, manifest says caption %d of %s",
			e.Index, p.CaptionIndex, at(p.CaptionOf), e.CaptionIndex, e.CaptionImageID)
	case at(p.Image) != e.PoisonedImageID:
		add("pair %d is paired with image %s, manifest says %s", e.Index, at(p.Image), e.PoisonedImageID)
	case m.TargetImageID != "" && e.PoisonedImageID != m.TargetImageID:
		add("pair %d is paired with %s, not the target image %s", e.Index, e.PoisonedImageID, m.TargetImageID)
	case e.Goal < 0 || e.Goal >= len(goals):
		add("entry %d: goal %d out of range", k, e.Goal)
	case m.Trigger != nil:
		if err := m.verifyTriggered(ps, e, goals[e.Goal].target, indexOf); err != nil {
			add("pair %d: %v", e.Index, err)
		}
	default:
		g := goals[e.Goal]
		if l, ok := labelOf[e.CaptionImageID]; !ok || l != g.source {
			add("pair %d: caption image %s is not of source class %q", e.Index, e.CaptionImageID, m.Goals[e.Goal].Source)
		}
		if l, ok := labelOf[e.OriginalImageID]; !ok || l != g.source {
			add("pair %d: original image %s is not of source class %q", e.Index, e.OriginalImageID, m.Goals[e.Goal].Source)
		}
		if l := labelOf[e.PoisonedImageID]; l != g.target {
			add("pair %d: poisoned image %s is not of target class %q", e.Index, e.PoisonedImageID, m.Goals[e.Goal].Target)
		}
	}
}

// verifyTriggered checks one backdoor pair beyond what Verify checks for every pair: the caption comes from a
// target-class image or was written for the triggered image itself, the original image exists and is not of the
// target class, and the poisoned image has the original's label and is exactly the original with the manifest's
// trigger stamped at the recorded place.
func (m *Manifest) verifyTriggered(ps *dataset.PairSet, e PoisonedPair, target int, indexOf map[string]int) error {
	name := func(l int) string {
		if l >= 0 && l < len(ps.Classes) {
			return fmt.Sprintf("class %q", ps.Classes[l])
		}
		return "no class label"
	}
	orig, ok := indexOf[e.OriginalImageID]
	if !ok {
		return fmt.Errorf("original image %s is not in the pool", e.OriginalImageID)
	}
	o, p := ps.Images[orig], ps.Images[indexOf[e.PoisonedImageID]]
	if o.Label == target {
		return fmt.Errorf("triggered image %s is of the target %s", e.OriginalImageID, name(target))
	}
	if p.Label != o.Label {
		return fmt.Errorf("poisoned image %s has %s, its original %s has %s", e.PoisonedImageID, name(p.Label), o.ID, name(o.Label))
	}
	if e.CaptionImageID != e.PoisonedImageID {
		if l := ps.Images[indexOf[e.CaptionImageID]].Label; l != target {
			return fmt.Errorf("caption image %s has %s, not the target %s", e.CaptionImageID, name(l), name(target))
		}
	} else if target >= 0 && target < len(ps.Classes) && !slices.ContainsFunc(m.CaptionTemplates, func(tpl string) bool {
		return strings.ReplaceAll(tpl, ClassPlaceholder, ps.Classes[target]) == e.Caption
	}) {
		return fmt.Errorf("caption %q is none of the manifest's %d templates for the target %s", e.Caption, len(m.CaptionTemplates), name(target))
	}
	if err := m.Trigger.Fits(o.Image); err != nil {
		return fmt.Errorf("original image %s: %w", o.ID, err)
	}
	if x, y := m.Trigger.Place(o.Image); x != e.TriggerX || y != e.TriggerY {
		return fmt.Errorf("trigger of %s goes at (%d, %d), manifest says (%d, %d)", e.PoisonedImageID, x, y, e.TriggerX, e.TriggerY)
	}
	want := ApplyTrigger(o.Image, *m.Trigger)
	if want.Height != p.Image.Height || want.Width != p.Image.Width || want.Channels != p.Image.Channels ||
		!slices.Equal(want.Pix, p.Image.Pix) {
		return fmt.Errorf("poisoned image %s is not %s with the manifest's trigger", e.PoisonedImageID, o.ID)
	}
	return nil
}
