package experiment

import (
	"github.com/mmpoison/mmpoison/evalkit/metrics"
	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/tokenizer"
	"github.com/mmpoison/mmpoison/poisoning/attack"
)

// BackdoorEval is how a model responds to the backdoor's trigger on test images of every class but the target.
type BackdoorEval struct {
	// ZeroShot: the share of triggered images whose top-1 zero-shot class (prompts "a photo of a ...") is the
	// target, and the same for the images without the trigger (the baseline).
	ZeroShot *metrics.BackdoorZeroShotResult `json:"zero_shot"`
	// Retrieval: the share of triggered (and untriggered) images with a target-class caption among their top K
	// test captions (Hit@K), and the rank of the best one.
	Retrieval *metrics.BackdoorRetrievalResult `json:"retrieval"`
}

// evaluateBackdoor stamps the manifest's trigger on the non-target test images and measures zero-shot
// classification and image-to-text retrieval with and without it. te holds the model's test caption embeddings.
func evaluateBackdoor(d *Data, emb *clip.Embedder, cfg clip.Config, te *testEmbeddings) (*BackdoorEval, error) {
	_, m, err := Poison(d)
	if err != nil {
		return nil, err
	}
	triggered, clean, err := attack.TriggerTestSet(d.Splits.Test, m)
	if err != nil {
		return nil, err
	}
	trigEmb, err := EmbedImages(emb, cfg, triggered.Examples)
	if err != nil {
		return nil, err
	}
	cleanEmb, err := EmbedImages(emb, cfg, clean.Examples)
	if err != nil {
		return nil, err
	}
	classEmb, err := emb.Texts(tokenizer.EncodeAll(d.Tokenizer, d.ClassPrompts()))
	if err != nil {
		return nil, err
	}
	be := &BackdoorEval{}
	if be.ZeroShot, err = metrics.BackdoorZeroShot(trigEmb, cleanEmb, classEmb, d.Target); err != nil {
		return nil, err
	}
	var targets []int
	j := 0
	for _, ex := range d.Splits.Test.Examples {
		for range ex.Captions {
			if ex.Label == d.Target {
				targets = append(targets, j)
			}
			j++
		}
	}
	if be.Retrieval, err = metrics.BackdoorRetrieval(trigEmb, cleanEmb, te.texts, targets, metrics.DefaultKs); err != nil {
		return nil, err
	}
	return be, nil
}
