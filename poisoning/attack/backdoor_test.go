package attack

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// pixelSet returns a pair set like fashionSet(perClass, caps) whose images are h×w×ch with seeded random pixels,
// so that triggers fit and every image differs.
func pixelSet(perClass, caps, h, w, ch int) *dataset.PairSet {
	ps := fashionSet(perClass, caps)
	rng := rand.New(rand.NewPCG(1, 2))
	ps.Images = slices.Clone(ps.Images)
	for i := range ps.Images {
		pix := make([]uint8, h*w*ch)
		for k := range pix {
			pix[k] = uint8(rng.Uint32())
		}
		ps.Images[i].Image = dataset.Image{Height: h, Width: w, Channels: ch, Pix: pix}
	}
	return ps
}

// grey returns an h×w×ch image with every byte v.
func grey(h, w, ch int, v uint8) dataset.Image {
	pix := make([]uint8, h*w*ch)
	for i := range pix {
		pix[i] = v
	}
	return dataset.Image{Height: h, Width: w, Channels: ch, Pix: pix}
}

// render draws a one-channel image as rows of digits: '.' for 7, '#' for 255, '0' for 0, '?' otherwise.
func render(img dataset.Image) string {
	var b strings.Builder
	for y := range img.Height {
		for x := range img.Width {
			switch img.Pix[(y*img.Width+x)*img.Channels] {
			case 7:
				b.WriteByte('.')
			case 255:
				b.WriteByte('#')
			case 0:
				b.WriteByte('0')
			default:
				b.WriteByte('?')
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func TestApplyTriggerCorners(t *testing.T) {
	tests := []struct {
		trig Trigger
		want string
	}{
		{Trigger{Size: 2, Position: TopLeft}, "#0...\n0#...\n.....\n.....\n"},
		{Trigger{Size: 2, Position: TopRight}, "...#0\n...0#\n.....\n.....\n"},
		{Trigger{Size: 3, Position: BottomLeft}, ".....\n#0#..\n0#0..\n#0#..\n"},
		{Trigger{Size: 2, Position: BottomRight}, ".....\n.....\n...#0\n...0#\n"},
		{Trigger{Size: 4}, ".#0#0\n.0#0#\n.#0#0\n.0#0#\n"}, // defaults: checkerboard, bottom-right
		{Trigger{}, ".#0#0\n.0#0#\n.#0#0\n.0#0#\n"},        // default size 4
		{Trigger{Size: 4, Position: TopLeft, Seed: 99}, "#0#0.\n0#0#.\n#0#0.\n0#0#.\n"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%+v", tc.trig), func(t *testing.T) {
			img := grey(4, 5, 1, 7)
			before := slices.Clone(img.Pix)
			got := ApplyTrigger(img, tc.trig)
			if s := render(got); s != tc.want {
				t.Errorf("got\n%swant\n%s", s, tc.want)
			}
			if !slices.Equal(img.Pix, before) {
				t.Error("ApplyTrigger modified its input")
			}
			if got.Height != 4 || got.Width != 5 || got.Channels != 1 {
				t.Errorf("shape %d×%d×%d", got.Height, got.Width, got.Channels)
			}
		})
	}
	// Every channel of an RGB image carries the pattern.
	rgb := ApplyTrigger(grey(3, 3, 3, 7), Trigger{Size: 2, Position: TopLeft})
	if !slices.Equal(rgb.Pix[:6], []uint8{255, 255, 255, 0, 0, 0}) || !slices.Equal(rgb.Pix[9:15], []uint8{0, 0, 0, 255, 255, 255}) ||
		rgb.Pix[6] != 7 || rgb.Pix[18] != 7 {
		t.Errorf("RGB checkerboard %v", rgb.Pix)
	}
}

func TestApplyTriggerNoise(t *testing.T) {
	img := grey(8, 8, 3, 7)
	patchOf := func(trig Trigger) []uint8 {
		out := ApplyTrigger(img, trig)
		x, y := trig.Place(img)
		var p []uint8
		s := trig.Resolved().Size
		for r := y; r < y+s; r++ {
			p = append(p, out.Pix[(r*8+x)*3:(r*8+x+s)*3]...)
		}
		// Outside the patch nothing changed.
		changed := 0
		for i := range out.Pix {
			if out.Pix[i] != 7 {
				changed++
			}
		}
		if changed > s*s*3 {
			t.Errorf("%d bytes changed by a %d×%d patch", changed, s, s)
		}
		return p
	}
	a := patchOf(Trigger{Size: 3, Pattern: Noise, Seed: 1})
	b := patchOf(Trigger{Size: 3, Pattern: Noise, Seed: 1, Position: TopLeft})
	c := patchOf(Trigger{Size: 3, Pattern: Noise, Seed: 2})
	if !slices.Equal(a, b) {
		t.Error("the same seed gave different noise patterns at different places")
	}
	if slices.Equal(a, c) {
		t.Error("seeds 1 and 2 gave the same noise pattern")
	}
	distinct := map[uint8]bool{}
	for _, v := range a {
		distinct[v] = true
	}
	if len(distinct) < 15 { // 27 uniform bytes
		t.Errorf("noise pattern has only %d distinct values: %v", len(distinct), a)
	}
}

func TestTriggerPlaceRandom(t *testing.T) {
	ps := pixelSet(20, 1, 10, 12, 1) // 200 different images
	trig := Trigger{Size: 3, Position: RandomPosition, Seed: 5}
	seen := map[[2]int]int{}
	moved := 0
	for _, ex := range ps.Images {
		x, y := trig.Place(ex.Image)
		if x < 0 || y < 0 || x > 12-3 || y > 10-3 {
			t.Fatalf("place (%d, %d) outside a 10×12 image", x, y)
		}
		if x2, y2 := trig.Place(ex.Image); x2 != x || y2 != y {
			t.Fatalf("same image placed at (%d, %d) and (%d, %d)", x, y, x2, y2)
		}
		// A copy of the image (another backing array) gets the same place.
		cp := ex.Image
		cp.Pix = slices.Clone(cp.Pix)
		if x2, y2 := trig.Place(cp); x2 != x || y2 != y {
			t.Fatal("a copy of the image got another place")
		}
		if x2, y2 := (Trigger{Size: 3, Position: RandomPosition, Seed: 6}).Place(ex.Image); x2 != x || y2 != y {
			moved++
		}
		seen[[2]int{x, y}]++
	}
	// 10 × 8 = 80 places; 200 uniform draws cover most of them.
	if len(seen) < 50 {
		t.Errorf("200 images used only %d of 80 places", len(seen))
	}
	if moved < 150 {
		t.Errorf("changing the trigger seed moved only %d of 200 patches", moved)
	}
	// The stamped patch is where Place says.
	ex := ps.Images[3].Image
	x, y := trig.Place(ex)
	out := ApplyTrigger(ex, trig)
	if out.Pix[y*12+x] != 255 || out.Pix[y*12+x+1] != 0 || out.Pix[(y+1)*12+x] != 0 {
		t.Errorf("no checkerboard at (%d, %d)", x, y)
	}
}

func TestTriggerErrors(t *testing.T) {
	img := grey(4, 6, 1, 7)
	tests := []struct {
		trig    Trigger
		img     dataset.Image
		wantErr string
	}{
		{Trigger{Size: 5}, img, "a 5×5 trigger does not fit in a 4×6 image"},
		{Trigger{Size: -1}, img, "trigger size -1 is negative"},
		{Trigger{Position: "middle"}, img, `unknown trigger position "middle"`},
		{Trigger{Pattern: "stripes"}, img, `unknown trigger pattern "stripes"`},
		{Trigger{Size: 2}, dataset.Image{Height: 4, Width: 6, Channels: 1, Pix: make([]uint8, 23)}, "has 23 pixel bytes"},
		{Trigger{Size: 2}, dataset.Image{}, "image of 0×0×0"},
	}
	for _, tc := range tests {
		err := tc.trig.Fits(tc.img)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%+v: Fits = %v, want %q", tc.trig, err, tc.wantErr)
		}
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), tc.wantErr) {
					t.Errorf("%+v: ApplyTrigger panicked with %v, want %q", tc.trig, r, tc.wantErr)
				}
			}()
			ApplyTrigger(tc.img, tc.trig)
		}()
	}
	if err := (Trigger{Size: 4, Position: RandomPosition, Pattern: Noise}).Fits(img); err != nil {
		t.Errorf("a 4×4 trigger in a 4×6 image: %v", err)
	}
}

// checkBackdoor checks what Backdoor.Apply guarantees about out and m for input in.
func checkBackdoor(t *testing.T, a Backdoor, in, out *dataset.PairSet, m *Manifest, wantN int) {
	t.Helper()
	N := len(in.Pairs)
	dst, _ := dataset.ClassIndex(in.Classes, a.Target)
	trig := a.Trigger.Resolved()
	if out.NumPoisoned() != wantN || len(out.Pairs) != N+wantN || len(out.Images) != len(in.Images)+wantN {
		t.Fatalf("%d poisoned of %d pairs, %d images; want %d of %d, %d", out.NumPoisoned(), len(out.Pairs), len(out.Images),
			wantN, N+wantN, len(in.Images)+wantN)
	}
	if a.Rate > 0 && math.Abs(out.PoisonRate()-a.Rate) > 1/float64(len(out.Pairs)) {
		t.Errorf("φ achieved %v, requested %v", out.PoisonRate(), a.Rate)
	}
	if !reflect.DeepEqual(out.Pairs[:N], in.Pairs) || !reflect.DeepEqual(out.Images[:len(in.Images)], in.Images) {
		t.Error("clean pairs or pool images changed")
	}
	if m.Attack != BackdoorName || m.AttackID != BackdoorID || m.Mode != Inject || m.Trigger == nil || *m.Trigger != trig ||
		len(m.Goals) != 1 || m.Goals[0] != (Goal{Target: in.Classes[dst], Pairs: wantN}) || m.PoisonedPairs != wantN ||
		m.TotalPairs != N+wantN || m.Rate != out.PoisonRate() || len(m.Pairs) != wantN || m.TargetImageID != "" {
		t.Fatalf("manifest header %+v", *m)
	}
	carriers := map[string]bool{}
	captions := map[string]int{}
	for k, e := range m.Pairs {
		p := out.Pairs[e.Index]
		if e.Index != N+k || !p.Poisoned || p.Image != len(in.Images)+k {
			t.Fatalf("pair %d: index %d, image %d, poisoned %v", k, e.Index, p.Image, p.Poisoned)
		}
		img := out.Images[p.Image]
		var orig dataset.Example
		for _, ex := range in.Images {
			if ex.ID == e.OriginalImageID {
				orig = ex
			}
		}
		if orig.ID == "" || orig.Label == dst || img.Label != orig.Label || img.ID != orig.ID+"+trigger" ||
			e.PoisonedImageID != img.ID {
			t.Errorf("pair %d: triggered %s (label %d) from %s (label %d)", k, img.ID, img.Label, orig.ID, orig.Label)
		}
		if carriers[orig.ID] {
			t.Errorf("image %s triggered twice", orig.ID)
		}
		carriers[orig.ID] = true
		if want := ApplyTrigger(orig.Image, trig); !reflect.DeepEqual(img.Image, want) {
			t.Errorf("pair %d: pool image is not the original with the trigger", k)
		}
		if x, y := trig.Place(orig.Image); x != e.TriggerX || y != e.TriggerY {
			t.Errorf("pair %d: trigger at (%d, %d), manifest (%d, %d)", k, x, y, e.TriggerX, e.TriggerY)
		}
		if len(img.Captions) != 1 || img.Captions[0] != p.Caption || e.Caption != p.Caption {
			t.Errorf("pair %d: triggered image captions %q, pair caption %q", k, img.Captions, p.Caption)
		}
		if len(a.CaptionTemplates) == 0 {
			ca := in.Images[p.CaptionOf]
			if ca.Label != dst || ca.Captions[p.CaptionIndex] != p.Caption || e.CaptionImageID != ca.ID ||
				in.Pairs[e.SourcePair].Caption != p.Caption {
				t.Errorf("pair %d: caption %q of %s (label %d)", k, p.Caption, ca.ID, ca.Label)
			}
		} else {
			ok := false
			for _, tpl := range a.CaptionTemplates {
				ok = ok || strings.ReplaceAll(tpl, "{class}", in.Classes[dst]) == p.Caption
			}
			if !ok || strings.Contains(p.Caption, "{class}") || p.CaptionOf != p.Image || p.CaptionIndex != 0 ||
				e.SourcePair != -1 || e.CaptionImageID != img.ID {
				t.Errorf("pair %d: template caption %q, caption of %d, source pair %d", k, p.Caption, p.CaptionOf, e.SourcePair)
			}
		}
		captions[p.Caption]++
	}
	if len(a.CaptionTemplates) == 0 {
		avail := len(classImages(in.Table(), dst)) * len(in.Images[0].Captions)
		if want := min(wantN, avail); len(captions) != want {
			t.Errorf("%d distinct captions over %d pairs, want %d", len(captions), wantN, want)
		}
	}
	if err := m.Verify(out); err != nil {
		t.Errorf("manifest does not match its own output: %v", err)
	}
	if err := m.Verify(in); err == nil {
		t.Error("manifest matches the clean input")
	}
}

func TestBackdoorApply(t *testing.T) {
	// pixelSet(10, 2, 8, 8, 1): 100 images (10 per class), 200 pairs.
	tests := []struct {
		name   string
		attack Backdoor
		wantN  int
	}{
		{"dataset captions 5%", Backdoor{Target: "bag", Rate: 0.05, Seed: 1}, 11},    // round(10.53)
		{"dataset captions reused", Backdoor{Target: "bag", Count: 30, Seed: 2}, 30}, // 20 bag captions
		{"templates count", Backdoor{Target: "Bag", Count: 7, Seed: 3, CaptionTemplates: []string{"a photo of a {class}", "my {class}, a {class}"}}, 7},
		{"verbatim template", Backdoor{Target: "boot", Rate: 0.1, CaptionTemplates: []string{"a boot"}}, 22},
		{"random noise trigger", Backdoor{Target: "coat", Count: 20, Seed: 4,
			Trigger: Trigger{Size: 3, Position: RandomPosition, Pattern: Noise, Seed: 9}}, 20},
		{"top-left 8×8 covers the image", Backdoor{Target: "coat", Count: 5, Trigger: Trigger{Size: 8, Position: TopLeft}}, 5},
		{"explicit inject", Backdoor{Target: "tshirt", Count: 90, Mode: Inject}, 90},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := pixelSet(10, 2, 8, 8, 1)
			out, m := mustApply(t, tc.attack, in)
			checkBackdoor(t, tc.attack, in, out, m, tc.wantN)
			again, m2 := mustApply(t, tc.attack, in)
			if !reflect.DeepEqual(out, again) || !reflect.DeepEqual(m, m2) {
				t.Error("same seed, different outputs")
			}
		})
	}
}

func TestBackdoorSeed(t *testing.T) {
	in := pixelSet(20, 5, 6, 6, 1)
	base := Backdoor{Target: "bag", Count: 8, Seed: 1, Trigger: Trigger{Size: 2}}
	_, m1, _ := base.Apply(in)
	other := base
	other.Seed = 2
	_, m2, _ := other.Apply(in)
	if reflect.DeepEqual(m1.Pairs, m2.Pairs) {
		t.Error("seeds 1 and 2 triggered the same images with the same captions")
	}
	// The trigger's seed changes the pattern, not which images and captions are drawn.
	noise := base
	noise.Trigger = Trigger{Size: 2, Pattern: Noise, Seed: 1}
	noise2 := noise
	noise2.Trigger.Seed = 2
	outA, ma, _ := noise.Apply(in)
	outB, mb, _ := noise2.Apply(in)
	for k := range ma.Pairs {
		if ma.Pairs[k].OriginalImageID != m1.Pairs[k].OriginalImageID || ma.Pairs[k].Caption != mb.Pairs[k].Caption {
			t.Fatalf("pair %d: the trigger changed the draw", k)
		}
	}
	if reflect.DeepEqual(outA.Images[len(in.Images):], outB.Images[len(in.Images):]) {
		t.Error("trigger seeds 1 and 2 stamped the same patches")
	}
	// Carriers come from every non-target class, not the first images.
	classes := map[int]bool{}
	for seed := range int64(10) {
		out, _, err := Backdoor{Target: "bag", Count: 5, Seed: seed, Trigger: Trigger{Size: 2}}.Apply(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, ex := range out.Images[len(in.Images):] {
			classes[ex.Label] = true
		}
	}
	if len(classes) != 9 || classes[8] {
		t.Errorf("50 carriers came from classes %v, want the 9 non-bag classes", classes)
	}
}

func TestBackdoorErrors(t *testing.T) {
	in := pixelSet(10, 2, 8, 8, 1) // 200 pairs, 100 images
	noCaptions := deepCopy(in)
	for i := range noCaptions.Images {
		if noCaptions.Images[i].Label == 8 {
			noCaptions.Images[i].Captions = nil
		}
	}
	noCaptions.Pairs = slices.DeleteFunc(noCaptions.Pairs, func(p dataset.Pair) bool { return noCaptions.Images[p.Image].Label == 8 })
	small := deepCopy(in)
	small.Images[37].Image = grey(3, 8, 1, 0)
	tests := []struct {
		name    string
		in      *dataset.PairSet
		attack  Backdoor
		wantErr []string
	}{
		{"unknown target", in, Backdoor{Target: "sack", Rate: 0.1}, []string{"target class", `"sack"`, `"bag"`}},
		{"target without images", in, Backdoor{Target: "hat", Rate: 0.1}, []string{`class "hat" has no images in "fashion/train"`}},
		{"repair mode", in, Backdoor{Target: "bag", Rate: 0.1, Mode: Repair}, []string{`only "inject" mode`, `not "repair"`}},
		{"unknown mode", in, Backdoor{Target: "bag", Rate: 0.1, Mode: "swap"}, []string{`unknown mode "swap"`}},
		{"rate 0", in, Backdoor{Target: "bag"}, []string{"φ = 0 is outside (0, 1)"}},
		{"rate 1", in, Backdoor{Target: "bag", Rate: 1}, []string{"φ = 1 is outside"}},
		{"rate NaN", in, Backdoor{Target: "bag", Rate: math.NaN()}, []string{"φ = NaN is outside"}},
		{"rate and count", in, Backdoor{Target: "bag", Rate: 0.1, Count: 2}, []string{"not both"}},
		{"zero-pair rate", in, Backdoor{Target: "bag", Rate: 0.002},
			[]string{"0.002 gives 0 poisoned pairs over 200 pairs in inject mode", "one poisoned pair is φ = 0.00497512",
				"φ = 0.002 needs a training set of at least 250 pairs"}},
		{"more pairs than carriers", in, Backdoor{Target: "bag", Count: 91}, []string{"91 poisoned pairs need 91 distinct images outside class \"bag\"", "only 90"}},
		{"trigger too large", in, Backdoor{Target: "bag", Count: 3, Trigger: Trigger{Size: 9}}, []string{"9×9 trigger does not fit in a 8×8 image", "fashion/train/"}},
		{"trigger too large for one image", small, Backdoor{Target: "bag", Count: 90, Trigger: Trigger{Size: 4}},
			[]string{"4×4 trigger does not fit in a 3×8 image", `"fashion/train/0037"`}},
		{"bad trigger position", in, Backdoor{Target: "bag", Count: 3, Trigger: Trigger{Position: "centre"}}, []string{`unknown trigger position "centre"`}},
		{"bad trigger pattern", in, Backdoor{Target: "bag", Count: 3, Trigger: Trigger{Pattern: "dots"}}, []string{`unknown trigger pattern "dots"`}},
		{"empty template", in, Backdoor{Target: "bag", Count: 3, CaptionTemplates: []string{"a {class}", " "}}, []string{"caption template 1 is empty"}},
		{"no target captions", noCaptions, Backdoor{Target: "bag", Count: 3}, []string{`class "bag" has no clean captioned pairs`, "CaptionTemplates"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mustFail(t, tc.attack, tc.in, tc.wantErr)
		})
	}
	if _, _, err := (Backdoor{Target: "bag", Rate: 0.1}).Apply(nil); err == nil {
		t.Error("Apply(nil) succeeded")
	}
	// Templates need no target captions.
	if _, _, err := (Backdoor{Target: "bag", Count: 3, CaptionTemplates: []string{"a {class}"}}).Apply(noCaptions); err != nil {
		t.Errorf("templates without target captions: %v", err)
	}
}

func TestBackdoorManifest(t *testing.T) {
	in := pixelSet(10, 2, 8, 8, 3)
	for _, a := range []Backdoor{
		{Target: "bag", Count: 6, Seed: 1, Trigger: Trigger{Size: 3, Position: RandomPosition, Pattern: Noise, Seed: 4}},
		{Target: "bag", Count: 6, Seed: 1, CaptionTemplates: []string{"a photo of a {class}", "{class}"}},
	} {
		out, m := mustApply(t, a, in)
		path := filepath.Join(t.TempDir(), "manifest.json")
		if err := m.WriteFile(path); err != nil {
			t.Fatal(err)
		}
		back, err := ReadManifest(path)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, m) {
			t.Fatalf("round trip changed the manifest:\n%+v\n%+v", back, m)
		}
		if err := back.Verify(out); err != nil {
			t.Fatalf("Verify after round trip: %v", err)
		}
		bad := *m
		bad.Trigger = &Trigger{Size: 2, Position: "middle"}
		badPath := filepath.Join(t.TempDir(), "bad.json")
		if err := bad.WriteFile(badPath); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadManifest(badPath); err == nil || !strings.Contains(err.Error(), badPath) ||
			!strings.Contains(err.Error(), `unknown trigger position "middle"`) {
			t.Errorf("ReadManifest of an invalid trigger: %v", err)
		}
		data, _ := json.Marshal(m)
		var generic map[string]any
		json.Unmarshal(data, &generic)
		trig, _ := generic["trigger"].(map[string]any)
		for _, key := range []string{"size", "position", "pattern", "seed"} {
			if _, ok := trig[key]; !ok {
				t.Errorf("trigger JSON lacks %q: %s", key, data)
			}
		}
		if _, ok := generic["caption_templates"]; ok != (len(a.CaptionTemplates) > 0) {
			t.Errorf("caption_templates present = %v with %d templates", ok, len(a.CaptionTemplates))
		}

		first := m.Pairs[0]
		img := out.Pairs[first.Index].Image
		tamper := []struct {
			name    string
			data    func(ps *dataset.PairSet)
			man     func(m *Manifest)
			wantErr string
		}{
			{"pixel changed", func(ps *dataset.PairSet) {
				ps.Images = slices.Clone(ps.Images)
				ps.Images[img].Image.Pix = slices.Clone(ps.Images[img].Image.Pix)
				ps.Images[img].Image.Pix[0] ^= 1
			}, nil, "is not fashion/train/"},
			{"label changed", func(ps *dataset.PairSet) {
				ps.Images = slices.Clone(ps.Images)
				ps.Images[img].Label = 8
			}, nil, "poisoned image " + first.PoisonedImageID + ` has class "bag"`},
			{"other trigger size", nil, func(m *Manifest) { tr := *m.Trigger; tr.Size = 2; m.Trigger = &tr }, first.PoisonedImageID},
			{"other trigger pattern", nil, func(m *Manifest) {
				tr := *m.Trigger
				tr.Pattern = map[TriggerPattern]TriggerPattern{Noise: Checkerboard, Checkerboard: Noise}[tr.Pattern]
				m.Trigger = &tr
			}, first.PoisonedImageID + " is not " + first.OriginalImageID + " with the manifest's trigger"},
			{"other place", nil, func(m *Manifest) {
				m.Pairs = slices.Clone(m.Pairs)
				m.Pairs[0].TriggerX = 5 - m.Pairs[0].TriggerX
			}, "manifest says ("},
			{"other target", nil, func(m *Manifest) { m.Goals = []Goal{{Target: "coat", Pairs: 6}} }, "coat"},
			{"invalid trigger", nil, func(m *Manifest) { tr := *m.Trigger; tr.Pattern = "dots"; m.Trigger = &tr }, `unknown trigger pattern "dots"`},
		}
		if len(a.CaptionTemplates) > 0 {
			tamper = append(tamper, struct {
				name    string
				data    func(ps *dataset.PairSet)
				man     func(m *Manifest)
				wantErr string
			}{"other templates", nil, func(m *Manifest) { m.CaptionTemplates = []string{"a {class} in a box"} }, "none of the manifest's 1 templates"})
		}
		for _, tc := range tamper {
			ps, mm := out.Clone(), *back
			if tc.data != nil {
				tc.data(ps)
			}
			if tc.man != nil {
				tc.man(&mm)
			}
			if err := mm.Verify(ps); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: Verify = %v, want an error containing %q", tc.name, err, tc.wantErr)
			}
		}
		if err := back.Verify(out); err != nil {
			t.Errorf("tampering with copies changed the originals: %v", err)
		}
		// The trigger's seed matters exactly when the pattern or the place is random.
		reseeded := *back
		tr := *back.Trigger
		tr.Seed++
		reseeded.Trigger = &tr
		if err := reseeded.Verify(out); (err != nil) != (tr.Pattern == Noise || tr.Position == RandomPosition) {
			t.Errorf("trigger %+v with another seed: Verify = %v", tr, err)
		}
	}
}

func TestTriggerTestSet(t *testing.T) {
	ps := pixelSet(3, 2, 6, 6, 1)
	test := &dataset.Dataset{Name: "fashion/test", Classes: ps.Classes, Examples: slices.Clone(ps.Images)}
	test.Examples[0].Label = dataset.NoLabel
	_, m, err := Backdoor{Target: "bag", Count: 2, Trigger: Trigger{Size: 2, Position: RandomPosition, Seed: 3}}.Apply(ps)
	if err != nil {
		t.Fatal(err)
	}
	triggered, clean, err := TriggerTestSet(test, m)
	if err != nil {
		t.Fatal(err)
	}
	// 30 examples: 3 bags and the unlabelled one left out.
	if len(clean.Examples) != 26 || len(triggered.Examples) != 26 || clean.Name != "fashion/test" || triggered.Name != "fashion/test+trigger" {
		t.Fatalf("%d clean (%s), %d triggered (%s)", len(clean.Examples), clean.Name, len(triggered.Examples), triggered.Name)
	}
	for i, ex := range clean.Examples {
		tr := triggered.Examples[i]
		if ex.Label == 8 || ex.Label == dataset.NoLabel || tr.ID != ex.ID+"+trigger" || tr.Label != ex.Label ||
			!slices.Equal(tr.Captions, ex.Captions) || !reflect.DeepEqual(tr.Image, ApplyTrigger(ex.Image, *m.Trigger)) {
			t.Errorf("example %d: clean %s (label %d), triggered %s", i, ex.ID, ex.Label, tr.ID)
		}
		if reflect.DeepEqual(tr.Image, ex.Image) {
			t.Errorf("example %d: trigger changed nothing", i)
		}
	}
	if reflect.DeepEqual(test.Examples[1].Image, triggered.Examples[0].Image) {
		t.Error("TriggerTestSet modified the test set")
	}
	_, m2, _ := SingleLabel{Source: "sneaker", Target: "boot", Count: 2}.Apply(ps)
	tooBig := *m
	tooBig.Trigger = &Trigger{Size: 7}
	otherClasses := &dataset.Dataset{Name: "other", Classes: []string{"cat", "dog"}, Examples: test.Examples}
	onlyBags := test.Subset("bags", test.IndicesOfClass(8))
	for _, tc := range []struct {
		test    *dataset.Dataset
		m       *Manifest
		wantErr string
	}{
		{test, m2, "has no backdoor trigger"},
		{test, &tooBig, "7×7 trigger does not fit"},
		{otherClasses, m, `backdoor target class in "other"`},
		{onlyBags, m, `"bags" has no labelled images outside the target class "bag"`},
		{nil, m, "needs a test set"},
	} {
		if _, _, err := TriggerTestSet(tc.test, tc.m); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("TriggerTestSet = %v, want %q", err, tc.wantErr)
		}
	}
}
