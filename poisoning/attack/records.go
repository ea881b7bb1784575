package attack

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"iter"
	"math"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// Record is what a poisoned set written to files says of one of its pairs (an export's json member, caption
// and picture), for VerifyRecords.
type Record struct {
	// Index is the pair's position in the set.
	Index int
	// ImageID and Label are the picture's; Image is the picture decoded (needed only for a backdoor's
	// triggered pairs and their originals).
	ImageID string
	Label   int
	Image   dataset.Image
	// Caption was written for image CaptionImageID as its caption CaptionIndex.
	Caption        string
	CaptionImageID string
	CaptionIndex   int
	Poisoned       bool
}

// VerifyRecords checks a poisoned set read back in order from files against the manifest, as Verify checks a
// set in memory, holding only the manifest: the pair count and φ; every pair's Poisoned flag against the
// listed positions; for every listed pair its caption, caption image and index, and picture; the goals'
// classes (classes names the labels) and (Attack I) the target image; and for a backdoor that each triggered
// picture is its original, met earlier in the set, with the trigger stamped at the recorded place. subset says
// the set is part of the poisoned one (a filter's output), whose triggered pairs may have lost their original:
// those are compared with it only where it is there. The error lists the first mismatches.
func (m *Manifest) VerifyRecords(classes []string, records iter.Seq2[Record, error], subset bool) error {
	v := &recordCheck{m: m, classes: classes, listed: make(map[int]int, len(m.Pairs)), want: map[string]*stampedSum{}, subset: subset}
	for k, e := range m.Pairs {
		v.listed[e.Index] = k
		if m.Trigger != nil {
			v.want[e.OriginalImageID] = nil
		}
	}
	n := 0
	for r, err := range records {
		if err != nil {
			return fmt.Errorf("attack: verify: %w", err)
		}
		if r.Index != n {
			v.add("record %d has index %d", n, r.Index)
		}
		v.check(r)
		n++
	}
	if n != m.TotalPairs {
		v.add("the set has %d pairs, manifest says %d", n, m.TotalPairs)
	}
	if v.poisoned != m.PoisonedPairs || len(m.Pairs) != m.PoisonedPairs {
		v.add("the set has %d poisoned pairs, manifest says %d and lists %d", v.poisoned, m.PoisonedPairs, len(m.Pairs))
	}
	if n > 0 && math.Abs(float64(v.poisoned)/float64(n)-m.Rate) > 1e-12 {
		v.add("the set has φ = %v, manifest says %v", float64(v.poisoned)/float64(n), m.Rate)
	}
	if len(v.problems) == 0 {
		return nil
	}
	if more := len(v.problems) - maxProblems; more > 0 {
		v.problems = append(v.problems[:maxProblems], fmt.Errorf("… and %d more", more))
	}
	return fmt.Errorf("attack: the written set does not match its %s manifest: %w", m.Attack, errors.Join(v.problems...))
}

// recordCheck is the state of VerifyRecords.
type recordCheck struct {
	m        *Manifest
	classes  []string
	listed   map[int]int            // pair index → manifest entry
	want     map[string]*stampedSum // backdoor: original ID → its triggered picture (nil until met)
	poisoned int
	problems []error
	subset   bool
}

// stampedSum is what a triggered copy of an original must be: its SHA-256 and the patch's place.
type stampedSum struct {
	sum  [32]byte
	x, y int
}

func (v *recordCheck) add(format string, args ...any) {
	v.problems = append(v.problems, fmt.Errorf(format, args...))
}

// check checks one record.
func (v *recordCheck) check(r Record) {
	if r.Poisoned {
		v.poisoned++
	}
	k, listed := v.listed[r.Index]
	if !listed {
		if r.Poisoned {
			v.add("pair %d is marked poisoned but not listed", r.Index)
		}
		if _, ok := v.want[r.ImageID]; ok && v.m.Trigger != nil && v.m.Trigger.Fits(r.Image) == nil {
			x, y := v.m.Trigger.Place(r.Image)
			v.want[r.ImageID] = &stampedSum{sha256.Sum256(ApplyTrigger(r.Image, *v.m.Trigger).Pix), x, y}
		}
		return
	}
	e := v.m.Pairs[k]
	switch {
	case !r.Poisoned:
		v.add("pair %d is listed as poisoned but not marked", r.Index)
	case r.Caption != e.Caption:
		v.add("pair %d has caption %q, manifest says %q", r.Index, r.Caption, e.Caption)
	case r.CaptionImageID != e.CaptionImageID || r.CaptionIndex != e.CaptionIndex:
		v.add("pair %d has caption %d of %s, manifest says caption %d of %s", r.Index, r.CaptionIndex, r.CaptionImageID, e.CaptionIndex, e.CaptionImageID)
	case r.ImageID != e.PoisonedImageID:
		v.add("pair %d shows image %s, manifest says %s", r.Index, r.ImageID, e.PoisonedImageID)
	case v.m.TargetImageID != "" && r.ImageID != v.m.TargetImageID:
		v.add("pair %d shows %s, not the target image %s", r.Index, r.ImageID, v.m.TargetImageID)
	case e.Goal < 0 || e.Goal >= len(v.m.Goals):
		v.add("entry %d: goal %d out of range", k, e.Goal)
	case v.m.Trigger != nil:
		v.checkTriggered(r, e)
	default:
		if t := v.m.Goals[e.Goal].Target; r.Label < 0 || r.Label >= len(v.classes) || v.classes[r.Label] != t {
			v.add("pair %d: image %s is not of the target class %q", r.Index, r.ImageID, t)
		}
	}
}

// checkTriggered checks a backdoor pair: a picture outside the target class, its original's with the trigger
// stamped at the recorded place.
func (v *recordCheck) checkTriggered(r Record, e PoisonedPair) {
	target := v.m.Goals[e.Goal].Target
	if r.Label >= 0 && r.Label < len(v.classes) && v.classes[r.Label] == target {
		v.add("pair %d: triggered image %s is of the target class %q", r.Index, r.ImageID, target)
		return
	}
	switch want := v.want[e.OriginalImageID]; {
	case want == nil && v.subset:
	case want == nil:
		v.add("pair %d: its original %s was not met (decoded) before it", r.Index, e.OriginalImageID)
	case want.x != e.TriggerX || want.y != e.TriggerY:
		v.add("pair %d: the trigger goes at (%d, %d), manifest says (%d, %d)", r.Index, want.x, want.y, e.TriggerX, e.TriggerY)
	case sha256.Sum256(r.Image.Pix) != want.sum:
		v.add("pair %d: image %s is not %s with the manifest's trigger", r.Index, r.ImageID, e.OriginalImageID)
	}
}
