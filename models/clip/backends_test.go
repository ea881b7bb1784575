package clip

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/backends"

	"github.com/mmpoison/mmpoison/models/backend"
	"github.com/mmpoison/mmpoison/models/internal/xlatest"
)

// TestEmbeddingsAgreeAcrossBackends: the same weights embed the same images and captions on XLA as on the
// pure-Go backend to within 1e-4 of each embedding's largest component, ViT and ModifiedResNet alike.
func TestEmbeddingsAgreeAcrossBackends(t *testing.T) {
	onXLA := xlatest.Backend(t)
	pureGo, err := backend.FromConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	vit := Presets["tiny"]
	vit.VocabSize = 30
	for _, cfg := range []Config{vit, tinyResNet()} {
		t.Run(cfg.Name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(4, 5))
			var images [][]float32
			var texts [][]int32
			for range 6 {
				img := make([]float32, cfg.ImageSize*cfg.ImageSize*cfg.ImageChannels)
				for j := range img {
					img[j] = float32(rng.NormFloat64())
				}
				images = append(images, img)
				toks := make([]int32, cfg.ContextLength)
				for j := range toks[:len(toks)-1] {
					toks[j] = int32(1 + rng.IntN(cfg.VocabSize-2))
				}
				toks[len(toks)-1] = int32(cfg.VocabSize - 1)
				texts = append(texts, toks)
			}
			embed := func(be backends.Backend) (img, txt [][]float32) {
				ctx, err := NewContext(cfg, 3) // a model per backend: tensors stay with the backend that used them
				if err != nil {
					t.Fatal(err)
				}
				randomizeContext(t, ctx, cfg)
				emb, err := NewEmbedder(be, ctx, cfg, 4)
				if err != nil {
					t.Fatal(err)
				}
				if img, err = emb.Images(images); err != nil {
					t.Fatal(err)
				}
				if txt, err = emb.Texts(texts); err != nil {
					t.Fatal(err)
				}
				return img, txt
			}
			goImg, goTxt := embed(pureGo)
			xlaImg, xlaTxt := embed(onXLA)
			var worst float64
			for i := range images {
				worst = max(worst, relMaxDiff(xlaImg[i], goImg[i]), relMaxDiff(xlaTxt[i], goTxt[i]))
			}
			t.Logf("largest difference: %.2g of the embedding's largest component", worst)
			if worst > 1e-4 {
				t.Errorf("XLA's embeddings differ from the pure-Go backend's by up to %.2g (relative), want ≤ 1e-4", worst)
			}
		})
	}
}

// relMaxDiff is max|a−b| over max|b|.
func relMaxDiff(a, b []float32) float64 {
	var top float64
	for _, v := range b {
		top = max(top, math.Abs(float64(v)))
	}
	return maxAbsDiff(a, b) / top
}
