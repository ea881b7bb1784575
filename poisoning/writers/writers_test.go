package writers

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/loaders"
)

// picture returns a small synthetic picture encoded as "png" or "jpg", its pixels varying with seed.
func picture(t *testing.T, kind string, seed int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, 12, 10))
	for y := range 10 {
		for x := range 12 {
			img.SetNRGBA(x, y, color.NRGBA{uint8(x*9 + seed*41), uint8(y*11 + seed*13), uint8(seed * 71), 255})
		}
	}
	var buf bytes.Buffer
	var err error
	if kind == "png" {
		err = png.Encode(&buf, img)
	} else {
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// writtenSamples are samples with awkward captions (separators, quotes, a newline, non-ASCII), pictures of
// both formats, and runs of samples sharing a picture.
func writtenSamples(t *testing.T) []Sample {
	captions := []string{"a plain caption", "commas, \"quotes\" and\ttabs", "two\nlines", "naïve café ☕", "last one"}
	var out []Sample
	for i := range 7 {
		kind := []string{"png", "jpg"}[i%2]
		pic := i / 2 // samples 0–1, 2–3, 4–5 share a picture ID (not the bytes' format: IDs decide)
		out = append(out, Sample{Image: dataset.Encoded{Data: picture(t, kind, i), Format: kind},
			ImageID: fmt.Sprintf("pic-%d", pic), Caption: captions[i%len(captions)],
			Meta: []byte(fmt.Sprintf(`{"label": %d, "poisoned": %v}`, i%3, i == 4))})
	}
	return out
}

// TestShardWriter: written shards list with tar -t in member order, read back through loaders.OpenWebDataset and
// loaders.IndexShards as the samples written, and the same samples write byte-identical shards.
func TestShardWriter(t *testing.T) {
	samples := writtenSamples(t)
	write := func(dir string) []WrittenFile {
		w := NewShardWriter(dir, 3)
		for _, s := range samples {
			if err := w.Write(s); err != nil {
				t.Fatal(err)
			}
		}
		files, err := w.Close()
		if err != nil {
			t.Fatal(err)
		}
		return files
	}
	d1, d2 := t.TempDir(), t.TempDir()
	f1, f2 := write(d1), write(d2)
	if len(f1) != 3 || !slices.Equal(f1, f2) {
		t.Fatalf("shards %v and %v: want the same 3", f1, f2)
	}
	for _, f := range f1 {
		a, _ := os.ReadFile(filepath.Join(d1, f.Path))
		b, _ := os.ReadFile(filepath.Join(d2, f.Path))
		if !bytes.Equal(a, b) || int64(len(a)) != f.Size {
			t.Errorf("shard %s: not byte-identical, or not %d bytes", f.Path, f.Size)
		}
	}
	if tarBin, err := exec.LookPath("tar"); err == nil {
		out, err := exec.Command(tarBin, "-tf", filepath.Join(d1, "000001.tar")).Output()
		if want := "000003.jpg\n000003.txt\n000003.json\n000004.png\n000004.txt\n000004.json\n000005.jpg\n000005.txt\n000005.json\n"; err != nil || string(out) != want {
			t.Errorf("tar -t lists %q (%v), want %q", out, err, want)
		}
	}
	w, err := loaders.OpenWebDataset(loaders.WebDatasetConfig{Shards: []string{filepath.Join(d1, "{000000..000002}.tar")}, Classes: []string{"a", "b", "c"}})
	if err != nil {
		t.Fatal(err)
	}
	k := 0
	for ex, err := range w.Examples(loaders.Options{}) {
		if err != nil || ex.Captions[0] != strings.TrimSpace(samples[k].Caption) || ex.Label != k%3 {
			t.Errorf("streamed sample %d: %q label %d, %v", k, ex.Captions, ex.Label, err)
		}
		k++
	}
	s, err := loaders.IndexShards(w, loaders.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range samples {
		_, enc, err := s.Read(i, false)
		if err != nil || !bytes.Equal(enc.Data, samples[i].Image.Data) {
			t.Errorf("indexed sample %d: picture bytes differ (%v)", i, err)
		}
		meta, err := s.Member(i, "json")
		none, err2 := s.Member(i, "cls")
		if err != nil || err2 != nil || !bytes.Equal(meta, samples[i].Meta) || none != nil {
			t.Errorf("sample %d: json member %q (%v), cls member %q (%v)", i, meta, err, none, err2)
		}
	}
}

// TestCSVWriter: the written CSV or TSV is read by a plain CSV reader (header filepath, title; one row per
// sample) and by loaders.OpenCSV; consecutive samples with one ImageID share a picture file.
func TestCSVWriter(t *testing.T) {
	samples := writtenSamples(t)
	for _, sep := range []rune{',', '\t'} {
		dir := t.TempDir()
		name := map[rune]string{',': "train.csv", '\t': "train.tsv"}[sep]
		c, err := NewCSVWriter(dir, name, sep)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range samples {
			if err := c.Write(s); err != nil {
				t.Fatal(err)
			}
		}
		file, pictures, sum, err := c.Close()
		if err != nil || pictures != 4 || len(sum) != 64 {
			t.Fatalf("%s: %d pictures, sum %q, %v; want 4", name, pictures, sum, err)
		}
		f, _ := os.Open(filepath.Join(dir, file.Path))
		r := csv.NewReader(f)
		r.Comma = sep
		rows, err := r.ReadAll()
		f.Close()
		if err != nil || len(rows) != len(samples)+1 || !slices.Equal(rows[0], []string{"filepath", "title"}) {
			t.Fatalf("%s: plain reader: %d rows %q, %v", name, len(rows), rows, err)
		}
		for i, row := range rows[1:] {
			data, err := os.ReadFile(filepath.Join(dir, row[0]))
			if err != nil || row[1] != samples[i].Caption || (i%2 == 0 || i == 6) && !bytes.Equal(data, samples[i].Image.Data) {
				t.Errorf("%s row %d: %q (%v)", name, i, row, err)
			}
		}
		src, err := loaders.OpenCSV(loaders.CSVConfig{Path: filepath.Join(dir, name), Separator: sep})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for ex, err := range src.Examples(loaders.Options{}) {
			if err != nil {
				t.Fatalf("%s: OpenCSV: %v", name, err)
			}
			n += len(ex.Captions)
		}
		if n != len(samples) {
			t.Errorf("%s: OpenCSV read %d captions, want %d", name, n, len(samples))
		}
	}
}
