package plots_test

import (
	"fmt"

	"github.com/mmpoison/mmpoison/evalkit/plots"
	"github.com/mmpoison/mmpoison/kernelext"
)

func ExampleHitAtKCurve() {
	ks := []int{1, 5, 10, 20, 30, 50}
	fig, err := plots.HitAtKCurve("Attack II, Flickr-PASCAL", []plots.HitSeries{
		{Name: "clean", Ks: ks, Hits: []float64{0.024, 0.088, 0.200, 0.31, 0.42, 0.6}},
		{Name: "poisoned", Ks: ks, Hits: []float64{0.280, 0.864, 0.936, 0.96, 0.97, 0.99},
			Err: []float64{0.04, 0.02, 0.01, 0.01, 0.01, 0.005}},
	}, plots.WithName("attack2_hitk"))
	if err != nil {
		panic(err)
	}
	// In a notebook this shows the SVG inline; elsewhere it saves the files
	// when an output directory was set (kernelext.SetOutputDir(dir, atomicfile.WriteFile)), and prints one line.
	_ = kernelext.ShowFigure(fig)
	fmt.Println(fig.Name, len(fig.SVG) > 0, len(fig.PDF) > 0, len(fig.PNG) > 0)
	// Output:
	// figure attack2_hitk: not saved (no output directory)
	// attack2_hitk true true true
}
