package scale

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/mmpoison/mmpoison/poisoning/atomicfile"
	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/writers"
)

// Files of an export folder.
const (
	// ExportFile lists every file of the folder with its SHA-256, and what the set is.
	ExportFile = "export.json"
	// ManifestFile is the set's poison manifest (attack.Manifest; for a filtered set, its surviving pairs).
	ManifestFile = "poison_manifest.json"
	// ReportFile is Filter's report (defense.FilterReport).
	ReportFile = "filter_report.json"
	// ShardsDir holds the WebDataset shards.
	ShardsDir = "shards"
)

// ExportVersion is the version of export.json.
const ExportVersion = 1

// DefaultPerShard is the number of samples of a shard when Output.PerShard is 0.
const DefaultPerShard = 10000

// Output says where and how a stage writes its set.
type Output struct {
	// Dir is the folder to write. It must not exist: the set is written in a temporary sibling, renamed to Dir
	// once complete, and removed on failure, so Dir never holds a partial set.
	Dir string
	// Shards writes WebDataset shards (shards/NNNNNN.tar, PerShard samples each; 0: DefaultPerShard).
	Shards   bool
	PerShard int
	// CSV writes an open_clip CSV (train.csv, Separator ',') or TSV (train.tsv, Separator '\t', open_clip's
	// default --csv-separator) with columns filepath and title, the pictures under images/.
	CSV       bool
	Separator rune
}

// Export is export.json: what an export folder holds, every file with its size and SHA-256.
type Export struct {
	Version int `json:"version"`
	// Stage is "poison" or "filter"; Input names the set read.
	Stage string `json:"stage"`
	Input string `json:"input"`
	// Classes names the labels of the samples' json members.
	Classes []string `json:"classes"`
	// Pairs and PoisonedPairs count the set's pairs.
	Pairs         int `json:"pairs"`
	PoisonedPairs int `json:"poisoned_pairs"`
	// Shards are the WebDataset shards, in order (paths relative to the folder).
	Shards []writers.WrittenFile `json:"shards,omitempty"`
	// CSV is the open_clip CSV, if written.
	CSV *CSVExport `json:"csv,omitempty"`
	// Manifest is poison_manifest.json; Report is filter_report.json (Filter only).
	Manifest writers.WrittenFile  `json:"poison_manifest"`
	Report   *writers.WrittenFile `json:"filter_report,omitempty"`
	// Skipped counts the input's samples left out for their annotations.
	Skipped int `json:"skipped,omitempty"`
}

// CSVExport is the CSV file of an export, its separator and pictures.
type CSVExport struct {
	File      writers.WrittenFile `json:"file"`
	Separator string              `json:"separator"`
	// Pictures is the number of picture files under images/; PicturesSHA256 the SHA-256 of the lines
	// "path sha256" of every picture, in order.
	Pictures       int    `json:"pictures"`
	PicturesSHA256 string `json:"pictures_sha256"`
}

// exportFormats names what an export holds, e.g. "shards and CSV".
func exportFormats(e *Export) string {
	var f []string
	if len(e.Shards) > 0 {
		f = append(f, "shards")
	}
	if e.CSV != nil {
		f = append(f, "CSV")
	}
	return strings.Join(f, " and ")
}

// Check validates the output before any work: at least one format, a known separator, a folder that does not
// exist yet in a writable parent.
func (o Output) Check() error {
	switch {
	case o.Dir == "":
		return errors.New("output: no folder given")
	case !o.Shards && !o.CSV:
		return errors.New("output: choose shards, csv or both")
	case o.CSV && o.Separator != ',' && o.Separator != '\t':
		return fmt.Errorf("output: CSV separator %q: want ',' or a tab", o.Separator)
	case o.PerShard < 0:
		return fmt.Errorf("output: %d samples per shard", o.PerShard)
	}
	if _, err := os.Lstat(o.Dir); err == nil {
		return fmt.Errorf("output folder %s already exists: remove it or choose another", o.Dir)
	}
	probe, err := os.MkdirTemp(filepath.Dir(filepath.Clean(o.Dir)), ".probe-")
	if err != nil {
		return fmt.Errorf("output folder %s cannot be written: %w", o.Dir, err)
	}
	return os.Remove(probe)
}

// sampleMeta is the json member of an exported sample.
type sampleMeta struct {
	Index          int    `json:"index"`
	ImageID        string `json:"image_id"`
	Label          *int   `json:"label,omitempty"`
	Class          string `json:"class,omitempty"`
	CaptionImageID string `json:"caption_image_id"`
	CaptionIndex   int    `json:"caption_index"`
	Poisoned       bool   `json:"poisoned"`
}

// setWriter writes a set into a temporary folder and publishes it as Output.Dir.
type setWriter struct {
	out      Output
	tmp      string
	classes  []string
	shards   *writers.ShardWriter
	csv      *writers.CSVWriter
	n        int
	poisoned int
	lastID   string // the last picture encoded as PNG, kept for the next pairs showing it
	lastPNG  []byte
}

// newSetWriter checks the output and creates the temporary folder.
func newSetWriter(out Output, classes []string) (*setWriter, error) {
	if err := out.Check(); err != nil {
		return nil, err
	}
	if out.PerShard == 0 {
		out.PerShard = DefaultPerShard
	}
	dir := filepath.Clean(out.Dir)
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("output: %w", err)
	}
	w := &setWriter{out: out, tmp: tmp, classes: classes}
	if out.Shards {
		if err := os.Mkdir(filepath.Join(tmp, ShardsDir), 0o755); err != nil {
			w.abort()
			return nil, err
		}
		w.shards = writers.NewShardWriter(filepath.Join(tmp, ShardsDir), out.PerShard)
	}
	if out.CSV {
		if w.csv, err = writers.NewCSVWriter(tmp, csvName(out.Separator), out.Separator); err != nil {
			w.abort()
			return nil, err
		}
	}
	return w, nil
}

func csvName(sep rune) string {
	if sep == '\t' {
		return "train.tsv"
	}
	return "train.csv"
}

// abort removes the temporary folder.
func (w *setWriter) abort() { os.RemoveAll(w.tmp) }

// write appends one pair: the picture of ex as stored in enc (or ex.Image encoded as PNG when enc is empty),
// its caption and its metadata (index, picture ID and label filled in here).
func (w *setWriter) write(ex dataset.Example, enc dataset.Encoded, caption string, meta sampleMeta) error {
	if enc.Data == nil {
		if ex.ID != w.lastID || w.lastPNG == nil {
			data, err := encodePNG(ex.Image)
			if err != nil {
				return fmt.Errorf("image %s: %w", ex.ID, err)
			}
			w.lastID, w.lastPNG = ex.ID, data
		}
		enc = dataset.Encoded{Data: w.lastPNG, Format: "png"}
	}
	meta.Index, meta.ImageID = w.n, ex.ID
	if ex.Label != dataset.NoLabel {
		label := ex.Label
		meta.Label = &label
		if label >= 0 && label < len(w.classes) {
			meta.Class = w.classes[label]
		}
	}
	js, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	s := writers.Sample{Image: enc, ImageID: ex.ID, Caption: caption, Meta: js}
	if w.shards != nil {
		if err := w.shards.Write(s); err != nil {
			return err
		}
	}
	if w.csv != nil {
		if err := w.csv.Write(s); err != nil {
			return err
		}
	}
	w.n++
	if meta.Poisoned {
		w.poisoned++
	}
	return nil
}

// finish closes the files, writes the manifest, the report (when not nil) and export.json, and renames the
// temporary folder to Output.Dir. On error the temporary folder is removed.
func (w *setWriter) finish(exp *Export, m *attack.Manifest, report any) error {
	err := w.close(exp, m, report)
	if err == nil {
		err = os.Rename(w.tmp, filepath.Clean(w.out.Dir))
	}
	if err != nil {
		w.abort()
		return fmt.Errorf("output %s: %w", w.out.Dir, err)
	}
	return nil
}

// close closes the writers and writes the folder's JSON files.
func (w *setWriter) close(exp *Export, m *attack.Manifest, report any) error {
	exp.Version, exp.Classes, exp.Pairs, exp.PoisonedPairs = ExportVersion, w.classes, w.n, w.poisoned
	if w.shards != nil {
		files, err := w.shards.Close()
		if err != nil {
			return err
		}
		for _, f := range files {
			f.Path = ShardsDir + "/" + f.Path
			exp.Shards = append(exp.Shards, f)
		}
	}
	if w.csv != nil {
		f, pics, sum, err := w.csv.Close()
		if err != nil {
			return err
		}
		exp.CSV = &CSVExport{File: f, Separator: string(w.out.Separator), Pictures: pics, PicturesSHA256: sum}
	}
	var err error
	if exp.Manifest, err = writeManifest(filepath.Join(w.tmp, ManifestFile), m); err != nil {
		return err
	}
	if report != nil {
		f, err := w.writeJSON(ReportFile, report)
		if err != nil {
			return err
		}
		exp.Report = &f
	}
	_, err = w.writeJSON(ExportFile, exp)
	return err
}

// writeJSON writes v as indented JSON into the folder and returns the file's record.
func (w *setWriter) writeJSON(name string, v any) (writers.WrittenFile, error) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return writers.WrittenFile{}, err
	}
	data = append(data, '\n')
	if err := atomicfile.WriteFile(filepath.Join(w.tmp, name), data); err != nil {
		return writers.WrittenFile{}, err
	}
	return writers.WrittenFile{Path: name, Size: int64(len(data)), SHA256: sha256Hex(data)}, nil
}

// writeManifest writes m as json.MarshalIndent(m, "", "  ") and a newline would, one poisoned pair at a time
// (a manifest lists every poisoned pair: marshalled whole, a large set's would need its size again in memory),
// and returns the file's record.
func writeManifest(path string, m *attack.Manifest) (writers.WrittenFile, error) {
	head := *m
	head.Pairs = []attack.PoisonedPair{}
	data, err := json.MarshalIndent(&head, "", "  ")
	if err != nil {
		return writers.WrittenFile{}, err
	}
	const empty = "\"pairs\": []\n}"
	if !bytes.HasSuffix(data, []byte(empty)) {
		return writers.WrittenFile{}, errors.New("manifest: pairs are not its last field")
	}
	f, err := os.Create(path)
	if err != nil {
		return writers.WrittenFile{}, err
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	bw := bufio.NewWriterSize(cw, 1<<20)
	if len(m.Pairs) == 0 {
		small, _ := json.MarshalIndent(m, "", "  ") // no pairs: null or [] as m has them
		bw.Write(small)
	} else {
		bw.Write(data[:len(data)-len(empty)])
		bw.WriteString("\"pairs\": [\n")
		for i := range m.Pairs {
			e, err := json.MarshalIndent(&m.Pairs[i], "    ", "  ")
			if err != nil {
				f.Close()
				return writers.WrittenFile{}, err
			}
			bw.WriteString("    ")
			bw.Write(e)
			if i < len(m.Pairs)-1 {
				bw.WriteString(",")
			}
			bw.WriteString("\n")
		}
		bw.WriteString("  ]\n}")
	}
	bw.WriteString("\n")
	if err := errors.Join(bw.Flush(), f.Close()); err != nil {
		return writers.WrittenFile{}, err
	}
	return writers.WrittenFile{Path: filepath.Base(path), Size: cw.n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// encodePNG encodes a grayscale or RGB picture as PNG.
func encodePNG(img dataset.Image) ([]byte, error) {
	r := image.Rect(0, 0, img.Width, img.Height)
	var im image.Image
	switch img.Channels {
	case 1:
		im = &image.Gray{Pix: img.Pix, Stride: img.Width, Rect: r}
	case 3:
		rgba := image.NewNRGBA(r)
		for i := range img.Width * img.Height {
			copy(rgba.Pix[4*i:4*i+3], img.Pix[3*i:3*i+3])
			rgba.Pix[4*i+3] = 255
		}
		im = rgba
	default:
		return nil, fmt.Errorf("a picture of %d channels cannot be written as PNG", img.Channels)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, im); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
