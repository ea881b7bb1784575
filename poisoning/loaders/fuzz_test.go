package loaders

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/fuzzcheck"
)

// jsonBound is the most a JSON annotation file of n bytes may make a loader allocate: the decoder's buffer (see
// maxJSONValue) plus what the entries built from the file take, a small multiple of its size.
func jsonBound(n int) uint64 { return 4*maxJSONValue + 64*uint64(n) }

// checkEntries fails t when an index has entries whose IDs or captions are not valid UTF-8, or whose labels do
// not index its classes.
func checkEntries(t *testing.T, ix *Index) {
	t.Helper()
	for _, e := range ix.Entries() {
		if !utf8.ValidString(e.ID) || !utf8.ValidString(strings.Join(e.Captions, "")) {
			t.Fatalf("entry %q has text that is not valid UTF-8: %q", e.ID, e.Captions)
		}
		if e.Label != dataset.NoLabel && (e.Label < 0 || e.Label >= len(ix.Classes())) {
			t.Fatalf("entry %q has label %d of %d classes", e.ID, e.Label, len(ix.Classes()))
		}
	}
}

// namesOne fails t unless err names one of the files.
func namesOne(t *testing.T, err error, files ...string) {
	t.Helper()
	for _, f := range files {
		if strings.Contains(err.Error(), f) {
			return
		}
	}
	t.Fatalf("error %q names none of %q", err, files)
}

// expandShardsRecursive is ExpandShards as it was written before the total bound: the reference the fuzzer
// compares with on small patterns.
func expandShardsRecursive(pattern string) ([]string, bool) {
	open := strings.IndexByte(pattern, '{')
	if open < 0 {
		return []string{pattern}, !strings.ContainsRune(pattern, '}')
	}
	closing := strings.IndexByte(pattern[open:], '}')
	if closing < 0 {
		return nil, false
	}
	closing += open
	lo, hi, ok := strings.Cut(pattern[open+1:closing], "..")
	a, errA := strconv.Atoi(lo)
	b, errB := strconv.Atoi(hi)
	if !ok || errA != nil || errB != nil || a < 0 || b < a || b-a > 100 {
		return nil, false
	}
	rest, ok := expandShardsRecursive(pattern[closing+1:])
	var out []string
	for n := a; n <= b; n++ {
		for _, r := range rest {
			out = append(out, pattern[:open]+fmt.Sprintf("%0*d", len(lo), n)+r)
		}
	}
	return out, ok
}

// FuzzExpandShards: no panic; never more than a million names or 128 MiB of them; the names are those of the
// straightforward recursive expansion wherever that one is cheap; errors quote the pattern.
func FuzzExpandShards(f *testing.F) {
	for _, p := range []string{"s-{000..002}.tar", "a/{0..1}/b-{08..10}.tar", "plain.tar", "s-{3..1}.tar", "x}{0..1}",
		"s-{0..999}-{0..999}-{0..999}.tar", "{{0..1}}", "{0..0}{1..1}{2..2}", "s-{+1..2}"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, pattern string) {
		var got []string
		var err error
		fuzzcheck.Within(t, "ExpandShards", 3*maxShardNameBytes, func() { got, err = ExpandShards(pattern) })
		if err != nil {
			if !strings.Contains(err.Error(), quotePattern(pattern)) {
				t.Fatalf("error %q does not quote the pattern", err)
			}
			return
		}
		if len(got) == 0 || len(got) > maxShards {
			t.Fatalf("%d names", len(got))
		}
		if want, ok := expandShardsRecursive(pattern); ok && len(want) <= 10_000 && !slices.Equal(got, want) {
			t.Fatalf("ExpandShards(%q) = %q, want %q", pattern, got, want)
		}
	})
}

// FuzzCOCO feeds arbitrary captions and instances files to LoadCOCO. Properties: no panic; the memory bound of
// the JSON readers; errors name one of the two files; entries have valid labels and UTF-8 text.
func FuzzCOCO(f *testing.F) {
	root := f.TempDir()
	writeCOCOSplit(f, root, "train2014", []miniImage{{id: 9, captions: []string{"A dog.", "Two dogs."}, cats: []string{"dog", "cat"}},
		{id: 25, captions: []string{"A cat."}}}, 3)
	caps, err := os.ReadFile(filepath.Join(root, "annotations", "captions_train2014.json"))
	if err != nil {
		f.Fatal(err)
	}
	inst, err := os.ReadFile(filepath.Join(root, "annotations", "instances_train2014.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(caps, inst)
	f.Add([]byte(`{"images":[{"id":1,"file_name":"a.jpg"}],"annotations":[{"image_id":1,"caption":"x","id":2}],"x":[[[{}]]]}`),
		[]byte(`{"categories":[{"id":1,"name":"c"}],"annotations":[{"image_id":1,"category_id":1,"id":3}]}`))
	f.Add([]byte(`{"images":[{"id":1,"file_name":"../a.jpg"}],"annotations":[]}`), []byte(`{`))
	dir := f.TempDir()
	capPath := filepath.Join(dir, "annotations", "captions_s.json")
	insPath := filepath.Join(dir, "annotations", "instances_s.json")
	f.Fuzz(func(t *testing.T, captions, instances []byte) {
		writeFile(t, capPath, captions)
		writeFile(t, insPath, instances)
		var ix *Index
		var err error
		fuzzcheck.Within(t, "LoadCOCO", jsonBound(len(captions)+len(instances)), func() {
			ix, err = LoadCOCO(COCOConfig{Root: dir, Splits: []string{"s"}})
		})
		if err != nil {
			namesOne(t, err, capPath, insPath)
			return
		}
		checkEntries(t, ix)
	})
}

// FuzzKarpathy feeds an arbitrary file to LoadKarpathy: no panic, the JSON readers' memory bound, errors naming
// the file, valid entries.
func FuzzKarpathy(f *testing.F) {
	dir := f.TempDir()
	jsonPath, _ := miniFlickr(f, dir)
	seed, err := os.ReadFile(jsonPath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"images":[{"filename":"a.jpg","split":"train","sentences":[{"raw":" a\u00e9 "}]}],"dataset":"x"}`))
	f.Add([]byte(`{"images":[{"filename":"a.jpg","filepath":"../..","split":"train","sentences":[]}]}`))
	path := filepath.Join(f.TempDir(), "dataset_fuzz.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		writeFile(t, path, data)
		var ix *Index
		var err error
		fuzzcheck.Within(t, "LoadKarpathy", jsonBound(len(data)), func() {
			ix, err = LoadKarpathy(KarpathyConfig{File: path, ImageDir: dir})
		})
		if err != nil {
			namesOne(t, err, path)
			return
		}
		checkEntries(t, ix)
	})
}

// FuzzPASCALSentences feeds an arbitrary sentence file to LoadPASCAL: no panic; errors name the file; every
// caption is a trimmed, non-empty, valid UTF-8 line of it.
func FuzzPASCALSentences(f *testing.F) {
	f.Add([]byte(" A cat, picture 0.\n\nA cat on a mat.\r\n"))
	f.Add([]byte("\n\n \t\n"))
	f.Add([]byte("caf\xe9 au lait\n"))
	root := f.TempDir()
	writeFile(f, filepath.Join(root, "dataset", "cat", "a.jpg"), nil)
	path := filepath.Join(root, "sentence", "cat", "a.txt")
	f.Fuzz(func(t *testing.T, data []byte) {
		writeFile(t, path, data)
		ix, err := LoadPASCAL(PASCALConfig{Root: root})
		if err != nil {
			namesOne(t, err, path)
			return
		}
		checkEntries(t, ix)
		for _, c := range ix.Entries()[0].Captions {
			if c == "" || c != strings.TrimSpace(c) {
				t.Fatalf("caption %q", c)
			}
		}
	})
}

// FuzzCSV feeds an arbitrary CSV (or TSV) file to OpenCSV and Index: no panic; at most a few rows' bound of
// memory plus a multiple of the file; errors name the file; valid entries.
func FuzzCSV(f *testing.F) {
	f.Add([]byte("filepath,title,label\na.jpg,A dog.,dog\na.jpg,\"Another, dog\",1\nb.png,\"A \"\"cat\"\"\",cat\n"), false)
	f.Add([]byte("\xef\xbb\xbffilepath\ttitle\ta.jpg\tx\n"), true)
	f.Add([]byte("filepath,title\n,empty\n"), false)
	f.Add([]byte("filepath,title\na.jpg,\"unterminated\n"), false)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte, tab bool) {
		path := filepath.Join(dir, "fuzz.csv")
		if tab {
			path = filepath.Join(dir, "fuzz.tsv")
		}
		writeFile(t, path, data)
		var ix *Index
		var err error
		fuzzcheck.Within(t, "reading a CSV", 8*maxCSVRecord+64*uint64(len(data)), func() {
			var c *CSV
			if c, err = OpenCSV(CSVConfig{Path: path, LabelKey: "label", Classes: []string{"cat", "dog"}}); err != nil {
				if c, err = OpenCSV(CSVConfig{Path: path}); err != nil {
					return
				}
			}
			ix, err = c.Index()
		})
		if err != nil {
			namesOne(t, err, path)
			return
		}
		checkEntries(t, ix)
	})
}

// FuzzWebDataset feeds an arbitrary shard (tar, possibly gzip-compressed) to the WebDataset reader, decoding the
// images of the samples too (of at most 2^16 pixels: imageprep's FuzzDecode covers larger ones). Properties: no
// panic; errors name the shard; a sample holds at most its bounded members; examples have valid UTF-8 IDs and
// captions.
func FuzzWebDataset(f *testing.F) {
	// Small seeds (tiny images): the fuzzer minimizes every new input it finds, in time that grows with its size.
	small := tarBytes(f, []member{
		{"000000.jpg", encodeImage(f, "jpg", 2, 2, 0)},
		{"000000.txt", []byte("A dog.\n")},
		{"000000.cls", []byte("1")},
		{"000001.png", encodeImage(f, "png", 2, 2, 1)},
		{"000001.json", []byte(`{"caption": "A cat.", "label": "cat"}`)},
		{"part/000002.jpeg", encodeImage(f, "gray", 2, 2, 2)},
		{"part/000002.json", []byte(`{"captions": ["One.", " Two. "], "label": 1}`)},
	})
	f.Add(small)
	f.Add(gzipBytes(f, small))
	f.Add(tarBytes(f, []member{{"../evil.txt", []byte("x")}}))
	f.Add(tarBytes(f, []member{{"k.jpg", nil}, {"k.txt", []byte("caf\xe9")}, {"k.cls", []byte("7")}, {"k.json", []byte("{")}}))
	const path = "fuzz-000.tar" // named in errors; read from memory (readShard), not from disk
	w := &WebDataset{cfg: WebDatasetConfig{Name: "fuzz", Classes: []string{"cat", "dog", "bird"}, MaxMemberBytes: 1 << 20}}
	f.Fuzz(func(t *testing.T, data []byte) {
		items := func(yield func(item, error) bool) { w.readShard(path, bytes.NewReader(data), yield) }
		fuzzcheck.Within(t, "reading a shard", 8<<20+64*uint64(len(data)), func() {
			for ex, err := range decodeAll(items, Options{ImageSize: 8, MaxPixels: 1 << 16}) {
				if err != nil {
					namesOne(t, err, path)
					var exErr *ExampleError
					if errors.As(err, &exErr) {
						continue
					}
					return
				}
				if !utf8.ValidString(ex.ID) || !utf8.ValidString(strings.Join(ex.Captions, "")) {
					t.Fatalf("example %q has text that is not valid UTF-8: %q", ex.ID, ex.Captions)
				}
			}
		})
	})
}

// TestHostileAnnotations: each hostile input is refused (or, for a huge value under an unknown key, skipped) with
// memory far below its size, and the error names the file.
func TestHostileAnnotations(t *testing.T) {
	dir := t.TempDir()
	good := `"images":[{"id":1,"file_name":"a.jpg"}],"annotations":[{"image_id":1,"caption":"x","id":2}]`
	wide := strings.Repeat(`[`+strings.Repeat(`{"k":[1,2,3]},`, 100)+`0],`, 15_000) // 20 MB, 3 levels deep
	tests := []struct {
		name    string
		content string
		want    string // "" when the file must load
		bound   uint64
	}{
		{"20 MB value under an unknown key", `{"extra":[` + wide + `0],` + good + `}`, "", 8 << 20},
		{"nesting 1e6 deep under an unknown key", `{"extra":` + strings.Repeat("[", 1_000_000) + `,` + good + `}`,
			"nested deeper than 64 levels", 4 << 20},
		{"20 MB caption", `{"images":[{"id":1,"file_name":"a.jpg"}],"annotations":[{"image_id":1,"id":2,"caption":"` +
			strings.Repeat("x", 20<<20) + `"}]}`, "a JSON value longer than 16777216 bytes", 4 * maxJSONValue},
		{"20 MB string under an unknown key", `{"extra":"` + strings.Repeat("x", 20<<20) + `",` + good + `}`,
			"a JSON value longer than 16777216 bytes", 4 * maxJSONValue},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "annotations", "captions_s.json")
			writeFile(t, path, []byte(tc.content))
			var err error
			fuzzcheck.PeakWithin(t, "LoadCOCO", tc.bound, func() {
				_, err = LoadCOCO(COCOConfig{Root: dir, Splits: []string{"s"}, Unlabelled: true})
			})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %v, want one naming %s and containing %q", err, path, tc.want)
			}
		})
	}
	kpath := filepath.Join(dir, "dataset_k.json")
	writeFile(t, kpath, []byte(`{"images":[{"filename":"a.jpg","split":"train","sentences":[{"raw":"`+strings.Repeat("y", 17<<20)+`"}]}]}`))
	var err error
	fuzzcheck.PeakWithin(t, "LoadKarpathy", 4*maxJSONValue, func() { _, err = LoadKarpathy(KarpathyConfig{File: kpath}) })
	if err == nil || !strings.Contains(err.Error(), "a JSON value longer than") || !strings.Contains(err.Error(), kpath) {
		t.Errorf("Karpathy file with a 17 MB sentence: %v", err)
	}
}

// TestHostileShardPatterns: shard patterns are bounded in total, not per range, before any name is built.
func TestHostileShardPatterns(t *testing.T) {
	tests := []struct {
		patterns []string
		want     string
	}{
		{[]string{"s-{0..999}-{0..999}-{0..999}-{0..999}.tar"}, "expands to more than a million shards in all"},
		{[]string{"s-{0..999999}.tar", "t-{0..1}.tar"}, "the shard patterns expand to more than 1000000 shards in all"},
		{[]string{strings.Repeat("d/", 10_000) + "{0..99999}.tar"}, "more than 134217728 bytes of names"},
	}
	for _, tc := range tests {
		var err error
		fuzzcheck.PeakWithin(t, "OpenWebDataset", 200<<20, func() {
			_, err = OpenWebDataset(WebDatasetConfig{Shards: tc.patterns})
		})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.60q: error %v, want one containing %q", tc.patterns, err, tc.want)
		}
	}
	var err error
	fuzzcheck.PeakWithin(t, "ExpandShards of 10^12", 1<<20, func() { _, err = ExpandShards("s-{0..999999}-{0..999999}.tar") })
	if err == nil {
		t.Error("10^12 shards accepted")
	}
}

// TestHostileRowsAndMembers: a CSV row without end, a sentence line of 100 KiB, a WebDataset sample with a
// 2 MiB caption and one with 100,000 members are refused or read in bounded memory, naming the file.
func TestHostileRowsAndMembers(t *testing.T) {
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "rows.csv")
	writeFile(t, csvPath, []byte("filepath,title\na.jpg,\""+strings.Repeat("x", 8<<20)))
	var err error
	fuzzcheck.PeakWithin(t, "reading a CSV", 8*maxCSVRecord, func() {
		var c *CSV
		if c, err = OpenCSV(CSVConfig{Path: csvPath}); err == nil {
			_, err = c.Index()
		}
	})
	if err == nil || !strings.Contains(err.Error(), "a row longer than 1048576 bytes") || !strings.Contains(err.Error(), csvPath) {
		t.Errorf("CSV with an 8 MiB row: %v", err)
	}

	root := t.TempDir()
	writeFile(t, filepath.Join(root, "dataset", "cat", "a.jpg"), nil)
	sentPath := filepath.Join(root, "sentence", "cat", "a.txt")
	writeFile(t, sentPath, bytes.Repeat([]byte("z"), 100<<10))
	if _, err := LoadPASCAL(PASCALConfig{Root: root}); err == nil || !strings.Contains(err.Error(), "a sentence line longer than 65536 bytes") || !strings.Contains(err.Error(), sentPath) {
		t.Errorf("PASCAL line of 100 KiB: %v", err)
	}

	many := []member{{"k.jpg", encodeImage(t, "jpg", 8, 8, 1)}, {"k.txt", []byte("a caption")}}
	for i := range 100_000 {
		many = append(many, member{fmt.Sprintf("k.extra%d", i), nil})
	}
	shards := map[string][]member{
		"big-caption.tar": {{"k.jpg", encodeImage(t, "jpg", 8, 8, 1)}, {"k.txt", bytes.Repeat([]byte("w"), 2<<20)}},
		"many.tar":        many,
	}
	for name, members := range shards {
		path := filepath.Join(dir, name)
		writeFile(t, path, tarBytes(t, members))
		w, err := OpenWebDataset(WebDatasetConfig{Shards: []string{path}})
		if err != nil {
			t.Fatal(err)
		}
		var errs []error
		fuzzcheck.PeakWithin(t, "reading "+name, 16<<20, func() { _, errs = collectAll(t, w, Options{}) })
		switch name {
		case "big-caption.tar":
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), "above the limit of 1048576 for a txt member") {
				t.Errorf("%s: errors %v", name, errs)
			}
		case "many.tar":
			if len(errs) != 0 {
				t.Errorf("%s: errors %v", name, errs)
			}
		}
	}
}

// TestHostileImageOptions: an absurd image size is refused before any image is read; a PNG whose header claims
// 8000×8000 16-bit RGBA pixels is an *ExampleError naming its file, not gigabytes of memory.
func TestHostileImageOptions(t *testing.T) {
	dir := t.TempDir()
	bomb := encodeImage(t, "png", 4, 4, 1)
	bomb[24], bomb[25] = 16, 6 // 16-bit RGBA
	for i, v := range []uint32{8000, 8000} {
		bomb[16+4*i], bomb[17+4*i], bomb[18+4*i], bomb[19+4*i] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	}
	crc := crc32.ChecksumIEEE(bomb[12:29])
	bomb[29], bomb[30], bomb[31], bomb[32] = byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc)
	path := filepath.Join(dir, "bomb.png")
	writeFile(t, path, bomb)
	writeFile(t, filepath.Join(dir, "list.csv"), []byte("filepath,title\nbomb.png,a bomb\n"))
	c, err := OpenCSV(CSVConfig{Path: filepath.Join(dir, "list.csv")})
	if err != nil {
		t.Fatal(err)
	}
	_, errs := collectAll(t, c, Options{ImageSize: 100_000})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "Options.ImageSize is 100000") {
		t.Errorf("ImageSize 100000: errors %v", errs)
	}
	fuzzcheck.PeakWithin(t, "collecting a PNG bomb", 1<<20, func() { _, errs = collectAll(t, c, Options{ImageSize: 224}) })
	var exErr *ExampleError
	if len(errs) != 1 || !errors.As(errs[0], &exErr) || !strings.Contains(errs[0].Error(), "needs about") || !strings.Contains(errs[0].Error(), path) {
		t.Errorf("PNG bomb: errors %v", errs)
	}
}
