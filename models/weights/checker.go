package weights

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/safetensors"
)

// checker matches a checkpoint's tensors against the parameters they feed, counting uses and collecting problems.
type checker struct {
	byName   map[string]*safetensors.Tensor
	order    []string
	used     map[string]int
	ignored  map[string]bool
	problems []string
}

func newChecker(f *safetensors.File, ignored []string) *checker {
	c := &checker{byName: map[string]*safetensors.Tensor{}, used: map[string]int{}, ignored: map[string]bool{}}
	for _, t := range f.Tensors {
		c.byName[t.Name] = t
		c.order = append(c.order, t.Name)
	}
	for _, n := range ignored {
		c.ignored[n] = true
	}
	return c
}

// take returns the named tensor if it exists with dims and as floating point, recording a problem otherwise.
func (c *checker) take(name string, dims []int) *safetensors.Tensor {
	t, ok := c.byName[name]
	if !ok {
		c.problems = append(c.problems, fmt.Sprintf("tensor %q is missing", name))
		return nil
	}
	c.used[name]++
	if c.used[name] > 1 {
		c.problems = append(c.problems, fmt.Sprintf("tensor %q is used more than once", name))
		return nil
	}
	if t.DType != "F32" {
		c.problems = append(c.problems, fmt.Sprintf("tensor %q has dtype %s, want a floating-point type", name, t.DType))
		return nil
	}
	if !slices.Equal(t.Shape, dims) {
		c.problems = append(c.problems, fmt.Sprintf("tensor %q has shape %v, the model needs %v", name, t.Shape, dims))
		return nil
	}
	return t
}

// ignoreCounter accepts and ignores the named BatchNorm counter if present, recording a problem unless it holds
// exactly one value.
func (c *checker) ignoreCounter(name string) {
	t, ok := c.byName[name]
	if !ok {
		return
	}
	c.ignored[name] = true
	if safetensors.NumElements(t.Shape) != 1 {
		c.problems = append(c.problems, fmt.Sprintf("tensor %q has shape %v, but a BatchNorm counter holds one value", name, t.Shape))
	}
}

// finish records the unused, not ignored tensors and returns an error listing every problem, or nil.
func (c *checker) finish(what string) error {
	for _, n := range c.order {
		if c.used[n] == 0 && !c.ignored[n] {
			c.problems = append(c.problems, fmt.Sprintf("tensor %q is not a parameter of the model (unexpected)", n))
		}
	}
	if len(c.problems) == 0 {
		return nil
	}
	const maxShown = 8
	shown := c.problems
	more := ""
	if len(shown) > maxShown {
		more = fmt.Sprintf("; and %d more", len(shown)-maxShown)
		shown = shown[:maxShown]
	}
	return fmt.Errorf("checkpoint does not match the %s: %s%s", what, strings.Join(shown, "; "), more)
}

func describe(cfg clip.Config) string {
	if cfg.IsResNet() {
		return fmt.Sprintf("inferred %q model (vision ResNet with %v blocks, width %d, attention pool %d heads; text %d×%d, %d heads; embed %d)",
			cfg.Name, cfg.ResNetLayers, cfg.VisionWidth, cfg.VisionHeads, cfg.TextLayers, cfg.TextWidth, cfg.TextHeads, cfg.EmbedDim)
	}
	return fmt.Sprintf("inferred %q model (vision %d×%d, %d heads; text %d×%d, %d heads; embed %d)", cfg.Name,
		cfg.VisionLayers, cfg.VisionWidth, cfg.VisionHeads, cfg.TextLayers, cfg.TextWidth, cfg.TextHeads, cfg.EmbedDim)
}
