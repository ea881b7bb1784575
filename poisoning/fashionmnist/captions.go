package fashionmnist

import (
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// DefaultCaptionsPerImage is the number of captions per image, as in Flickr30k, COCO and PASCAL-sentences.
const DefaultCaptionsPerImage = 5

// Captioner writes varied captions for Fashion-MNIST images. Captions are lower-case words separated by single
// spaces (letters only), never name another class (every class has its own synonyms, and no other word of the
// generator is a synonym), and depend only on Seed, the image id, the label and the pixels.
//
// Each caption fills one of several sentence templates with a class synonym ("trainer", "running shoe", …),
// attribute words measured on the pixels (tone from the mean foreground intensity, plain/patterned from its
// spread, size from the foreground area) and distractor phrases (backgrounds, views, kinds of shot). The
// captions of one image use distinct templates.
type Captioner struct {
	// Seed selects the wording; the same seed and image always give the same captions.
	Seed int64
	// PerImage is the number of captions per image; 0 means DefaultCaptionsPerImage.
	PerImage int
}

// Captions returns the captions of the image with the given id and label (0 to NumClasses−1; it panics on
// another label). PerImage up to a few hundred is always met; the sentences are distinct.
func (c Captioner) Captions(id string, label int, img dataset.Image) []string {
	caps, _ := c.generate(id, label, img, nil)
	return caps
}

// CaptionsAvoiding is Captions, except that it redraws any caption for which seen returns true (for example a
// training caption, so that test captions are unseen sentences). It gives up avoiding after many draws, which does
// not happen with the default templates unless seen covers nearly all sentences of the class. With a nil seen it
// equals Captions.
func (c Captioner) CaptionsAvoiding(id string, label int, img dataset.Image, seen func(string) bool) []string {
	caps, _ := c.generate(id, label, img, seen)
	return caps
}

// maxDraws bounds the candidate sentences generate tries per image before it stops avoiding seen captions.
const maxDraws = 2000

// generate returns the captions and the template index of each.
func (c Captioner) generate(id string, label int, img dataset.Image, seen func(string) bool) ([]string, []int) {
	if label < 0 || label >= NumClasses {
		panic("fashionmnist: caption label out of range")
	}
	n := c.PerImage
	if n <= 0 {
		n = DefaultCaptionsPerImage
	}
	h := fnv.New64a()
	h.Write([]byte(id))
	rng := rand.New(rand.NewPCG(uint64(c.Seed), h.Sum64()))
	attr := measure(img)
	perm := rng.Perm(len(templates))
	caps := make([]string, 0, n)
	tpls := make([]int, 0, n)
	for draw := 0; len(caps) < n && draw < 10*maxDraws; draw++ {
		t := perm[draw%len(perm)]
		s := render(templates[t], label, attr, rng)
		if slices.Contains(caps, s) {
			continue
		}
		if seen != nil && draw < maxDraws && seen(s) {
			continue
		}
		caps = append(caps, s)
		tpls = append(tpls, t)
	}
	return caps, tpls
}

// Level indices of the pixel attributes.
const (
	toneDark = iota
	toneMedium
	toneLight
)
const (
	texPlain = iota
	texPatterned
)
const (
	sizeSmall = iota
	sizeMedium
	sizeLarge
)

// attrs are the attribute levels measured on an image.
type attrs struct{ tone, texture, size int }

// foreground is the intensity above which a pixel belongs to the object (the background is black).
const foreground = 25

// measure computes the attribute levels. The thresholds are about the tertiles (tone, size) and the median
// (texture) of the official training images, so each level covers a fair share of the data.
func measure(img dataset.Image) attrs {
	var n, sum, sumSq float64
	for _, v := range img.Pix {
		if v > foreground {
			x := float64(v)
			n++
			sum += x
			sumSq += x * x
		}
	}
	var a attrs
	if n == 0 || len(img.Pix) == 0 {
		return attrs{toneDark, texPlain, sizeSmall}
	}
	mean := sum / n
	variance := sumSq/n - mean*mean
	frac := n / float64(len(img.Pix))
	switch {
	case mean < 144:
		a.tone = toneDark
	case mean < 183:
		a.tone = toneMedium
	default:
		a.tone = toneLight
	}
	if variance < 47*47 {
		a.texture = texPlain
	} else {
		a.texture = texPatterned
	}
	switch {
	case frac < 0.365:
		a.size = sizeSmall
	case frac < 0.54:
		a.size = sizeMedium
	default:
		a.size = sizeLarge
	}
	return a
}

// synonyms are the phrases that name each class in captions, indexed by label. No word occurs in two classes,
// and none is used by the templates, attributes or distractors ("of" in "pair of" aside).
var synonyms = [NumClasses][]string{
	{"tshirt", "tee", "top", "tank top", "crew neck tee"},
	{"pair of trousers", "pair of pants", "pair of slacks", "pair of jeans", "pair of leggings"},
	{"pullover", "sweater", "jumper", "knit sweater", "sweatshirt"},
	{"dress", "gown", "frock", "sundress", "summer dress"},
	{"coat", "jacket", "overcoat", "parka", "winter coat"},
	{"sandal", "beach sandal", "flip flop", "strappy sandal", "slide"},
	{"shirt", "blouse", "button down shirt", "collared shirt", "flannel shirt"},
	{"sneaker", "trainer", "running shoe", "athletic shoe", "canvas sneaker"},
	{"bag", "handbag", "purse", "tote", "shoulder bag"},
	{"ankle boot", "boot", "bootie", "chelsea boot", "heeled boot"},
}

// Attribute words by level, and distractor phrases.
var (
	toneWords = [3][]string{
		{"dark", "dark grey", "dim", "deep grey"},
		{"grey", "medium grey", "mid grey", "greyish"},
		{"light", "light grey", "pale", "bright"},
	}
	textureWords = [2][]string{
		{"plain", "simple", "solid", "smooth"},
		{"patterned", "textured", "detailed", "printed"},
	}
	sizeWords = [3][]string{
		{"small", "compact", "little"},
		{"medium sized", "regular", "average sized"},
		{"large", "big", "bulky"},
	}
	backgrounds = []string{
		"on a black background", "against a dark backdrop", "in grayscale",
		"isolated on black", "in black and white", "on an empty background",
	}
	views = []string{
		"seen from the side", "seen from the front", "seen from above",
		"shown flat", "in a centered shot", "laid out neatly",
	}
	shots = []string{"product photo", "catalog picture", "store listing", "studio shot", "shop thumbnail"}
)

// templates are the sentence patterns; {noun}, {tone}, {tex}, {size}, {bg}, {view} and {shot} are slots. The
// article "a" becomes "an" before a vowel.
var templates = []string{
	"a photo of a {tone} {tex} {noun} {bg}",
	"this is a {tone} {noun} {bg} {view}",
	"an image showing a {size} {tone} {noun} {view}",
	"a {size} {tex} {noun} {bg}",
	"{shot} of a {tone} {noun} {view}",
	"a {tex} {noun} in {tone} tones {bg}",
	"close up of a {tex} {tone} {noun} {view}",
	"someone is selling this {size} {tone} {noun} {bg}",
	"a low resolution {shot} showing a {size} {tex} {noun}",
	"the {noun} {view} looks {tone} and {tex}",
	"a {tone} {noun} {view} {bg}",
	"{shot} {bg} featuring a {size} {noun}",
	"a grayscale picture of a {size} {tex} {noun} {view}",
	"an example of a {size} {tone} {noun} in a {shot}",
	"my new {tex} {tone} {noun} {view}",
	"a {tone} {tex} {noun} for sale {bg}",
}

// render fills a template's slots for the class and attributes.
func render(tpl string, label int, a attrs, rng *rand.Rand) string {
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	var words []string
	for _, tok := range strings.Fields(tpl) {
		switch tok {
		case "{noun}":
			tok = pick(synonyms[label])
		case "{tone}":
			tok = pick(toneWords[a.tone])
		case "{tex}":
			tok = pick(textureWords[a.texture])
		case "{size}":
			tok = pick(sizeWords[a.size])
		case "{bg}":
			tok = pick(backgrounds)
		case "{view}":
			tok = pick(views)
		case "{shot}":
			tok = pick(shots)
		}
		words = append(words, strings.Fields(tok)...)
	}
	for i := 0; i+1 < len(words); i++ {
		if words[i] == "a" && strings.ContainsRune("aeiou", rune(words[i+1][0])) {
			words[i] = "an"
		}
	}
	return strings.Join(words, " ")
}

// Vocabulary returns every word the Captioner can produce, sorted. It does not depend on the seed, so a word-level
// tokenizer built from it fits captions of any seed and split.
func Vocabulary() []string {
	set := map[string]bool{"a": true, "an": true}
	add := func(phrases ...string) {
		for _, p := range phrases {
			for _, w := range strings.Fields(p) {
				if !strings.HasPrefix(w, "{") {
					set[w] = true
				}
			}
		}
	}
	for i := range NumClasses {
		add(synonyms[i]...)
	}
	for _, ws := range toneWords {
		add(ws...)
	}
	for _, ws := range textureWords {
		add(ws...)
	}
	for _, ws := range sizeWords {
		add(ws...)
	}
	add(backgrounds...)
	add(views...)
	add(shots...)
	add(templates...)
	out := make([]string, 0, len(set))
	for w := range set {
		out = append(out, w)
	}
	slices.Sort(out)
	return out
}

// ClassPrompts returns one zero-shot prompt per class, in label order ("a photo of a pair of trousers", ...),
// written with the caption vocabulary so that the word-level tokenizer knows every word.
func ClassPrompts() []string {
	out := make([]string, NumClasses)
	for label, names := range synonyms {
		article := "a"
		if strings.ContainsRune("aeiou", rune(names[0][0])) {
			article = "an"
		}
		out[label] = "a photo of " + article + " " + names[0]
	}
	return out
}
