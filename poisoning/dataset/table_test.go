package dataset

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

// tableSet is a dataset whose example i has captions[i] captions.
func tableSet(captions ...int) *Dataset {
	d := &Dataset{Name: "t", Classes: []string{"a", "b"}}
	for i, n := range captions {
		ex := Example{ID: fmt.Sprint(i), Label: i % 2, Image: Image{Height: 1, Width: 1, Channels: 1, Pix: []uint8{uint8(i)}}}
		for j := range n {
			ex.Captions = append(ex.Captions, fmt.Sprintf("%d.%d", i, j))
		}
		d.Examples = append(d.Examples, ex)
	}
	return d
}

// A clean table numbers pairs as Dataset.Pairs does, reads them as PairSource, and agrees with the table of
// the pair set.
func TestCleanTable(t *testing.T) {
	for _, caps := range [][]int{{1, 1, 1}, {2, 0, 3, 1}, {5}} {
		d := tableSet(caps...)
		ps := d.Pairs()
		ct, pt := CleanTable(d.Source()), ps.Table()
		if ct.NumPairs() != len(ps.Pairs) || !ct.IsClean() || pt.IsClean() {
			t.Fatalf("%v: %d pairs, want %d", caps, ct.NumPairs(), len(ps.Pairs))
		}
		for p, pair := range ps.Pairs {
			i, j := ct.Clean(p)
			img, caption, err := ct.Pair(p)
			if i != pair.Image || j != pair.CaptionIndex || ct.CaptionOf(p) != pt.CaptionOf(p) || ct.ImageOf(p) != pt.ImageOf(p) ||
				err != nil || caption != pair.Caption || img.Pix[0] != uint8(pair.Image) {
				t.Errorf("%v: pair %d is image %d caption %d (%q, %v), want %+v", caps, p, i, j, caption, err, pair)
			}
		}
		if _, _, err := ct.Pair(ct.NumPairs()); err == nil {
			t.Errorf("%v: a pair past the end was read", caps)
		}
	}
}

// Parallel calls f once per index and returns the error of the lowest index that failed.
func TestParallel(t *testing.T) {
	for _, workers := range []int{0, 1, 3, 50} {
		seen := make([]int, 20)
		err := Parallel(len(seen), workers, func(i int) error {
			seen[i]++
			if i == 7 || i == 12 {
				return fmt.Errorf("fail %d", i)
			}
			return nil
		})
		if err == nil || err.Error() != "fail 7" || slices.ContainsFunc(seen, func(n int) bool { return n != 1 }) {
			t.Errorf("%d workers: %v, calls %v", workers, err, seen)
		}
	}
	if err := Parallel(0, 2, func(int) error { return errors.New("called") }); err != nil {
		t.Error(err)
	}
}
