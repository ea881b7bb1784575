package experiment

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/mmpoison/mmpoison/evalkit/metrics"
	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/tokenizer"
	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// ModelEval holds a model's attack metrics and utility on the test split.
type ModelEval struct {
	// Attack and RandomQueries are the first goal's (Goals[0]); see GoalEval.
	Attack        *metrics.AttackResult `json:"attack"`
	RandomQueries *metrics.AttackResult `json:"random_queries"`
	// Goals holds every goal's metrics (one for Attacks I and II).
	Goals []GoalEval `json:"goals"`
	// Utility: image-to-text and text-to-image Recall@1/5/10 on the test split.
	Utility *metrics.RecallResult `json:"utility"`
	// Backdoor is the trigger's effect (attacks evaluated on attack.TriggeredImages); Attack and RandomQueries
	// then hold its image-to-text retrieval with and without the trigger.
	Backdoor *BackdoorEval `json:"backdoor,omitempty"`
	// UtilityOthers: the same on the test images (and their captions) of every class but the goals' sources,
	// i.e. the retrieval the attack is not aimed at. In the paper's test sets the source classes are rare, so
	// their utility is close to this.
	UtilityOthers *metrics.RecallResult `json:"utility_others"`
}

// GoalEval is the attack metrics of one goal A→B.
type GoalEval struct {
	Source string `json:"source"`
	Target string `json:"target"`
	// TargetImageID is the target image x* of an attack evaluated on attack.TargetImage, added to the gallery.
	TargetImageID string `json:"target_image_id,omitempty"`
	// Attack: class-A test captions against the gallery; the targets are the class-B test images (or x*).
	Attack *metrics.AttackResult `json:"attack"`
	// RandomQueries: as many random test captions, of classes no goal involves, against the same targets.
	RandomQueries *metrics.AttackResult `json:"random_queries"`
}

// Evaluate embeds the test split with the model at path and computes its attack metrics and utility.
func Evaluate(d *Data, path string, opts Options) (*ModelEval, error) {
	ev, _, err := evaluatePath(d, path, opts)
	return ev, err
}

// evaluatePath is Evaluate that also returns the test embeddings.
func evaluatePath(d *Data, path string, opts Options) (*ModelEval, *testEmbeddings, error) {
	emb, cfg, err := LoadEmbedder(path, opts)
	if err != nil {
		return nil, nil, err
	}
	return evaluateEmbed(d, emb, cfg)
}

// EvaluateContext is Evaluate for a model in memory (its parameters in ctx), e.g. during training.
func EvaluateContext(d *Data, ctx *context.Context, cfg clip.Config, opts Options) (*ModelEval, error) {
	b, err := opts.backend(d.Spec.Devices)
	if err != nil {
		return nil, err
	}
	emb, err := clip.NewEmbedder(b, ctx, cfg, 0)
	if err != nil {
		return nil, err
	}
	ev, _, err := evaluateEmbed(d, emb, cfg)
	return ev, err
}

// LoadEmbedder loads the model at path and prepares its encoders on the options' backend.
func LoadEmbedder(path string, opts Options) (*clip.Embedder, clip.Config, error) {
	b, err := opts.backend(1)
	if err != nil {
		return nil, clip.Config{}, err
	}
	ctx, cfg, err := clip.Load(path)
	if err != nil {
		return nil, clip.Config{}, err
	}
	emb, err := clip.NewEmbedder(b, ctx, cfg, 0)
	return emb, cfg, err
}

// testEmbeddings are a model's embeddings of the gallery images and of the test captions (in test order).
type testEmbeddings struct {
	images, texts [][]float32
	// owner[j] is the test image caption j belongs to.
	owner []int
}

// Gallery returns the images text queries search: the test images, and for an attack evaluated on
// attack.TargetImage also its target image x* (a training image), last; targetID is x*'s ID ("" otherwise).
func (d *Data) Gallery() (gallery []dataset.Example, targetID string, err error) {
	gallery = slices.Clone(d.Splits.Test.Examples)
	if d.attack.Evaluation == attack.TargetImage { // x* is a training image: it joins the gallery.
		_, m, err := Poison(d)
		if err != nil {
			return nil, "", err
		}
		targetID = m.TargetImageID
		for _, ex := range d.Splits.Train.Examples {
			if ex.ID == targetID {
				gallery = append(gallery, ex)
			}
		}
	}
	return gallery, targetID, nil
}

// evaluateEmbed computes the attack metrics and utility of the model behind emb as the attack's evaluation
// says, and returns the test embeddings it computed them from.
func evaluateEmbed(d *Data, emb *clip.Embedder, cfg clip.Config) (*ModelEval, *testEmbeddings, error) {
	gallery, targetID, err := d.Gallery()
	if err != nil {
		return nil, nil, err
	}
	te, err := embedTest(d, emb, cfg, gallery)
	if err != nil {
		return nil, nil, err
	}
	ev := &ModelEval{}
	switch d.attack.Evaluation {
	case attack.TargetClass, attack.TargetImage:
		if ev.Goals, err = goalEvals(d, te, targetID); err != nil {
			return nil, nil, err
		}
		ev.Attack, ev.RandomQueries = ev.Goals[0].Attack, ev.Goals[0].RandomQueries
	case attack.TriggeredImages:
		if ev.Backdoor, err = evaluateBackdoor(d, emb, cfg, te); err != nil {
			return nil, nil, err
		}
		ev.Attack, ev.RandomQueries = ev.Backdoor.Retrieval.Triggered, ev.Backdoor.Retrieval.Clean
		ev.Goals = []GoalEval{{Target: d.Splits.Test.Classes[d.Target], Attack: ev.Attack, RandomQueries: ev.RandomQueries}}
	default:
		return nil, nil, fmt.Errorf("attack %s: no evaluation for %v", d.Spec.Attack.Kind, d.attack.Evaluation)
	}
	if ev.Utility, ev.UtilityOthers, err = utility(d, te); err != nil {
		return nil, nil, err
	}
	return ev, te, nil
}

// embedTest embeds the gallery images and every test caption.
func embedTest(d *Data, emb *clip.Embedder, cfg clip.Config, gallery []dataset.Example) (*testEmbeddings, error) {
	te := &testEmbeddings{}
	var captions []string
	for i, ex := range d.Splits.Test.Examples {
		for _, c := range ex.Captions {
			captions = append(captions, c)
			te.owner = append(te.owner, i)
		}
	}
	var err error
	if te.images, err = EmbedImages(emb, cfg, gallery); err != nil {
		return nil, err
	}
	if te.texts, err = emb.Texts(tokenizer.EncodeAll(d.Tokenizer, captions)); err != nil {
		return nil, err
	}
	return te, nil
}

// goalEvals measures every goal with a source class: its class-A test captions against the gallery, with the
// class-B test images as targets (or, with targetID, x* alone, the gallery's last image), and as many random
// captions of classes no goal involves.
func goalEvals(d *Data, te *testEmbeddings, targetID string) ([]GoalEval, error) {
	test := d.Splits.Test
	involved := map[int]bool{}
	for _, g := range d.Goals {
		involved[g[0]], involved[g[1]] = true, true
	}
	var others [][]float32
	for j, o := range te.owner {
		if !involved[test.Examples[o].Label] {
			others = append(others, te.texts[j])
		}
	}
	var out []GoalEval
	rng := rand.New(rand.NewPCG(uint64(d.Spec.Seed), 0x72616e64))
	for gi, g := range d.Goals {
		if g[0] == dataset.NoLabel {
			continue // No source class: no class-A queries.
		}
		targets := test.IndicesOfClass(g[1])
		if targetID != "" {
			targets = []int{len(te.images) - 1}
		}
		var queries [][]float32
		for j, o := range te.owner {
			if test.Examples[o].Label == g[0] {
				queries = append(queries, te.texts[j])
			}
		}
		ge := GoalEval{Source: test.Classes[g[0]], Target: test.Classes[g[1]], TargetImageID: targetID}
		var err error
		if ge.Attack, err = metrics.EvaluateAttack(queries, te.images, targets, nil); err != nil {
			return nil, fmt.Errorf("goal %d: %w", gi, err)
		}
		n := min(len(queries), len(others))
		random := make([][]float32, n)
		for i, j := range rng.Perm(len(others))[:n] {
			random[i] = others[j]
		}
		if ge.RandomQueries, err = metrics.EvaluateAttack(random, te.images, targets, nil); err != nil {
			return nil, fmt.Errorf("goal %d, random queries: %w", gi, err)
		}
		out = append(out, ge)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("attack %s: no goal has a source class to query with", d.Spec.Attack.Kind)
	}
	return out, nil
}

// utility is Recall@K on the whole test split and on the test images (and captions) of every class but the
// goals' sources.
func utility(d *Data, te *testEmbeddings) (all, others *metrics.RecallResult, err error) {
	test := d.Splits.Test
	testImg := te.images[:len(test.Examples)]
	if all, err = metrics.Recall(testImg, te.texts, te.owner, metrics.RecallKs); err != nil {
		return nil, nil, err
	}
	sources := map[int]bool{}
	for _, g := range d.Goals {
		sources[g[0]] = true
	}
	var othImg, othTxt [][]float32
	var othOwner []int
	newIndex := map[int]int{}
	for i, ex := range test.Examples {
		if !sources[ex.Label] {
			newIndex[i] = len(othImg)
			othImg = append(othImg, testImg[i])
		}
	}
	for j, o := range te.owner {
		if ni, ok := newIndex[o]; ok {
			othTxt = append(othTxt, te.texts[j])
			othOwner = append(othOwner, ni)
		}
	}
	if others, err = metrics.Recall(othImg, othTxt, othOwner, metrics.RecallKs); err != nil {
		return nil, nil, err
	}
	return all, others, nil
}
