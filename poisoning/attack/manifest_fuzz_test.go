package attack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/fuzzcheck"
)

// manifestFixture returns a pair set of four 4×4 images (two cats, two dogs, one caption each) in which the
// caption of cat 0 is re-paired with dog 1, and the manifest that describes it.
func manifestFixture() (*dataset.PairSet, *Manifest) {
	d := &dataset.Dataset{Name: "fuzz", Classes: []string{"cat", "dog"}}
	for i := range 4 {
		d.Examples = append(d.Examples, dataset.Example{ID: fmt.Sprintf("img%d", i), Label: i % 2,
			Captions: []string{fmt.Sprintf("a %s, number %d", d.Classes[i%2], i)},
			Image:    dataset.Image{Height: 4, Width: 4, Channels: 1, Pix: bytes.Repeat([]byte{byte(i)}, 16)}})
	}
	ps := d.Pairs()
	ps.Pairs[0].Image, ps.Pairs[0].Poisoned = 1, true
	m := &Manifest{Version: ManifestVersion, Attack: "single-target-label", AttackID: "II", Dataset: "fuzz",
		Goals: []Goal{{Source: "cat", Target: "dog", Pairs: 1}}, Mode: Repair, Seed: 1, RequestedCount: 1,
		Rate: 0.25, TotalPairs: 4, PoisonedPairs: 1, CleanPairs: 3,
		Pairs: []PoisonedPair{{Index: 0, Goal: 0, SourcePair: 0, Caption: "a cat, number 0", CaptionImageID: "img0",
			CaptionIndex: 0, OriginalImageID: "img0", PoisonedImageID: "img1"}}}
	return ps, m
}

// FuzzReadManifest feeds arbitrary bytes to the manifest reader and verifies what it accepts against a small
// poisoned set. Properties: no panic (in reading or in Verify); errors name the file; the reader allocates at most
// a small multiple of its input; an accepted manifest writes and reads back unchanged.
func FuzzReadManifest(f *testing.F) {
	ps, m := manifestFixture()
	good, err := m.encode()
	if err != nil {
		f.Fatal(err)
	}
	if err := m.Verify(ps); err != nil {
		f.Fatalf("the fixture does not verify: %v", err)
	}
	f.Add(good)
	trig := *m
	trig.Trigger = &Trigger{Size: 2, Position: RandomPosition, Pattern: Noise, Seed: 5}
	trig.CaptionTemplates = []string{"a photo of a {class}"}
	withTrigger, _ := trig.encode()
	f.Add(withTrigger)
	f.Add(bytes.Replace(good, []byte(`"version": 1`), []byte(`"version": 2`), 1))
	f.Add(append(good, good...))
	f.Add([]byte(`{"version":1,"pairs":[{"index":-1,"goal":7}],"poisoned_pairs":1,"total_pairs":1}`))
	path := filepath.Join(f.TempDir(), "manifest.json")
	f.Fuzz(func(t *testing.T, in []byte) {
		var got *Manifest
		var err error
		fuzzcheck.Within(t, "readManifest", uint64(20*len(in)), func() { got, err = readManifest(bytes.NewReader(in), path) })
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the manifest", err)
			}
			return
		}
		_ = got.Verify(ps) // Must not panic, whatever the manifest says.
		data, err := got.encode()
		if err != nil {
			return // Text that JSON decoding made valid is always valid; only NaN rates fail here.
		}
		// Read back, it must write the same bytes again: nothing lost or changed. (Not reflect.DeepEqual: an empty
		// list in the input, omitted when written, reads back as nil, the same manifest.)
		back, err := readManifest(bytes.NewReader(data), path)
		if err != nil {
			t.Fatalf("write → read: %v\n%s", err, data)
		}
		again, err := back.encode()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("write → read → write: %v\n%s\n%s", err, data, again)
		}
	})
}

// FuzzManifestRoundTrip builds a manifest from the fuzzer's texts and numbers: WriteFile's encoding must read
// back equal, or be refused for text that is not valid UTF-8.
func FuzzManifestRoundTrip(f *testing.F) {
	f.Add("a cat, number 0", "img0", "cat", int64(1), 0.25, 3, 1)
	f.Add("\xff", "", "", int64(-1), -0.0, -5, 0)
	f.Add("café \u2028 \x00", "img/1.jpg", "dog", int64(1<<62), 1e-300, 1<<40, 3)
	f.Fuzz(func(t *testing.T, caption, imageID, class string, seed int64, rate float64, index, goal int) {
		_, m := manifestFixture()
		m.Seed, m.Rate, m.Goals[0].Source = seed, rate, class
		m.Pairs[0].Caption, m.Pairs[0].CaptionImageID, m.Pairs[0].Index, m.Pairs[0].Goal = caption, imageID, index, goal
		data, err := m.encode()
		valid := utf8.ValidString(caption) && utf8.ValidString(imageID) && utf8.ValidString(class)
		if _, jerr := json.Marshal(rate); jerr != nil {
			valid = false // NaN and infinities
		}
		if (err == nil) != valid {
			t.Fatalf("encode error %v for caption %q, image %q, class %q, rate %v", err, caption, imageID, class, rate)
		}
		if err != nil {
			return
		}
		back, err := readManifest(bytes.NewReader(data), "fuzz.json")
		if err != nil || !reflect.DeepEqual(back, m) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, m, back)
		}
	})
}

// TestHostileManifests: oversized, trailing, non-regular and non-UTF-8 manifests get one clear error naming the
// file.
func TestHostileManifests(t *testing.T) {
	dir := t.TempDir()
	_, m := manifestFixture()
	good, err := m.encode()
	if err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(dir, "huge.json")
	hf, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	if err := hf.Truncate(maxManifestBytes + 1); err != nil { // sparse: takes no disk
		t.Fatal(err)
	}
	hf.Close()
	trailing := filepath.Join(dir, "trailing.json")
	if err := os.WriteFile(trailing, append(good, `{"version": 1}`...), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ path, want string }{
		{huge, "more than the 268435456 a manifest may take"},
		{trailing, "data after the manifest's JSON object"},
		{"/dev/zero", "not a regular file"},
	}
	for _, tc := range tests {
		var err error
		fuzzcheck.Within(t, "ReadManifest", 1<<20, func() { _, err = ReadManifest(tc.path) })
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("ReadManifest(%s) = %v, want an error naming it and containing %q", tc.path, err, tc.want)
		}
	}
	m.Pairs[0].Caption = "caf\xe9"
	if err := m.WriteFile(filepath.Join(dir, "latin1.json")); err == nil || !strings.Contains(err.Error(), "pair 0 holds text that is not valid UTF-8") {
		t.Errorf("WriteFile of a Latin-1 caption: %v", err)
	}
}
