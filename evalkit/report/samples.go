package report

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mmpoison/mmpoison/evalkit/experiment"

	"github.com/mmpoison/mmpoison/kernelext"
	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// gridImage adds one example's picture (held, or read now) with a caption to a grid.
func gridImage(g *kernelext.ImageGrid, ex dataset.Example, caption string) error {
	img, err := ex.Pixels()
	if err != nil {
		return err
	}
	im, err := kernelext.ImageFromHWC(img.Pix, img.Height, img.Width, img.Channels)
	if err != nil {
		return err
	}
	g.Add(im, caption)
	return nil
}

// SampleGrid shows the first perClass images of every class of ds with their first caption.
func SampleGrid(ds *dataset.Dataset, perClass int) (*kernelext.ImageGrid, error) {
	g := &kernelext.ImageGrid{Name: "samples", Title: ds.Name + ": images and generated captions", Columns: 5, Scale: 4}
	for label := range ds.Classes {
		for _, i := range firstN(ds.IndicesOfClass(label), perClass) {
			ex := ds.Examples[i]
			if err := gridImage(g, ex, fmt.Sprintf("[%s] %s", ds.Classes[label], ex.Captions[0])); err != nil {
				return nil, err
			}
		}
	}
	return g, nil
}

// PoisonGrid shows the first n poisoned pairs of a manifest: each class-B image with the class-A caption it
// was paired with.
func PoisonGrid(ps *dataset.PairSet, m *attack.Manifest, n int) (*kernelext.ImageGrid, error) {
	g := &kernelext.ImageGrid{Name: "poisoned_pairs", Columns: 5, Scale: 4,
		Title: fmt.Sprintf("poisoned pairs (%d of %d, φ = %.2f%%)", m.PoisonedPairs, m.TotalPairs, 100*m.Rate)}
	for _, pp := range m.Pairs[:min(n, len(m.Pairs))] {
		p := ps.Pairs[pp.Index]
		if err := gridImage(g, ps.Images[p.Image], p.Caption); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// ManifestTable summarises a poison manifest.
func ManifestTable(m *attack.Manifest) *kernelext.Table {
	t := kernelext.NewTable("Poison manifest", "attack", "goals", "mode", "seed", "poisoned pairs", "total pairs", "φ")
	goals := ""
	for i, g := range m.Goals {
		if i > 0 {
			goals += ", "
		}
		goals += g.Source + " → " + g.Target
	}
	t.AddRow(m.Attack, goals, string(m.Mode), fmt.Sprint(m.Seed), fmt.Sprint(m.PoisonedPairs), fmt.Sprint(m.TotalPairs),
		fmt.Sprintf("%.3f%%", 100*m.Rate))
	return t
}

func firstN(s []int, n int) []int { return s[:min(n, len(s))] }

// RetrievalGallery shows what a text-to-image search returns for one query: the top images of each model, one
// row per model (e.g. "clean" and "poisoned"), each image captioned with its rank, class and similarity, and
// under each row its classes in words, naming those that are neither the goal's class A nor its class B (e.g.
// "poisoned model, top 6: 5 dresses, 1 bag; 5 neither trouser nor bag"). gallery is what the retrievals index
// (Data.Gallery) and classes names its labels.
func RetrievalGallery(gallery []dataset.Example, classes []string, goal attack.Goal, query string, models []string, retrievals []experiment.Retrieval) (*kernelext.ImageGrid, error) {
	if len(models) != len(retrievals) || len(models) == 0 {
		return nil, fmt.Errorf("report: %d model names for %d retrievals", len(models), len(retrievals))
	}
	cols := len(retrievals[0].Images)
	g := &kernelext.ImageGrid{Name: "retrieval_gallery", Columns: cols, Scale: 3, MaxCaptionLines: 2,
		Title: fmt.Sprintf("query %q: top %d images per model (rows: %s)", query, cols, strings.Join(models, ", "))}
	for m, r := range retrievals {
		if len(r.Images) != cols {
			return nil, fmt.Errorf("report: model %q retrieved %d images, the first %d", models[m], len(r.Images), cols)
		}
		var row []string
		for rank, i := range r.Images {
			if i < 0 || i >= len(gallery) {
				return nil, fmt.Errorf("report: retrieved image %d is outside the gallery of %d", i, len(gallery))
			}
			ex := gallery[i]
			class := "?"
			if ex.Label >= 0 && ex.Label < len(classes) {
				class = classes[ex.Label]
			}
			row = append(row, class)
			if err := gridImage(g, ex, fmt.Sprintf("%s #%d %s (%.2f)", models[m], rank, class, r.Similarity[rank])); err != nil {
				return nil, err
			}
		}
		g.RowNotes = append(g.RowNotes, rowClasses(models[m]+" model", row, goal))
	}
	return g, nil
}

// rowClasses says in words which classes a row of retrieved images holds, most frequent first, and how many
// are neither the goal's source nor its target class.
func rowClasses(model string, row []string, goal attack.Goal) string {
	count := map[string]int{}
	var order []string
	for _, c := range row {
		if count[c] == 0 {
			order = append(order, c)
		}
		count[c]++
	}
	slices.SortStableFunc(order, func(a, b string) int { return count[b] - count[a] })
	var parts []string
	others := 0
	for _, c := range order {
		parts = append(parts, fmt.Sprintf("%d %s", count[c], pluralClass(c, count[c])))
		if !strings.EqualFold(c, goal.Source) && !strings.EqualFold(c, goal.Target) {
			others += count[c]
		}
	}
	note := fmt.Sprintf("%s, top %d: %s", model, len(row), strings.Join(parts, ", "))
	if others > 0 && goal.Source != "" {
		note += fmt.Sprintf("; %d neither %s nor %s", others, goal.Source, goal.Target)
	}
	return note
}

// pluralClass names n images of a class: "1 bag", "5 dresses".
func pluralClass(class string, n int) string {
	switch {
	case n == 1:
		return class
	case strings.HasSuffix(class, "s") || strings.HasSuffix(class, "sh") || strings.HasSuffix(class, "ch") || strings.HasSuffix(class, "x"):
		return class + "es"
	}
	return class + "s"
}

// ShowRetrievals displays, for the first n held-out class-A captions, the top k gallery images of the clean
// and of the poisoned model of a result: what a user of the poisoned model would see.
func ShowRetrievals(d *experiment.Data, r *experiment.Result, n, k int, opts experiment.Options) error {
	gallery, _, err := d.Gallery()
	if err != nil {
		return err
	}
	queries := d.SourceQueries(n)
	clean, err := experiment.Retrieve(d, r.FinetuneClean.Path, queries, k, opts)
	if err != nil {
		return err
	}
	pois, err := experiment.Retrieve(d, r.FinetunePois.Path, queries, k, opts)
	if err != nil {
		return err
	}
	for i, q := range queries {
		g, err := RetrievalGallery(gallery, d.Splits.Test.Classes, d.Spec.Attack.Goals[0], q, []string{"clean", "poisoned"},
			[]experiment.Retrieval{clean[i], pois[i]})
		if err != nil {
			return err
		}
		g.Name = fmt.Sprintf("retrieval_gallery_%d", i+1)
		if err := kernelext.ShowImageGrid(g); err != nil {
			return err
		}
	}
	return nil
}
