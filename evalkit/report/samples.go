package report

import (
	"fmt"

	"github.com/mmpoison/mmpoison/kernelext"
	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// gridImage adds one dataset image with a caption to a grid.
func gridImage(g *kernelext.ImageGrid, img dataset.Image, caption string) error {
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
			if err := gridImage(g, ex.Image, fmt.Sprintf("[%s] %s", ds.Classes[label], ex.Captions[0])); err != nil {
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
		if err := gridImage(g, ps.Images[p.Image].Image, p.Caption); err != nil {
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
