package metrics

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/mmpoison/mmpoison/poisoning/vecmath"
)

// RecallResult holds the utility metrics of an image-text model: Recall@K
// for image-to-text (TR) and text-to-image (IR) retrieval.
type RecallResult struct {
	// Ks are the cut-offs, in the order requested.
	Ks []int `json:"ks"`
	// ImageToText[i] is TR Recall@Ks[i]: the fraction of images (with at
	// least one caption) that have one of their own captions in their top
	// Ks[i] captions.
	ImageToText []float64 `json:"image_to_text"`
	// TextToImage[i] is IR Recall@Ks[i]: the fraction of captions whose own
	// image is in their top Ks[i] images.
	TextToImage []float64 `json:"text_to_image"`
	// NumImages is the number of images evaluated for TR (images without
	// captions are skipped).
	NumImages int `json:"num_images"`
	// NumCaptions is the number of captions evaluated for IR.
	NumCaptions int `json:"num_captions"`
}

type recallResultJSON struct {
	Ks          []int    `json:"ks"`
	ImageToText []jfloat `json:"image_to_text"`
	TextToImage []jfloat `json:"text_to_image"`
	NumImages   int      `json:"num_images"`
	NumCaptions int      `json:"num_captions"`
}

// MarshalJSON implements [json.Marshaler], writing NaN as null.
func (r RecallResult) MarshalJSON() ([]byte, error) {
	return json.Marshal(recallResultJSON{
		Ks: r.Ks, ImageToText: toJFloats(r.ImageToText), TextToImage: toJFloats(r.TextToImage),
		NumImages: r.NumImages, NumCaptions: r.NumCaptions,
	})
}

// UnmarshalJSON implements [json.Unmarshaler], reading null as NaN.
func (r *RecallResult) UnmarshalJSON(data []byte) error {
	var aux recallResultJSON
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	*r = RecallResult{
		Ks: aux.Ks, ImageToText: fromJFloats(aux.ImageToText), TextToImage: fromJFloats(aux.TextToImage),
		NumImages: aux.NumImages, NumCaptions: aux.NumCaptions,
	}
	return nil
}

// TR returns image-to-text Recall@k, or NaN if k was not evaluated.
func (r *RecallResult) TR(k int) float64 { return lookupK(r.Ks, r.ImageToText, k) }

// IR returns text-to-image Recall@k, or NaN if k was not evaluated.
func (r *RecallResult) IR(k int) float64 { return lookupK(r.Ks, r.TextToImage, k) }

func lookupK(ks []int, vs []float64, k int) float64 {
	if i := slices.Index(ks, k); i >= 0 && i < len(vs) {
		return vs[i]
	}
	return math.NaN()
}

// Recall computes the utility metrics of the paper: image-to-text (TR) and
// text-to-image (IR) Recall@K over a test set.
//
// imageEmb holds one embedding per image, textEmb one per caption and
// captionOwner[c] is the index in imageEmb of the image that caption c
// describes. TR: an image is a hit at K when any of its captions is among its
// top K captions. IR: a caption is a hit at K when its own image is among its
// top K images. Ranks use cosine similarity and the conservative tie rule of
// [MinRank] (a tie with a wrong item counts against the model). Images with
// no caption are left out of TR. ks nil or empty means [RecallKs]
// ({1, 5, 10}).
//
// It returns an error for empty inputs, a captionOwner of the wrong length
// or with out-of-range indices, and embeddings of inconsistent dimensions.
func Recall(imageEmb, textEmb [][]float32, captionOwner []int, ks []int) (*RecallResult, error) {
	if len(imageEmb) == 0 || len(textEmb) == 0 {
		return nil, errors.New("metrics.Recall: no images or no captions")
	}
	if len(captionOwner) != len(textEmb) {
		return nil, fmt.Errorf("metrics.Recall: %d caption owners for %d captions", len(captionOwner), len(textEmb))
	}
	if _, err := vecmath.CommonDim(imageEmb, textEmb); err != nil {
		return nil, fmt.Errorf("metrics.Recall: %w", err)
	}
	captionsOf := make([][]int, len(imageEmb))
	for c, owner := range captionOwner {
		if owner < 0 || owner >= len(imageEmb) {
			return nil, fmt.Errorf("metrics.Recall: caption %d has owner %d out of range [0, %d)", c, owner, len(imageEmb))
		}
		captionsOf[owner] = append(captionsOf[owner], c)
	}
	if len(ks) == 0 {
		ks = RecallKs
	}

	sim := CosineSimilarity(imageEmb, textEmb) // images × captions
	trRanks := make([]int, 0, len(imageEmb))
	for i, row := range sim {
		if len(captionsOf[i]) == 0 {
			continue
		}
		trRanks = append(trRanks, MinRank(row, captionsOf[i]))
	}
	irRanks := make([]int, len(textEmb))
	col := make([]float32, len(imageEmb))
	target := make([]int, 1)
	for c := range textEmb {
		for i := range sim {
			col[i] = sim[i][c]
		}
		target[0] = captionOwner[c]
		irRanks[c] = MinRank(col, target)
	}

	res := &RecallResult{
		Ks:          slices.Clone(ks),
		ImageToText: make([]float64, len(ks)),
		TextToImage: make([]float64, len(ks)),
		NumImages:   len(trRanks),
		NumCaptions: len(irRanks),
	}
	for i, k := range ks {
		res.ImageToText[i] = HitAtK(trRanks, k)
		res.TextToImage[i] = HitAtK(irRanks, k)
	}
	return res, nil
}
