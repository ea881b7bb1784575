package experiment

import (
	"fmt"

	"github.com/mmpoison/mmpoison/evalkit/metrics"
	"github.com/mmpoison/mmpoison/models/tokenizer"
)

// Retrieval is one text-to-image search over the gallery (Data.Gallery: the test images, plus x* for an
// attack evaluated on attack.TargetImage):
// the query and the gallery indices of the k most similar images, best first, with their cosine similarities.
type Retrieval struct {
	Query      string    `json:"query"`
	Images     []int     `json:"images"`
	Similarity []float64 `json:"similarity"`
}

// Retrieve searches the gallery with each query caption using the model at path and returns the top k
// images per query: what a user of the (possibly poisoned) model would see.
func Retrieve(d *Data, path string, queries []string, k int, opts Options) ([]Retrieval, error) {
	if k < 1 {
		return nil, fmt.Errorf("retrieve: k = %d, want ≥ 1", k)
	}
	emb, cfg, err := LoadEmbedder(path, opts)
	if err != nil {
		return nil, err
	}
	gallery, _, err := d.Gallery()
	if err != nil {
		return nil, err
	}
	imgEmb, err := EmbedImages(emb, cfg, gallery)
	if err != nil {
		return nil, err
	}
	txtEmb, err := emb.Texts(tokenizer.EncodeAll(d.Tokenizer, queries))
	if err != nil {
		return nil, err
	}
	sim := metrics.CosineSimilarity(txtEmb, imgEmb)
	out := make([]Retrieval, len(queries))
	for q, row := range sim {
		r := Retrieval{Query: queries[q]}
		for _, i := range metrics.TopK(row, k) {
			r.Images, r.Similarity = append(r.Images, i), append(r.Similarity, float64(row[i]))
		}
		out[q] = r
	}
	return out, nil
}

// SourceQueries returns the first n held-out test captions of the first goal's class A: the queries an attack
// aims at.
func (d *Data) SourceQueries(n int) []string {
	var out []string
	for _, i := range d.Splits.Test.IndicesOfClass(d.Source) {
		for _, c := range d.Splits.Test.Examples[i].Captions {
			if len(out) < n {
				out = append(out, c)
			}
		}
	}
	return out
}
