package report

import (
	"fmt"

	"github.com/mmpoison/mmpoison/kernelext"
	"github.com/mmpoison/mmpoison/poisoning/defense"
)

// FilterTable shows what a data-side defense removed (a [defense.FilterReport]) as a two-column (metric,
// value) table. The title names the defense, for instance "Pre-training filter" or "k-distance detector"; γ is
// appended when the report knows it. Undefined ratios show as "n/a".
func FilterTable(title string, r *defense.FilterReport) *kernelext.Table {
	if r != nil && r.Gamma != nil {
		title = fmt.Sprintf("%s (γ = %.3f)", title, *r.Gamma)
	}
	t := kernelext.NewTable(title, "metric", "value")
	if r == nil {
		return t.AddNote("no report")
	}
	t.AddRow("pairs", r.Total).
		AddRow("kept", r.Kept).
		AddRow("dropped", r.Dropped).
		AddRow("fraction removed", r.FractionRemoved).
		AddRow("poisoned pairs", r.Poisoned).
		AddRow("poison dropped (TP)", r.TruePositives).
		AddRow("poison kept (FN)", r.PoisonedKept).
		AddRow("clean dropped (FP)", r.FalsePositives).
		AddRow("clean dropped fraction", deref(r.CleanDroppedFraction)).
		AddRow("precision", deref(r.Precision)).
		AddRow("recall", deref(r.Recall))
	if r.Unscored > 0 {
		t.AddRow("unscored (NaN value, dropped)", r.Unscored)
	}
	switch r.Labels {
	case defense.LabelsFromFlags:
		t.AddNote("Poisoned/clean status from the pairs' Poisoned flags.")
	case defense.LabelsFromManifest:
		t.AddNote("Poisoned/clean status from the poison manifest.")
	}
	return t
}
