package metrics

// Success of a patch-trigger backdoor (Carlini & Terzis, ICLR 2022; poisoning/attack.Backdoor): the share of
// test images of the other classes that, with the trigger stamped on, are classified zero-shot as the target
// class, or retrieve a caption of the target class among their top K. The same share on the un-triggered images
// is the baseline.

import (
	"errors"
	"fmt"

	"github.com/mmpoison/mmpoison/poisoning/vecmath"
)

// ZeroShotClassify returns the zero-shot class of every image: the index of the class embedding (one text
// embedding per class, e.g. of "a photo of a {class}") with the highest cosine similarity. Ties go to the lower
// class index; NaN similarities rank last, as in [MinRank]. It returns an error for no images, no classes or
// embeddings of inconsistent dimensions.
func ZeroShotClassify(imageEmb, classEmb [][]float32) ([]int, error) {
	if err := checkZeroShot(imageEmb, classEmb); err != nil {
		return nil, fmt.Errorf("metrics.ZeroShotClassify: %w", err)
	}
	return top1(CosineSimilarity(imageEmb, classEmb), -1), nil
}

func checkZeroShot(imageEmb, classEmb [][]float32) error {
	if len(imageEmb) == 0 {
		return errors.New("no images")
	}
	if len(classEmb) == 0 {
		return errors.New("no class embeddings")
	}
	_, err := vecmath.CommonDim(imageEmb, classEmb)
	return err
}

// top1 returns the best class of every row of sim. Ties go to the lower index, except that class loser (if ≥ 0)
// loses every tie, which makes "predicted = loser" the same as MinRank(row, {loser}) == 0.
func top1(sim [][]float32, loser int) []int {
	out := make([]int, len(sim))
	for i, row := range sim {
		best := -1
		for c, s := range row {
			switch {
			case best < 0:
				best = c
			case key(s) > key(row[best]), key(s) == key(row[best]) && best == loser:
				best = c
			}
		}
		out[i] = best
	}
	return out
}

// ZeroShotRate is the zero-shot outcome on one set of images: how many are classified as the target class.
type ZeroShotRate struct {
	// N is the number of images.
	N int `json:"n"`
	// Hits is the number of images whose zero-shot class is the target.
	Hits int `json:"hits"`
	// Rate is Hits / N: the attack success rate on triggered images, the baseline on clean ones.
	Rate float64 `json:"rate"`
	// Predicted is the zero-shot class of every image, in input order.
	Predicted []int `json:"predicted"`
	// ClassCounts[c] is the number of images classified as class c.
	ClassCounts []int `json:"class_counts"`
}

// BackdoorZeroShotResult is the zero-shot success of a backdoor.
type BackdoorZeroShotResult struct {
	// Target is the index of the target class among the class embeddings; NumClasses their number.
	Target     int `json:"target"`
	NumClasses int `json:"num_classes"`
	// Triggered is the outcome on the triggered images: Triggered.Rate is the attack success rate.
	Triggered ZeroShotRate `json:"triggered"`
	// Clean is the outcome on the same images without the trigger (the baseline), nil when none were given.
	Clean *ZeroShotRate `json:"clean,omitempty"`
}

// Gain returns Triggered.Rate − Clean.Rate, or Triggered.Rate when there is no baseline.
func (r *BackdoorZeroShotResult) Gain() float64 {
	if r.Clean == nil {
		return r.Triggered.Rate
	}
	return r.Triggered.Rate - r.Clean.Rate
}

// String returns a one-line human-readable summary.
func (r *BackdoorZeroShotResult) String() string {
	s := fmt.Sprintf("zero-shot to class %d of %d: triggered %d/%d = %.3f", r.Target, r.NumClasses,
		r.Triggered.Hits, r.Triggered.N, r.Triggered.Rate)
	if r.Clean != nil {
		s += fmt.Sprintf(", clean %d/%d = %.3f", r.Clean.Hits, r.Clean.N, r.Clean.Rate)
	}
	return s
}

// BackdoorZeroShot measures a backdoor by zero-shot classification. triggered are the image embeddings of the
// triggered test images, which should all be of classes other than the target (attack.TriggerTestSet), clean
// those of the same images without the trigger (nil or empty: no baseline), classEmb one text embedding per
// class (the zero-shot prompts) and target the target's index among them.
//
// An image is a hit when its zero-shot class ([ZeroShotClassify]) is the target; ties are conservative, as in
// [MinRank]: a target tied with another class does not count. Triggered.Rate is the attack success rate,
// Clean.Rate the baseline. Errors: no triggered images, fewer than two classes, target out of range, or
// embeddings of inconsistent dimensions.
func BackdoorZeroShot(triggered, clean, classEmb [][]float32, target int) (*BackdoorZeroShotResult, error) {
	if len(triggered) == 0 {
		return nil, errors.New("metrics.BackdoorZeroShot: no triggered images")
	}
	if len(classEmb) < 2 {
		return nil, fmt.Errorf("metrics.BackdoorZeroShot: %d class embeddings, need at least 2", len(classEmb))
	}
	if target < 0 || target >= len(classEmb) {
		return nil, fmt.Errorf("metrics.BackdoorZeroShot: target class %d out of range [0, %d)", target, len(classEmb))
	}
	if _, err := vecmath.CommonDim(triggered, clean, classEmb); err != nil {
		return nil, fmt.Errorf("metrics.BackdoorZeroShot: %w", err)
	}
	rate := func(images [][]float32) *ZeroShotRate {
		pred := top1(CosineSimilarity(images, classEmb), target)
		r := &ZeroShotRate{N: len(images), Predicted: pred, ClassCounts: make([]int, len(classEmb))}
		for _, c := range pred {
			r.ClassCounts[c]++
		}
		r.Hits = r.ClassCounts[target]
		r.Rate = float64(r.Hits) / float64(r.N)
		return r
	}
	res := &BackdoorZeroShotResult{Target: target, NumClasses: len(classEmb), Triggered: *rate(triggered)}
	if len(clean) > 0 {
		res.Clean = rate(clean)
	}
	return res, nil
}

// BackdoorRetrievalResult is the retrieval success of a backdoor: image-to-text search from the triggered images
// over a caption gallery, with the target-class captions as targets.
type BackdoorRetrievalResult struct {
	// NumGallery is the number of captions searched, NumTargets the number of distinct target-class captions.
	NumGallery int `json:"num_gallery"`
	NumTargets int `json:"num_targets"`
	// Triggered holds, per K, the share of triggered images with a target-class caption among their top K
	// captions (Hit@K, the attack success rate), and the distribution of the best target caption's rank.
	Triggered *AttackResult `json:"triggered"`
	// Clean is the same for the images without the trigger (the baseline), nil when none were given.
	Clean *AttackResult `json:"clean,omitempty"`
}

// BackdoorRetrieval measures a backdoor by image-to-text retrieval. triggered are the image embeddings of the
// triggered test images (of classes other than the target), clean those of the same images without the trigger
// (nil or empty: no baseline), captions the embeddings of the caption gallery (e.g. every test caption) and
// targetCaptions the gallery indices of the captions of target-class images. ks are the cut-offs (nil or empty:
// [DefaultKs]).
//
// It is [EvaluateAttack] with images as queries and captions as gallery, so ties are conservative and
// Triggered.HitAt(k) is the share of triggered images whose top k captions include a target-class caption.
// Errors: no triggered images, an empty gallery, no or out-of-range target captions, or embeddings of
// inconsistent dimensions.
func BackdoorRetrieval(triggered, clean, captions [][]float32, targetCaptions []int, ks []int) (*BackdoorRetrievalResult, error) {
	if len(triggered) == 0 {
		return nil, errors.New("metrics.BackdoorRetrieval: no triggered images")
	}
	if _, err := vecmath.CommonDim(triggered, clean, captions); err != nil {
		return nil, fmt.Errorf("metrics.BackdoorRetrieval: %w", err)
	}
	tr, err := EvaluateAttack(triggered, captions, targetCaptions, ks)
	if err != nil {
		return nil, fmt.Errorf("metrics.BackdoorRetrieval: triggered images: %w", err)
	}
	res := &BackdoorRetrievalResult{NumGallery: tr.NumGallery, NumTargets: tr.NumTargets, Triggered: tr}
	if len(clean) > 0 {
		if res.Clean, err = EvaluateAttack(clean, captions, targetCaptions, ks); err != nil {
			return nil, fmt.Errorf("metrics.BackdoorRetrieval: clean images: %w", err)
		}
	}
	return res, nil
}
