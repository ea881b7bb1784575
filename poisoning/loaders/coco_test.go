package loaders

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// cocoCategories are COCO's 80 categories with their ids (ids 12, 26, 29, 30, 45, 66, 68, 69, 71, 83 unused).
var cocoCategories = []struct {
	id   int
	name string
}{
	{1, "person"}, {2, "bicycle"}, {3, "car"}, {4, "motorcycle"}, {5, "airplane"}, {6, "bus"}, {7, "train"},
	{8, "truck"}, {9, "boat"}, {10, "traffic light"}, {11, "fire hydrant"}, {13, "stop sign"},
	{14, "parking meter"}, {15, "bench"}, {16, "bird"}, {17, "cat"}, {18, "dog"}, {19, "horse"}, {20, "sheep"},
	{21, "cow"}, {22, "elephant"}, {23, "bear"}, {24, "zebra"}, {25, "giraffe"}, {27, "backpack"},
	{28, "umbrella"}, {31, "handbag"}, {32, "tie"}, {33, "suitcase"}, {34, "frisbee"}, {35, "skis"},
	{36, "snowboard"}, {37, "sports ball"}, {38, "kite"}, {39, "baseball bat"}, {40, "baseball glove"},
	{41, "skateboard"}, {42, "surfboard"}, {43, "tennis racket"}, {44, "bottle"}, {46, "wine glass"},
	{47, "cup"}, {48, "fork"}, {49, "knife"}, {50, "spoon"}, {51, "bowl"}, {52, "banana"}, {53, "apple"},
	{54, "sandwich"}, {55, "orange"}, {56, "broccoli"}, {57, "carrot"}, {58, "hot dog"}, {59, "pizza"},
	{60, "donut"}, {61, "cake"}, {62, "chair"}, {63, "couch"}, {64, "potted plant"}, {65, "bed"},
	{67, "dining table"}, {70, "toilet"}, {72, "tv"}, {73, "laptop"}, {74, "mouse"}, {75, "remote"},
	{76, "keyboard"}, {77, "cell phone"}, {78, "microwave"}, {79, "oven"}, {80, "toaster"}, {81, "sink"},
	{82, "refrigerator"}, {84, "book"}, {85, "clock"}, {86, "vase"}, {87, "scissors"}, {88, "teddy bear"},
	{89, "hair drier"}, {90, "toothbrush"},
}

func cocoCatID(t testing.TB, name string) int {
	for _, c := range cocoCategories {
		if c.name == name {
			return c.id
		}
	}
	t.Fatalf("no COCO category %q", name)
	return 0
}

// miniImage is one image of a generated COCO miniature.
type miniImage struct {
	id       int64
	captions []string
	cats     []string // one instance annotation per entry
	kind     string   // "jpg", "gray", "png" (stored under a .jpg name, as some COCO copies do), "corrupt", "" (no file)
}

// cocoFileName is the official file name of an image of split.
func cocoFileName(split string, id int64) string {
	if strings.HasSuffix(split, "2014") {
		return fmt.Sprintf("COCO_%s_%012d.jpg", split, id)
	}
	return fmt.Sprintf("%012d.jpg", id)
}

// writeCOCOSplit writes captions_<split>.json, instances_<split>.json (with the real field names, segmentation
// polygons included) and the images of a COCO miniature under root. shuffle reorders the annotation arrays.
func writeCOCOSplit(t testing.TB, root, split string, imgs []miniImage, shuffle uint64) {
	t.Helper()
	var images, caps, inst []map[string]any
	capID, instID := int64(1000), int64(5000)
	for _, im := range imgs {
		name := cocoFileName(split, im.id)
		images = append(images, map[string]any{
			"license": 3, "file_name": name, "coco_url": "http://images.cocodataset.org/" + split + "/" + name,
			"height": 20, "width": 24, "date_captured": "2013-11-14 16:28:13", "flickr_url": "", "id": im.id,
		})
		for _, c := range im.captions {
			caps = append(caps, map[string]any{"image_id": im.id, "id": capID, "caption": c})
			capID++
		}
		for _, c := range im.cats {
			inst = append(inst, map[string]any{
				"segmentation": [][]float64{{1, 1, 10, 1, 10, 10, 1, 10}}, "area": 81.0, "iscrowd": 0,
				"image_id": im.id, "bbox": []float64{1, 1, 9, 9}, "category_id": cocoCatID(t, c), "id": instID,
			})
			instID++
		}
		path := filepath.Join(root, split, name)
		switch im.kind {
		case "jpg", "gray", "png":
			writeImage(t, path, im.kind, 24, 20, int(im.id))
		case "corrupt":
			writeFile(t, path, corruptJPEG(t))
		}
	}
	if shuffle != 0 {
		rng := rand.New(rand.NewPCG(shuffle, 1))
		rng.Shuffle(len(caps), func(i, j int) { caps[i], caps[j] = caps[j], caps[i] })
		rng.Shuffle(len(inst), func(i, j int) { inst[i], inst[j] = inst[j], inst[i] })
	}
	var cats []map[string]any
	for _, c := range cocoCategories {
		cats = append(cats, map[string]any{"supercategory": "object", "id": c.id, "name": c.name})
	}
	info := map[string]any{"description": "COCO miniature", "year": 2014, "version": "1.0"}
	licenses := []map[string]any{{"url": "http://creativecommons.org/licenses/by-nc-sa/2.0/", "id": 3, "name": "CC BY-NC-SA"}}
	writeJSON(t, filepath.Join(root, "annotations", "captions_"+split+".json"),
		map[string]any{"info": info, "images": images, "licenses": licenses, "annotations": caps})
	writeJSON(t, filepath.Join(root, "annotations", "instances_"+split+".json"),
		map[string]any{"info": info, "images": images, "licenses": licenses, "annotations": inst, "categories": cats})
}

// miniCOCO writes the standard test miniature: four train and two val images.
func miniCOCO(t testing.TB, root, year string, shuffle uint64) {
	writeCOCOSplit(t, root, "train"+year, []miniImage{
		{id: 9, captions: []string{"A dog and a cat on a sofa. ", "Three dogs and a cat."}, cats: []string{"dog", "cat", "dog", "dog"}, kind: "jpg"},
		{id: 25, captions: []string{"A boat on a lake."}, cats: []string{"boat"}, kind: "gray"},
		{id: 30, captions: []string{"An empty street."}, kind: "png"},
		{id: 34, captions: []string{"A zebra in the grass."}, cats: []string{"zebra"}, kind: "corrupt"},
	}, shuffle)
	writeCOCOSplit(t, root, "val"+year, []miniImage{
		{id: 42, captions: []string{"A train at the station."}, cats: []string{"train", "person"}, kind: "jpg"},
		{id: 73, captions: []string{"A dog running."}, cats: []string{"dog"}, kind: "jpg"},
	}, shuffle)
}

func TestLoadCOCO(t *testing.T) {
	root := t.TempDir()
	miniCOCO(t, root, "2014", 0)
	ix, err := LoadCOCO(COCOConfig{Root: root, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	if ix.Name() != "coco/train2014+val2014" || len(ix.Classes()) != 80 || ix.Classes()[0] != "person" || ix.Classes()[79] != "toothbrush" {
		t.Fatalf("name %q, %d classes %q…", ix.Name(), len(ix.Classes()), ix.Classes()[:2])
	}
	wantIDs := []string{
		"coco/train2014/COCO_train2014_000000000009.jpg", "coco/train2014/COCO_train2014_000000000025.jpg",
		"coco/train2014/COCO_train2014_000000000030.jpg", "coco/train2014/COCO_train2014_000000000034.jpg",
		"coco/val2014/COCO_val2014_000000000042.jpg", "coco/val2014/COCO_val2014_000000000073.jpg",
	}
	if got := entryIDs(ix); !slices.Equal(got, wantIDs) {
		t.Fatalf("IDs %q\nwant %q", got, wantIDs)
	}
	e := ix.Entries()
	if want := filepath.Join(root, "val2014", "COCO_val2014_000000000042.jpg"); e[4].Path != want || e[4].Split != "val2014" {
		t.Errorf("entry 4: path %s split %s, want %s val2014", e[4].Path, e[4].Split, want)
	}
	if !slices.Equal(e[0].Captions, []string{"A dog and a cat on a sofa.", "Three dogs and a cat."}) {
		t.Errorf("captions %q", e[0].Captions)
	}
	label := func(i int) string {
		if e[i].Label == dataset.NoLabel {
			return "none"
		}
		return ix.Classes()[e[i].Label]
	}
	if l := label(0); l != "dog" && l != "cat" {
		t.Errorf("image 9 labelled %s, want dog or cat", l)
	}
	if label(1) != "boat" || label(2) != "none" || label(3) != "zebra" || label(5) != "dog" {
		t.Errorf("labels %s %s %s %s, want boat none zebra dog", label(1), label(2), label(3), label(5))
	}

	// One split only, and without instances.
	val, err := LoadCOCO(COCOConfig{Root: root, Splits: []string{"val2014"}, Unlabelled: true})
	if err != nil {
		t.Fatal(err)
	}
	if val.Len() != 2 || val.Classes() != nil || val.Entries()[0].Label != dataset.NoLabel {
		t.Errorf("unlabelled val: %d entries, classes %v, label %d", val.Len(), val.Classes(), val.Entries()[0].Label)
	}
}

// TestCOCOLabelRule checks the labelling rule: a seeded draw over the image's instance annotations, so a
// category annotated three times is chosen about three times as often as one annotated once; the same seed
// gives the same label whatever the annotation order or release year.
func TestCOCOLabelRule(t *testing.T) {
	anns := []idCat{{7, 18}, {3, 17}, {11, 18}, {5, 18}} // dog ×3, cat ×1
	dogs := 0
	const seeds = 400
	for s := range int64(seeds) {
		a, _ := cocoLabel(s, 9, slices.Clone(anns))
		b, _ := cocoLabel(s, 9, []idCat{anns[3], anns[1], anns[0], anns[2]})
		if a != b {
			t.Fatalf("seed %d: label %d, %d after reordering the annotations", s, a, b)
		}
		if a != 17 && a != 18 {
			t.Fatalf("seed %d: label %d is not annotated", s, a)
		}
		if a == 18 {
			dogs++
		}
	}
	if f := float64(dogs) / seeds; f < 0.67 || f > 0.83 {
		t.Errorf("dog chosen in %.3f of seeds, want about 3/4 (one draw per annotation)", f)
	}
	if _, ok := cocoLabel(1, 30, nil); ok {
		t.Error("an image without annotations got a label")
	}

	// Same labels from a 2017 copy with the annotation arrays shuffled; other seeds change some labels.
	root14, root17 := t.TempDir(), t.TempDir()
	miniCOCO(t, root14, "2014", 0)
	miniCOCO(t, root17, "2017", 99)
	labels := func(root string, splits []string, seed int64) []int {
		ix, err := LoadCOCO(COCOConfig{Root: root, Splits: splits, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		var out []int
		for _, e := range ix.Entries() {
			out = append(out, e.Label)
		}
		return out
	}
	changed := false
	for seed := range int64(20) {
		a := labels(root14, nil, seed)
		if b := labels(root17, []string{"train2017", "val2017"}, seed); !slices.Equal(a, b) {
			t.Fatalf("seed %d: 2014 labels %v, 2017 (shuffled) %v", seed, a, b)
		}
		if seed > 0 && !slices.Equal(a, labels(root14, nil, 0)) {
			changed = true
		}
	}
	if !changed {
		t.Error("the seed never changes a label of the two multi-category images")
	}
}

func TestCOCOCollectCorrupt(t *testing.T) {
	root := t.TempDir()
	miniCOCO(t, root, "2014", 0)
	ix, err := LoadCOCO(COCOConfig{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	corrupt := filepath.Join(root, "train2014", "COCO_train2014_000000000034.jpg")

	d, rep, err := Collect(ix, Options{ImageSize: 16})
	wantErr[*ExampleError](t, err, corrupt, "coco/train2014/COCO_train2014_000000000034.jpg")
	if len(d.Examples) != 3 || rep.Loaded != 3 {
		t.Errorf("stopped at the corrupt image with %d examples (report %d), want the 3 before it kept", len(d.Examples), rep.Loaded)
	}

	d, rep, err = Collect(ix, Options{ImageSize: 16, SkipCorrupt: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Examples) != 5 || rep.Loaded != 5 || len(rep.Skipped) != 1 || rep.Skipped[0].File != corrupt {
		t.Fatalf("%d examples, report %s", len(d.Examples), rep)
	}
	if !strings.Contains(rep.String(), "skipped 1: "+corrupt) {
		t.Errorf("report %q does not name the skipped file", rep)
	}
	checkImages(t, d.Examples, 16)
	if d.Name != ix.Name() || len(d.Classes) != 80 || d.Examples[4].Label != mustClass(t, d.Classes, "dog") {
		t.Errorf("dataset %s with %d classes, last label %d", d.Name, len(d.Classes), d.Examples[4].Label)
	}
	// The grayscale image comes out as three equal channels.
	g := d.Examples[1].Image.Pix
	if g[0] != g[1] || g[1] != g[2] {
		t.Errorf("grayscale pixel %v is not gray", g[:3])
	}
}

func mustClass(t testing.TB, classes []string, name string) int {
	c, err := dataset.ClassIndex(classes, name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCOCOMalformed(t *testing.T) {
	cases := []struct {
		name   string
		edit   func(t *testing.T, root string) // breaks the miniature
		splits []string
		want   []string
	}{
		{"truncated captions", func(t *testing.T, root string) {
			p := filepath.Join(root, "annotations", "captions_train2014.json")
			data, _ := os.ReadFile(p)
			writeFile(t, p, data[:len(data)*2/3])
		}, nil, []string{"captions_train2014.json", "ends early"}},
		{"syntax error", func(t *testing.T, root string) {
			p := filepath.Join(root, "annotations", "instances_val2014.json")
			data, _ := os.ReadFile(p)
			writeFile(t, p, []byte(strings.Replace(string(data), `"iscrowd": 0,`, `"iscrowd": 0,,`, 1)))
		}, nil, []string{"instances_val2014.json", "malformed JSON", "line ", "column"}},
		{"wrong type", func(t *testing.T, root string) {
			p := filepath.Join(root, "annotations", "captions_val2014.json")
			data, _ := os.ReadFile(p)
			writeFile(t, p, []byte(strings.Replace(string(data), `"caption": "A dog running."`, `"caption": 5`, 1)))
		}, nil, []string{"captions_val2014.json", "line "}},
		{"unknown category", func(t *testing.T, root string) {
			writeCOCOSplit(t, root, "val2014", []miniImage{{id: 42, captions: []string{"x"}, cats: []string{"dog"}}}, 0)
			p := filepath.Join(root, "annotations", "instances_val2014.json")
			data, _ := os.ReadFile(p)
			writeFile(t, p, []byte(strings.Replace(string(data), `"category_id": 18`, `"category_id": 12`, 1)))
		}, nil, []string{"instances_val2014.json", "category_id 12"}},
		{"no annotations key", func(t *testing.T, root string) {
			writeJSON(t, filepath.Join(root, "annotations", "captions_val2014.json"), map[string]any{"images": []any{}})
		}, nil, []string{"captions_val2014.json", `no "annotations" field`}},
		{"image in two splits", nil, []string{"train2014", "train2014"}, []string{"appears in split train2014 and again in train2014"}},
		{"missing file", nil, []string{"test2015"}, []string{"captions_test2015.json"}},
		{"bad split name", nil, []string{"../x"}, []string{`"../x"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			miniCOCO(t, root, "2014", 0)
			if c.edit != nil {
				c.edit(t, root)
			}
			_, err := LoadCOCO(COCOConfig{Root: root, Splits: c.splits})
			wantErr[error](t, err, c.want...)
		})
	}
}

// paperCOCO writes the annotations (no images: a split never opens them) of a COCO-like set with n images of
// each class, except toaster and hair drier with 12, and 30 unlabelled images.
func paperCOCO(t testing.TB, n int) string {
	root := t.TempDir()
	var imgs []miniImage
	id := int64(1)
	for _, c := range cocoCategories {
		k := n
		if c.name == "toaster" || c.name == "hair drier" {
			k = 12
		}
		for range k {
			imgs = append(imgs, miniImage{id: id, captions: []string{"a " + c.name}, cats: []string{c.name}})
			id++
		}
	}
	for range 30 {
		imgs = append(imgs, miniImage{id: id, captions: []string{"nothing"}})
		id++
	}
	writeCOCOSplit(t, root, "train2014", imgs[:len(imgs)/2], 5)
	writeCOCOSplit(t, root, "val2014", imgs[len(imgs)/2:], 6)
	return root
}

func TestCOCOPaperSplit(t *testing.T) {
	root := paperCOCO(t, 53)
	ix, err := LoadCOCO(COCOConfig{Root: root, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	split := func(seed int64) (*Index, *Index) {
		train, test, err := COCOPaperSplit(ix, seed)
		if err != nil {
			t.Fatal(err)
		}
		return train, test
	}
	train, test := split(42)
	if test.Len() != 78*50 || train.Len()+test.Len() != ix.Len() {
		t.Fatalf("test %d (want 3900), train %d, total %d", test.Len(), train.Len(), ix.Len())
	}
	perClass := map[string]int{}
	for _, e := range test.Entries() {
		perClass[ix.Classes()[e.Label]]++
	}
	if len(perClass) != 78 || perClass["toaster"] != 0 || perClass["hair drier"] != 0 {
		t.Errorf("test classes %d, toaster %d, hair drier %d", len(perClass), perClass["toaster"], perClass["hair drier"])
	}
	for c, k := range perClass {
		if k != 50 {
			t.Errorf("class %s has %d test images", c, k)
		}
	}
	inTest := map[string]bool{}
	for _, id := range entryIDs(test) {
		inTest[id] = true
	}
	unlabelled := 0
	for _, e := range train.Entries() {
		if inTest[e.ID] {
			t.Fatalf("%s in both train and test", e.ID)
		}
		if e.Label == dataset.NoLabel {
			unlabelled++
		}
	}
	if unlabelled != 30 {
		t.Errorf("%d unlabelled train images, want all 30", unlabelled)
	}
	// Index order is kept.
	pos := map[string]int{}
	for i, id := range entryIDs(ix) {
		pos[id] = i
	}
	for _, part := range []*Index{train, test} {
		if !slices.IsSortedFunc(entryIDs(part), func(a, b string) int { return pos[a] - pos[b] }) {
			t.Errorf("%s is not in index order", part.Name())
		}
	}
	// Deterministic by seed; another seed draws other images.
	_, again := split(42)
	if !slices.Equal(entryIDs(test), entryIDs(again)) {
		t.Error("same seed, different test sets")
	}
	_, other := split(43)
	if slices.Equal(entryIDs(test), entryIDs(other)) {
		t.Error("seeds 42 and 43 give the same test set")
	}

	// Without the exclusions, the two small classes make it fail, naming them; an unknown exclusion lists the
	// valid classes.
	_, _, err = SplitPerClass(ix, SplitConfig{PerClass: 50, Seed: 1})
	wantErr[error](t, err, `"toaster" (12)`, `"hair drier" (12)`)
	_, _, err = SplitPerClass(ix, SplitConfig{PerClass: 50, Exclude: []string{"toastr"}})
	wantErr[error](t, err, `"toastr"`, `"toothbrush"`)
	_, _, err = SplitPerClass(ix, SplitConfig{})
	wantErr[error](t, err, "PerClass")
}
