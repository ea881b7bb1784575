package loaders_test

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"

	"github.com/mmpoison/mmpoison/poisoning/loaders"
)

// A Flickr30k-style set in Karpathy's format is indexed (no image is opened), streamed one image at a time, and
// collected at a fixed 16×16 size with corrupt images skipped and reported.
func Example() {
	dir, _ := os.MkdirTemp("", "loaders-example")
	defer os.RemoveAll(dir)
	imgDir := filepath.Join(dir, "flickr30k-images")
	_ = os.MkdirAll(imgDir, 0o755)
	for i, name := range []string{"1000092795.jpg", "10002456.jpg"} {
		img := image.NewGray(image.Rect(0, 0, 40+10*i, 30))
		img.SetGray(1, 1, color.Gray{200})
		f, _ := os.Create(filepath.Join(imgDir, name))
		_ = png.Encode(f, img) // A PNG under a .jpg name decodes too: the format is sniffed.
		f.Close()
	}
	_ = os.WriteFile(filepath.Join(imgDir, "1000268201.jpg"), []byte("not an image"), 0o644)
	karpathy := `{"dataset": "flickr30k", "images": [
	  {"filename": "1000092795.jpg", "split": "train", "sentences": [{"raw": "Two young guys look at their hands ."}, {"raw": "Two friends ."}]},
	  {"filename": "10002456.jpg", "split": "train", "sentences": [{"raw": "Men in hard hats operate a pulley ."}]},
	  {"filename": "1000268201.jpg", "split": "train", "sentences": [{"raw": "A child climbs stairs ."}]},
	  {"filename": "1000344755.jpg", "split": "test", "sentences": [{"raw": "Someone in a blue shirt ."}]}]}`
	jsonPath := filepath.Join(dir, "dataset_flickr30k.json")
	_ = os.WriteFile(jsonPath, []byte(karpathy), 0o644)

	ix, err := loaders.LoadKarpathy(loaders.KarpathyConfig{File: jsonPath, ImageDir: imgDir, Splits: []string{"train"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ix.Name(), ix.Len(), "images")

	// Streaming: each image is decoded when the loop asks for it, at its own size.
	for ex, err := range ix.Examples(loaders.Options{}) {
		var exErr *loaders.ExampleError
		if errors.As(err, &exErr) {
			fmt.Println("cannot decode", filepath.Base(exErr.File))
			continue
		} else if err != nil {
			fmt.Println(err)
			break
		}
		fmt.Printf("%s %d×%d %q\n", ex.ID, ex.Image.Width, ex.Image.Height, ex.Captions[0])
	}

	// Collecting: every image resized and centre-cropped to 16×16, the corrupt one skipped and named.
	d, rep, err := loaders.Collect(ix, loaders.Options{ImageSize: 16, SkipCorrupt: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(d.Name, len(d.Examples), "examples of", d.Examples[0].Image.Width, "×", d.Examples[0].Image.Height)
	fmt.Println("skipped:", len(rep.Skipped), filepath.Base(rep.Skipped[0].File))
	// Output:
	// flickr30k/train 3 images
	// flickr30k/1000092795.jpg 40×30 "Two young guys look at their hands ."
	// flickr30k/10002456.jpg 50×30 "Men in hard hats operate a pulley ."
	// cannot decode 1000268201.jpg
	// flickr30k/train 2 examples of 16 × 16
	// skipped: 1 1000268201.jpg
}
