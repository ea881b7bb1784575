package loaders

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// COCOTestPerClass is the number of test images per class of the paper's COCO split (Yang et al.; official
// preprocessing data/preprocess.py): 50 for every class except COCOExcludedFromTest.
const COCOTestPerClass = 50

// COCOExcludedFromTest are the classes the official preprocessing skips by name when it draws the test set:
// 80 − 2 = 78 test classes.
var COCOExcludedFromTest = []string{"toaster", "hair drier"}

// DefaultCOCOSplits are the COCO splits the paper pools before drawing its own test set: all of COCO 2014's
// captioned images (train2014 and val2014, 123,287 images). {"train2017", "val2017"} holds the same images.
var DefaultCOCOSplits = []string{"train2014", "val2014"}

// COCOConfig says where a COCO copy is and how to label it.
type COCOConfig struct {
	// Root holds annotations/ and the image folders (train2014/, val2014/, train2017/, …).
	Root string
	// Splits are the splits to load, e.g. {"train2014", "val2014"}; nil means DefaultCOCOSplits.
	Splits []string
	// Annotations is the folder holding captions_<split>.json and instances_<split>.json (empty: Root/annotations).
	Annotations string
	// Images is the folder holding the <split>/ image folders (empty: Root); an image is
	// Images/<split>/<file_name>.
	Images string
	// Unlabelled skips the instances files: every image gets dataset.NoLabel and Classes is nil. Use it for
	// splits without instance annotations.
	Unlabelled bool
	// Seed drives the choice of each image's label among its annotated categories.
	Seed int64
}

// cocoImage is one image of the captions file being assembled.
type cocoImage struct {
	id       int64
	split    string
	fileName string
	captions []idText
	cats     []idCat
}

type idText struct {
	id   int64
	text string
}

type idCat struct {
	id  int64 // annotation id
	cat int   // category id
}

// cocoImageJSON, cocoCaptionJSON, cocoInstanceJSON and cocoCategoryJSON are the fields read from COCO's
// annotation files (others, such as segmentation polygons, are skipped without being decoded).
type cocoImageJSON struct {
	ID       *int64 `json:"id"`
	FileName string `json:"file_name"`
}

type cocoCaptionJSON struct {
	ID      int64   `json:"id"`
	ImageID *int64  `json:"image_id"`
	Caption *string `json:"caption"`
}

type cocoInstanceJSON struct {
	ID         int64  `json:"id"`
	ImageID    *int64 `json:"image_id"`
	CategoryID *int   `json:"category_id"`
}

type cocoCategoryJSON struct {
	ID   *int   `json:"id"`
	Name string `json:"name"`
}

// LoadCOCO reads the caption and instance annotations of the configured COCO splits into an Index (no image is
// opened). Entries are ordered by split (in cfg.Splits order) then image id; their IDs are
// "coco/<split>/<file_name>", their captions those of captions_<split>.json in annotation-id order.
//
// Labels follow the paper's official preprocessing: an image's label is one of its instance annotations'
// categories drawn uniformly over the annotations (random.choice over the per-annotation list there), so a
// category annotated k times is k times as likely as one annotated once; crowd annotations count like the
// others. The draw is seeded per image (by cfg.Seed and the image id, over the annotations sorted by annotation
// id), so an image gets the same label whatever the splits loaded, the order of the file, or the year of the
// release (2014 and 2017 share ids). Images without instance annotations (about 1% of COCO) are unlabelled and
// stay in training. Classes are the instances files' categories in id order (COCO's 80).
//
// A malformed file is an *AnnotationError naming it (and the position); an image id present in two splits, a
// caption or instance of an unknown image, or an unknown category id is an error too.
func LoadCOCO(cfg COCOConfig) (*Index, error) {
	splits := cfg.Splits
	if len(splits) == 0 {
		splits = DefaultCOCOSplits
	}
	annDir := cfg.Annotations
	if annDir == "" {
		annDir = filepath.Join(cfg.Root, "annotations")
	}
	imgDir := cfg.Images
	if imgDir == "" {
		imgDir = cfg.Root
	}
	images := map[int64]*cocoImage{}
	var order []*cocoImage
	var catIDs []int
	var catNames []string
	var catFile string
	for _, split := range splits {
		if split == "" || strings.ContainsAny(split, `/\`) || split == ".." {
			return nil, fmt.Errorf("loaders: COCO split %q is not a plain folder name such as train2014", split)
		}
		capFile := filepath.Join(annDir, "captions_"+split+".json")
		byID, err := readCOCOCaptions(capFile, split, images)
		if err != nil {
			return nil, err
		}
		for _, im := range byID {
			order = append(order, im)
		}
		if cfg.Unlabelled {
			continue
		}
		insFile := filepath.Join(annDir, "instances_"+split+".json")
		ids, names, err := readCOCOInstances(insFile, byID)
		if err != nil {
			return nil, err
		}
		if catIDs == nil {
			catIDs, catNames, catFile = ids, names, insFile
		} else if !slices.Equal(ids, catIDs) || !slices.Equal(names, catNames) {
			return nil, fmt.Errorf("loaders: the categories of %s differ from those of %s", insFile, catFile)
		}
	}
	rank := map[string]int{}
	for i, s := range splits {
		rank[s] = i
	}
	slices.SortFunc(order, func(a, b *cocoImage) int {
		if c := cmp.Compare(rank[a.split], rank[b.split]); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	catIndex := make(map[int]int, len(catIDs))
	for i, id := range catIDs {
		catIndex[id] = i
	}
	entries := make([]Entry, len(order))
	for i, im := range order {
		slices.SortFunc(im.captions, func(a, b idText) int { return cmp.Compare(a.id, b.id) })
		caps := make([]string, len(im.captions))
		for k, c := range im.captions {
			caps[k] = c.text
		}
		label := dataset.NoLabel
		if cat, ok := cocoLabel(cfg.Seed, im.id, im.cats); ok {
			label = catIndex[cat]
		}
		entries[i] = Entry{
			ID:       "coco/" + im.split + "/" + im.fileName,
			Path:     filepath.Join(imgDir, im.split, filepath.FromSlash(im.fileName)),
			Captions: caps,
			Label:    label,
			Split:    im.split,
		}
	}
	var classes []string
	if !cfg.Unlabelled {
		classes = catNames
	}
	return NewIndex("coco/"+strings.Join(splits, "+"), classes, entries)
}

// cocoLabel draws an image's category: uniformly over its instance annotations sorted by annotation id, with
// a random stream fixed by the seed and the image id. ok is false for an image without annotations.
func cocoLabel(seed, imageID int64, anns []idCat) (cat int, ok bool) {
	if len(anns) == 0 {
		return 0, false
	}
	slices.SortFunc(anns, func(a, b idCat) int { return cmp.Compare(a.id, b.id) })
	rng := rand.New(rand.NewPCG(uint64(seed), 0xc0c0_1abe_1000_0000^uint64(imageID)))
	return anns[rng.IntN(len(anns))].cat, true
}

// readCOCOCaptions reads a captions_<split>.json file: its images (added to all, which spans the splits read so
// far, to catch an id in two splits) and their captions. It returns the split's images by id.
func readCOCOCaptions(path, split string, all map[int64]*cocoImage) (map[int64]*cocoImage, error) {
	byID := map[int64]*cocoImage{}
	var pending []cocoCaptionJSON // Captions listed before their image (not the case in COCO's files, but valid JSON).
	err := readJSONObject(path, func(j *jsonFile) map[string]func() error {
		return map[string]func() error{
			"images": func() error {
				return array(j, "images", func(v cocoImageJSON) error {
					if v.ID == nil || v.FileName == "" {
						return fmt.Errorf("an image without id or file_name")
					}
					if err := checkRelative(v.FileName); err != nil {
						return fmt.Errorf("image %d: %w", *v.ID, err)
					}
					if prev, ok := all[*v.ID]; ok {
						return fmt.Errorf("image id %d appears in split %s and again in %s", *v.ID, prev.split, split)
					}
					im := &cocoImage{id: *v.ID, split: split, fileName: v.FileName}
					all[*v.ID], byID[*v.ID] = im, im
					return nil
				})
			},
			"annotations": func() error {
				return array(j, "annotations", func(v cocoCaptionJSON) error {
					if v.ImageID == nil || v.Caption == nil {
						return fmt.Errorf("caption annotation %d has no image_id or caption", v.ID)
					}
					if im, ok := byID[*v.ImageID]; ok {
						im.captions = append(im.captions, idText{v.ID, strings.TrimSpace(*v.Caption)})
					} else {
						pending = append(pending, v)
					}
					return nil
				})
			},
		}
	}, "images", "annotations")
	if err != nil {
		return nil, err
	}
	for _, v := range pending {
		im, ok := byID[*v.ImageID]
		if !ok {
			return nil, &AnnotationError{File: path, Offset: -1,
				Err: fmt.Errorf("caption annotation %d refers to image %d, which is not in the file's images", v.ID, *v.ImageID)}
		}
		im.captions = append(im.captions, idText{v.ID, strings.TrimSpace(*v.Caption)})
	}
	return byID, nil
}

// readCOCOInstances reads an instances_<split>.json file: the categories (returned in id order) and, for each
// annotation, its image's category list. Its images must be those of the captions file.
func readCOCOInstances(path string, byID map[int64]*cocoImage) (catIDs []int, catNames []string, err error) {
	var cats []cocoCategoryJSON
	err = readJSONObject(path, func(j *jsonFile) map[string]func() error {
		return map[string]func() error{
			"categories": func() error {
				return array(j, "categories", func(v cocoCategoryJSON) error {
					if v.ID == nil || v.Name == "" {
						return fmt.Errorf("a category without id or name")
					}
					cats = append(cats, v)
					return nil
				})
			},
			"annotations": func() error {
				return array(j, "annotations", func(v cocoInstanceJSON) error {
					if v.ImageID == nil || v.CategoryID == nil {
						return fmt.Errorf("instance annotation %d has no image_id or category_id", v.ID)
					}
					im, ok := byID[*v.ImageID]
					if !ok {
						return fmt.Errorf("instance annotation %d refers to image %d, which is not in the captions file of the split", v.ID, *v.ImageID)
					}
					im.cats = append(im.cats, idCat{v.ID, *v.CategoryID})
					return nil
				})
			},
		}
	}, "categories", "annotations")
	if err != nil {
		return nil, nil, err
	}
	slices.SortFunc(cats, func(a, b cocoCategoryJSON) int { return cmp.Compare(*a.ID, *b.ID) })
	known := map[int]bool{}
	for _, c := range cats {
		if known[*c.ID] {
			return nil, nil, &AnnotationError{File: path, Offset: -1, Err: fmt.Errorf("category id %d appears twice", *c.ID)}
		}
		known[*c.ID] = true
		catIDs = append(catIDs, *c.ID)
		catNames = append(catNames, c.Name)
	}
	for _, im := range byID {
		for _, a := range im.cats {
			if !known[a.cat] {
				return nil, nil, &AnnotationError{File: path, Offset: -1,
					Err: fmt.Errorf("instance annotation %d has category_id %d, which is not among the file's categories", a.id, a.cat)}
			}
		}
	}
	return catIDs, catNames, nil
}

// checkRelative refuses a file name that is absolute or climbs out of its folder with "..".
func checkRelative(name string) error {
	if name == "" {
		return fmt.Errorf("empty file name")
	}
	if strings.HasPrefix(name, "/") || strings.HasPrefix(name, `\`) || filepath.IsAbs(name) || filepath.VolumeName(name) != "" {
		return fmt.Errorf("file name %q is an absolute path", name)
	}
	for _, part := range strings.FieldsFunc(name, func(r rune) bool { return r == '/' || r == '\\' }) {
		if part == ".." {
			return fmt.Errorf("file name %q climbs out of its folder with ..", name)
		}
	}
	return nil
}

// COCOPaperSplit draws the paper's COCO test set from a LoadCOCO index: COCOTestPerClass (50) images of every
// class except COCOExcludedFromTest ("toaster", "hair drier"), 78 × 50 = 3,900 images on the full set, chosen
// with the seed (SplitPerClass); every other image, unlabelled ones and those labelled toaster or hair drier
// included, is training data. The official code draws with Python's and pandas' generators over ALBEF's
// annotation files, so the exact images differ from the paper's; the rule is the same.
func COCOPaperSplit(ix *Index, seed int64) (train, test *Index, err error) {
	return SplitPerClass(ix, SplitConfig{PerClass: COCOTestPerClass, Exclude: COCOExcludedFromTest, Seed: seed})
}
