package fashionmnist

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/testskip"
)

// fakeRaw returns a Raw with trainPer and testPer images of every class.
func fakeRaw(trainPer, testPer int) *Raw {
	mk := func(per int, seed uint64) Set {
		pix, labels := fakeSet(per, 28, 28, seed)
		return Set{Images: &Images{Count: len(labels), Rows: 28, Cols: 28, Pix: pix}, Labels: labels}
	}
	return &Raw{Train: mk(trainPer, 1), Test: mk(testPer, 2)}
}

func classCounts(d *dataset.Dataset) [NumClasses]int {
	var n [NumClasses]int
	for _, ex := range d.Examples {
		n[ex.Label]++
	}
	return n
}

func TestNewSplits(t *testing.T) {
	raw := fakeRaw(60, 12)
	idPattern := regexp.MustCompile(`^fashion-mnist/(train|t10k)/\d{6}$`)
	tests := []struct {
		name                 string
		cfg                  Config
		pool, train, testPer int
		wantErr              string
	}{
		{"even sizes", Config{PoolSize: 300, TrainSize: 100, TestPerClass: 5, Seed: 1}, 300, 100, 5, ""},
		{"uneven sizes", Config{PoolSize: 293, TrainSize: 117, TestPerClass: 12, Seed: 2}, 293, 117, 12, ""},
		{"everything", Config{PoolSize: 595, TrainSize: 5, TestPerClass: 1, Seed: 3}, 595, 5, 1, ""},
		{"remainders do not overflow a class", Config{PoolSize: 595, TrainSize: 5, TestPerClass: 1, Seed: 9}, 595, 5, 1, ""},
		{"pool too large", Config{PoolSize: 550, TrainSize: 60}, 0, 0, 0, "the train file has 60"},
		{"test too large", Config{PoolSize: 10, TrainSize: 10, TestPerClass: 13}, 0, 0, 0, "test needs 13 images"},
		{"negative size", Config{PoolSize: -1}, 0, 0, 0, "PoolSize is -1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSplits(raw, tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Pool.Examples) != tc.pool || len(s.Train.Examples) != tc.train ||
				len(s.Test.Examples) != tc.testPer*NumClasses {
				t.Fatalf("sizes %d/%d/%d", len(s.Pool.Examples), len(s.Train.Examples), len(s.Test.Examples))
			}
			for _, d := range []*dataset.Dataset{s.Pool, s.Train} {
				for c, n := range classCounts(d) {
					if n < len(d.Examples)/NumClasses || n > (len(d.Examples)+NumClasses-1)/NumClasses {
						t.Errorf("%s has %d images of class %d, not an even share of %d", d.Name, n, c, len(d.Examples))
					}
				}
			}
			if got := classCounts(s.Test); got != [NumClasses]int(slices.Repeat([]int{tc.testPer}, NumClasses)) {
				t.Errorf("test class counts %v", got)
			}
			ids := map[string]string{}
			trainCaptions := map[string]bool{}
			for _, d := range []*dataset.Dataset{s.Pool, s.Train, s.Test} {
				if !slices.Equal(d.Classes, ShortNames()) {
					t.Errorf("%s classes %v", d.Name, d.Classes)
				}
				prev := ""
				for _, ex := range d.Examples {
					if other, dup := ids[ex.ID]; dup {
						t.Fatalf("%s is in both %s and %s", ex.ID, other, d.Name)
					}
					ids[ex.ID] = d.Name
					if !idPattern.MatchString(ex.ID) || ex.ID <= prev {
						t.Errorf("%s: id %q malformed or out of order", d.Name, ex.ID)
					}
					prev = ex.ID
					wantFile := "/t10k/"
					set := raw.Test
					if d != s.Test {
						wantFile, set = "/train/", raw.Train
					}
					var idx int
					fmt.Sscanf(ex.ID[strings.LastIndex(ex.ID, "/")+1:], "%d", &idx)
					if !strings.Contains(ex.ID, wantFile) || int(set.Labels[idx]) != ex.Label ||
						!slices.Equal(ex.Image.Pix, set.Images.At(idx)) || ex.Image.Height != 28 || ex.Image.Channels != 1 {
						t.Errorf("%s: %s does not match the official item", d.Name, ex.ID)
					}
					if len(ex.Captions) != DefaultCaptionsPerImage {
						t.Errorf("%s has %d captions", ex.ID, len(ex.Captions))
					}
					for _, c := range ex.Captions {
						if d == s.Test && trainCaptions[c] {
							t.Errorf("test caption %q also captions a pool or train image", c)
						}
						if d != s.Test {
							trainCaptions[c] = true
						}
					}
				}
			}
			// Images are copies: changing the raw data does not change the splits.
			if &s.Pool.Examples[0].Image.Pix[0] == &raw.Train.Images.Pix[0] {
				t.Error("split shares pixels with raw")
			}
		})
	}
}

func TestNewSplitsSeeded(t *testing.T) {
	raw := fakeRaw(40, 10)
	cfg := Config{PoolSize: 100, TrainSize: 50, TestPerClass: 3, Seed: 7}
	a, err := NewSplits(raw, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewSplits(raw, cfg)
	cfg.Seed = 8
	c, _ := NewSplits(raw, cfg)
	for _, pair := range []struct{ x, y *dataset.Dataset }{{a.Pool, b.Pool}, {a.Train, b.Train}, {a.Test, b.Test}} {
		for i := range pair.x.Examples {
			ex, ey := pair.x.Examples[i], pair.y.Examples[i]
			if ex.ID != ey.ID || !slices.Equal(ex.Captions, ey.Captions) {
				t.Fatalf("%s: same seed, different example %d: %s vs %s", pair.x.Name, i, ex.ID, ey.ID)
			}
		}
	}
	ids := func(d *dataset.Dataset) []string {
		var out []string
		for _, ex := range d.Examples {
			out = append(out, ex.ID)
		}
		return out
	}
	if slices.Equal(ids(a.Train), ids(c.Train)) || slices.Equal(ids(a.Test), ids(c.Test)) {
		t.Error("another seed gave the same splits")
	}
}

func TestLoadFromDir(t *testing.T) {
	files, sums := fakeFiles(30, 5)
	dir := t.TempDir()
	writeFiles(t, dir, files)
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"verified with the given checksums", Config{Dir: dir, Checksums: sums}, ""},
		{"unverified", Config{Dir: dir, SkipVerify: true}, ""},
		{"official checksums reject other data", Config{Dir: dir}, "checksum mismatch"},
		{"missing dir", Config{Dir: dir + "/missing", SkipVerify: true}, dir + "/missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.PoolSize, tc.cfg.TrainSize, tc.cfg.TestPerClass = 200, 50, 5
			s, err := Load(tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Dir != dir || len(s.Pool.Examples) != 200 || len(s.Train.Examples) != 50 || len(s.Test.Examples) != 50 {
				t.Errorf("Load = dir %s, sizes %d/%d/%d", s.Dir, len(s.Pool.Examples), len(s.Train.Examples), len(s.Test.Examples))
			}
		})
	}
}

// TestDebianData loads the real data installed by Debian's dataset-fashion-mnist package.
func TestDebianData(t *testing.T) {
	if _, err := os.Stat(DefaultSystemDir); err != nil {
		testskip.Skip(t, fmt.Sprintf("%s absent: apt-get install dataset-fashion-mnist (%v)", DefaultSystemDir, err))
	}
	start := time.Now()
	s, err := Load(Config{Download: DownloadNever, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Load with default sizes took %v", time.Since(start))
	if s.Dir != DefaultSystemDir {
		t.Errorf("Load used %s", s.Dir)
	}
	if len(s.Pool.Examples) != DefaultPoolSize || len(s.Train.Examples) != DefaultTrainSize ||
		len(s.Test.Examples) != DefaultTestPerClass*NumClasses {
		t.Errorf("sizes %d/%d/%d", len(s.Pool.Examples), len(s.Train.Examples), len(s.Test.Examples))
	}
	// The installed files match the official checksums: Debian recompressed them, so it is the content MD5 that
	// matches (a wrong RawMD5 in OfficialChecksums would fail here).
	raw, err := ReadDir(DefaultSystemDir, OfficialChecksums())
	if err != nil {
		t.Fatal(err)
	}
	if raw.Train.Images.Count != 60000 || raw.Test.Images.Count != 10000 || raw.Train.Images.Rows != 28 || raw.Train.Images.Cols != 28 {
		t.Errorf("official sets: %d and %d images of %d×%d", raw.Train.Images.Count, raw.Test.Images.Count,
			raw.Train.Images.Rows, raw.Train.Images.Cols)
	}
	// The first official training and test items are ankle boots.
	if raw.Train.Labels[0] != 9 || raw.Test.Labels[0] != 9 {
		t.Errorf("first labels %d, %d; want 9 (Ankle boot)", raw.Train.Labels[0], raw.Test.Labels[0])
	}
	for c, n := range byClass(raw.Train.Labels) {
		if len(n) != 6000 {
			t.Errorf("class %d has %d training images", c, len(n))
		}
	}
}

// TestHeldOutSplit: the held-out split is disjoint from pool and train, class-stratified, and does not change
// them.
func TestHeldOutSplit(t *testing.T) {
	raw := fakeRaw(60, 12)
	base := Config{PoolSize: 300, TrainSize: 100, TestPerClass: 5, Seed: 4}
	without, err := NewSplits(raw, base)
	if err != nil {
		t.Fatal(err)
	}
	withHeld := base
	withHeld.HeldOutSize = 103
	s, err := NewSplits(raw, withHeld)
	if err != nil {
		t.Fatal(err)
	}
	if without.HeldOut != nil || s.HeldOut == nil || len(s.HeldOut.Examples) != 103 {
		t.Fatalf("held-out split sizes wrong: %v / %v", without.HeldOut, s.HeldOut)
	}
	seen := map[string]bool{}
	for _, d := range []*dataset.Dataset{s.Pool, s.Train} {
		for _, ex := range d.Examples {
			seen[ex.ID] = true
		}
	}
	for _, ex := range s.HeldOut.Examples {
		if seen[ex.ID] {
			t.Fatalf("held-out image %s is also in pool or train", ex.ID)
		}
	}
	for c, n := range classCounts(s.HeldOut) {
		if n < 10 || n > 11 {
			t.Errorf("class %d has %d held-out images, want 10 or 11", c, n)
		}
	}
	for i := range s.Train.Examples {
		if s.Train.Examples[i].ID != without.Train.Examples[i].ID {
			t.Fatal("asking for a held-out split changed the train split")
		}
	}
	tooMany := base
	tooMany.HeldOutSize = 300
	if _, err := NewSplits(raw, tooMany); err == nil || !strings.Contains(err.Error(), "held-out (300)") {
		t.Fatalf("oversized held-out split: %v", err)
	}
}
