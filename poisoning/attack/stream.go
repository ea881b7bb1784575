package attack

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// Out is one pair of a poisoned set as Stream gives it.
type Out struct {
	// Index is the pair's position in the poisoned set.
	Index int
	// Image is the example the pair shows as read (ID, captions, label); Encoded is its picture as stored. A
	// picture without a stored form (a triggered copy, ID suffixed "+trigger", or one of a pool held in memory)
	// is in Image.Image instead.
	Image   dataset.Example
	Encoded dataset.Encoded
	// Caption is the pair's caption, written for image CaptionImageID as its caption CaptionIndex.
	Caption        string
	CaptionImageID string
	CaptionIndex   int
	Poisoned       bool
}

// Stream carries out plan p, made from t (a CleanTable of the pool t.Images), and passes every pair of the
// poisoned set to emit, in the order Apply would give them: the clean pairs (image by image, caption by
// caption; Repair's picks re-pointed in place), then the poisoned pairs Inject appends, in pick order. Pictures
// are read as they are needed (one pass over the pool, plus one read per poisoned pair), so memory holds the
// picks and one example at a time. It returns the completed manifest. An error of emit or of a read stops it.
func Stream(p *Plan, t *dataset.Table, emit func(Out) error) (*Manifest, error) {
	if !t.IsClean() {
		return nil, fmt.Errorf("attack: Stream needs the clean table of a pool (dataset.CleanTable)")
	}
	m := p.Manifest
	repaired := map[int]int{}  // pair → pick (Repair)
	captionOf := map[int]int{} // source pair → pick, for captions appended later
	for k, pk := range p.Picks {
		switch {
		case m.Mode == Repair && !pk.Stamp:
			repaired[pk.Source] = k
		case pk.Source >= 0:
			captionOf[pk.Source] = k
		}
	}
	sources := map[int]Out{} // source pairs' captions, by pair
	n := 0
	for i := range t.NumImages() {
		ex, enc, err := read(t, i, false)
		if err != nil {
			return nil, err
		}
		if len(ex.Captions) != t.Images.NumCaptions(i) {
			return nil, fmt.Errorf("attack: example %s has %d captions, its pool said %d", ex.ID, len(ex.Captions), t.Images.NumCaptions(i))
		}
		for j, c := range ex.Captions {
			o := Out{Index: n, Image: ex, Encoded: enc, Caption: c, CaptionImageID: ex.ID, CaptionIndex: j}
			if _, ok := captionOf[n]; ok {
				sources[n] = o
			}
			if k, ok := repaired[n]; ok {
				if o, err = rePoint(t, o, p.Picks[k], &m); err != nil {
					return nil, err
				}
			}
			if err := emit(o); err != nil {
				return nil, err
			}
			n++
		}
	}
	total, err := streamAppended(p, t, &m, n, sources, emit)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(m.Pairs, func(x, y PoisonedPair) int { return cmp.Compare(x.Index, y.Index) })
	m.Version, m.TotalPairs, m.PoisonedPairs = ManifestVersion, total, len(m.Pairs)
	m.CleanPairs, m.Rate = total-len(m.Pairs), float64(len(m.Pairs))/float64(total)
	return &m, nil
}

// rePoint shows clean pair o with the image of pick pk instead (Repair) and records its manifest entry.
func rePoint(t *dataset.Table, o Out, pk Pick, m *Manifest) (Out, error) {
	img, enc, err := read(t, pk.Image, false)
	if err != nil {
		return o, err
	}
	m.Pairs = append(m.Pairs, PoisonedPair{Index: o.Index, Goal: pk.Goal, SourcePair: o.Index, Caption: o.Caption,
		CaptionImageID: o.CaptionImageID, CaptionIndex: o.CaptionIndex, OriginalImageID: o.Image.ID, PoisonedImageID: img.ID})
	o.Image, o.Encoded, o.Poisoned = img, enc, true
	return o, nil
}

// streamAppended emits the pairs appended after the n clean ones (every pick but Repair's re-pointed ones) and
// returns the total number of pairs.
func streamAppended(p *Plan, t *dataset.Table, m *Manifest, n int, sources map[int]Out, emit func(Out) error) (int, error) {
	for _, pk := range p.Picks {
		if m.Mode == Repair && !pk.Stamp {
			continue
		}
		o := Out{Index: n, Poisoned: true}
		entry := PoisonedPair{Index: n, Goal: pk.Goal, SourcePair: pk.Source}
		if src, ok := sources[pk.Source]; ok {
			o.Caption, o.CaptionImageID, o.CaptionIndex = src.Caption, src.CaptionImageID, src.CaptionIndex
			entry.OriginalImageID = src.Image.ID
		}
		img, enc, err := read(t, pk.Image, pk.Stamp)
		if err != nil {
			return 0, err
		}
		o.Image, o.Encoded = img, enc
		if pk.Stamp {
			if o, err = stamped(o, pk, *m.Trigger); err != nil {
				return 0, err
			}
			entry.OriginalImageID, entry.TriggerX, entry.TriggerY = img.ID, pk.X, pk.Y
		}
		entry.Caption, entry.CaptionImageID, entry.CaptionIndex, entry.PoisonedImageID = o.Caption, o.CaptionImageID, o.CaptionIndex, o.Image.ID
		m.Pairs = append(m.Pairs, entry)
		if err := emit(o); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

// stamped makes o show a triggered copy of its decoded image, at the place the plan recorded; a template
// caption (pk.Source < 0) is written for the copy itself.
func stamped(o Out, pk Pick, trig Trigger) (Out, error) {
	orig := o.Image
	if err := trig.Fits(orig.Image); err != nil {
		return o, fmt.Errorf("%w (image %q)", err, orig.ID)
	}
	if x, y := trig.Place(orig.Image); x != pk.X || y != pk.Y {
		return o, fmt.Errorf("attack: trigger of %s goes at (%d, %d), the plan says (%d, %d): the pool changed", orig.ID, x, y, pk.X, pk.Y)
	}
	o.Image = dataset.Example{ID: orig.ID + "+trigger", Image: ApplyTrigger(orig.Image, trig), Label: orig.Label}
	o.Encoded = dataset.Encoded{}
	if pk.Source < 0 {
		o.Caption, o.CaptionImageID, o.CaptionIndex = pk.Caption, o.Image.ID, 0
	}
	o.Image.Captions = []string{o.Caption}
	return o, nil
}

// read reads pool image i, decoded when decode is true or when it has no stored form.
func read(t *dataset.Table, i int, decode bool) (dataset.Example, dataset.Encoded, error) {
	ex, enc, err := t.Images.Read(i, decode)
	if err == nil && !decode && enc.Data == nil {
		return t.Images.Read(i, true)
	}
	return ex, enc, err
}
