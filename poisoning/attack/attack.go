package attack

import (
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
func classImages(t *dataset.Table, label int) []int {
	var idx []int
	for i := range t.NumImages() {
		if t.Label(i) == label {
			idx = append(idx, i)
		}
	}
	return idx
}

// shuffledImages returns classImages(t, label) in a seeded order, or an error naming the class if it has none.
func shuffledImages(t *dataset.Table, label int, rng *rand.Rand) ([]int, error) {
	idx := classImages(t, label)
	if len(idx) == 0 {
		return nil, fmt.Errorf("attack: class %q has no images in %q", t.Classes[label], t.Name)
	}
	rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
	return idx, nil
}

// captionGroups are the clean pairs whose caption was written for an image of one class, grouped by that image:
// the images in the order of their first pair, each with its pairs in order (group g's pairs are
// pairs[start[g]:start[g+1]]). Compact: 4 bytes per pair and 12 per image.
type captionGroups struct {
	images, start, pairs []int32
}

// groupCaptions returns the caption groups of the clean pairs of t whose caption image has the given label.
// A clean table's pairs of one image are consecutive, so its groups need no lookup.
func groupCaptions(t *dataset.Table, label int) *captionGroups {
	g := &captionGroups{}
	var slot map[int32]int32
	if !t.IsClean() {
		slot = map[int32]int32{}
	}
	var count []int32
	var eligible []int32
	for p := range t.NumPairs() {
		if t.Poisoned(p) {
			continue
		}
		img := int32(t.CaptionOf(p))
		if t.Label(int(img)) != label {
			continue
		}
		s, ok := int32(len(g.images)-1), len(g.images) > 0 && g.images[len(g.images)-1] == img
		if slot != nil {
			s, ok = slot[img]
		}
		if !ok {
			s = int32(len(g.images))
			if slot != nil {
				slot[img] = s
			}
			g.images, count = append(g.images, img), append(count, 0)
		}
		count[s]++
		eligible = append(eligible, int32(p))
	}
	g.start = make([]int32, len(g.images)+1)
	for s, c := range count {
		g.start[s+1] = g.start[s] + c
	}
	if slot == nil { // Consecutive groups: the eligible pairs are already grouped, in order.
		g.pairs = eligible
		return g
	}
	g.pairs = make([]int32, len(eligible))
	next := slices.Clone(g.start[:len(g.images)])
	for _, p := range eligible {
		s := slot[int32(t.CaptionOf(int(p)))]
		g.pairs[next[s]] = p
		next[s]++
	}
	return g
}

// sourcePairs picks n distinct clean pairs whose caption was written for an image of the given label, spread over
// those images: the images are visited in a seeded order, taking one caption of each per round (in a seeded
// order per image), so n ≤ #images uses n different images. It returns indices into the pairs of t.
func sourcePairs(t *dataset.Table, label, n int, rng *rand.Rand) ([]int, error) {
	g := groupCaptions(t, label)
	available := len(g.pairs)
	name := t.Classes[label]
	if available == 0 {
		return nil, fmt.Errorf("attack: class %q has no clean captioned pairs in %q", name, t.Name)
	}
	if n > available {
		return nil, &ShortageError{Need: n, Have: available, Class: name, Dataset: t.Name}
	}
	order := make([]int32, len(g.images)) // group numbers, shuffled as the images are
	for i := range order {
		order[i] = int32(i)
	}
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for _, s := range order {
		l := g.pairs[g.start[s]:g.start[s+1]]
		rng.Shuffle(len(l), func(i, j int) { l[i], l[j] = l[j], l[i] })
	}
	out := make([]int, 0, n)
	for round := int32(0); len(out) < n; round++ {
		for _, s := range order {
			if l := g.pairs[g.start[s]:g.start[s+1]]; round < int32(len(l)) && len(out) < n {
				out = append(out, int(l[round]))
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
