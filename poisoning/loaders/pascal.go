package loaders

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// PASCALClasses are PASCAL-sentences' 20 classes (the PASCAL VOC categories), spelled as the dataset's folders
// are; LoadPASCAL labels index this list.
var PASCALClasses = []string{
	"aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
	"diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
}

// PASCALTestPerClass is the paper's PASCAL-sentences test share: half of each class's 50 images.
const PASCALTestPerClass = 25

// PASCALConfig says where a PASCAL-sentences copy is.
type PASCALConfig struct {
	// Root holds dataset/ and sentence/, the layout of the common download script of the UIUC page.
	Root string
	// ImageDir holds one folder per class with its images (empty: Root/dataset).
	ImageDir string
	// SentenceDir holds one folder per class with a sentence file per image (empty: Root/sentence). It may be
	// ImageDir itself when the sentence files sit next to the images.
	SentenceDir string
}

// isImageFile reports whether name has a JPEG or PNG extension.
func isImageFile(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".jpg", ".jpeg", ".png":
		return true
	}
	return false
}

// LoadPASCAL reads PASCAL-sentences (Rashtchian et al., 2010: 1,000 images, 50 in each of 20 classes, 5
// sentences each) into an Index labelled with PASCALClasses, without opening an image.
//
// Accepted layout (that of the UIUC page's image links, as the usual download script saves them):
//
//	ImageDir/<class>/<name>.jpg         one folder per class, named as in PASCALClasses; .jpg, .jpeg or .png
//	SentenceDir/<class>/<name>.txt      the image's sentences, one per line (blank lines ignored);
//	                                    <name>txt, without the dot, as that script writes it, is accepted too
//
// A class folder with another name is an error listing the valid ones; files other than images in ImageDir's
// class folders and anything but folders at its top level are ignored; a class may be missing. An image without
// a sentence file, or with an empty one, is an error naming it; so is a sentence line longer than 64 KiB (the
// memory bound of the reader: one line at a time). Entries are in class order, then by file name; IDs are
// "pascal/<class>/<name>.jpg". Captions and IDs are valid UTF-8 (a byte that is not becomes U+FFFD).
func LoadPASCAL(cfg PASCALConfig) (*Index, error) {
	imgDir, sentDir := cfg.ImageDir, cfg.SentenceDir
	if imgDir == "" {
		imgDir = filepath.Join(cfg.Root, "dataset")
	}
	if sentDir == "" {
		sentDir = filepath.Join(cfg.Root, "sentence")
	}
	top, err := os.ReadDir(imgDir)
	if err != nil {
		return nil, fmt.Errorf("loaders: PASCAL-sentences image folder: %w", err)
	}
	byClass := make([][]string, len(PASCALClasses))
	for _, d := range top {
		if !d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			continue
		}
		c, err := dataset.ClassIndex(PASCALClasses, d.Name())
		if err != nil {
			return nil, fmt.Errorf("loaders: PASCAL-sentences folder %s: %w", filepath.Join(imgDir, d.Name()), err)
		}
		files, err := os.ReadDir(filepath.Join(imgDir, d.Name()))
		if err != nil {
			return nil, fmt.Errorf("loaders: %w", err)
		}
		for _, f := range files {
			if !f.IsDir() && isImageFile(f.Name()) {
				byClass[c] = append(byClass[c], filepath.Join(d.Name(), f.Name()))
			}
		}
	}
	var entries []Entry
	for c, files := range byClass {
		slices.Sort(files)
		for _, rel := range files {
			caps, err := readSentences(sentDir, rel)
			if err != nil {
				return nil, err
			}
			entries = append(entries, Entry{
				ID:       validText("pascal/" + PASCALClasses[c] + "/" + filepath.Base(rel)),
				Path:     filepath.Join(imgDir, rel),
				Captions: caps,
				Label:    c,
			})
		}
	}
	return NewIndex("pascal", PASCALClasses, entries)
}

// readSentences reads the sentence file of the image at rel (class/name.jpg) under dir: class/name.txt or
// class/nametxt.
func readSentences(dir, rel string) ([]string, error) {
	stem := strings.TrimSuffix(rel, filepath.Ext(rel))
	candidates := []string{filepath.Join(dir, stem+".txt"), filepath.Join(dir, stem+"txt")}
	for _, p := range candidates {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("loaders: %w", err)
		}
		defer f.Close()
		var caps []string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if s := strings.TrimSpace(sc.Text()); s != "" {
				caps = append(caps, validText(s))
			}
		}
		if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
			return nil, &AnnotationError{File: p, Offset: -1, Err: fmt.Errorf("a sentence line longer than %d bytes", bufio.MaxScanTokenSize)}
		} else if err != nil {
			return nil, &AnnotationError{File: p, Offset: -1, Err: err}
		}
		if len(caps) == 0 {
			return nil, &AnnotationError{File: p, Offset: -1, Err: fmt.Errorf("no sentences for image %s", rel)}
		}
		return caps, nil
	}
	return nil, fmt.Errorf("loaders: PASCAL-sentences image %s has no sentence file: looked for %s", rel, strings.Join(candidates, " and "))
}

// FlickrPASCALConfig says how FlickrPASCAL combines the two datasets.
type FlickrPASCALConfig struct {
	// FlickrSplits are the Karpathy splits of the Flickr index added to training; nil means {"train"}, the
	// paper's 29,000 Flickr30k images.
	FlickrSplits []string
	// TestPerClass is the number of PASCAL test images per class (0 means PASCALTestPerClass, half of 50).
	TestPerClass int
	// Seed drives the PASCAL train/test draw.
	Seed int64
}

// FlickrPASCAL builds the paper's Flickr-PASCAL setup from a Flickr30k index (LoadKarpathy) and a PASCAL index
// (LoadPASCAL): PASCAL is split per class (SplitPerClass: TestPerClass test images per class, seeded); train is
// the Flickr images of cfg.FlickrSplits, unlabelled, followed by the PASCAL train half with its labels; test is
// the PASCAL test half. Both have PASCAL's classes, so the attacks find their classes (sheep, aeroplane, …)
// among the labelled PASCAL images while Flickr adds unlabelled clean pairs, as in the paper.
func FlickrPASCAL(flickr, pascal *Index, cfg FlickrPASCALConfig) (train, test *Index, err error) {
	splits := cfg.FlickrSplits
	if splits == nil {
		splits = []string{"train"}
	}
	for _, s := range splits {
		if !slices.Contains(KarpathySplits, s) {
			return nil, nil, fmt.Errorf("loaders: FlickrPASCAL: unknown Karpathy split %q: valid splits are %s", s, strings.Join(KarpathySplits, ", "))
		}
	}
	per := cfg.TestPerClass
	if per == 0 {
		per = PASCALTestPerClass
	}
	for _, e := range flickr.entries {
		if e.Label != dataset.NoLabel {
			return nil, nil, fmt.Errorf("loaders: FlickrPASCAL: the Flickr index %s is labelled (entry %s); want Karpathy's unlabelled Flickr30k", flickr.name, e.ID)
		}
	}
	ptrain, ptest, err := SplitPerClass(pascal, SplitConfig{PerClass: per, Seed: cfg.Seed})
	if err != nil {
		return nil, nil, err
	}
	fl := flickr.Filter(flickr.name, func(e Entry) bool { return slices.Contains(splits, e.Split) })
	if fl.Len() == 0 {
		return nil, nil, fmt.Errorf("loaders: FlickrPASCAL: the Flickr index %s has no image in splits %s", flickr.name, strings.Join(splits, ", "))
	}
	train, err = Concat("flickr-pascal/train", pascal.classes, fl, ptrain)
	if err != nil {
		return nil, nil, err
	}
	test = &Index{name: "flickr-pascal/test", classes: pascal.classes, entries: ptest.entries}
	return train, test, nil
}
