package defense

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// Label sources recorded in FilterReport.Labels.
const (
	// LabelsFromFlags means the report used the pair set's Pair.Poisoned flags ([Filter]).
	LabelsFromFlags = "flags"
	// LabelsFromManifest means the report used an attack manifest's pair list ([ReportFromManifest]).
	LabelsFromManifest = "manifest"
)

// FilterReport says what the pre-training filter removed and how much of the poison it caught. Poison removal
// is scored as a detection task: a dropped poisoned pair is a true positive, a dropped clean pair a false
// positive.
//
// Ratios whose denominator is zero are nil (null in JSON, "n/a" in tables), never NaN: Precision when
// nothing was dropped, Recall when there is no poison, CleanDroppedFraction when there is no clean pair.
// Gamma is nil in reports from [ReportFromManifest], which does not know the threshold.
type FilterReport struct {
	// Gamma is the threshold: pairs with distance > Gamma were dropped.
	Gamma *float64 `json:"gamma"`
	// Labels is where the clean/poisoned status came from: LabelsFromFlags or LabelsFromManifest.
	Labels string `json:"labels"`
	// Total is the number of pairs before filtering; Kept + Dropped = Total.
	Total   int `json:"total"`
	Kept    int `json:"kept"`
	Dropped int `json:"dropped"`
	// FractionRemoved is Dropped / Total (0 for an empty set).
	FractionRemoved float64 `json:"fraction_removed"`
	// Unscored counts the pairs dropped because their distance was NaN (included in Dropped). Always 0 in
	// reports from ReportFromManifest.
	Unscored int `json:"unscored"`
	// Poisoned and Clean count the pairs of each kind before filtering.
	Poisoned int `json:"poisoned"`
	Clean    int `json:"clean"`
	// TruePositives counts the poisoned pairs dropped and FalsePositives the clean pairs dropped.
	TruePositives  int `json:"true_positives"`
	FalsePositives int `json:"false_positives"`
	// PoisonedKept counts the poisoned pairs that survived the filter (false negatives).
	PoisonedKept int `json:"poisoned_kept"`
	// Precision is TruePositives / Dropped: the fraction of the removed pairs that were poison.
	Precision *float64 `json:"precision"`
	// Recall is TruePositives / Poisoned: the fraction of the poison removed.
	Recall *float64 `json:"recall"`
	// CleanDroppedFraction is FalsePositives / Clean: the fraction of the clean data lost.
	CleanDroppedFraction *float64 `json:"clean_dropped_fraction"`
	// DroppedIndices are the positions, in the input pair set, of the dropped pairs, in increasing order.
	DroppedIndices []int `json:"dropped_indices"`
}

// Filter returns the pairs of ps whose distance dist[i] is at most gamma, in their original order, and the
// report of what it removed, scored with the pairs' Poisoned flags. Pairs with a NaN distance are dropped too
// (they could not be checked) and counted in FilterReport.Unscored.
//
// The output shares Images and Classes with ps and has its own Pairs slice; its Name is ps.Name + "+filter".
// ps and dist are not modified. Filter panics when len(dist) ≠ len(ps.Pairs) or gamma is NaN: distances come
// from [PairDistances] on the same pairs and γ from [ChooseGamma], so either is a programming error.
func Filter(ps *dataset.PairSet, dist []float64, gamma float64) (*dataset.PairSet, *FilterReport) {
	if ps == nil {
		panic("defense.Filter: nil pair set")
	}
	if len(dist) != len(ps.Pairs) {
		panic(fmt.Sprintf("defense.Filter: %d distances for %d pairs", len(dist), len(ps.Pairs)))
	}
	if math.IsNaN(gamma) {
		panic("defense.Filter: γ is NaN")
	}
	out := *ps
	out.Name = ps.Name + "+filter"
	out.Pairs = make([]dataset.Pair, 0, len(ps.Pairs))
	var dropped []int
	unscored := 0
	for i, p := range ps.Pairs {
		d := dist[i]
		if math.IsNaN(d) {
			unscored++
		}
		if math.IsNaN(d) || d > gamma {
			dropped = append(dropped, i)
			continue
		}
		out.Pairs = append(out.Pairs, p)
	}
	r := newReport(len(ps.Pairs), dropped, ps.NumPoisoned(), func(i int) bool { return ps.Pairs[i].Poisoned })
	r.Labels = LabelsFromFlags
	r.Gamma = &gamma
	r.Unscored = unscored
	return &out, r
}

// ReportFromManifest scores a filter run with the poison manifest alone: dropped are the positions of the
// removed pairs in the poisoned pair set the manifest describes (for instance FilterReport.DroppedIndices), and
// total is that set's number of pairs. The poisoned pairs are those listed in m.Pairs. The report equals the one
// [Filter] gives from the Poisoned flags, except that Gamma is nil, Unscored is 0 and Labels is
// LabelsFromManifest.
//
// It returns an error when m is nil, total disagrees with m.TotalPairs, or an index of dropped or of the
// manifest is out of range or repeated.
func ReportFromManifest(m *attack.Manifest, dropped []int, total int) (*FilterReport, error) {
	if m == nil {
		return nil, errors.New("defense.ReportFromManifest: nil manifest")
	}
	if total != m.TotalPairs {
		return nil, fmt.Errorf("defense.ReportFromManifest: %d pairs, but the manifest says %d", total, m.TotalPairs)
	}
	poisoned := make(map[int]bool, len(m.Pairs))
	for _, e := range m.Pairs {
		switch {
		case e.Index < 0 || e.Index >= total:
			return nil, fmt.Errorf("defense.ReportFromManifest: manifest pair index %d out of range [0, %d)", e.Index, total)
		case poisoned[e.Index]:
			return nil, fmt.Errorf("defense.ReportFromManifest: manifest lists pair %d twice", e.Index)
		}
		poisoned[e.Index] = true
	}
	sorted := slices.Clone(dropped)
	slices.Sort(sorted)
	for k, i := range sorted {
		switch {
		case i < 0 || i >= total:
			return nil, fmt.Errorf("defense.ReportFromManifest: dropped index %d out of range [0, %d)", i, total)
		case k > 0 && sorted[k-1] == i:
			return nil, fmt.Errorf("defense.ReportFromManifest: dropped index %d listed twice", i)
		}
	}
	r := newReport(total, sorted, len(poisoned), func(i int) bool { return poisoned[i] })
	r.Labels = LabelsFromManifest
	return r, nil
}

// newReport scores the dropped positions (sorted, distinct, in range) of a set of total pairs, nPoisoned of
// which are poisoned according to isPoisoned.
func newReport(total int, dropped []int, nPoisoned int, isPoisoned func(int) bool) *FilterReport {
	r := &FilterReport{
		Total:          total,
		Dropped:        len(dropped),
		Kept:           total - len(dropped),
		Poisoned:       nPoisoned,
		Clean:          total - nPoisoned,
		DroppedIndices: dropped,
	}
	if r.DroppedIndices == nil {
		r.DroppedIndices = []int{}
	}
	for _, i := range dropped {
		if isPoisoned(i) {
			r.TruePositives++
		} else {
			r.FalsePositives++
		}
	}
	r.PoisonedKept = r.Poisoned - r.TruePositives
	if total > 0 {
		r.FractionRemoved = float64(r.Dropped) / float64(total)
	}
	r.Precision = ratio(r.TruePositives, r.Dropped)
	r.Recall = ratio(r.TruePositives, r.Poisoned)
	r.CleanDroppedFraction = ratio(r.FalsePositives, r.Clean)
	return r
}

// ratio returns num/den, or nil when den is 0.
func ratio(num, den int) *float64 {
	if den == 0 {
		return nil
	}
	v := float64(num) / float64(den)
	return &v
}
