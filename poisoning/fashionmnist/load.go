package fashionmnist

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// Default split sizes, suited to a tiny CLIP trained on two CPU cores in minutes.
const (
	DefaultPoolSize     = 10000
	DefaultTrainSize    = 2000
	DefaultTestPerClass = 25
)

// Config says where to find Fashion-MNIST and how to cut it. The zero value is usable: default sizes, seed 0,
// the usual search order (see Locate) and official checksums.
type Config struct {
	// PoolSize is the number of images of the clean pre-training pool (0 means DefaultPoolSize).
	PoolSize int
	// TrainSize is the number of images of the fine-tuning train split (0 means DefaultTrainSize).
	TrainSize int
	// HeldOutSize is the number of images of an extra clean split, disjoint from Pool and Train (0: none), for
	// defenses that fine-tune on clean data the victim never saw. Pool and Train do not depend on it.
	HeldOutSize int
	// TestPerClass is the number of test images per class (0 means DefaultTestPerClass).
	TestPerClass int
	// CaptionsPerImage is the number of captions per image (0 means DefaultCaptionsPerImage).
	CaptionsPerImage int
	// Seed drives the splits and the captions.
	Seed int64

	// Dir, if set, is the only directory searched; it must hold the four files.
	Dir string
	// SystemDir is searched after Dir (empty means DefaultSystemDir) unless SkipSystemDir is set.
	SystemDir     string
	SkipSystemDir bool
	// CacheDir is searched next and receives downloads (empty means DefaultCacheDir()).
	CacheDir string
	// Download says whether the files may be downloaded into CacheDir (default DownloadIfMissing).
	Download DownloadPolicy
	// BaseURL is where downloads come from (empty means DefaultBaseURL).
	BaseURL string
	// HTTPClient performs downloads (nil means http.DefaultClient).
	HTTPClient *http.Client
	// Checksums are the known digests of the four files (nil means OfficialChecksums()). Downloads are always
	// verified; files found on disk are verified unless SkipVerify is set.
	Checksums  Checksums
	SkipVerify bool
}

// withDefaults returns cfg with zero sizes replaced by the defaults, or an error for negative sizes.
func (cfg Config) withDefaults() (Config, error) {
	for _, f := range []struct {
		name string
		v    *int
		def  int
	}{
		{"PoolSize", &cfg.PoolSize, DefaultPoolSize},
		{"TrainSize", &cfg.TrainSize, DefaultTrainSize},
		{"TestPerClass", &cfg.TestPerClass, DefaultTestPerClass},
		{"CaptionsPerImage", &cfg.CaptionsPerImage, DefaultCaptionsPerImage},
	} {
		if *f.v < 0 {
			return cfg, fmt.Errorf("fashionmnist: %s is %d; want a positive number (0 means the default %d)", f.name, *f.v, f.def)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if cfg.HeldOutSize < 0 {
		return cfg, fmt.Errorf("fashionmnist: HeldOutSize is %d; want 0 (none) or more", cfg.HeldOutSize)
	}
	if cfg.Checksums == nil {
		cfg.Checksums = OfficialChecksums()
	}
	return cfg, nil
}

// Splits are the three datasets mmpoison trains and evaluates on (dataset.Splits). Their Classes are
// ShortNames(); example IDs are "fashion-mnist/train/NNNNNN" or "fashion-mnist/t10k/NNNNNN" with the index in the
// official file, so an image keeps its ID (and, for a given seed, its captions) whatever split it lands in. Pool
// and Train come from the official train file and are disjoint; Test holds TestPerClass images of every class
// from the official t10k file; HeldOut holds Config.HeldOutSize images (nil when 0), disjoint from Pool and
// Train; Dir is the directory the files were read from (empty for NewSplits).
type Splits = dataset.Splits

// Load locates the files (see Locate), reads and verifies them (ReadDir) and cuts the splits (NewSplits).
func Load(cfg Config) (*Splits, error) {
	return LoadContext(context.Background(), cfg)
}

// LoadContext is Load with a context that cancels downloads.
func LoadContext(ctx context.Context, cfg Config) (*Splits, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	dir, err := Locate(ctx, cfg)
	if err != nil {
		return nil, err
	}
	sums := cfg.Checksums
	if cfg.SkipVerify {
		sums = nil
	}
	raw, err := ReadDir(dir, sums)
	if err != nil {
		return nil, err
	}
	s, err := NewSplits(raw, cfg)
	if err != nil {
		return nil, err
	}
	s.Dir = dir
	return s, nil
}

// NewSplits cuts seeded, class-stratified splits from raw and captions them; only the size, caption and seed
// fields of cfg matter. Pool and Train draw PoolSize and TrainSize images from raw.Train (disjoint; every class
// gets an equal share, the remainder spread over classes chosen by the seed); Test draws TestPerClass images of
// every class from raw.Test. Within a split examples are in official-index order. Test captions are redrawn where
// they would repeat a Pool or Train caption, so every test caption is an unseen sentence. The images are copied,
// so raw can be dropped afterwards.
func NewSplits(raw *Raw, cfg Config) (*Splits, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if raw.Train.Images.Count == 0 || raw.Test.Images.Count == 0 {
		return nil, fmt.Errorf("fashionmnist: empty image set")
	}
	trainByClass := byClass(raw.Train.Labels)
	testByClass := byClass(raw.Test.Labels)

	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5eed_5911_7000_0001))
	for c := range trainByClass {
		rng.Shuffle(len(trainByClass[c]), func(i, j int) {
			trainByClass[c][i], trainByClass[c][j] = trainByClass[c][j], trainByClass[c][i]
		})
	}
	order := rng.Perm(NumClasses)
	poolN := share(cfg.PoolSize, order, 0)
	trainN := share(cfg.TrainSize, order, cfg.PoolSize%NumClasses)
	heldN := share(cfg.HeldOutSize, order, (cfg.PoolSize+cfg.TrainSize)%NumClasses)
	var poolIdx, trainIdx, heldIdx []int
	for c := range NumClasses {
		have, need := len(trainByClass[c]), poolN[c]+trainN[c]
		if have < need+heldN[c] {
			return nil, fmt.Errorf("fashionmnist: pool (%d), train (%d) and held-out (%d) need %d images of class %q but the train file has %d",
				cfg.PoolSize, cfg.TrainSize, cfg.HeldOutSize, need+heldN[c], shortNames[c], have)
		}
		poolIdx = append(poolIdx, trainByClass[c][:poolN[c]]...)
		trainIdx = append(trainIdx, trainByClass[c][poolN[c]:need]...)
		heldIdx = append(heldIdx, trainByClass[c][need:need+heldN[c]]...)
	}

	testRng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5eed_5911_7000_0002))
	var testIdx []int
	for c := range NumClasses {
		idx := testByClass[c]
		if len(idx) < cfg.TestPerClass {
			return nil, fmt.Errorf("fashionmnist: test needs %d images of class %q but the t10k file has %d",
				cfg.TestPerClass, shortNames[c], len(idx))
		}
		testRng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		testIdx = append(testIdx, idx[:cfg.TestPerClass]...)
	}

	capt := Captioner{Seed: cfg.Seed, PerImage: cfg.CaptionsPerImage}
	s := &Splits{
		Pool:  build("fashion-mnist/pool", "train", raw.Train, poolIdx, capt, nil),
		Train: build("fashion-mnist/train", "train", raw.Train, trainIdx, capt, nil),
	}
	if len(heldIdx) > 0 {
		s.HeldOut = build("fashion-mnist/held-out", "train", raw.Train, heldIdx, capt, nil)
	}
	seen := make(map[string]bool, s.Pool.NumCaptions()+s.Train.NumCaptions())
	for _, d := range []*dataset.Dataset{s.Pool, s.Train} {
		for _, ex := range d.Examples {
			for _, c := range ex.Captions {
				seen[c] = true
			}
		}
	}
	s.Test = build("fashion-mnist/test", "t10k", raw.Test, testIdx, capt, func(c string) bool { return seen[c] })
	return s, nil
}

// byClass returns the indices of each label, ascending.
func byClass(labels []uint8) [NumClasses][]int {
	var out [NumClasses][]int
	for i, l := range labels {
		out[l] = append(out[l], i)
	}
	return out
}

// share splits n over the classes: n/NumClasses each, and one more for n%NumClasses classes taken from order
// starting at position start (cyclically), so that two consecutive shares stay as even as possible.
func share(n int, order []int, start int) [NumClasses]int {
	var out [NumClasses]int
	for c := range out {
		out[c] = n / NumClasses
	}
	for k := range n % NumClasses {
		out[order[(start+k)%NumClasses]]++
	}
	return out
}

// build copies the selected images (sorted by index) into a new dataset and captions them.
func build(name, file string, set Set, idx []int, capt Captioner, seen func(string) bool) *dataset.Dataset {
	idx = slices.Clone(idx)
	slices.Sort(idx)
	im := set.Images
	n := im.Rows * im.Cols
	pix := make([]uint8, len(idx)*n)
	d := &dataset.Dataset{Name: name, Classes: ShortNames(), Examples: make([]dataset.Example, len(idx))}
	for k, i := range idx {
		p := pix[k*n : (k+1)*n : (k+1)*n]
		copy(p, im.At(i))
		img := dataset.Image{Height: im.Rows, Width: im.Cols, Channels: 1, Pix: p}
		id := fmt.Sprintf("fashion-mnist/%s/%06d", file, i)
		label := int(set.Labels[i])
		d.Examples[k] = dataset.Example{
			ID:       id,
			Image:    img,
			Captions: capt.CaptionsAvoiding(id, label, img, seen),
			Label:    label,
		}
	}
	return d
}
