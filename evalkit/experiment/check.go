package experiment

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// FitError is Data.Check's error when the attack asks for more poisoned pairs than the fine-tuning split holds
// items for (an attack.ShortageError): it names what would fit, each alternative checked by applying the
// attack to the split. Error words it in the spec's fields, CommandLine in the demo's flags.
type FitError struct {
	Shortage *attack.ShortageError
	// Attack is the attack as asked; Pairs the number of clean pairs of the fine-tuning split.
	Attack attack.Spec
	Pairs  int
	// MaxRate and MaxCount are the largest φ (to three significant digits) and pair count that fit, 0 when
	// none does; Mode is the other mode when the asked φ or count fits there ("" otherwise).
	MaxRate  float64
	MaxCount int
	Mode     attack.Mode
	// SourceImages is the fewest class-A images the split must keep (Data.SourceImages) for the asked attack
	// to fit, 0 when no number does; Kept and Available are the class-A images kept now and in the split
	// before thinning.
	SourceImages, Kept, Available int
}

// Error explains the shortage and what would fit in the spec's terms.
func (e *FitError) Error() string {
	return e.explain(fitWords{rate: "Attack.Rate = ", count: "Attack.Count = ", mode: "Attack.Mode = ",
		sourceImages: "Data.SourceImages = ", lower: "or lower", fewer: "or fewer", more: "or more"})
}

// CommandLine explains the shortage and what would work in the demo command's flags.
func (e *FitError) CommandLine() string {
	return e.explain(fitWords{rate: "-rate ", count: "-count ", mode: "-mode ", sourceImages: "-source-images ",
		lower: "or lower", fewer: "or fewer", more: "or more"})
}

// fitWords names the settings a FitError talks about.
type fitWords struct{ rate, count, mode, sourceImages, lower, fewer, more string }

func (e *FitError) explain(w fitWords) string {
	s, a := e.Shortage, e.Attack
	var b strings.Builder
	switch {
	case a.Count > 0:
		fmt.Fprintf(&b, "%s%d asks for %d poisoned pairs", w.count, a.Count, a.Count)
	case a.AllSourceCaptions:
		fmt.Fprintf(&b, "poisoning every source caption asks for %d poisoned pairs", s.Need)
	case a.Mode == attack.Repair:
		fmt.Fprintf(&b, "%s%v asks for %d poisoned pairs (φ = %s%% of the %d fine-tuning pairs, re-paired in %s mode)",
			w.rate, a.Rate, s.Need, percent(a.Rate), e.Pairs, a.Mode)
	default:
		fmt.Fprintf(&b, "%s%v in %s mode asks for %d poisoned pairs (added to the %d clean fine-tuning pairs, φ = %s%% of all)",
			w.rate, a.Rate, a.Mode, s.Need, e.Pairs, percent(a.Rate))
	}
	if len(a.Goals) > 1 {
		fmt.Fprintf(&b, ", %d of them of class %q", s.Need, s.Class)
	}
	switch {
	case s.Carriers:
		fmt.Fprintf(&b, ", but the fine-tuning split has only %d images outside class %q to carry the trigger, and each poisoned pair needs its own", s.Have, s.Class)
	case e.Kept > 0 && e.Kept < e.Available:
		fmt.Fprintf(&b, ", but the fine-tuning split keeps %d of its %d %s images (%s%d), so it has only %d %s captions, and each poisoned pair needs its own",
			e.Kept, e.Available, s.Class, w.sourceImages, e.Kept, s.Have, s.Class)
	default:
		fmt.Fprintf(&b, ", but the fine-tuning split has only %d %s captions, and each poisoned pair needs its own", s.Have, s.Class)
	}
	var fixes []string
	if e.MaxRate > 0 && a.Count == 0 && !a.AllSourceCaptions {
		fixes = append(fixes, fmt.Sprintf("%s%v %s", w.rate, e.MaxRate, w.lower))
	}
	if e.MaxCount > 0 {
		fixes = append(fixes, fmt.Sprintf("%s%d %s", w.count, e.MaxCount, w.fewer))
	}
	if e.MaxRate > 0 && a.Count > 0 {
		fixes = append(fixes, fmt.Sprintf("%s%v %s", w.rate, e.MaxRate, w.lower))
	}
	if e.Mode != "" {
		fixes = append(fixes, fmt.Sprintf("%s%s", w.mode, e.Mode))
	}
	if e.SourceImages > 0 {
		fixes = append(fixes, fmt.Sprintf("%s%d %s (of %d)", w.sourceImages, e.SourceImages, w.more, e.Available))
	}
	if len(fixes) == 0 {
		b.WriteString("; no smaller attack fits this split")
	} else {
		b.WriteString(". What would work: " + strings.Join(fixes, "; "))
	}
	return b.String()
}

// percent formats a rate as a percentage without needless digits (0.02 → "2", 0.0075 → "0.75").
func percent(rate float64) string { return strconv.FormatFloat(100*rate, 'g', 4, 64) }

// Check says whether the spec's attack and batch size fit the loaded data, before any training: it refuses a
// batch larger than a training stage's pairs, and applies the attack once to the fine-tuning split, an attack
// asking for more poisoned pairs than the split holds items for failing with a FitError that names what would
// fit. Run calls it right after LoadData.
func (d *Data) Check() error {
	if err := d.checkBatch(); err != nil {
		return err
	}
	return d.checkAttack()
}

// checkAttack applies the attack once to the fine-tuning split; a shortage becomes a FitError.
func (d *Data) checkAttack() error {
	full := d.fullTrain
	if full == nil {
		full = d.Splits.Train
	}
	_, _, err := Poison(d)
	var short *attack.ShortageError
	if !errors.As(err, &short) {
		return err
	}
	a := d.Spec.Attack
	if r, rerr := a.Resolved(); rerr == nil {
		a.Mode = r.Mode
	}
	e := &FitError{Shortage: short, Attack: a, Pairs: len(d.Splits.Train.Pairs().Pairs)}
	fits := func(s attack.Spec, train *dataset.Dataset) bool {
		at, err := s.New(d.Spec.Seed)
		if err == nil {
			_, _, err = at.Apply(train.Pairs())
		}
		return err == nil
	}
	withCount := func(n int) attack.Spec {
		s := a
		s.Rate, s.Count, s.AllSourceCaptions = 0, n, false
		return s
	}
	need := max(short.Need*max(len(a.Goals), 1), 2)
	if n := sort.Search(need, func(i int) bool { return !fits(withCount(i+1), d.Splits.Train) }); n > 0 {
		e.MaxCount = n
		e.MaxRate = largestRate(a.Mode, n, e.Pairs, func(r float64) bool {
			s := a
			s.Rate, s.Count, s.AllSourceCaptions = r, 0, false
			return fits(s, d.Splits.Train)
		})
	}
	if def, err := attack.Lookup(a.Kind); err == nil {
		for _, m := range def.Modes {
			if s := a; m != a.Mode {
				s.Mode = m
				if fits(s, d.Splits.Train) {
					e.Mode = m
				}
			}
		}
	}
	e.Kept, e.Available = d.Spec.Data.SourceImages, countClass(full, short.Class)
	if !short.Carriers && e.Kept > 0 && e.Available > e.Kept {
		n := e.Kept + 1 + sort.Search(e.Available-e.Kept, func(i int) bool {
			return fits(a, d.thinned(full, e.Kept+1+i))
		})
		if n <= e.Available {
			e.SourceImages = n
		}
	}
	return e
}

// largestRate returns the largest φ, to three significant digits, that gives at most n poisoned pairs over
// total clean pairs in mode and that ok accepts; 0 when none does.
func largestRate(mode attack.Mode, n, total int, ok func(float64) bool) float64 {
	r := float64(n) / float64(total)
	if mode != attack.Repair {
		r = float64(n) / float64(total+n)
	}
	unit := math.Pow(10, math.Floor(math.Log10(r))-2)
	for steps := math.Floor(r/unit + 1e-9); steps > 0; steps-- {
		if v, _ := strconv.ParseFloat(strconv.FormatFloat(steps*unit, 'g', 3, 64), 64); ok(v) {
			return v
		}
	}
	return 0
}

// checkBatch refuses a batch size larger than a training stage's pairs (the stage would take no step).
func (d *Data) checkBatch() error {
	names, splits := []string{"fine-tuning", "pre-training"}, []*dataset.Dataset{d.Splits.Train, d.Splits.Pool}
	for i, ds := range splits {
		name := names[i]
		if ds == nil || (name == "pre-training" && d.Spec.Real.Weights != "") {
			continue
		}
		if n := ds.NumCaptions(); d.Spec.Batch > n {
			return fmt.Errorf("batch size %d is larger than the %d %s pairs: no training step would run", d.Spec.Batch, n, name)
		}
	}
	return nil
}

// countClass counts the examples of the named class in ds.
func countClass(ds *dataset.Dataset, class string) int {
	label, err := ds.ClassIndex(class)
	if err != nil {
		return 0
	}
	return len(ds.IndicesOfClass(label))
}
