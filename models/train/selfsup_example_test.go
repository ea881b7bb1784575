package train_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/mmpoison/mmpoison/models/backend"
	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/train"
)

// CleanCLIP's objective is one Options field: the CLIP loss plus in-modality losses on augmented views. Here the
// captions' view reverses their words (poisoning/defense's TokenEDA is the real caption augmentation).
func ExampleCleanCLIP() {
	cfg := clip.Presets["tiny"]
	cfg.VocabSize = 50
	ctx, err := clip.NewContext(cfg, 1)
	if err != nil {
		panic(err)
	}
	reverse := func(tokens []int32, _ *rand.Rand) []int32 {
		out := slices.Clone(tokens)
		end := slices.Index(out, slices.Max(out))
		slices.Reverse(out[1:end])
		return out
	}
	opts := train.DefaultOptions()
	opts.BatchSize, opts.WarmupSteps = 8, 1
	opts.SelfSupervised = train.CleanCLIP(train.DefaultImageAugment().Func(cfg), reverse)
	be, err := backend.FromConfig("go")
	if err != nil {
		panic(err)
	}
	tr, err := train.New(be, cfg, ctx, opts)
	if err != nil {
		panic(err)
	}
	hist, err := tr.Fit(train.RandomData(cfg, 16, 1))
	if err != nil {
		panic(err)
	}
	fmt.Println("epochs:", len(hist), "finite loss:", !math.IsNaN(hist[0].MeanLoss))
	// Output: epochs: 1 finite loss: true
}
