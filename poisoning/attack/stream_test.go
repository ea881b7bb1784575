package attack

import (
	"iter"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// streamCases are attacks of every kind and mode on pixelSet(8, 2, 8, 8, 1) (80 images, 160 pairs).
func streamCases() []Planner {
	out := []Planner{}
	for _, mode := range []Mode{Inject, Repair} {
		out = append(out,
			SingleLabel{Source: "trouser", Target: "bag", Rate: 0.05, Mode: mode, Seed: 3},
			SingleImage{Source: "trouser", Target: "bag", Count: 4, Mode: mode, Seed: 4},
			MultiLabel{Goals: goalsOf("trouser", "bag", "sandal", "shirt"), Count: 6, Mode: mode, Seed: 5})
	}
	return append(out,
		Backdoor{Target: "bag", Rate: 0.1, Seed: 6, Trigger: Trigger{Size: 3, Position: RandomPosition, Seed: 2}},
		Backdoor{Target: "bag", Count: 5, Seed: 7, CaptionTemplates: []string{"a photo of a {class}", "{class}!"}})
}

// TestStreamEqualsApply: Stream over a pool gives, pair for pair, the poisoned set Apply gives on the same
// pairs in memory (pictures, captions, caption owners, flags) and the same manifest.
func TestStreamEqualsApply(t *testing.T) {
	ps := pixelSet(8, 2, 8, 8, 1)
	ds := &dataset.Dataset{Name: ps.Name, Classes: ps.Classes, Examples: ps.Images}
	for _, a := range streamCases() {
		t.Run(a.Name()+"/"+string(modeOf(a)), func(t *testing.T) {
			want, wantM, err := a.Apply(ps)
			if err != nil {
				t.Fatal(err)
			}
			table := dataset.CleanTable(ds.Source())
			plan, err := a.Plan(table)
			if err != nil {
				t.Fatal(err)
			}
			var got []Out
			m, err := Stream(plan, table, func(o Out) error { got = append(got, o); return nil })
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want.Pairs) {
				t.Fatalf("%d pairs streamed, Apply gives %d", len(got), len(want.Pairs))
			}
			for i, o := range got {
				p := want.Pairs[i]
				img := want.Images[p.Image]
				owner := want.Images[p.CaptionOf]
				pix, _ := img.Pixels()
				if o.Index != i || o.Image.ID != img.ID || o.Caption != p.Caption || o.CaptionImageID != owner.ID ||
					o.CaptionIndex != p.CaptionIndex || o.Poisoned != p.Poisoned || o.Image.Label != img.Label {
					t.Fatalf("pair %d: streamed %+v, Apply gives %+v of %s", i, o, p, img.ID)
				}
				if o.Image.Image.Pix != nil && !slices.Equal(o.Image.Image.Pix, pix.Pix) {
					t.Fatalf("pair %d: stamped picture differs", i)
				}
			}
			if wantM.Dataset, m.Dataset = "", ""; !reflect.DeepEqual(m, wantM) {
				t.Errorf("manifest:\n%+v\nApply's:\n%+v", m, wantM)
			}
		})
	}
}

func modeOf(a Planner) Mode {
	switch a := a.(type) {
	case SingleLabel:
		return a.Mode
	case SingleImage:
		return a.Mode
	case MultiLabel:
		return a.Mode
	}
	return Inject
}

// TestVerifyRecords: the records of a streamed set verify against its manifest; each kind of tampering is
// reported.
func TestVerifyRecords(t *testing.T) {
	ps := pixelSet(8, 2, 8, 8, 1)
	ds := &dataset.Dataset{Name: ps.Name, Classes: ps.Classes, Examples: ps.Images}
	tamper := []struct {
		name, want string
		change     func(rs []Record, m *Manifest)
	}{
		{"none", "", func([]Record, *Manifest) {}},
		{"caption", "has caption", func(rs []Record, m *Manifest) { rs[m.Pairs[0].Index].Caption += "!" }},
		{"flag", "poisoned pairs", func(rs []Record, m *Manifest) { rs[m.Pairs[0].Index].Poisoned = false }},
		{"extra flag", "not listed", func(rs []Record, m *Manifest) { rs[firstClean(rs)].Poisoned = true }},
		{"image", "shows image", func(rs []Record, m *Manifest) { rs[m.Pairs[0].Index].ImageID = "other" }},
		{"count", "pairs, manifest says", func(rs []Record, m *Manifest) { m.TotalPairs++ }},
		{"label", "target class", func(rs []Record, m *Manifest) {
			r := &rs[m.Pairs[0].Index]
			if m.Trigger == nil {
				r.Label = (r.Label + 1) % 10
			} else {
				r.Label = 8 // the target, "bag"
			}
		}},
		{"pixels", "with the manifest's trigger", func(rs []Record, m *Manifest) {
			img := &rs[m.Pairs[0].Index].Image
			img.Pix = slices.Clone(img.Pix)
			img.Pix[0]++
		}},
	}
	pixels := map[string]dataset.Image{}
	for _, ex := range ps.Images {
		pixels[ex.ID] = ex.Image
	}
	for _, a := range streamCases() {
		table := dataset.CleanTable(ds.Source())
		plan, err := a.Plan(table)
		if err != nil {
			t.Fatal(err)
		}
		var base []Record
		m0, err := Stream(plan, table, func(o Out) error {
			img := o.Image.Image // a triggered copy's; the others as the pool has them
			if img.Pix == nil {
				img = pixels[o.Image.ID]
			}
			base = append(base, Record{Index: o.Index, ImageID: o.Image.ID, Label: o.Image.Label, Image: img,
				Caption: o.Caption, CaptionImageID: o.CaptionImageID, CaptionIndex: o.CaptionIndex, Poisoned: o.Poisoned})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range tamper {
			if c.name == "pixels" && m0.Trigger == nil {
				continue // only a backdoor's pictures are checked
			}
			rs, m := slices.Clone(base), *m0
			c.change(rs, &m)
			err := m.VerifyRecords(ps.Classes, recordsOf(rs), false)
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Errorf("%s, tampered %s: %v, want %q", a.Name(), c.name, err, c.want)
			}
		}
	}
}

// recordsOf yields the records in order.
func recordsOf(rs []Record) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		for _, r := range rs {
			if !yield(r, nil) {
				return
			}
		}
	}
}

func firstClean(rs []Record) int {
	for i, r := range rs {
		if !r.Poisoned {
			return i
		}
	}
	return 0
}
