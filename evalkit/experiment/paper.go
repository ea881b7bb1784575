package experiment

import (
	"fmt"

	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/loaders"
)

// Paper fine-tuning hyper-parameters (Yang et al., ICML 2023): a pre-trained CLIP fine-tuned for 10 epochs with
// AdamW (weight decay 0.2, models/train's default), learning rate 1e-5 on a cosine schedule down to 1e-6,
// batch 128, seed 42.
const (
	PaperEpochs    = 10
	PaperLR        = 1e-5
	PaperMinLR     = 1e-6
	PaperBatchSize = 128
	PaperSeed      = 42
)

// Paper poisoning rates φ of Attack II's default goals, in pairs of the whole training set: Flickr-PASCAL
// sheep → aeroplane re-pairs the 125 captions of the 25 sheep training images among 147,500 pairs (φ ≈ 0.085%,
// "0.08%" in the paper); COCO boat → dog re-pairs 1,420 captions (φ ≈ 0.24%).
const (
	PaperRateFlickrPASCAL = 0.00085
	PaperRateCOCO         = 0.0024
)

// PaperSpec is the paper's setup on a real dataset: Attack II in re-pair mode (the official code's) with the
// paper's default goal (DatasetFlickrPASCAL: sheep → aeroplane at φ = PaperRateFlickrPASCAL; DatasetCOCO:
// boat → dog at φ = PaperRateCOCO), the paper's test split (25 PASCAL test images per class; 50 COCO test
// images per class) and fine-tuning hyper-parameters (PaperEpochs, PaperLR → PaperMinLR, PaperBatchSize,
// PaperSeed), starting from the pre-trained checkpoint weights, with the CLIP BPE vocabulary tokenizerFile.
// root is the dataset's folder (see DatasetCOCO and DatasetFlickrPASCAL for the layouts). An unknown dataset
// gives a spec that Validate refuses. Change fields (MaxTrainImages, Rate, Source, Target, FinetuneEpochs, …)
// before running it.
//
// Data processing follows the official code: every caption, train and test, is pre-processed as its
// pre_caption does (PreCaption: lower case, punctuation deleted, at most 77 words) before the attack and the
// tokenizer see it; training images are augmented with RandomResizedCrop(S, scale 0.9–1.0, ratio 3/4–4/3,
// bicubic), a new crop of the full-size file each time a batch draws the image, seeded by Seed (TrainCrop);
// test images are resized and centre-cropped. Set PreCaption or TrainCrop to false to leave either out.
//
// Not reproduced: the crops' random numbers are not torch's (same distribution, other draws), and the
// learning rate warms up linearly over min(50, steps/10) steps.
func PaperSpec(dataset, root, weights, tokenizerFile string) Spec {
	s := Spec{Dataset: dataset, DataRoot: root, Weights: weights, TokenizerFile: tokenizerFile,
		Attack: "II", Mode: attack.Repair,
		FinetuneEpochs: PaperEpochs, FinetuneLR: PaperLR, MinLRFraction: PaperMinLR / PaperLR,
		BatchSize: PaperBatchSize, Seed: PaperSeed, PreCaption: true, TrainCrop: true}
	switch dataset {
	case DatasetCOCO:
		s.Source, s.Target, s.Rate, s.TestPerClass = "boat", "dog", PaperRateCOCO, loaders.COCOTestPerClass
	case DatasetFlickrPASCAL:
		s.Source, s.Target, s.Rate, s.TestPerClass = "sheep", "aeroplane", PaperRateFlickrPASCAL, loaders.PASCALTestPerClass
	}
	return s
}

// PaperSetup describes a real-data spec's setup in one line, for reports.
func (s Spec) PaperSetup() string {
	if s.Weights == "" {
		return ""
	}
	data := s.Dataset
	if data == "" {
		data = "Fashion-MNIST"
	}
	limit := "all training images"
	if s.MaxTrainImages > 0 {
		limit = fmt.Sprintf("at most %d training images", s.MaxTrainImages)
	}
	var processing string
	if s.PreCaption {
		processing += ", captions pre-processed as the official code does"
	}
	if s.TrainCrop {
		processing += ", training images randomly resized and cropped (scale 0.9–1.0)"
	}
	return fmt.Sprintf("pre-trained checkpoint %s fine-tuned on %s (%s, %d test images per class) for %d epoch(s), "+
		"lr %.3g → %.3g (cosine), batch %d, seed %d%s", s.Weights, data, limit, s.TestPerClass, s.FinetuneEpochs,
		s.FinetuneLR, s.FinetuneLR*s.minLRFraction(), s.BatchSize, s.Seed, processing)
}
