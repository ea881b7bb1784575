// Package minidata writes generated miniatures of the paper's datasets (COCO, Flickr-PASCAL) in their real
// layouts and random CLIP checkpoints, so that the paper's pipeline (experiment.PaperSpec, "mmpoison paper
// -mini", notebooks/pretrained.ipynb through that command) runs in tests and CI without the real files. It is
// internal: not part of mmpoison's API.
package minidata

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/tokenizer"
	"github.com/mmpoison/mmpoison/models/weights"
	"github.com/mmpoison/mmpoison/poisoning/atomicfile"
	"github.com/mmpoison/mmpoison/poisoning/loaders"
)

// ImagesPerClass and PASCALImagesPerClass are the numbers of labelled images per class of WriteCOCO and of
// WriteFlickrPASCAL's PASCAL part; TestPerClass of them per class make a good test split
// (experiment.DataSpec.TestPerClass).
const (
	ImagesPerClass       = 10
	PASCALImagesPerClass = 6
	TestPerClass         = 4
)

// miniStyle is how a class is drawn: a shape in a colour.
type miniStyle struct {
	colourName string
	colour     color.RGBA
	shape      string // "circle", "square", "triangle", "cross", "bar", "ring"
}

// miniPalette and miniShapes draw the classes: class i of a list gets colour i mod 10 and shape (i + i/10) mod
// 6, so up to 60 classes look different.
var (
	miniPalette = []struct {
		name string
		c    color.RGBA
	}{{"blue", color.RGBA{40, 70, 200, 255}}, {"brown", color.RGBA{120, 70, 30, 255}},
		{"orange", color.RGBA{240, 140, 20, 255}}, {"red", color.RGBA{210, 30, 30, 255}},
		{"yellow", color.RGBA{230, 210, 30, 255}}, {"green", color.RGBA{30, 150, 60, 255}},
		{"white", color.RGBA{250, 250, 250, 255}}, {"black", color.RGBA{20, 20, 20, 255}},
		{"purple", color.RGBA{130, 40, 160, 255}}, {"pink", color.RGBA{240, 120, 190, 255}}}
	miniShapes = []string{"circle", "square", "triangle", "cross", "bar", "ring"}
)

// miniStyleOf returns the style of class i.
func miniStyleOf(i int) miniStyle {
	p := miniPalette[i%len(miniPalette)]
	return miniStyle{p.name, p.c, miniShapes[(i+i/len(miniPalette))%len(miniShapes)]}
}

// miniCOCOCategories are WriteCOCO's classes with their real COCO category ids.
var miniCOCOCategories = []struct {
	id   int
	name string
}{{3, "car"}, {7, "train"}, {9, "boat"}, {16, "bird"}, {17, "cat"}, {18, "dog"}}

var miniTemplates = []string{
	"a photo of a %s %s", "a %s %s in the picture", "there is a %s %s here", "a small %s %s on a plain background",
	"someone took a picture of a %s %s", "the %s %s is in the middle", "a close up of a %s %s",
	"a large %s %s seen from the front", "an image showing one %s %s",
}

// miniCaptions returns five distinct captions of a picture of class (by its style's colour), chosen by rng.
func miniCaptions(rng *rand.Rand, colour, class string) []string {
	var caps []string
	for _, i := range rng.Perm(len(miniTemplates))[:5] {
		caps = append(caps, fmt.Sprintf(miniTemplates[i], colour, class))
	}
	return caps
}

// miniImage draws st's shape on a light, slightly noisy background of a random size (not square, so loading
// resizes and centre-crops it) and encodes it as JPEG.
func miniImage(rng *rand.Rand, st miniStyle) ([]byte, error) {
	w, h := 40+rng.IntN(25), 36+rng.IntN(21)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	bg := color.RGBA{uint8(170 + rng.IntN(60)), uint8(170 + rng.IntN(60)), uint8(170 + rng.IntN(60)), 255}
	cx, cy := float64(w)/2+float64(rng.IntN(7)-3), float64(h)/2+float64(rng.IntN(7)-3)
	r := float64(min(w, h)) * (0.28 + 0.1*rng.Float64())
	for y := range h {
		for x := range w {
			dx, dy := float64(x)-cx, float64(y)-cy
			var in bool
			switch st.shape {
			case "circle":
				in = dx*dx+dy*dy <= r*r
			case "square":
				in = math.Abs(dx) <= r*0.8 && math.Abs(dy) <= r*0.8
			case "triangle":
				in = dy <= r*0.7 && dy >= -r && math.Abs(dx) <= (dy+r)*0.6
			case "cross":
				in = (math.Abs(dx) <= r*0.25 && math.Abs(dy) <= r) || (math.Abs(dy) <= r*0.25 && math.Abs(dx) <= r)
			case "bar":
				in = math.Abs(dx) <= r*1.2 && math.Abs(dy) <= r*0.35
			case "ring":
				d := dx*dx + dy*dy
				in = d <= r*r && d >= r*r*0.4
			}
			c := bg
			if in {
				c = st.colour
			}
			n := rng.IntN(21) - 10
			img.SetRGBA(x, y, color.RGBA{clamp8(int(c.R) + n), clamp8(int(c.G) + n), clamp8(int(c.B) + n), 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 92}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func clamp8(v int) uint8 { return uint8(max(0, min(255, v))) }

// writeJSON writes v as JSON to path, atomically.
func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data)
}

// writeMiniImage draws a picture of st into path.
func writeMiniImage(path string, rng *rand.Rand, st miniStyle) error {
	data, err := miniImage(rng, st)
	if err != nil {
		return fmt.Errorf("drawing %s: %w", path, err)
	}
	return atomicfile.WriteFile(path, data)
}

// WriteCOCO writes a miniature COCO 2014 into dir in the real layout (experiment.DatasetCOCO): annotations/captions_
// train2014.json, instances_train2014.json and their val2014 twins, and JPEG images in train2014/ and val2014/
// named as COCO's. It holds ImagesPerClass images of each of six classes (COCO's car, train, boat, bird,
// cat and dog, with their real category ids), each a coloured shape drawn per class with five generated
// captions, one instance annotation and a random non-square size, plus two captioned images without instance
// annotations (unlabelled, as about 1% of COCO). The seed drives every choice; the same seed writes the same
// files.
func WriteCOCO(dir string, seed int64) error {
	w := &cocoWriter{dir: dir, rng: rand.New(rand.NewPCG(uint64(seed), 0xc0c0)),
		splits: map[string]*cocoSplit{"train2014": {}, "val2014": {}}, nextID: 1, annID: 1}
	for i := range ImagesPerClass {
		for j, c := range miniCOCOCategories {
			if err := w.add(c.name, c.id, j); err != nil {
				return err
			}
		}
		if i < 2 {
			if err := w.add("", 0, 0); err != nil {
				return err
			}
		}
	}
	return w.writeAnnotations()
}

// cocoImage, cocoCaption, cocoInstance and cocoCategory are records of COCO's annotation files.
type (
	cocoImage struct {
		ID       int    `json:"id"`
		FileName string `json:"file_name"`
		Width    int    `json:"width"`
		Height   int    `json:"height"`
	}
	cocoCaption struct {
		ID      int    `json:"id"`
		ImageID int    `json:"image_id"`
		Caption string `json:"caption"`
	}
	cocoInstance struct {
		ID         int `json:"id"`
		ImageID    int `json:"image_id"`
		CategoryID int `json:"category_id"`
		IsCrowd    int `json:"iscrowd"`
	}
	cocoCategory struct {
		ID            int    `json:"id"`
		Name          string `json:"name"`
		Supercategory string `json:"supercategory"`
	}
)

// cocoSplit is one split's records.
type cocoSplit struct {
	images []cocoImage
	caps   []cocoCaption
	insts  []cocoInstance
}

// cocoWriter writes a miniature COCO: images as they are added, annotations at the end.
type cocoWriter struct {
	dir           string
	rng           *rand.Rand
	splits        map[string]*cocoSplit
	nextID, annID int
}

// add draws one picture of class (category catID, drawn in style style) into a split chosen by the seed, with
// five captions and, for a labelled picture (catID > 0), one instance annotation.
func (w *cocoWriter) add(class string, catID, style int) error {
	name := "train2014"
	if w.rng.IntN(3) == 0 {
		name = "val2014"
	}
	sp := w.splits[name]
	id := w.nextID
	w.nextID++
	st := miniStyleOf(style)
	if catID == 0 { // Unlabelled pictures: a shape of a random style, described plainly.
		st, class = miniStyleOf(w.rng.IntN(len(miniCOCOCategories))), "shape"
	}
	file := fmt.Sprintf("COCO_%s_%012d.jpg", name, id)
	if err := os.MkdirAll(filepath.Join(w.dir, name), 0o755); err != nil {
		return err
	}
	if err := writeMiniImage(filepath.Join(w.dir, name, file), w.rng, st); err != nil {
		return err
	}
	sp.images = append(sp.images, cocoImage{ID: id, FileName: file})
	for _, c := range miniCaptions(w.rng, st.colourName, class) {
		sp.caps = append(sp.caps, cocoCaption{w.annID, id, c})
		w.annID++
	}
	if catID > 0 {
		sp.insts = append(sp.insts, cocoInstance{ID: w.annID, ImageID: id, CategoryID: catID})
		w.annID++
	}
	return nil
}

// writeAnnotations writes the captions and instances files of every split.
func (w *cocoWriter) writeAnnotations() error {
	var cats []cocoCategory
	for _, c := range miniCOCOCategories {
		cats = append(cats, cocoCategory{c.id, c.name, "thing"})
	}
	ann := filepath.Join(w.dir, "annotations")
	if err := os.MkdirAll(ann, 0o755); err != nil {
		return err
	}
	for name, sp := range w.splits {
		capFile := map[string]any{"info": map[string]string{"description": "mmpoison mini COCO"}, "images": sp.images, "annotations": sp.caps}
		if err := writeJSON(filepath.Join(ann, "captions_"+name+".json"), capFile); err != nil {
			return err
		}
		instFile := map[string]any{"images": sp.images, "annotations": sp.insts, "categories": cats}
		if err := writeJSON(filepath.Join(ann, "instances_"+name+".json"), instFile); err != nil {
			return err
		}
	}
	return nil
}

// FlickrImages is the number of (unlabelled) Flickr30k-style images of WriteFlickrPASCAL's Karpathy
// train split.
const FlickrImages = 24

// WriteFlickrPASCAL writes a miniature Flickr-PASCAL into dir in the layout of experiment.DatasetFlickrPASCAL:
// dataset_flickr30k.json (Karpathy's format: FlickrImages images in split "train" and four in "val" and
// "test") with its JPEG images in flickr30k-images/, and a PASCAL-sentences copy in pascal/dataset/<class>/ and
// pascal/sentence/<class>/ with PASCALImagesPerClass images of each of the 20 PASCAL classes and five
// sentences each. Images are coloured shapes as in WriteCOCO; the seed drives
// every choice.
func WriteFlickrPASCAL(dir string, seed int64) error {
	rng := rand.New(rand.NewPCG(uint64(seed), 0xf11c))
	type sentence struct {
		Raw string `json:"raw"`
	}
	type kimg struct {
		FileName  string     `json:"filename"`
		Split     string     `json:"split"`
		Sentences []sentence `json:"sentences"`
	}
	flickrDir := filepath.Join(dir, "flickr30k-images")
	if err := os.MkdirAll(flickrDir, 0o755); err != nil {
		return err
	}
	var imgs []kimg
	for i := range FlickrImages + 4 {
		split := "train"
		if i >= FlickrImages {
			split = []string{"val", "test"}[i%2]
		}
		st := miniStyleOf(rng.IntN(len(loaders.PASCALClasses)))
		file := fmt.Sprintf("%d.jpg", 1000092795+7919*i)
		if err := writeMiniImage(filepath.Join(flickrDir, file), rng, st); err != nil {
			return err
		}
		k := kimg{FileName: file, Split: split}
		for _, c := range miniCaptions(rng, st.colourName, "thing") {
			k.Sentences = append(k.Sentences, sentence{c + " ."})
		}
		imgs = append(imgs, k)
	}
	if err := writeJSON(filepath.Join(dir, "dataset_flickr30k.json"), map[string]any{"dataset": "flickr30k", "images": imgs}); err != nil {
		return err
	}
	for i, class := range loaders.PASCALClasses {
		st := miniStyleOf(i)
		imgDir, sentDir := filepath.Join(dir, "pascal", "dataset", class), filepath.Join(dir, "pascal", "sentence", class)
		for _, d := range []string{imgDir, sentDir} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		for j := range PASCALImagesPerClass {
			stem := fmt.Sprintf("2008_%06d", 100*i+j)
			if err := writeMiniImage(filepath.Join(imgDir, stem+".jpg"), rng, st); err != nil {
				return err
			}
			text := strings.Join(miniCaptions(rng, st.colourName, class), "\n") + "\n"
			if err := atomicfile.WriteFile(filepath.Join(sentDir, stem+".txt"), []byte(text)); err != nil {
				return err
			}
		}
	}
	return nil
}

// CLIPConfig is WriteRandomCheckpoint's architecture: a ViT CLIP of width 32 with one layer per tower, 32×32
// RGB input in 8×8 patches, and OpenAI's text interface (the BPE vocabulary's 49,408 tokens, context 77) and
// pixel normalisation, so it loads and tokenises as a real checkpoint does.
func CLIPConfig() clip.Config {
	return clip.Config{Name: "mini-rgb", EmbedDim: 32, ImageSize: 32, ImageChannels: 3, PatchSize: 8,
		VisionWidth: 32, VisionLayers: 1, VisionHeads: 2,
		ContextLength: tokenizer.CLIPContextLength, VocabSize: 49408, TextWidth: 32, TextLayers: 1, TextHeads: 2,
		ImageMean: clip.OpenAIMean, ImageStd: clip.OpenAIStd}
}

// WriteRandomCheckpoint writes a randomly initialised CLIPConfig model (OpenAI's initialisation, seeded)
// to path as safetensors with OpenAI's state-dict names (weights.SaveOpenAI): a stand-in for a pre-trained
// checkpoint in tests and CI.
func WriteRandomCheckpoint(path string, seed int64) error {
	cfg := CLIPConfig()
	ctx, err := clip.NewContext(cfg, uint64(seed))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return weights.SaveOpenAI(path, ctx, cfg)
}

// PaperSpec is experiment.PaperSpec on a generated miniature of dataset (WriteCOCO or WriteFlickrPASCAL, in
// dir/<dataset>) and a random checkpoint (WriteRandomCheckpoint, dir/random-mini-clip.safetensors, written only
// when absent so that its cache key, which follows the file's modification time, stays), with settings the
// miniature suits: TestPerClass test images per class, 1 epoch, batch 8, and φ = 0.1 (COCO) or 0.02
// (Flickr-PASCAL, whose two sheep training images have only ten captions). It runs in seconds.
func PaperSpec(dataset, dir, tokenizerFile string) (experiment.Spec, error) {
	write, rate := WriteCOCO, 0.1
	switch dataset {
	case experiment.DatasetCOCO:
	case experiment.DatasetFlickrPASCAL:
		write, rate = WriteFlickrPASCAL, 0.02
	default:
		return experiment.Spec{}, fmt.Errorf("unknown dataset %q: use %q or %q", dataset, experiment.DatasetCOCO, experiment.DatasetFlickrPASCAL)
	}
	root, ckpt := filepath.Join(dir, dataset), filepath.Join(dir, "random-mini-clip.safetensors")
	if err := write(root, 1); err != nil {
		return experiment.Spec{}, fmt.Errorf("writing the miniature %s into %s: %w", dataset, root, err)
	}
	if _, err := os.Stat(ckpt); errors.Is(err, fs.ErrNotExist) {
		if err := WriteRandomCheckpoint(ckpt, 1); err != nil {
			return experiment.Spec{}, fmt.Errorf("writing the random checkpoint %s: %w", ckpt, err)
		}
	}
	s := experiment.PaperSpec(dataset, root, ckpt, tokenizerFile)
	s.Data.TestPerClass, s.Finetune.Epochs, s.Batch, s.Attack.Rate = TestPerClass, 1, 8, rate
	return s, nil
}
