package scale

import (
	"fmt"
	"strings"

	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// Poison applies the attack spec (its choices seeded by seed) to the clean pairs of in and writes the poisoned
// set as out says, in two passes over the input: the attack chooses its pairs from the pool's compact table
// (attack.Planner), then attack.Stream reads the pool once in order (plus one read per poisoned pair) while
// the pairs are written. Pictures are copied as stored; a backdoor's triggered copies are written as PNG.
// Captions are written without surrounding white space, and the manifest records them so. The output and the
// attack are checked before anything is read or written.
func Poison(in *Opened, spec attack.Spec, seed int64, out Output) (*Export, *attack.Manifest, error) {
	if err := out.Check(); err != nil {
		return nil, nil, err
	}
	a, err := spec.New(seed)
	if err != nil {
		return nil, nil, err
	}
	planner, ok := a.(attack.Planner)
	if !ok {
		return nil, nil, fmt.Errorf("attack %s cannot be streamed: it does not plan on a table (attack.Planner)", spec.Kind)
	}
	table := dataset.CleanTable(in.Source)
	plan, err := planner.Plan(table)
	if err != nil {
		return nil, nil, err
	}
	w, err := newSetWriter(out, in.Source.Classes())
	if err != nil {
		return nil, nil, err
	}
	m, err := attack.Stream(plan, table, func(o attack.Out) error {
		return w.write(o.Image, o.Encoded, strings.TrimSpace(o.Caption),
			sampleMeta{CaptionImageID: o.CaptionImageID, CaptionIndex: o.CaptionIndex, Poisoned: o.Poisoned})
	})
	if err != nil {
		w.abort()
		return nil, nil, err
	}
	for i := range m.Pairs {
		m.Pairs[i].Caption = strings.TrimSpace(m.Pairs[i].Caption)
	}
	exp := &Export{Stage: "poison", Input: in.Source.Name(), Skipped: len(in.Skipped)}
	if err := w.finish(exp, m, nil); err != nil {
		return nil, nil, err
	}
	return exp, m, nil
}
