package attack

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// Mode says how poisoned pairs enter the training set.
type Mode string

const (
	// Inject appends new (class-A caption, class-B image) pairs; the clean pairs stay. The zero Mode means Inject.
	Inject Mode = "inject"
	// Repair re-points existing class-A pairs to class-B images (the official code's way); the pair count stays.
	Repair Mode = "repair"
)

// normalize returns the mode with "" replaced by Inject, or an error for an unknown mode.
func (m Mode) normalize() (Mode, error) {
	switch m {
	case "", Inject:
		return Inject, nil
	case Repair:
		return Repair, nil
	}
	return "", fmt.Errorf("attack: unknown mode %q: want %q or %q", string(m), Inject, Repair)
}

// poisonCount turns a requested rate φ or count into the number of poisoned pairs for a training set of total
// pairs. Exactly one of rate and count must be set. See the package documentation for the formulas.
func poisonCount(mode Mode, rate float64, count, total int) (int, error) {
	return poisonCountGoals(mode, rate, count, total, 1)
}

// poisonCountGoals is poisonCount for an attack with the given number of goals (≥ 1), each of which needs at
// least one poisoned pair: a count or rate that yields fewer pairs than goals is an error naming the smallest
// rate that gives one pair per goal.
func poisonCountGoals(mode Mode, rate float64, count, total, goals int) (int, error) {
	if total <= 0 {
		return 0, fmt.Errorf("attack: the training set has no pairs")
	}
	switch {
	case count < 0:
		return 0, fmt.Errorf("attack: poisoned pair count %d is negative", count)
	case count > 0 && rate != 0:
		return 0, fmt.Errorf("attack: set either Rate (%v) or Count (%d), not both", rate, count)
	case count > 0 && count < goals:
		return 0, fmt.Errorf("attack: poisoned pair count %d is fewer than one pair for each of %d goals", count, goals)
	case count > 0:
		return count, nil
	}
	if math.IsNaN(rate) || rate <= 0 || rate >= 1 {
		return 0, fmt.Errorf("attack: poisoning rate φ = %v is outside (0, 1) (or set Count instead)", rate)
	}
	// k poisoned pairs are φ = k/N (Repair) or k/(N+k) (Inject); rates from half a pair below round up to k.
	k, N := float64(goals), float64(total)
	var smallest, roundsUp float64
	n := pairsAt(mode, rate, total)
	if mode == Repair {
		smallest, roundsUp = k/N, (2*k-1)/(2*N)
	} else {
		smallest, roundsUp = k/(N+k), (2*k-1)/(2*N+2*k-1)
	}
	if n == 0 && goals == 1 {
		return 0, fmt.Errorf("attack: poisoning rate φ = %v gives 0 poisoned pairs over %d pairs in %s mode; "+
			"one poisoned pair is φ = %.6g (rates from %s round up to it)%s", rate, total, mode, smallest, atLeast6(roundsUp),
			setSizeHint(mode, rate, goals))
	}
	if n < goals {
		return 0, fmt.Errorf("attack: poisoning rate φ = %v gives %d poisoned pairs over %d pairs in %s mode, fewer than "+
			"one for each of %d goals; %d poisoned pairs is φ = %.6g (rates from %s round up to it)%s",
			rate, n, total, mode, goals, goals, smallest, atLeast6(roundsUp), setSizeHint(mode, rate, goals))
	}
	return n, nil
}

// pairsAt is the number of poisoned pairs that rate φ gives over total clean pairs (Repair: total pairs).
func pairsAt(mode Mode, rate float64, total int) int {
	if mode == Repair {
		return int(math.Round(rate * float64(total)))
	}
	return int(math.Round(rate * float64(total) / (1 - rate)))
}

// maxHintPairs bounds the training-set sizes setSizeHint names.
const maxHintPairs = 1 << 40

// setSizeHint returns ", or φ = rate needs a training set of at least M pairs", M being the smallest input pair
// count for which rate gives one poisoned pair per goal, or "" when M would exceed maxHintPairs.
func setSizeHint(mode Mode, rate float64, goals int) string {
	k := float64(goals)
	est := (k - 0.5) / rate // Repair: φ·M ≥ k − ½
	if mode != Repair {
		est *= 1 - rate // Inject: φ·M/(1−φ) ≥ k − ½
	}
	if !(est < maxHintPairs) {
		return ""
	}
	m := max(int(math.Ceil(est)), 1)
	for pairsAt(mode, rate, m) < goals {
		m++
	}
	for m > 1 && pairsAt(mode, rate, m-1) >= goals {
		m--
	}
	return fmt.Sprintf(", or φ = %v needs a training set of at least %d pairs", rate, m)
}

// atLeast6 formats the positive x like %.6g, but rounded up, so that the printed rate is not below the threshold
// it names.
func atLeast6(x float64) string {
	s := strconv.FormatFloat(x, 'g', 6, 64)
	if v, _ := strconv.ParseFloat(s, 64); v < x {
		s = strconv.FormatFloat(v+math.Pow(10, math.Floor(math.Log10(x))-5), 'g', 6, 64)
	}
	return s
}

// resolveClasses returns the labels of source and target in classes, or an error for unknown or equal classes.
func resolveClasses(classes []string, source, target string) (int, int, error) {
	a, err := dataset.ClassIndex(classes, source)
	if err != nil {
		return 0, 0, fmt.Errorf("attack: source class: %w", err)
	}
	b, err := dataset.ClassIndex(classes, target)
	if err != nil {
		return 0, 0, fmt.Errorf("attack: target class: %w", err)
	}
	if a == b {
		return 0, 0, fmt.Errorf("attack: source and target are the same class %q", classes[a])
	}
	return a, b, nil
}

// newRand returns the random stream of one purpose (a small constant) of one goal of an attack seeded by seed.
func newRand(seed int64, goal, purpose int) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), 0x6d6d706f69736f6e^uint64(goal)<<8^uint64(purpose)))
}

// Random stream purposes.
const (
	purposeCaptions = 1
	purposeImages   = 2
)

// classImages returns the indices of the pool images with the given label, ascending.
func classImages(ps *dataset.PairSet, label int) []int {
	var idx []int
	for i, ex := range ps.Images {
		if ex.Label == label {
			idx = append(idx, i)
		}
	}
	return idx
}

// shuffledImages returns classImages(ps, label) in a seeded order, or an error naming the class if it has none.
func shuffledImages(ps *dataset.PairSet, label int, rng *rand.Rand) ([]int, error) {
	idx := classImages(ps, label)
	if len(idx) == 0 {
		return nil, fmt.Errorf("attack: class %q has no images in %q", ps.Classes[label], ps.Name)
	}
	rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
	return idx, nil
}

// sourcePairs picks n distinct clean pairs whose caption was written for an image of the given label, spread over
// those images: the images are visited in a seeded order, taking one caption of each per round (in a seeded
// order per image), so n ≤ #images uses n different images. It returns indices into ps.Pairs.
func sourcePairs(ps *dataset.PairSet, label, n int, rng *rand.Rand) ([]int, error) {
	byImage := map[int][]int{}
	var images []int
	available := 0
	for i, p := range ps.Pairs {
		if p.Poisoned || ps.Images[p.CaptionOf].Label != label {
			continue
		}
		if _, ok := byImage[p.CaptionOf]; !ok {
			images = append(images, p.CaptionOf)
		}
		byImage[p.CaptionOf] = append(byImage[p.CaptionOf], i)
		available++
	}
	name := ps.Classes[label]
	if available == 0 {
		return nil, fmt.Errorf("attack: class %q has no clean captioned pairs in %q", name, ps.Name)
	}
	if n > available {
		return nil, &ShortageError{Need: n, Have: available, Class: name, Dataset: ps.Name}
	}
	rng.Shuffle(len(images), func(i, j int) { images[i], images[j] = images[j], images[i] })
	for _, img := range images {
		l := byImage[img]
		rng.Shuffle(len(l), func(i, j int) { l[i], l[j] = l[j], l[i] })
	}
	out := make([]int, 0, n)
	for round := 0; len(out) < n; round++ {
		for _, img := range images {
			if l := byImage[img]; round < len(l) && len(out) < n {
				out = append(out, l[round])
			}
		}
	}
	return out, nil
}

// ShortageError is Apply's error when an attack asks for more poisoned pairs than the training set has items
// for: each poisoned pair needs its own clean caption of the goal's source class (Attacks I–III), or, with
// Carriers, its own image outside the target class to carry the trigger (the backdoor).
type ShortageError struct {
	// Need is the number of poisoned pairs asked for (of one goal), Have the number of items there are.
	Need, Have int
	// Class is the source class (the target class with Carriers); Dataset names the training set.
	Class, Dataset string
	Carriers       bool
}

func (e *ShortageError) Error() string {
	if e.Carriers {
		return fmt.Sprintf("attack: %d poisoned pairs need %d distinct images outside class %q to trigger, but %q has only %d",
			e.Need, e.Need, e.Class, e.Dataset, e.Have)
	}
	return fmt.Sprintf("attack: %d poisoned pairs need %d distinct captions of class %q, but %q has only %d clean class-%s pairs",
		e.Need, e.Need, e.Class, e.Dataset, e.Have, e.Class)
}

// pick is one poisoned pair to create: the caption of input pair src, paired with input image image.
type pick struct {
	goal  int
	src   int
	image int
}

// applyPicks returns a copy of ps with the picks applied in the given mode, and the manifest entries of the
// poisoned pairs in output order. The input is not modified.
func applyPicks(ps *dataset.PairSet, mode Mode, picks []pick, suffix string) (*dataset.PairSet, []PoisonedPair) {
	out := ps.Clone()
	out.Name = ps.Name + "+" + suffix
	entries := make([]PoisonedPair, 0, len(picks))
	for _, pk := range picks {
		src := ps.Pairs[pk.src]
		idx := pk.src
		if mode == Repair {
			out.Pairs[idx].Image = pk.image
			out.Pairs[idx].Poisoned = true
		} else {
			idx = len(out.Pairs)
			out.Pairs = append(out.Pairs, dataset.Pair{
				Image: pk.image, Caption: src.Caption, CaptionOf: src.CaptionOf, CaptionIndex: src.CaptionIndex,
				Poisoned: true,
			})
		}
		entries = append(entries, PoisonedPair{
			Index:           idx,
			Goal:            pk.goal,
			SourcePair:      pk.src,
			Caption:         src.Caption,
			CaptionImageID:  ps.Images[src.CaptionOf].ID,
			CaptionIndex:    src.CaptionIndex,
			OriginalImageID: ps.Images[src.Image].ID,
			PoisonedImageID: ps.Images[pk.image].ID,
		})
	}
	// Repair re-points pairs in place, in pick order; the manifest lists them in output order.
	slices.SortFunc(entries, func(x, y PoisonedPair) int { return cmp.Compare(x.Index, y.Index) })
	return out, entries
}

// Attack is what Attacks I, II and III have in common, so that experiment code can treat them alike.
type Attack interface {
	// Apply returns a poisoned copy of train and the manifest of what was done; train is not modified.
	Apply(train *dataset.PairSet) (*dataset.PairSet, *Manifest, error)
	// Name is the attack's name as recorded in Manifest.Attack, e.g. "single-target-label".
	Name() string
}

var (
	_ Attack = SingleImage{}
	_ Attack = SingleLabel{}
	_ Attack = MultiLabel{}
)

// finish fills the counts and φ of a manifest from the poisoned pair set.
func (m *Manifest) finish(out *dataset.PairSet) {
	m.Version = ManifestVersion
	m.TotalPairs = len(out.Pairs)
	m.PoisonedPairs = out.NumPoisoned()
	m.CleanPairs = m.TotalPairs - m.PoisonedPairs
	m.Rate = out.PoisonRate()
}
