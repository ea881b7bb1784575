package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/mmpoison/mmpoison/evalkit/npy"
	"github.com/mmpoison/mmpoison/models/backend"
	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/tokenizer"
	"github.com/mmpoison/mmpoison/models/weights"
	"github.com/mmpoison/mmpoison/poisoning/atomicfile"
	"github.com/mmpoison/mmpoison/poisoning/imageprep"
)

// embedUsage is printed by "mmpoison embed -h".
const embedUsage = `usage: mmpoison embed --weights W.safetensors [--config config.json] [--tokenizer VOCAB]
       [--vision-heads N --text-heads N] [--batch N] --captions F.txt --out DIR [--images A.png ...] [A.png B.jpg ...]

Embeds images and captions with a CLIP checkpoint, ViT or ModifiedResNet (OpenAI naming) or ViT (HuggingFace
naming), and writes, in DIR:
  image_features.npy  [images, embed]    encode_image features, before normalisation
  text_features.npy   [captions, embed]  encode_text features, before normalisation
  logits.npy          [images, captions] logits_per_image = exp(logit_scale) · cosine similarity, as OpenAI's
                                         CLIP.forward computes it (no clamp: training keeps logit_scale ≤ ln 100)

Head counts, which the tensor shapes cannot tell, come from --vision-heads/--text-heads, else from an open_clip
model config (--config, or open_clip_config.json beside the weights), else from the checkpoint's mmpoison
metadata, else from OpenAI's rules (width/64; 32·width/64 for a ResNet's attention pool). HuggingFace names take
them from config.json (--config, or the one beside the weights).

Images (JPEG or PNG) are given as repeated --images values and/or as the arguments after the flags; Go's flag
parsing stops at the first non-flag argument, so every flag must come before the first trailing image. They are
preprocessed like CLIP's torchvision transform (shorter side resized to the model's size with bicubic
interpolation, centre crop; images already at that size are used as is), then normalised with the model's mean
and standard deviation; a grayscale model gets the average of the RGB channels.

Captions: one per line of --captions (a final newline does not add an empty caption; a trailing \r is removed).

Tokenizer: --tokenizer is OpenAI's bpe_simple_vocab_16e6.txt.gz (gzip or plain text), or a HuggingFace
vocab.json, whose merges.txt must lie beside it. Without --tokenizer, vocab.json and merges.txt beside the
weights are used (HuggingFace checkpoints ship them), else bpe_simple_vocab_16e6.txt.gz beside the weights;
otherwise it is an error. The context length is the model's.

flags:
`

// stringList is a flag.Value collecting repeated values.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }

func (s *stringList) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// embedCommand implements "mmpoison embed".
func embedCommand(args []string) error {
	fs := newFlags("embed", embedUsage)
	weightsPath := fs.String("weights", "", "pre-trained CLIP checkpoint (.safetensors, OpenAI or HuggingFace names, ViT or ResNet; required)")
	configPath := fs.String("config", "", "HuggingFace config.json for HuggingFace names; open_clip's model config (open_clip_config.json or model_configs/*.json) for OpenAI names (default: the one beside the weights)")
	tokPath := fs.String("tokenizer", "", "bpe_simple_vocab_16e6.txt.gz, or a HuggingFace vocab.json with merges.txt beside it")
	visionHeads := fs.Int("vision-heads", 0, "attention heads of the image tower: the ViT, or the ResNet's attention pool (OpenAI names; default: metadata, else width/64, 32·width/64 for a ResNet)")
	textHeads := fs.Int("text-heads", 0, "attention heads of the text tower (OpenAI names; default: metadata, else width/64)")
	captionsPath := fs.String("captions", "", "text file, one caption per line (required)")
	outDir := outFlag(fs, "", "the .npy files; created if needed; required")
	batch := batchFlag(fs, 0, fmt.Sprintf("embedding; default: the number of inputs, at most %d", clip.DefaultEvalBatch))
	var images stringList
	fs.Var(&images, "images", "an image file (JPEG or PNG); repeatable, and trailing arguments are images too")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *batch < 0 {
		return fmt.Errorf("embed: --batch %d is negative", *batch)
	}
	if err := checkMinimums(fs, minimum{"vision-heads", 0}, minimum{"text-heads", 0}); err != nil {
		return fmt.Errorf("embed: %w", err)
	}
	for _, a := range fs.Args() { // Trailing arguments are images, so parse's refusal of them does not apply.
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			return fmt.Errorf("embed: %q comes after the first trailing image %q: flags must come before the trailing images (or name images with --images)", a, fs.Arg(0))
		}
	}
	images = append(images, fs.Args()...)
	switch {
	case *weightsPath == "":
		return errors.New("embed: --weights is required")
	case *captionsPath == "":
		return errors.New("embed: --captions is required")
	case *outDir == "":
		return errors.New("embed: --out is required")
	case len(images) == 0:
		return errors.New("embed: no images: give them with --images or after the flags")
	}
	if err := writableDir("out", *outDir); err != nil {
		return fmt.Errorf("embed: %w", err)
	}
	return runEmbed(embedJob{
		Weights: *weightsPath, Config: *configPath, Tokenizer: *tokPath,
		Hints:    weights.Hints{VisionHeads: *visionHeads, TextHeads: *textHeads},
		Captions: *captionsPath, Out: *outDir, Images: images, Batch: *batch,
	})
}

// embedJob is a parsed "mmpoison embed" command line.
type embedJob struct {
	Weights, Config, Tokenizer string
	Hints                      weights.Hints
	Captions, Out              string
	Images                     []string
	Batch                      int
}

func runEmbed(job embedJob) error {
	captions, err := readCaptions(job.Captions)
	if err != nil {
		return err
	}
	ctx, cfg, err := weights.Load(job.Weights, job.Config, job.Hints)
	if err != nil {
		return err
	}
	tok, tokFile, err := loadCLIPTokenizer(job.Tokenizer, job.Weights, cfg.ContextLength)
	if err != nil {
		return err
	}
	if tok.VocabSize() != cfg.VocabSize {
		return fmt.Errorf("embed: tokenizer %s has %d tokens, but the model %s has a vocabulary of %d",
			tokFile, tok.VocabSize(), job.Weights, cfg.VocabSize)
	}
	tokens := make([][]int32, len(captions))
	truncated := 0
	for i, c := range captions {
		tokens[i] = tok.Encode(c)
		if len(tok.EncodeTokens(c)) > cfg.ContextLength-2 {
			truncated++
		}
	}
	if truncated > 0 {
		fmt.Fprintf(os.Stderr, "mmpoison embed: %d of %d captions of %s are longer than %d tokens and were truncated\n",
			truncated, len(captions), job.Captions, cfg.ContextLength-2)
	}

	pixels := make([][]float32, len(job.Images))
	for i, path := range job.Images {
		img, err := imageprep.CLIPFile(path, cfg.ImageSize)
		if err != nil {
			return err
		}
		x, err := clip.Preprocess(cfg, img)
		if err != nil {
			return fmt.Errorf("embed: %s: %w", path, err)
		}
		pixels[i] = x
	}

	b, err := backend.Default()
	if err != nil {
		return err
	}
	batch := job.Batch
	if batch <= 0 {
		batch = min(clip.DefaultEvalBatch, max(len(pixels), len(tokens)))
	}
	emb, err := clip.NewEmbedder(b, ctx, cfg, batch)
	if err != nil {
		return err
	}
	imageFeatures, err := emb.Images(pixels)
	if err != nil {
		return fmt.Errorf("embed: image features: %w", err)
	}
	textFeatures, err := emb.Texts(tokens)
	if err != nil {
		return fmt.Errorf("embed: text features: %w", err)
	}
	logitScale, err := readLogitScale(ctx)
	if err != nil {
		return fmt.Errorf("embed: %s: %w", job.Weights, err)
	}
	logits := hostLogits(imageFeatures, textFeatures, logitScale)

	if err := os.MkdirAll(job.Out, 0o755); err != nil {
		return fmt.Errorf("embed: %w", err)
	}
	for _, f := range []struct {
		name string
		rows [][]float32
	}{{"image_features.npy", imageFeatures}, {"text_features.npy", textFeatures}, {"logits.npy", logits}} {
		if err := npy.WriteMatrix(filepath.Join(job.Out, f.name), f.rows); err != nil {
			return err
		}
	}
	fmt.Printf("embed: %d images, %d captions, embedding size %d, logit scale %.4g: image_features.npy, text_features.npy, logits.npy in %s\n",
		len(imageFeatures), len(textFeatures), cfg.EmbedDim, math.Exp(logitScale), job.Out)
	return nil
}

// maxCaptionsFile bounds the captions file of embed: 256 MiB.
const maxCaptionsFile = 256 << 20

// readCaptions reads one caption per line; only the empty line after a final newline is skipped, and a
// trailing \r (Windows line ends) is removed.
func readCaptions(path string) ([]string, error) {
	data, err := atomicfile.ReadFile(path, maxCaptionsFile)
	if err != nil {
		return nil, fmt.Errorf("embed: reading captions: %w", err)
	}
	text := strings.TrimSuffix(string(data), "\n")
	if len(data) == 0 {
		return nil, fmt.Errorf("embed: captions file %s is empty", path)
	}
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines, nil
}

// loadCLIPTokenizer loads the BPE tokenizer named by flag, or found beside the weights; it returns the file
// it read, for messages.
func loadCLIPTokenizer(flagPath, weightsPath string, contextLength int) (*tokenizer.BPE, string, error) {
	path := flagPath
	if path == "" {
		dir := filepath.Dir(weightsPath)
		vocab, merges := filepath.Join(dir, "vocab.json"), filepath.Join(dir, "merges.txt")
		bpe := filepath.Join(dir, "bpe_simple_vocab_16e6.txt.gz")
		switch {
		case exists(vocab) && exists(merges):
			path = vocab
		case exists(bpe):
			path = bpe
		default:
			return nil, "", fmt.Errorf("embed: no tokenizer: give --tokenizer (OpenAI's bpe_simple_vocab_16e6.txt.gz or a "+
				"HuggingFace vocab.json with merges.txt beside it); none was found beside %s", weightsPath)
		}
	}
	tok, err := tokenizer.LoadFile(path, contextLength)
	if err != nil {
		return nil, "", err
	}
	return tok, path, nil
}

func exists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}

// readLogitScale returns the model's logit_scale parameter (the log of the inverse temperature).
func readLogitScale(ctx *context.Context) (float64, error) {
	pctx := ctx.In(clip.Scope)
	v := pctx.GetVariableByScopeAndName(pctx.Scope(), "logit_scale")
	if v == nil {
		return 0, errors.New("the model has no logit_scale")
	}
	value, err := v.Value()
	if err != nil {
		return 0, fmt.Errorf("logit_scale: %w", err)
	}
	data, err := tensors.CopyFlatData[float32](value)
	if err != nil || len(data) != 1 {
		return 0, fmt.Errorf("logit_scale is not a float32 scalar (%v)", err)
	}
	return float64(data[0]), nil
}

// hostLogits is OpenAI's logits_per_image on the host, in float64: exp(logitScale) times the cosine similarity
// of every image feature with every text feature (rows normalised as clip does, with 1e-12 under the root).
// Unlike clip.Logits, which training uses, the scale is not clamped at 100: OpenAI's CLIP.forward (and
// open_clip's, and HuggingFace's) does not clamp at inference, and checkpoints trained with the clamp hold
// logit_scale ≤ ln 100 anyway.
func hostLogits(imageFeatures, textFeatures [][]float32, logitScale float64) [][]float32 {
	scale := math.Exp(logitScale)
	norm := func(rows [][]float32) [][]float64 {
		out := make([][]float64, len(rows))
		for i, r := range rows {
			var ss float64
			for _, v := range r {
				ss += float64(v) * float64(v)
			}
			n := math.Sqrt(ss + 1e-12)
			out[i] = make([]float64, len(r))
			for j, v := range r {
				out[i][j] = float64(v) / n
			}
		}
		return out
	}
	im, tx := norm(imageFeatures), norm(textFeatures)
	logits := make([][]float32, len(im))
	for i, a := range im {
		logits[i] = make([]float32, len(tx))
		for j, b := range tx {
			var dot float64
			for k := range a {
				dot += a[k] * b[k]
			}
			logits[i][j] = float32(scale * dot)
		}
	}
	return logits
}
