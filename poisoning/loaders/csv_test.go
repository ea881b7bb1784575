package loaders

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

func TestCSV(t *testing.T) {
	dir := t.TempDir()
	abs := filepath.Join(t.TempDir(), "elsewhere", "c.png")
	writeImage(t, filepath.Join(dir, "imgs", "a.jpg"), "jpg", 40, 30, 1)
	writeImage(t, filepath.Join(dir, "imgs", "b.png"), "png", 30, 40, 2)
	writeImage(t, abs, "png", 16, 16, 3)
	writeFile(t, filepath.Join(dir, "imgs", "d.jpg"), corruptJPEG(t))
	// open_clip's columns plus a label column; quoted captions with the separator and quotes inside.
	csvText := "filepath,title,label\n" +
		"imgs/a.jpg,\"A dog, running on grass\",dog\n" +
		"imgs/a.jpg,A brown dog,dog\n" +
		"imgs/b.png,\"A cat said \"\"meow\"\"\",0\n" +
		"imgs/d.jpg,A broken picture,\n" +
		abs + ",A bird,bird\n"
	csvPath := filepath.Join(dir, "train.csv")
	writeFile(t, csvPath, []byte("\xef\xbb\xbf"+csvText)) // With a byte-order mark, as Excel writes it.
	src, err := OpenCSV(CSVConfig{Path: csvPath, LabelKey: "label", Classes: []string{"cat", "dog", "bird"}})
	if err != nil {
		t.Fatal(err)
	}
	d, rep, err := Collect(src, Options{ImageSize: 12, SkipCorrupt: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(d.Examples); d.Name != "train" || !slices.Equal(got, []string{"imgs/a.jpg", "imgs/b.png", abs}) {
		t.Fatalf("%s: IDs %q", d.Name, got)
	}
	a, b := d.Examples[0], d.Examples[1]
	if !slices.Equal(a.Captions, []string{"A dog, running on grass", "A brown dog"}) || a.Label != 1 ||
		b.Captions[0] != `A cat said "meow"` || b.Label != 0 || d.Examples[2].Label != 2 {
		t.Errorf("examples %q/%d, %q/%d", a.Captions, a.Label, b.Captions, b.Label)
	}
	if len(rep.Skipped) != 1 || rep.Skipped[0].File != filepath.Join(dir, "imgs", "d.jpg") {
		t.Errorf("report %s", rep)
	}
	checkImages(t, d.Examples, 12)

	// A TSV with other column names: the separator follows the extension, labels are optional.
	tsvPath := filepath.Join(dir, "sub", "pairs.tsv")
	writeFile(t, tsvPath, []byte("id\timage\tcaption\n1\t../imgs/a.jpg\tA dog, again\n2\t../imgs/b.png\tA cat\n"))
	tsv, err := OpenCSV(CSVConfig{Path: tsvPath, ImageKey: "image", CaptionKey: "caption"})
	if err != nil {
		t.Fatal(err)
	}
	exs, errs := collectAll(t, tsv, Options{})
	if len(errs) != 0 || len(exs) != 2 || exs[0].Captions[0] != "A dog, again" || exs[0].Image.Width != 40 || exs[1].Label != dataset.NoLabel {
		t.Fatalf("TSV: %d examples, %v", len(exs), errs)
	}
	// An explicit separator wins over the extension.
	semi := filepath.Join(dir, "semi.csv")
	writeFile(t, semi, []byte("filepath;title\nimgs/a.jpg;x, y\n"))
	s, err := OpenCSV(CSVConfig{Path: semi, Separator: ';'})
	if err != nil {
		t.Fatal(err)
	}
	ix, err := s.Index()
	if err != nil || ix.Len() != 1 || ix.Entries()[0].Captions[0] != "x, y" {
		t.Fatalf("semicolon file: %v", err)
	}
}

func TestCSVMalformed(t *testing.T) {
	classes := []string{"cat", "dog"}
	cases := []struct {
		name, text string
		cfg        CSVConfig
		open       bool // the error comes from OpenCSV (else from reading the rows)
		want       []string
	}{
		{"missing column", "path,caption\na.jpg,x\n", CSVConfig{}, true, []string{`no column "filepath"`, `"path", "caption"`}},
		{"wrong separator", "filepath\ttitle\na.jpg\tx\n", CSVConfig{}, true, []string{`no column "filepath"`}},
		{"empty", "", CSVConfig{}, true, []string{"no header row"}},
		{"label without classes", "filepath,title,l\n", CSVConfig{LabelKey: "l", Classes: nil}, true, []string{"needs CSVConfig.Classes"}},
		{"field count", "filepath,title\na.jpg,x\nb.jpg,y,z\n", CSVConfig{}, false, []string{"line 3", "wrong number of fields"}},
		{"unknown class", "filepath,title,l\na.jpg,x,cat\nb.jpg,y,horse\n", CSVConfig{LabelKey: "l", Classes: classes}, false, []string{"line 3", `"horse"`, `"dog"`}},
		{"bad index", "filepath,title,l\na.jpg,x,7\n", CSVConfig{LabelKey: "l", Classes: classes}, false, []string{"line 2", "label 7"}},
		{"empty image", "filepath,title\n,x\n", CSVConfig{}, false, []string{"line 2", `empty "filepath"`}},
		{"conflicting labels", "filepath,title,l\na.jpg,x,cat\na.jpg,y,dog\n", CSVConfig{LabelKey: "l", Classes: classes}, false, []string{"line 3", "line 2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "bad.csv")
			writeFile(t, p, []byte(c.text))
			c.cfg.Path = p
			src, err := OpenCSV(c.cfg)
			if !c.open {
				if err != nil {
					t.Fatal(err)
				}
				_, err = src.Index()
			}
			wantErr[error](t, err, append(c.want, p)...)
		})
	}
}

// TestCSVLazy: rows are read as examples are consumed, so a loop that stops early never meets a malformed row
// further down (nor the missing images it lists).
func TestCSVLazy(t *testing.T) {
	dir := t.TempDir()
	writeImage(t, filepath.Join(dir, "a.jpg"), "jpg", 8, 8, 1)
	writeImage(t, filepath.Join(dir, "b.jpg"), "jpg", 8, 8, 2)
	text := "filepath,title\na.jpg,one\nb.jpg,two\nmissing.jpg,three\n" + strings.Repeat("x.jpg,broken,row\n", 3)
	p := filepath.Join(dir, "lazy.csv")
	writeFile(t, p, []byte(text))
	src, err := OpenCSV(CSVConfig{Path: p})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, err := range src.Examples(Options{}) {
		if err != nil {
			t.Fatalf("after %d examples: %v", n, err)
		}
		if n++; n == 2 {
			break
		}
	}
	d, rep, err := Collect(src, Options{SkipCorrupt: true})
	wantErr[*AnnotationError](t, err, p, "line 5")
	if len(d.Examples) != 2 || len(rep.Skipped) != 1 || !strings.Contains(rep.Skipped[0].Error(), "missing.jpg") {
		t.Errorf("before the bad row: %d examples, %s", len(d.Examples), rep)
	}
}
