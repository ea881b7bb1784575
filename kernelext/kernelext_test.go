package kernelext

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// withOutput redirects the package output to a buffer for the test.
func withOutput(t *testing.T) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	prev := SetOutput(&buf)
	restoreDir := SetOutputDir("", nil)
	t.Cleanup(func() {
		SetOutput(prev)
		restoreDir()
	})
	return &buf
}

// withOutputDir sets dir as the output directory, with a write function that records the paths it writes.
func withOutputDir(t *testing.T, dir string) *[]string {
	t.Helper()
	var written []string
	t.Cleanup(SetOutputDir(dir, func(path string, data []byte) error {
		written = append(written, path)
		return os.WriteFile(path, data, 0o644)
	}))
	return &written
}

// fakeNotebook makes the package believe it runs in a notebook and records
// what it sends to the front end.
type fakeNotebook struct {
	html    []string
	md      []string
	updates map[string][]string
}

func withFakeNotebook(t *testing.T) *fakeNotebook {
	t.Helper()
	f := &fakeNotebook{updates: map[string][]string{}}
	prev := nb
	n := 0
	nb = frontEnd{
		isNotebook:      func() bool { return true },
		displayHTML:     func(h string) { f.html = append(f.html, h) },
		displayMarkdown: func(m string) { f.md = append(f.md, m) },
		updateHTML:      func(id, h string) { f.updates[id] = append(f.updates[id], h) },
		uniqueID:        func() string { n++; return "id" + string(rune('0'+n)) },
	}
	t.Cleanup(func() { nb = prev })
	return f
}

func sampleTable() *Table {
	t := NewTable("Attack II <PASCAL>", "setting", "Hit@1", "MinRank")
	t.AddRow("clean", 0.024, 51.0)
	t.AddRow("poisoned | A2B", Cell{Text: "0.280", Bold: true}, 2.19)
	t.AddNote("φ = 0.08%%, %d seeds", 3)
	return t
}

func TestTableText(t *testing.T) {
	want := "" +
		"Attack II <PASCAL>\n" +
		"setting         Hit@1  MinRank\n" +
		"--------------  -----  -------\n" +
		"clean           0.024   51.000\n" +
		"poisoned | A2B  0.280    2.190\n" +
		"φ = 0.08%, 3 seeds\n"
	if got := sampleTable().Text(); got != want {
		t.Errorf("Text():\n%s\nwant:\n%s", got, want)
	}
}

func TestTableMarkdown(t *testing.T) {
	want := "" +
		"**Attack II &lt;PASCAL&gt;**\n\n" +
		"| setting         |     Hit@1 | MinRank |\n" +
		"| --------------- | --------: | ------: |\n" +
		"| clean           |     0.024 |  51.000 |\n" +
		"| poisoned \\| A2B | **0.280** |   2.190 |\n" +
		"\nφ = 0.08%, 3 seeds\n"
	if got := sampleTable().Markdown(); got != want {
		t.Errorf("Markdown():\n%s\nwant:\n%s", got, want)
	}
}

func TestTableHTML(t *testing.T) {
	h := sampleTable().HTML()
	for _, want := range []string{
		"<caption", "Attack II &lt;PASCAL&gt;</caption>",
		`<th style="padding:2px 10px;text-align:left;border-bottom:1px solid #888">setting</th>`,
		`text-align:right;border-bottom:1px solid #888">Hit@1</th>`,
		`<td style="padding:2px 10px;text-align:right"><b>0.280</b></td>`,
		"poisoned | A2B", "φ = 0.08%, 3 seeds",
	} {
		if !strings.Contains(h, want) {
			t.Errorf("HTML does not contain %q:\n%s", want, h)
		}
	}
	if strings.Contains(h, "<PASCAL>") {
		t.Error("HTML contains unescaped <PASCAL>")
	}
	if got, want := strings.Count(h, "<tr>"), 3; got != want {
		t.Errorf("%d rows, want %d", got, want)
	}
}

func TestTableShapes(t *testing.T) {
	tests := []struct {
		name  string
		table *Table
		text  string
		md    string
	}{
		{
			name:  "ragged rows and no title",
			table: &Table{Headers: []string{"a"}, Rows: [][]Cell{{{Text: "x"}, {Text: "1"}}, {}}},
			text:  "a\n-  -\nx  1\n\n",
			md:    "| a   |     |\n| --- | --: |\n| x   |   1 |\n|     |     |\n",
		},
		{
			name:  "no headers, explicit alignment, newline in cell",
			table: &Table{Align: []Align{AlignCenter}, Rows: [][]Cell{{{Text: "ab\ncd"}}, {{Text: "x", Align: AlignRight}}}},
			text:  "ab cd\n    x\n",
			md:    "|       |\n| :---: |\n| ab cd |\n|   x   |\n",
		},
		{
			name: "markdown escapes",
			table: NewTable("", "col").
				AddRow("a*b_c`d\\e").AddRow("<script>&"),
			text: "col\n---------\na*b_c`d\\e\n<script>&\n",
			md: "| col                 |\n| ------------------- |\n" +
				"| a\\*b\\_c\\`d\\\\e       |\n| &lt;script&gt;&amp; |\n",
		},
		{
			name:  "NaN, ints and nil",
			table: NewTable("", "v", "n").AddRow(nan(), 7).AddRow(nil, -3),
			text:  "  v   n\n---  --\nn/a   7\n     -3\n",
			md:    "|   v |   n |\n| --: | --: |\n| n/a |   7 |\n|     |  -3 |\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.table.Text(); got != tc.text {
				t.Errorf("Text():\n%q\nwant\n%q", got, tc.text)
			}
			if got := tc.table.Markdown(); got != tc.md {
				t.Errorf("Markdown():\n%q\nwant\n%q", got, tc.md)
			}
		})
	}
}

func nan() float64 { var z float64; return z / z }

func TestShowTable(t *testing.T) {
	buf := withOutput(t)
	ShowTable(sampleTable())
	if got, want := buf.String(), sampleTable().Text()+"\n"; got != want {
		t.Errorf("ShowTable wrote %q, want %q", got, want)
	}
	f := withFakeNotebook(t)
	buf.Reset()
	ShowTable(sampleTable())
	ShowMarkdown("# hi")
	if buf.Len() != 0 || len(f.html) != 1 || f.html[0] != sampleTable().HTML() || len(f.md) != 1 {
		t.Errorf("notebook: wrote %q, html %d, md %d", buf.String(), len(f.html), len(f.md))
	}
}

func TestFileName(t *testing.T) {
	tests := map[string]string{
		"Hit@K clean vs poisoned": "Hit_K_clean_vs_poisoned",
		"loss/train":              "loss_train",
		"  ":                      "unnamed",
		"../etc/passwd":           "etc_passwd",
		"a.b-c_d":                 "a.b-c_d",
		"φ sweep":                 "sweep",
	}
	for in, want := range tests {
		if got := FileName(in); got != want {
			t.Errorf("FileName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestShowFigure(t *testing.T) {
	fig := &Figure{Name: "rank hist", SVG: []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>`), PDF: []byte("%PDF-1.4")}
	buf := withOutput(t)
	if err := ShowFigure(fig); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "figure rank hist: not saved (no output directory)\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	dir := filepath.Join(t.TempDir(), "out") // created by the first save
	written := withOutputDir(t, dir)
	buf.Reset()
	if err := ShowFigure(fig); err != nil {
		t.Fatal(err)
	}
	svgPath, pdfPath := filepath.Join(dir, "rank_hist.svg"), filepath.Join(dir, "rank_hist.pdf")
	if got, want := buf.String(), "figure rank hist: "+svgPath+", "+pdfPath+"\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := strings.Join(*written, ", "); got != svgPath+", "+pdfPath {
		t.Errorf("the write function wrote %s", got)
	}
	if data, err := os.ReadFile(svgPath); err != nil || !bytes.Equal(data, fig.SVG) {
		t.Errorf("svg file %q, %v", data, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "rank_hist.png")); !os.IsNotExist(err) {
		t.Errorf("png written although the figure has none: %v", err)
	}
	buf.Reset()
	if err := ShowFigure(&Figure{Name: "empty"}); err == nil || buf.String() != "figure empty: error: kernelext: figure \"empty\" has no content\n" {
		t.Errorf("saving an empty figure: %v, wrote %q", err, buf.String())
	}

	f := withFakeNotebook(t)
	t.Cleanup(SetOutputDir("", nil))
	buf.Reset()
	if err := ShowFigure(fig); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 || len(f.html) != 1 || strings.Contains(f.html[0], "<?xml") || !strings.Contains(f.html[0], "<svg") {
		t.Errorf("notebook display: out %q, html %q", buf.String(), f.html)
	}
}

func TestSetOutputDir(t *testing.T) {
	withOutput(t)
	boom := errors.New("disk full")
	restore := SetOutputDir(t.TempDir(), func(string, []byte) error { return boom })
	if err := ShowFigure(&Figure{Name: "f", SVG: []byte("<svg/>")}); !errors.Is(err, boom) {
		t.Errorf("ShowFigure returned %v, want the write function's error", err)
	}
	restore()
	if err := ShowFigure(&Figure{Name: "f", SVG: []byte("<svg/>")}); err != nil {
		t.Errorf("after restore, ShowFigure returned %v, want nil (nothing saved)", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("SetOutputDir accepted a directory without a write function")
		}
	}()
	SetOutputDir("out", nil)
}

func solid(w, h int, c color.Color) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, c)
		}
	}
	return img
}

func TestImageGridPNG(t *testing.T) {
	red := color.RGBA{255, 0, 0, 255}
	tests := []struct {
		name          string
		grid          ImageGrid
		width, height int
	}{
		{
			// 5 images of 40×30, 2 columns, scale 3 → cells 120×90 + 1 caption line.
			// width  = 2·120 + 3·4 = 252
			// height = 3 rows · (90 + 2 + 14) + 4·4 = 334
			name: "scaled 5 in 2 columns",
			grid: ImageGrid{Columns: 2, Scale: 3, Items: []GridItem{
				{solid(40, 30, red), "a sheep"}, {solid(40, 30, red), "b"}, {solid(40, 30, red), "c"},
				{solid(40, 30, red), "d"}, {solid(40, 30, red), "e"}}},
			width: 252, height: 334,
		},
		{
			// Row notes: each row 14 px taller. width = 2·98 + 3·4 = 208; height = 2 rows · (10 + 14) + 3·4 = 60.
			name: "row notes",
			grid: ImageGrid{Columns: 2, RowNotes: []string{"first row", "second"}, Items: []GridItem{
				{solid(10, 10, red), ""}, {solid(10, 10, red), ""}, {solid(10, 10, red), ""}}},
			width: 208, height: 60,
		},
		{
			// Tiny images: cells get the minimum width 98; no captions.
			// width = 3·98 + 4·4 = 310, height = 8 + 2·4 = 16.
			name:  "minimum cell width, no captions",
			grid:  ImageGrid{Items: []GridItem{{solid(8, 8, red), ""}, {solid(8, 8, red), ""}, {solid(8, 8, red), ""}}},
			width: 310, height: 16,
		},
		{
			// Title (1 line) + 2-line caption: 1 row; 98 px cell = 14 chars per line.
			// height = (14 + 4) + (10 + 2 + 2·14) + 2·4 = 66; width = 98 + 8 = 106.
			name:  "title and wrapped caption",
			grid:  ImageGrid{Title: "T", Items: []GridItem{{solid(10, 10, red), "a dog on a boat at sea"}}},
			width: 106, height: 66,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, err := tc.grid.PNG()
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if b := img.Bounds(); b.Dx() != tc.width || b.Dy() != tc.height {
				t.Errorf("size %dx%d, want %dx%d", b.Dx(), b.Dy(), tc.width, tc.height)
			}
		})
	}
	// Pixel check on the first layout: the first image spans x 4..124, y 4..94.
	data, _ := tests[0].grid.PNG()
	img, _ := png.Decode(bytes.NewReader(data))
	for _, p := range []image.Point{{4, 4}, {123, 93}, {64, 50}} {
		if r, g, b, _ := img.At(p.X, p.Y).RGBA(); r>>8 != 255 || g != 0 || b != 0 {
			t.Errorf("pixel %v is not red", p)
		}
	}
	if r, g, b, _ := img.At(2, 2).RGBA(); r>>8 != 255 || g>>8 != 255 || b>>8 != 255 {
		t.Error("background is not white")
	}
	// Caption text is drawn (some dark pixel under the first image).
	dark := false
	for y := 96; y < 106 && !dark; y++ {
		for x := 4; x < 124; x++ {
			if r, _, _, _ := img.At(x, y).RGBA(); r < 0x4000 {
				dark = true
				break
			}
		}
	}
	if !dark {
		t.Error("no caption text drawn")
	}
	if _, err := (&ImageGrid{}).PNG(); err == nil {
		t.Error("expected an error for an empty grid")
	}
}

func TestImageGridHTMLAndShow(t *testing.T) {
	g := &ImageGrid{Name: "poison pairs", Columns: 2, Scale: 2}
	g.Add(solid(4, 4, color.Black), "sheep <caption> & more").Add(solid(4, 4, color.White), "plane")
	h, err := g.HTML()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(h, "<img "); n != 2 {
		t.Errorf("%d img tags, want 2", n)
	}
	for _, want := range []string{"sheep &lt;caption&gt; &amp; more", "repeat(2,98px)", "data:image/png;base64,", `width="8" height="8"`} {
		if !strings.Contains(h, want) {
			t.Errorf("HTML does not contain %q", want)
		}
	}
	if strings.Contains(h, "<caption>") {
		t.Error("unescaped caption")
	}
	g.Add(solid(4, 4, color.Black), "third")
	g.RowNotes = []string{"1 sheep & 1 plane", "a third"}
	h, err = g.HTML()
	first, second := strings.Index(h, "1 sheep &amp; 1 plane"), strings.Index(h, "a third")
	if err != nil || first < strings.Index(h, "plane</figcaption>") || second < strings.Index(h, "third</figcaption>") || strings.Count(h, "grid-column:1/-1") != 2 {
		t.Errorf("row notes not after their rows (%v):\n%s", err, h)
	}
	g.Items, g.RowNotes = g.Items[:2], nil

	buf := withOutput(t)
	if err := ShowImageGrid(g); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != "image grid poison pairs: not saved (no output directory)\n" {
		t.Errorf("got %q", got)
	}
	dir := t.TempDir()
	written := withOutputDir(t, dir)
	buf.Reset()
	if err := ShowImageGrid(g); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "poison_pairs.png")
	if got := buf.String(); got != "image grid poison pairs: "+path+"\n" || len(*written) != 1 || (*written)[0] != path {
		t.Errorf("got %q, the write function wrote %q", got, *written)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(bytes.NewReader(data)); err != nil {
		t.Error(err)
	}
}

func TestImageFromHWC(t *testing.T) {
	tests := []struct {
		name    string
		pix     []uint8
		h, w, c int
		at      image.Point
		want    color.RGBA
		wantErr bool
	}{
		{"gray", []uint8{0, 10, 20, 30, 40, 50}, 2, 3, 1, image.Pt(2, 1), color.RGBA{50, 50, 50, 255}, false},
		{"rgb", []uint8{1, 2, 3, 4, 5, 6}, 1, 2, 3, image.Pt(1, 0), color.RGBA{4, 5, 6, 255}, false},
		{"rgba", []uint8{9, 8, 7, 255}, 1, 1, 4, image.Pt(0, 0), color.RGBA{9, 8, 7, 255}, false},
		{"wrong length", []uint8{1, 2}, 1, 1, 3, image.Point{}, color.RGBA{}, true},
		{"two channels", []uint8{1, 2}, 1, 1, 2, image.Point{}, color.RGBA{}, true},
		{"zero size", nil, 0, 1, 1, image.Point{}, color.RGBA{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img, err := ImageFromHWC(tc.pix, tc.h, tc.w, tc.c)
			if tc.wantErr {
				if err == nil {
					t.Fatal("expected an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b := img.Bounds(); b.Dx() != tc.w || b.Dy() != tc.h {
				t.Errorf("bounds %v", b)
			}
			if got := color.RGBAModel.Convert(img.At(tc.at.X, tc.at.Y)); got != tc.want {
				t.Errorf("pixel %v = %v, want %v", tc.at, got, tc.want)
			}
		})
	}
}

func TestWrapText(t *testing.T) {
	tests := []struct {
		s        string
		width    int
		maxLines int
		want     []string
	}{
		{"a dog on a boat", 7, 3, []string{"a dog", "on a", "boat"}},
		{"abcdefghij", 4, 5, []string{"abcd", "efgh", "ij"}},
		{"one two three four five", 9, 2, []string{"one two", "three..."}},
		{"", 5, 2, nil},
		{"x  y", 10, 1, []string{"x y"}},
	}
	for _, tc := range tests {
		got := wrapText(tc.s, tc.width, tc.maxLines)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("wrapText(%q, %d, %d) = %q, want %q", tc.s, tc.width, tc.maxLines, got, tc.want)
		}
	}
}

// fakeClock is a manually advanced clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) add(d time.Duration)     { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock               { return &fakeClock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)} }
func lines(s string) []string                { return strings.Split(strings.TrimSuffix(s, "\n"), "\n") }
func joinLines(ls []string) string           { return strings.Join(ls, "\n") }
func equalLines(a []string, b []string) bool { return joinLines(a) == joinLines(b) }

func TestProgressText(t *testing.T) {
	withOutput(t)
	clk := newFakeClock()
	var buf bytes.Buffer
	p := NewProgress("train", 100, WithWriter(&buf), WithClock(clk.now))
	// One step per second; lines at the first update, at every 10% and at Done.
	// Time trigger (10 s) coincides with the 10% one here, so lines appear at
	// steps 1, 10, 20, ..., 100 and Done.
	for step := 1; step <= 100; step++ {
		clk.add(time.Second)
		p.Update(step, F("loss", 1/float64(step)), F("temp", 0.07))
	}
	clk.add(500 * time.Millisecond)
	p.Done()
	p.Update(101) // ignored after Done
	p.Done()      // no second final line
	got := lines(buf.String())
	if len(got) != 12 {
		t.Fatalf("%d lines, want 12:\n%s", len(got), buf.String())
	}
	want := map[int]string{
		0:  "train: 1/100 (1%) elapsed 1.0s eta 1m39s | loss=1 temp=0.07",
		1:  "train: 10/100 (10%) elapsed 10.0s eta 1m30s | loss=0.1 temp=0.07",
		5:  "train: 50/100 (50%) elapsed 50.0s eta 50.0s | loss=0.02 temp=0.07",
		10: "train: 100/100 (100%) elapsed 1m40s eta 0ms | loss=0.01 temp=0.07",
		11: "train: done 100/100 (100%) elapsed 1m41s | loss=0.01 temp=0.07",
	}
	for i, w := range want {
		if got[i] != w {
			t.Errorf("line %d = %q, want %q", i, got[i], w)
		}
	}
	for _, l := range got {
		for _, r := range l {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("control character %q in %q", r, l)
			}
		}
	}
}

func TestProgressTimeTrigger(t *testing.T) {
	clk := newFakeClock()
	var buf bytes.Buffer
	// Unknown total: only the first update, the 30 s time trigger and Done write.
	p := NewProgress("", 0, WithWriter(&buf), WithClock(clk.now), WithTextInterval(30*time.Second, 0))
	for step := 1; step <= 100; step++ {
		clk.add(time.Second)
		p.UpdateMap(step, map[string]float64{"b": 2, "a": 1})
	}
	p.Done()
	want := []string{
		"step 1 elapsed 1.0s | a=1 b=2",
		"step 31 elapsed 31.0s | a=1 b=2",
		"step 61 elapsed 1m01s | a=1 b=2",
		"step 91 elapsed 1m31s | a=1 b=2",
		"done step 100 elapsed 1m40s | a=1 b=2",
	}
	if got := lines(buf.String()); !equalLines(got, want) {
		t.Errorf("got\n%s\nwant\n%s", joinLines(got), joinLines(want))
	}
}

func TestProgressNotebook(t *testing.T) {
	f := withFakeNotebook(t)
	buf := withOutput(t)
	clk := newFakeClock()
	p := NewProgress("train <A2B>", 10, WithClock(clk.now))
	// 10 updates, 100 ms apart: with the 250 ms throttle, updates at t = 0.1 (first),
	// 0.4, 0.7, 1.0 s, then Done.
	for step := 1; step <= 10; step++ {
		clk.add(100 * time.Millisecond)
		p.Update(step, F("loss", 0.5))
	}
	p.Done()
	if buf.Len() != 0 {
		t.Errorf("text output in notebook mode: %q", buf.String())
	}
	if len(f.updates) != 1 {
		t.Fatalf("updates to %d blocks, want 1", len(f.updates))
	}
	for id, ups := range f.updates {
		if !strings.HasPrefix(id, "mmpoison_progress_") {
			t.Errorf("id %q", id)
		}
		if len(ups) != 5 {
			t.Errorf("%d updates, want 5", len(ups))
		}
		last := ups[len(ups)-1]
		for _, want := range []string{"train &lt;A2B&gt;", "10/10 (100%)", "width:100.0%", "done", "loss=<b>0.5</b>"} {
			if !strings.Contains(last, want) {
				t.Errorf("final HTML does not contain %q: %s", want, last)
			}
		}
		if !strings.Contains(ups[0], "width:10.0%") || !strings.Contains(ups[0], "eta 900ms") {
			t.Errorf("first HTML: %s", ups[0])
		}
	}
}

func TestFormatDuration(t *testing.T) {
	tests := map[time.Duration]string{
		0:                             "0ms",
		850 * time.Millisecond:        "850ms",
		12300 * time.Millisecond:      "12.3s",
		3*time.Minute + 4*time.Second: "3m04s",
		time.Hour + 2*time.Minute + 3*time.Second: "1h02m03s",
		-2 * time.Second: "-2.0s",
	}
	for d, want := range tests {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
