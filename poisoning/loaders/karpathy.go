package loaders

import (
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// KarpathySplits are the split names of Karpathy's JSON files ("restval" only occurs in dataset_coco.json).
var KarpathySplits = []string{"train", "val", "test", "restval"}

// KarpathyConfig says where a Karpathy-format dataset (dataset_flickr30k.json, dataset_flickr8k.json,
// dataset_coco.json) and its images are.
type KarpathyConfig struct {
	// File is the JSON file, e.g. dataset_flickr30k.json.
	File string
	// ImageDir holds the images (flickr30k-images/ for Flickr30k, Flicker8k_Dataset/ for Flickr8k); an image is
	// ImageDir/<filepath>/<filename>, filepath being empty in the Flickr files and "train2014" or "val2014" in
	// the COCO one.
	ImageDir string
	// Splits keeps only the images of these splits (see KarpathySplits); nil keeps all. The paper trains on
	// Flickr30k's "train" split (29,000 images).
	Splits []string
	// Name names the index and prefixes the IDs; empty means the file's "dataset" field ("flickr30k", …), or
	// the file name without extension when that field is absent.
	Name string
}

// karpathyImageJSON is one element of a Karpathy file's images array (the fields read).
type karpathyImageJSON struct {
	FilePath  string `json:"filepath"`
	FileName  string `json:"filename"`
	Split     string `json:"split"`
	Sentences []struct {
		Raw *string `json:"raw"`
	} `json:"sentences"`
}

// LoadKarpathy reads a Karpathy-format JSON file (the format of Karpathy's dataset_flickr30k.json,
// dataset_flickr8k.json and dataset_coco.json: a top-level object with "images", each with "filename",
// "split", "sentences"[].raw and optionally "filepath") into an unlabelled Index, in the file's order, without
// opening an image. IDs are "<name>/<filepath>/<filename>" (no filepath part when it is empty); Entry.Split is
// the image's split; captions are the sentences' raw text with surrounding space removed. A malformed file is an
// *AnnotationError naming it and the position.
func LoadKarpathy(cfg KarpathyConfig) (*Index, error) {
	for _, s := range cfg.Splits {
		if !slices.Contains(KarpathySplits, s) {
			return nil, fmt.Errorf("loaders: unknown Karpathy split %q: valid splits are %s", s, strings.Join(KarpathySplits, ", "))
		}
	}
	var imgs []karpathyImageJSON
	var dsName string
	err := readJSONObject(cfg.File, func(j *jsonFile) map[string]func() error {
		return map[string]func() error{
			"images": func() error {
				return array(j, "images", func(v karpathyImageJSON) error {
					if v.FileName == "" || v.Split == "" {
						return fmt.Errorf("an image without filename or split")
					}
					if err := checkRelative(path.Join(v.FilePath, v.FileName)); err != nil {
						return err
					}
					if !slices.Contains(KarpathySplits, v.Split) {
						return fmt.Errorf("image %s has unknown split %q (valid: %s)", v.FileName, v.Split, strings.Join(KarpathySplits, ", "))
					}
					if cfg.Splits != nil && !slices.Contains(cfg.Splits, v.Split) {
						return nil
					}
					for k, s := range v.Sentences {
						if s.Raw == nil {
							return fmt.Errorf("sentence %d of image %s has no raw text", k, v.FileName)
						}
					}
					imgs = append(imgs, v)
					return nil
				})
			},
			"dataset": func() error {
				start := j.dec.InputOffset()
				if err := j.decode(&dsName); err != nil {
					return j.fail(start, fmt.Errorf("dataset: %w", err))
				}
				return nil
			},
		}
	}, "images")
	if err != nil {
		return nil, err
	}
	name := cfg.Name
	if name == "" {
		name = dsName
	}
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(cfg.File), filepath.Ext(cfg.File))
	}
	entries := make([]Entry, len(imgs))
	for i, v := range imgs {
		rel := path.Join(v.FilePath, v.FileName)
		caps := make([]string, len(v.Sentences))
		for k, s := range v.Sentences {
			caps[k] = strings.TrimSpace(*s.Raw)
		}
		entries[i] = Entry{
			ID:       name + "/" + rel,
			Path:     filepath.Join(cfg.ImageDir, filepath.FromSlash(rel)),
			Captions: caps,
			Label:    dataset.NoLabel,
			Split:    v.Split,
		}
	}
	ixName := name
	if cfg.Splits != nil {
		ixName += "/" + strings.Join(cfg.Splits, "+")
	}
	ix, err := NewIndex(ixName, nil, entries)
	if err != nil {
		return nil, fmt.Errorf("loaders: %s: %w", cfg.File, err)
	}
	return ix, nil
}
