package scale

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/loaders"
)

// Input formats.
const (
	// FormatFashionMNIST is the embedded default: the demo's fine-tuning split (experiment.DefaultSpec with
	// Input.Seed), held in memory.
	FormatFashionMNIST = "fashion-mnist"
	// FormatCOCO and FormatFlickrPASCAL are the paper's datasets in the layouts of experiment.DatasetCOCO and
	// experiment.DatasetFlickrPASCAL under Path, their training split as the paper draws it (Input.Seed,
	// TestPerClass).
	FormatCOCO         = "coco"
	FormatFlickrPASCAL = "flickr-pascal"
	// FormatFlickr is Flickr30k's Karpathy train split: Path is dataset_flickr30k.json or the folder holding it
	// and flickr30k-images/.
	FormatFlickr = "flickr"
	// FormatPASCAL is all of PASCAL-sentences under Path (loaders.LoadPASCAL's layout).
	FormatPASCAL = "pascal"
	// FormatCSV is an open_clip CSV or TSV file (Path; columns filepath and title, LabelKey for labels).
	FormatCSV = "csv"
	// FormatWebDataset is uncompressed WebDataset tar shards: Path is comma-separated shard patterns
	// ("data/{000000..000099}.tar"), or a folder written by Poison or Filter (its classes and poison manifest
	// come along).
	FormatWebDataset = "webdataset"
)

// Formats lists the input formats, for messages and help.
var Formats = []string{FormatFashionMNIST, FormatCOCO, FormatFlickr, FormatPASCAL, FormatFlickrPASCAL, FormatCSV, FormatWebDataset}

// Input says which dataset a stage reads.
type Input struct {
	// Format is one of Formats ("": FormatFashionMNIST); Path where the data is (see each format).
	Format, Path string
	// Classes names the labels of a CSV's LabelKey column or a WebDataset's cls or json label members.
	Classes  []string
	LabelKey string
	// Separator is a CSV's field separator (0: by the extension, see loaders.CSVConfig).
	Separator rune
	// Seed draws the splits (and Fashion-MNIST's captions); TestPerClass sizes the test split left out of
	// COCO and Flickr-PASCAL (0: the paper's).
	Seed         int64
	TestPerClass int
}

// Opened is an input ready to be read.
type Opened struct {
	// Source is the pool: labels and caption counts held, pictures and captions read on demand.
	Source dataset.ImageSource
	// Export and Manifest describe a folder written by Poison or Filter (nil otherwise).
	Export   *Export
	Manifest *attack.Manifest
	// Skipped lists the WebDataset samples left out for their annotations.
	Skipped []string
	close   func() error
}

// Close releases the input's files.
func (o *Opened) Close() error {
	if o.close == nil {
		return nil
	}
	return o.close()
}

// Open opens an input: its annotations are read (a WebDataset's shards scanned), its pictures are not.
func Open(in Input) (*Opened, error) {
	switch in.Format {
	case "", FormatFashionMNIST:
		spec := experiment.DefaultSpec()
		spec.Seed = in.Seed
		d, err := experiment.LoadData(spec)
		if err != nil {
			return nil, err
		}
		return &Opened{Source: d.Splits.Train.Source()}, nil
	case FormatWebDataset:
		return openShards(in)
	}
	if in.Path == "" {
		return nil, fmt.Errorf("input %s needs a path", in.Format)
	}
	if _, err := os.Stat(in.Path); err != nil {
		return nil, fmt.Errorf("input %s: %w", in.Format, err)
	}
	ix, err := openIndex(in)
	if err != nil {
		return nil, err
	}
	return &Opened{Source: ix.Source(loaders.Options{})}, nil
}

// openIndex reads the annotations of a format whose pictures are files.
func openIndex(in Input) (*loaders.Index, error) {
	switch in.Format {
	case FormatCOCO, FormatFlickrPASCAL:
		spec := experiment.PaperSpec(in.Format, in.Path, "", "")
		spec.Seed = in.Seed
		if in.TestPerClass > 0 {
			spec.Data.TestPerClass = in.TestPerClass
		}
		train, _, err := experiment.RealIndices(spec)
		return train, err
	case FormatFlickr:
		file, dir := in.Path, filepath.Dir(in.Path)
		if st, err := os.Stat(in.Path); err == nil && st.IsDir() {
			file, dir = filepath.Join(in.Path, "dataset_flickr30k.json"), in.Path
		}
		return loaders.LoadKarpathy(loaders.KarpathyConfig{File: file, ImageDir: filepath.Join(dir, "flickr30k-images"),
			Splits: []string{"train"}, Name: "flickr30k"})
	case FormatPASCAL:
		return loaders.LoadPASCAL(loaders.PASCALConfig{Root: in.Path})
	case FormatCSV:
		c, err := loaders.OpenCSV(loaders.CSVConfig{Path: in.Path, LabelKey: in.LabelKey, Classes: in.Classes, Separator: in.Separator})
		if err != nil {
			return nil, err
		}
		return c.Index()
	}
	return nil, fmt.Errorf("unknown input format %q: want one of %s", in.Format, strings.Join(Formats, ", "))
}

// openShards opens WebDataset shards, or the shards of a folder written by Poison or Filter.
func openShards(in Input) (*Opened, error) {
	o := &Opened{}
	patterns := strings.Split(in.Path, ",")
	classes := in.Classes
	if st, err := os.Stat(in.Path); err == nil && st.IsDir() {
		exp, m, err := ReadExport(in.Path)
		if err != nil {
			return nil, err
		}
		if len(exp.Shards) == 0 {
			return nil, fmt.Errorf("input %s holds no shards (it was written as %s only)", in.Path, exportFormats(exp))
		}
		o.Export, o.Manifest, classes, patterns = exp, m, exp.Classes, nil
		for _, f := range exp.Shards {
			patterns = append(patterns, filepath.Join(in.Path, filepath.FromSlash(f.Path)))
		}
	} else if in.Path == "" {
		return nil, errors.New("input webdataset needs shard patterns or a folder")
	}
	w, err := loaders.OpenWebDataset(loaders.WebDatasetConfig{Shards: patterns, Classes: classes, Name: webName(in.Path)})
	if err != nil {
		return nil, err
	}
	s, err := loaders.IndexShards(w, loaders.Options{SkipCorrupt: true})
	if err != nil {
		return nil, err
	}
	for _, e := range s.Skipped() {
		o.Skipped = append(o.Skipped, e.Error())
	}
	o.Source, o.close = s, s.Close
	return o, nil
}

// webName names a WebDataset input after its folder or first pattern.
func webName(path string) string {
	first, _, _ := strings.Cut(path, ",")
	return "webdataset/" + filepath.Base(strings.TrimSuffix(first, string(filepath.Separator)))
}

// ReadExport reads the export.json and poison manifest of a folder written by Poison or Filter.
func ReadExport(dir string) (*Export, *attack.Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, ExportFile))
	if err != nil {
		return nil, nil, fmt.Errorf("%s is not a folder written by poison or filter: %w", dir, err)
	}
	var exp Export
	if err := json.Unmarshal(data, &exp); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", filepath.Join(dir, ExportFile), err)
	}
	if exp.Version != ExportVersion {
		return nil, nil, fmt.Errorf("%s has version %d, want %d", filepath.Join(dir, ExportFile), exp.Version, ExportVersion)
	}
	m, err := attack.ReadManifest(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, nil, err
	}
	return &exp, m, nil
}
