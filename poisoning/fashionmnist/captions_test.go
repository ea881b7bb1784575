package fashionmnist

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// testImages returns n 28×28 images of varied tone, texture and size.
func testImages(n int) []dataset.Image {
	pix, _ := fakeSet((n+NumClasses-1)/NumClasses, 28, 28, 7)
	out := make([]dataset.Image, n)
	for i := range out {
		out[i] = dataset.Image{Height: 28, Width: 28, Channels: 1, Pix: pix[i*784 : (i+1)*784]}
	}
	return out
}

// classWords returns the words naming class c: its synonyms, short name and official name ("of" excluded).
func classWords(c int) map[string]bool {
	words := map[string]bool{}
	// "T-shirt" is one word, "tshirt", in captions.
	official := strings.ReplaceAll(strings.ToLower(officialNames[c]), "-", "")
	phrases := append(slices.Clone(synonyms[c]), shortNames[c], official)
	for _, p := range phrases {
		for _, w := range strings.FieldsFunc(p, func(r rune) bool { return r < 'a' || r > 'z' }) {
			if w != "of" {
				words[w] = true
			}
		}
	}
	return words
}

func TestCaptionsWellFormed(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z]+( [a-z]+)*$`)
	vocab := map[string]bool{}
	for _, w := range Vocabulary() {
		vocab[w] = true
	}
	imgs := testImages(50)
	for _, perImage := range []int{0, 1, 5, 12} {
		capt := Captioner{Seed: 3, PerImage: perImage}
		want := perImage
		if want == 0 {
			want = DefaultCaptionsPerImage
		}
		for c := range NumClasses {
			for i, img := range imgs {
				id := fmt.Sprintf("x/%d", i)
				caps := capt.Captions(id, c, img)
				if len(caps) != want {
					t.Fatalf("PerImage %d: %d captions", perImage, len(caps))
				}
				seen := map[string]bool{}
				for _, s := range caps {
					if seen[s] {
						t.Errorf("duplicate caption %q for %s", s, id)
					}
					seen[s] = true
					if !valid.MatchString(s) {
						t.Errorf("caption %q is not lower-case words separated by single spaces", s)
					}
					for _, w := range strings.Fields(s) {
						if !vocab[w] {
							t.Errorf("word %q of %q missing from Vocabulary()", w, s)
						}
					}
				}
			}
		}
	}
}

func TestCaptionsNameOnlyTheirClass(t *testing.T) {
	imgs := testImages(60)
	capt := Captioner{Seed: 11}
	for c := range NumClasses {
		own := classWords(c)
		for i, img := range imgs {
			for _, s := range capt.Captions(fmt.Sprint(i), c, img) {
				words := strings.Fields(s)
				named := false
				for _, w := range words {
					named = named || own[w]
					for d := range NumClasses {
						if d != c && classWords(d)[w] {
							t.Errorf("caption %q of class %s uses %q of class %s", s, shortNames[c], w, shortNames[d])
						}
					}
				}
				if !named {
					t.Errorf("caption %q does not name its class %s", s, shortNames[c])
				}
			}
		}
	}
	// The other words of the generator must not name a class either.
	for _, ws := range [][]string{backgrounds, views, shots, templates, toneWords[0], toneWords[1], toneWords[2],
		textureWords[0], textureWords[1], sizeWords[0], sizeWords[1], sizeWords[2]} {
		for _, p := range ws {
			for _, w := range strings.Fields(p) {
				for d := range NumClasses {
					if classWords(d)[w] {
						t.Errorf("phrase %q uses %q of class %s", p, w, shortNames[d])
					}
				}
			}
		}
	}
}

func TestCaptionsDeterministicAndVaried(t *testing.T) {
	imgs := testImages(20)
	a, b, other := Captioner{Seed: 1}, Captioner{Seed: 1}, Captioner{Seed: 2}
	for c := range NumClasses {
		templatesUsed := map[int]bool{}
		nounsUsed := map[string]bool{}
		distinct := map[string]bool{}
		changed := 0
		for i, img := range imgs {
			id := fmt.Sprintf("fashion-mnist/train/%06d", i)
			x, tpls := a.generate(id, c, img, nil)
			if y := b.Captions(id, c, img); !slices.Equal(x, y) {
				t.Fatalf("same seed, different captions:\n%q\n%q", x, y)
			}
			if !slices.Equal(x, other.Captions(id, c, img)) {
				changed++
			}
			for _, tp := range tpls {
				templatesUsed[tp] = true
			}
			for _, s := range x {
				distinct[s] = true
				for _, syn := range synonyms[c] {
					if strings.Contains(" "+s+" ", " "+syn+" ") {
						nounsUsed[syn] = true
					}
				}
			}
		}
		if len(templatesUsed) < 3 || len(nounsUsed) < 3 || len(distinct) < 90 {
			t.Errorf("class %s: %d templates, %d synonyms, %d distinct captions over 20 images",
				shortNames[c], len(templatesUsed), len(nounsUsed), len(distinct))
		}
		if changed < 19 {
			t.Errorf("class %s: another seed changed the captions of only %d of 20 images", shortNames[c], changed)
		}
	}
	// The id matters too.
	if slices.Equal(a.Captions("p", 3, imgs[0]), a.Captions("q", 3, imgs[0])) {
		t.Error("two ids, same captions")
	}
}

func TestCaptionsAvoiding(t *testing.T) {
	capt := Captioner{Seed: 5}
	img := testImages(1)[0]
	first := capt.Captions("id", 7, img)
	if got := capt.CaptionsAvoiding("id", 7, img, nil); !slices.Equal(got, first) {
		t.Errorf("nil seen changed the captions: %q vs %q", got, first)
	}
	seen := map[string]bool{}
	for _, s := range first {
		seen[s] = true
	}
	got := capt.CaptionsAvoiding("id", 7, img, func(s string) bool { return seen[s] })
	for _, s := range got {
		if seen[s] {
			t.Errorf("CaptionsAvoiding returned the seen caption %q", s)
		}
	}
	if len(got) != DefaultCaptionsPerImage {
		t.Errorf("%d captions", len(got))
	}
	// When everything is seen it still returns distinct captions.
	all := capt.CaptionsAvoiding("id", 7, img, func(string) bool { return true })
	if len(all) != DefaultCaptionsPerImage {
		t.Errorf("%d captions when all are seen", len(all))
	}
}

func TestMeasure(t *testing.T) {
	fill := func(value uint8, frac float64, stripes bool) dataset.Image {
		p := make([]uint8, 784)
		for i := range int(frac * 784) {
			p[i] = value
			if stripes && i%2 == 1 {
				p[i] = value - 140
			}
		}
		return dataset.Image{Height: 28, Width: 28, Channels: 1, Pix: p}
	}
	tests := []struct {
		name string
		img  dataset.Image
		want attrs
	}{
		{"black", fill(0, 1, false), attrs{toneDark, texPlain, sizeSmall}},
		{"small dark plain", fill(100, 0.2, false), attrs{toneDark, texPlain, sizeSmall}},
		{"medium grey, medium size", fill(160, 0.45, false), attrs{toneMedium, texPlain, sizeMedium}},
		{"large light", fill(240, 0.9, false), attrs{toneLight, texPlain, sizeLarge}},
		{"striped", fill(230, 0.9, true), attrs{toneMedium, texPatterned, sizeLarge}},
	}
	for _, tc := range tests {
		if got := measure(tc.img); got != tc.want {
			t.Errorf("%s: measure = %+v, want %+v", tc.name, got, tc.want)
		}
	}
	// The attribute words follow the measurement.
	caps := Captioner{Seed: 1, PerImage: 16}.Captions("x", 0, fill(240, 0.9, false))
	for _, s := range caps {
		for _, w := range []string{"dark", "dim", "small", "patterned"} {
			if strings.Contains(" "+s+" ", " "+w+" ") && !strings.Contains(s, "dark backdrop") {
				t.Errorf("caption %q of a large light plain image says %q", s, w)
			}
		}
	}
}

func TestClassIndex(t *testing.T) {
	tests := []struct {
		name string
		want int
	}{
		{"tshirt", 0}, {"T-shirt/top", 0}, {" t-shirt/TOP ", 0}, {"Trouser", 1}, {"boot", 9}, {"Ankle boot", 9},
		{"bag", 8}, {"SNEAKER", 7}, {"shirt", 6}, {"sneakers", -1}, {"", -1}, {"top", -1},
	}
	for _, tc := range tests {
		got, err := ClassIndex(tc.name)
		if got != tc.want || (err != nil) != (tc.want < 0) {
			t.Errorf("ClassIndex(%q) = %d, %v; want %d", tc.name, got, err, tc.want)
		}
		if err != nil && !strings.Contains(err.Error(), `"boot" (Ankle boot)`) {
			t.Errorf("error %q does not list the valid names", err)
		}
	}
	if s, err := Canonical("Ankle boot"); s != "boot" || err != nil {
		t.Errorf("Canonical = %q, %v", s, err)
	}
	if _, err := Canonical("hat"); err == nil {
		t.Error("Canonical accepted hat")
	}
	// The short names are the dataset's class names, so dataset.ClassIndex accepts them.
	if i, err := dataset.ClassIndex(ShortNames(), "boot"); i != 9 || err != nil {
		t.Errorf("dataset.ClassIndex(ShortNames(), boot) = %d, %v", i, err)
	}
	ShortNames()[0] = "changed"
	if ShortNames()[0] != "tshirt" || OfficialNames()[9] != "Ankle boot" {
		t.Error("the name slices share memory with the package")
	}
}

func TestClassPromptsUseTheVocabulary(t *testing.T) {
	vocab := map[string]bool{}
	for _, w := range Vocabulary() {
		vocab[w] = true
	}
	prompts := ClassPrompts()
	if len(prompts) != NumClasses || prompts[1] != "a photo of a pair of trousers" || prompts[9] != "a photo of an ankle boot" {
		t.Fatalf("prompts %q", prompts)
	}
	for _, p := range prompts {
		for _, w := range strings.Fields(p) {
			if !vocab[w] {
				t.Errorf("prompt %q: word %q is not in the vocabulary", p, w)
			}
		}
	}
}
