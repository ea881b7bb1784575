package attack

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// Plan is what an attack does to a training set, chosen from the set's dataset.Table alone: the poisoned
// pairs, each the caption of an input pair (or one written from a template) shown with an input image (or a
// triggered copy of one). Apply carries a plan out on a pair set in memory, Stream on a pool read on demand,
// so sets of any size are poisoned exactly as the same set in memory would be.
type Plan struct {
	// Manifest is the attack's manifest without its per-pair entries and counts, which carrying the plan out
	// fills in.
	Manifest Manifest
	// Picks are the poisoned pairs, in the order the attack drew them.
	Picks []Pick
}

// Pick is one poisoned pair of a Plan.
type Pick struct {
	// Goal indexes Manifest.Goals.
	Goal int `json:"goal"`
	// Source is the input pair whose caption the poisoned pair takes (Repair: the pair re-pointed), or -1 for a
	// caption written from a template (Caption).
	Source  int    `json:"source"`
	Caption string `json:"caption,omitempty"`
	// Image is the input pool image the pair shows; with Stamp, the image a triggered copy is made of, the
	// patch's top-left pixel at (X, Y).
	Image int  `json:"image"`
	Stamp bool `json:"stamp,omitempty"`
	X, Y  int  `json:"-"`
}

// Planner is an attack that chooses its pairs from a Table, and so can poison sets of any size (Stream). The
// attacks of this package are planners; their Apply carries out their plan.
type Planner interface {
	Attack
	// Plan chooses the poisoned pairs of the set t describes, with the errors Apply would give.
	Plan(t *dataset.Table) (*Plan, error)
}

// applyPlan returns a copy of ps with p carried out, and the manifest with its entries (in output order) and
// counts. In Repair mode the picked pairs are re-pointed in place; otherwise the poisoned pairs are appended
// after the clean ones, in pick order, a stamped pick with its triggered image appended to the pool. ps is not
// modified.
func applyPlan(ps *dataset.PairSet, p *Plan) (*dataset.PairSet, *Manifest) {
	m := p.Manifest
	out := ps.Clone()
	out.Name = ps.Name + "+attack-" + m.AttackID
	if slices.ContainsFunc(p.Picks, func(pk Pick) bool { return pk.Stamp }) {
		out.Images = slices.Clone(ps.Images)
	}
	m.Pairs = make([]PoisonedPair, 0, len(p.Picks))
	for _, pk := range p.Picks {
		var entry PoisonedPair
		if pk.Stamp {
			entry = stampPair(ps, out, pk, *m.Trigger)
		} else {
			entry = rePair(ps, out, m.Mode, pk)
		}
		m.Pairs = append(m.Pairs, entry)
	}
	// Repair re-points pairs in place, in pick order; the manifest lists them in output order.
	slices.SortFunc(m.Pairs, func(x, y PoisonedPair) int { return cmp.Compare(x.Index, y.Index) })
	m.finish(out)
	return out, &m
}

// rePair carries out a pick without a stamp on out: the caption of input pair pk.Source shown with input image
// pk.Image, in place (Repair) or appended.
func rePair(ps, out *dataset.PairSet, mode Mode, pk Pick) PoisonedPair {
	src := ps.Pairs[pk.Source]
	idx := pk.Source
	if mode == Repair {
		out.Pairs[idx].Image = pk.Image
		out.Pairs[idx].Poisoned = true
	} else {
		idx = len(out.Pairs)
		out.Pairs = append(out.Pairs, dataset.Pair{
			Image: pk.Image, Caption: src.Caption, CaptionOf: src.CaptionOf, CaptionIndex: src.CaptionIndex, Poisoned: true,
		})
	}
	return PoisonedPair{
		Index: idx, Goal: pk.Goal, SourcePair: pk.Source, Caption: src.Caption, CaptionImageID: ps.Images[src.CaptionOf].ID,
		CaptionIndex: src.CaptionIndex, OriginalImageID: ps.Images[src.Image].ID, PoisonedImageID: ps.Images[pk.Image].ID,
	}
}

// stampPair carries out a stamped pick on out: a triggered copy of input image pk.Image joins the pool (its
// pixels stamped now when the original's are held, else on each read) and is paired, appended, with the
// caption of pk.Source or the template caption. A template caption is written for the copy itself.
func stampPair(ps, out *dataset.PairSet, pk Pick, trig Trigger) PoisonedPair {
	orig := ps.Images[pk.Image]
	pair := dataset.Pair{Image: len(out.Images), Poisoned: true}
	entry := PoisonedPair{Index: len(out.Pairs), Goal: pk.Goal, SourcePair: pk.Source, OriginalImageID: orig.ID,
		PoisonedImageID: orig.ID + "+trigger", TriggerX: pk.X, TriggerY: pk.Y}
	if pk.Source >= 0 {
		src := ps.Pairs[pk.Source]
		pair.Caption, pair.CaptionOf, pair.CaptionIndex = src.Caption, src.CaptionOf, src.CaptionIndex
		entry.CaptionImageID = ps.Images[src.CaptionOf].ID
	} else {
		pair.Caption, pair.CaptionOf = pk.Caption, pair.Image
		entry.CaptionImageID = entry.PoisonedImageID
	}
	entry.Caption, entry.CaptionIndex = pair.Caption, pair.CaptionIndex
	copyEx := dataset.Example{ID: entry.PoisonedImageID, Captions: []string{pair.Caption}, Label: orig.Label}
	if len(orig.Image.Pix) > 0 {
		copyEx.Image = ApplyTrigger(orig.Image, trig)
	} else {
		copyEx.Ref = stampOnRead{orig, trig}
	}
	out.Images = append(out.Images, copyEx)
	out.Pairs = append(out.Pairs, pair)
	return entry
}

// stampOnRead reads a streamed example's picture with a trigger stamped on.
type stampOnRead struct {
	orig dataset.Example
	trig Trigger
}

// Load reads the original picture and stamps the trigger on it.
func (t stampOnRead) Load() (dataset.Image, error) {
	img, err := t.orig.Pixels()
	if err != nil {
		return dataset.Image{}, err
	}
	if err := t.trig.Fits(img); err != nil {
		return dataset.Image{}, err
	}
	return ApplyTrigger(img, t.trig), nil
}

// applyPlanner is the Apply of a planner: it plans on train's table and carries the plan out.
func applyPlanner(a Planner, train *dataset.PairSet) (*dataset.PairSet, *Manifest, error) {
	if train == nil {
		return nil, nil, fmt.Errorf("attack: nil training set")
	}
	p, err := a.Plan(train.Table())
	if err != nil {
		return nil, nil, err
	}
	out, m := applyPlan(train, p)
	return out, m, nil
}
