package experiment

import (
	"fmt"
	"path/filepath"

	"github.com/mmpoison/mmpoison/evalkit/cache"
	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/loaders"
)

// RealSpec is a pre-trained checkpoint and the data it is fine-tuned on. The zero value is the Fashion-MNIST
// default with a model pre-trained here.
type RealSpec struct {
	// Dataset is "" (Fashion-MNIST), DatasetCOCO or DatasetFlickrPASCAL; Root is where its files are (see
	// DatasetCOCO and DatasetFlickrPASCAL for the layouts). A real dataset needs Weights and Tokenizer.
	Dataset string `json:"dataset,omitempty"`
	Root    string `json:"root,omitempty"`
	// Weights is a pre-trained CLIP checkpoint (safetensors, OpenAI/open_clip names or HuggingFace names with
	// config.json beside it). The pre-training stage loads and converts it instead of training, and the
	// model's sizes are the checkpoint's.
	Weights string `json:"weights,omitempty"`
	// Tokenizer is the CLIP BPE vocabulary: OpenAI's bpe_simple_vocab_16e6.txt.gz, or a HuggingFace
	// vocab.json with merges.txt beside it. Required with Weights (its size must equal the model's vocabulary).
	Tokenizer string `json:"tokenizer,omitempty"`
	// MaxTrainImages caps a real dataset's fine-tuning split (0: all): the first MaxTrainImages labelled
	// images in the dataset's order, then unlabelled ones (Flickr30k's, for Flickr-PASCAL) up to the cap.
	// Images are held in memory at the model's resolution S: S·S·3 bytes each, plus S·S·3 float32 (4 bytes)
	// each while a model trains on them, about 750 KB per image at S = 224 (10,000 images ≈ 7.5 GB); with
	// TrainCrop the float32 copies are made per batch instead, about 150 KB per image (10,000 ≈ 1.5 GB).
	MaxTrainImages int `json:"max_train_images,omitempty"`
	// PreCaption pre-processes every caption of a real dataset, train and test, as the paper's official code
	// does before tokenising (loaders.PreCaption with loaders.PaperMaxWords: lower case, punctuation deleted,
	// '-' and '/' as spaces, white space collapsed, at most 77 words); the attacks then work on the processed
	// captions. PaperSpec sets it.
	PreCaption bool `json:"pre_caption,omitempty"`
	// TrainCrop trains on the paper's augmentation, torchvision's RandomResizedCrop(S, scale=(0.9, 1.0),
	// ratio=(3/4, 4/3), bicubic) at the model's resolution S: every time a batch draws a real dataset's
	// training image, a new crop is drawn from the image as decoded from its file, at its full size, and
	// resized to S×S (a poisoned image that exists only in memory, e.g. the backdoor's, is cropped from its
	// S×S copy). The crops follow Spec.Seed. Evaluation and the defenses' embeddings keep the test transform.
	// PaperSpec sets it.
	TrainCrop bool `json:"train_crop,omitempty"`
}

// RealSpec.Dataset values for the paper's real datasets.
const (
	// DatasetCOCO is COCO 2014 (or 2017) as poisoning/loaders reads it: Root/annotations/captions_<split>.json
	// and instances_<split>.json, images in Root/<split>/<file_name>, for the splits train2014 and val2014
	// (used when captions_train2014.json exists) or else train2017 and val2017. Labels and the test set follow
	// the paper (loaders.LoadCOCO, loaders.COCOPaperSplit): DataSpec.TestPerClass images of every class but
	// "toaster" and "hair drier" (the paper: 50), every other image trains.
	DatasetCOCO = "coco"
	// DatasetFlickrPASCAL is the paper's Flickr-PASCAL combination (loaders.FlickrPASCAL): Flickr30k's Karpathy
	// train split (unlabelled) plus half of PASCAL-sentences train, the other half (DataSpec.TestPerClass images
	// per class; the paper: 25) tests. Layout:
	//
	//	Root/dataset_flickr30k.json               Karpathy's split file
	//	Root/flickr30k-images/<filename>          Flickr30k's images
	//	Root/pascal/dataset/<class>/<name>.jpg    PASCAL-sentences as the UIUC download script saves it
	//	Root/pascal/sentence/<class>/<name>.txt   (see loaders.LoadPASCAL)
	DatasetFlickrPASCAL = "flickr-pascal"
)

// validate checks the real-data part.
func (r RealSpec) validate() error {
	switch {
	case r.Dataset != "" && r.Dataset != DatasetCOCO && r.Dataset != DatasetFlickrPASCAL:
		return fmt.Errorf("unknown dataset %q: use \"\" (Fashion-MNIST), %q or %q", r.Dataset, DatasetCOCO, DatasetFlickrPASCAL)
	case r.Dataset != "" && r.Root == "":
		return fmt.Errorf("dataset %q needs Root, the folder holding its files", r.Dataset)
	case r.Dataset != "" && r.Weights == "":
		return fmt.Errorf("dataset %q needs a pre-trained checkpoint (Weights): the paper fine-tunes a pre-trained CLIP", r.Dataset)
	case r.Tokenizer != "" && r.Weights == "":
		return fmt.Errorf("tokenizer %s needs a pre-trained checkpoint (Weights); preset models use the word-level tokenizer", r.Tokenizer)
	case r.Weights != "" && r.Tokenizer == "":
		return fmt.Errorf("checkpoint %s needs a Tokenizer (bpe_simple_vocab_16e6.txt.gz, or vocab.json with merges.txt beside it)", r.Weights)
	case r.MaxTrainImages < 0:
		return fmt.Errorf("MaxTrainImages is %d; want 0 (all) or more", r.MaxTrainImages)
	case r.Dataset == "" && (r.PreCaption || r.TrainCrop):
		return fmt.Errorf("PreCaption and TrainCrop are the paper's processing of real datasets: set Dataset, or leave them off for Fashion-MNIST")
	}
	return nil
}

func absolute(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// realParts is RealSpec in cache keys: its files by their identity, its root as an absolute path.
type realParts struct {
	RealSpec
	Root      string       `json:"root,omitempty"`
	Weights   cache.FileID `json:"weights"`
	Tokenizer cache.FileID `json:"tokenizer"`
}

// parts returns the real-data part for cache keys, nil for the zero value.
func (r RealSpec) parts() *realParts {
	if r == (RealSpec{}) {
		return nil
	}
	p := &realParts{RealSpec: r, Weights: cache.IdentifyFile(r.Weights), Tokenizer: cache.IdentifyFile(r.Tokenizer)}
	if r.Root != "" {
		p.Root = absolute(r.Root)
	}
	return p
}

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
// gives a spec that Validate refuses. Change parts (Real.MaxTrainImages, the attack's goal and rate,
// Finetune.Epochs, …) before running it.
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
	s := Spec{Real: RealSpec{Dataset: dataset, Root: root, Weights: weights, Tokenizer: tokenizerFile, PreCaption: true, TrainCrop: true},
		Attack:   attack.Spec{Kind: attack.KindSingleLabel, Mode: attack.Repair},
		Finetune: StageSpec{Epochs: PaperEpochs, LR: PaperLR, MinLRFraction: PaperMinLR / PaperLR},
		Batch:    PaperBatchSize, Seed: PaperSeed}
	switch dataset {
	case DatasetCOCO:
		s.Attack.Goals, s.Attack.Rate = []attack.Goal{{Source: "boat", Target: "dog"}}, PaperRateCOCO
		s.Data.TestPerClass = loaders.COCOTestPerClass
	case DatasetFlickrPASCAL:
		s.Attack.Goals, s.Attack.Rate = []attack.Goal{{Source: "sheep", Target: "aeroplane"}}, PaperRateFlickrPASCAL
		s.Data.TestPerClass = loaders.PASCALTestPerClass
	}
	return s
}

// PaperSetup describes a spec with a pre-trained checkpoint in one line, for reports ("" without one).
func (s Spec) PaperSetup() string {
	r := s.Real
	if r.Weights == "" {
		return ""
	}
	data := r.Dataset
	if data == "" {
		data = "Fashion-MNIST"
	}
	limit := "all training images"
	if r.MaxTrainImages > 0 {
		limit = fmt.Sprintf("at most %d training images", r.MaxTrainImages)
	}
	var processing string
	if r.PreCaption {
		processing += ", captions pre-processed as the official code does"
	}
	if r.TrainCrop {
		processing += ", training images randomly resized and cropped (scale 0.9–1.0)"
	}
	f := s.Finetune
	return fmt.Sprintf("pre-trained checkpoint %s fine-tuned on %s (%s, %d test images per class) for %d epoch(s), "+
		"lr %.3g → %.3g (cosine), batch %d, seed %d%s", r.Weights, data, limit, s.Data.TestPerClass, f.Epochs,
		f.LR, f.LR*f.minLRFraction(), s.Batch, s.Seed, processing)
}
