package scale

import (
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"

	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/loaders"
	"github.com/mmpoison/mmpoison/poisoning/writers"
)

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// VerifyExport checks a folder written by Poison or Filter: the size and SHA-256 of every file export.json
// lists (shards, CSV and its pictures, manifest, report), then the set against its poison manifest, streaming
// (attack.Manifest.VerifyRecords on the shards' samples read back through loaders; the CSV's rows: their count
// and the captions of the poisoned pairs). It returns the first problems found.
func VerifyExport(dir string) error {
	exp, m, err := ReadExport(dir)
	if err != nil {
		return err
	}
	files := append([]writers.WrittenFile{exp.Manifest}, exp.Shards...)
	if exp.Report != nil {
		files = append(files, *exp.Report)
	}
	if exp.CSV != nil {
		files = append(files, exp.CSV.File)
	}
	for _, f := range files {
		if err := checkFile(dir, f); err != nil {
			return err
		}
	}
	if exp.CSV != nil {
		if err := verifyCSV(dir, exp, m); err != nil {
			return err
		}
	}
	if len(exp.Shards) == 0 {
		return nil
	}
	in, err := Open(Input{Format: FormatWebDataset, Path: dir})
	if err != nil {
		return err
	}
	defer in.Close()
	if len(in.Skipped) > 0 {
		return fmt.Errorf("%s: %d samples cannot be read: %s", dir, len(in.Skipped), in.Skipped[0])
	}
	return m.VerifyRecords(exp.Classes, records(in.Source.(*loaders.Shards), m.Trigger != nil), exp.Stage == "filter")
}

// checkFile compares a file's size and SHA-256 with its record.
func checkFile(dir string, f writers.WrittenFile) error {
	file, err := os.Open(filepath.Join(dir, filepath.FromSlash(f.Path)))
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	defer file.Close()
	h := sha256.New()
	n, err := io.Copy(h, file)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != f.Size || got != f.SHA256 {
		return fmt.Errorf("verify: %s has %d bytes and SHA-256 %s; export.json says %d and %s", f.Path, n, got, f.Size, f.SHA256)
	}
	return nil
}

// records reads an export's shards back as attack records, decoding the pictures when decode is true.
func records(s *loaders.Shards, decode bool) iter.Seq2[attack.Record, error] {
	return func(yield func(attack.Record, error) bool) {
		for i := range s.Len() {
			ex, _, err := s.Read(i, decode)
			var js []byte
			if err == nil {
				js, err = s.Member(i, "json")
			}
			var meta sampleMeta
			if err == nil {
				if err = json.Unmarshal(js, &meta); err != nil {
					err = fmt.Errorf("sample %s: json member: %w", ex.ID, err)
				}
			}
			if err != nil {
				yield(attack.Record{}, err)
				return
			}
			r := attack.Record{Index: meta.Index, ImageID: meta.ImageID, Label: dataset.NoLabel, Image: ex.Image,
				Caption: ex.Captions[0], CaptionImageID: meta.CaptionImageID, CaptionIndex: meta.CaptionIndex, Poisoned: meta.Poisoned}
			if meta.Label != nil {
				r.Label = *meta.Label
			}
			if !yield(r, nil) {
				return
			}
		}
	}
}

// verifyCSV checks an export's CSV: one row per pair, the poisoned pairs' captions as the manifest says, and
// the pictures as export.json lists them.
func verifyCSV(dir string, exp *Export, m *attack.Manifest) error {
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(exp.CSV.File.Path)))
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comma = []rune(exp.CSV.Separator)[0]
	r.ReuseRecord = true
	if _, err := r.Read(); err != nil {
		return fmt.Errorf("verify: %s: %w", exp.CSV.File.Path, err)
	}
	listed := map[int]string{}
	for _, e := range m.Pairs {
		listed[e.Index] = e.Caption
	}
	pics := sha256.New()
	last, rows, files := "", 0, 0
	var problems []error
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("verify: %s: %w", exp.CSV.File.Path, err)
		}
		if c, ok := listed[rows]; ok && rec[1] != c {
			problems = append(problems, fmt.Errorf("row %d has caption %q, manifest says %q", rows+1, rec[1], c))
		}
		if rec[0] != last {
			data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rec[0])))
			if err != nil {
				return fmt.Errorf("verify: %w", err)
			}
			fmt.Fprintf(pics, "%s %s\n", rec[0], sha256Hex(data))
			last, files = rec[0], files+1
		}
		rows++
	}
	if rows != exp.Pairs || rows != m.TotalPairs {
		problems = append(problems, fmt.Errorf("%d rows, export.json says %d pairs and the manifest %d", rows, exp.Pairs, m.TotalPairs))
	}
	if got := hex.EncodeToString(pics.Sum(nil)); files != exp.CSV.Pictures || got != exp.CSV.PicturesSHA256 {
		problems = append(problems, fmt.Errorf("%d pictures with SHA-256 %s; export.json says %d and %s", files, got, exp.CSV.Pictures, exp.CSV.PicturesSHA256))
	}
	if len(problems) > 0 {
		return fmt.Errorf("verify: %s: %w", exp.CSV.File.Path, errors.Join(problems...))
	}
	return nil
}
