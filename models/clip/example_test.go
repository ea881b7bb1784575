package clip_test

import (
	"fmt"

	"github.com/mmpoison/mmpoison/models/clip"
)

// The tiny preset's parameters carry OpenAI's state-dict names and PyTorch layouts.
func ExampleConfig_Params() {
	cfg, _ := clip.Preset("tiny")
	cfg.VocabSize = 100
	params := cfg.Params()
	fmt.Println(len(params), params[0].Name, params[0].Dims, params[len(params)-1].Name)
	// Output: 62 visual.conv1.weight [64 1 7 7] logit_scale
}
