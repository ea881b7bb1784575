package dataset

import (
	"fmt"
	"strings"
	"testing"
)

func smallDataset() *Dataset {
	return &Dataset{Name: "toy", Classes: []string{"sneaker", "bag"}, Examples: []Example{
		{ID: "0", Captions: []string{"a sneaker", "a trainer"}, Label: 0},
		{ID: "1", Captions: []string{"a bag"}, Label: 1},
		{ID: "2", Captions: []string{"a tote", "a purse", "a handbag"}, Label: 1},
	}}
}

func TestClassIndex(t *testing.T) {
	d := smallDataset()
	cases := []struct {
		name    string
		want    int
		wantErr bool
	}{{"sneaker", 0, false}, {" BAG ", 1, false}, {"umbrella", -1, true}}
	for _, c := range cases {
		got, err := d.ClassIndex(c.name)
		if got != c.want || (err != nil) != c.wantErr {
			t.Errorf("ClassIndex(%q) = %d, %v", c.name, got, err)
		}
		if err != nil && (!strings.Contains(err.Error(), "umbrella") || !strings.Contains(err.Error(), `"bag"`)) {
			t.Errorf("error %q should name the value and the valid classes", err)
		}
	}
}

func TestPairsAndRate(t *testing.T) {
	d := smallDataset()
	ps := d.Pairs()
	if len(ps.Pairs) != d.NumCaptions() || len(ps.Pairs) != 6 {
		t.Fatalf("%d pairs, want 6", len(ps.Pairs))
	}
	if p := ps.Pairs[3]; p.Image != 2 || p.CaptionOf != 2 || p.CaptionIndex != 0 || p.Caption != "a tote" || p.Poisoned {
		t.Fatalf("pair 3 = %+v", p)
	}
	c := ps.Clone()
	c.Pairs[0].Poisoned = true
	c.Pairs[0].Image = 1
	if ps.Pairs[0].Poisoned || ps.NumPoisoned() != 0 {
		t.Fatal("Clone shares its pairs with the original")
	}
	if got := c.PoisonRate(); got != 1.0/6 {
		t.Fatalf("PoisonRate = %v, want 1/6", got)
	}
	if got := d.IndicesOfClass(1); fmt.Sprint(got) != "[1 2]" {
		t.Fatalf("IndicesOfClass(1) = %v", got)
	}
	if sub := d.Subset("s", []int{2, 0}); sub.Examples[0].ID != "2" || sub.Examples[1].ID != "0" {
		t.Fatalf("Subset order wrong: %+v", sub.Examples)
	}
}

func ExampleDataset_Pairs() {
	d := smallDataset()
	ps := d.Pairs()
	fmt.Println(len(ps.Pairs), ps.Pairs[0].Caption, ps.PoisonRate())
	// Output: 6 a sneaker 0
}
