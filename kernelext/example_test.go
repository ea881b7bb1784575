package kernelext_test

import (
	"fmt"
	"image"
	"os"
	"time"

	"github.com/mmpoison/mmpoison/kernelext"
)

func ExampleShowTable() {
	t := kernelext.NewTable("Attack II, Flickr-PASCAL", "model", "Hit@10", "MinRank")
	t.AddRow("clean", 0.200, 51.0)
	t.AddRow("poisoned", kernelext.Cell{Text: "0.936", Bold: true}, 2.19)
	t.AddNote("paper numbers")
	kernelext.ShowTable(t) // HTML in a notebook, aligned text here.
	fmt.Print(t.Markdown())
	// Output:
	// Attack II, Flickr-PASCAL
	// model     Hit@10  MinRank
	// --------  ------  -------
	// clean      0.200   51.000
	// poisoned   0.936    2.190
	// paper numbers
	//
	// **Attack II, Flickr-PASCAL**
	//
	// | model    |    Hit@10 | MinRank |
	// | -------- | --------: | ------: |
	// | clean    |     0.200 |  51.000 |
	// | poisoned | **0.936** |   2.190 |
	//
	// paper numbers
}

func ExampleProgress() {
	// A fake clock makes the output deterministic; real code omits WithClock.
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	p := kernelext.NewProgress("fine-tune", 4, kernelext.WithWriter(os.Stdout), kernelext.WithClock(clock),
		kernelext.WithTextInterval(0, 0.5))
	for step := 1; step <= 4; step++ {
		now = now.Add(2 * time.Second)
		p.Update(step, kernelext.F("loss", 2.0/float64(step)))
	}
	p.Done()
	// Output:
	// fine-tune: 1/4 (25%) elapsed 2.0s eta 6.0s | loss=2
	// fine-tune: 2/4 (50%) elapsed 4.0s eta 4.0s | loss=1
	// fine-tune: 4/4 (100%) elapsed 8.0s eta 0ms | loss=0.5
	// fine-tune: done 4/4 (100%) elapsed 8.0s | loss=0.5
}

func ExampleShowImageGrid() {
	g := &kernelext.ImageGrid{Name: "poisoned pairs", Columns: 2, Scale: 4}
	for i := range 4 {
		img := image.NewGray(image.Rect(0, 0, 8, 8))
		for p := range img.Pix {
			img.Pix[p] = uint8(60 * i)
		}
		g.Add(img, fmt.Sprintf("caption %d", i))
	}
	// Without SetOutputDir nothing is saved outside a notebook.
	if err := kernelext.ShowImageGrid(g); err != nil {
		panic(err)
	}
	img, _ := g.Image()
	fmt.Println(img.Bounds().Dx(), "x", img.Bounds().Dy())
	// Output:
	// image grid poisoned pairs: not saved (no output directory)
	// 208 x 108
}
