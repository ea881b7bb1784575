// Package train fine-tunes and pre-trains CLIP models: AdamW with decoupled weight decay on weight matrices
// only, a cosine learning-rate schedule with linear warm-up, seeded data order, frozen towers, progress
// reporting, NaN detection and atomic checkpoints that resume mid-epoch. Batches are prepared ahead of the
// step by a bounded, parallel feed, from pairs held in memory or streamed from any dataset.PairSource (Stream),
// so memory holds a few batches whatever the training set's size.
//
// The protocol mirrors the paper: pre-train a clean model on a pool of pairs, then fine-tune it (possibly on
// poisoned pairs) with Fit.
package train

import (
	gocontext "context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/distributed"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // GoMLX graph-building style.
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/mmpoison/mmpoison/models/backend"
	"github.com/mmpoison/mmpoison/models/clip"
)

// Options are the training hyper-parameters. DefaultOptions holds CLIP fine-tuning defaults.
type Options struct {
	Epochs    int `json:"epochs"`
	BatchSize int `json:"batch_size"`
	// LearningRate is the peak rate; MinLearningRate is where the cosine schedule ends.
	LearningRate    float64 `json:"learning_rate"`
	MinLearningRate float64 `json:"min_learning_rate"`
	// WarmupSteps of linear warm-up from 0 to LearningRate.
	WarmupSteps int     `json:"warmup_steps"`
	WeightDecay float64 `json:"weight_decay"`
	Beta1       float64 `json:"beta1"`
	Beta2       float64 `json:"beta2"`
	Epsilon     float64 `json:"epsilon"`
	// Seed drives the data order (one permutation per epoch).
	Seed uint64 `json:"seed"`
	// Freeze names towers whose parameters stay fixed: "visual" (image tower) and/or "text". The logit scale is
	// trained unless "logit_scale" is listed.
	Freeze []string `json:"freeze,omitempty"`
	// Checkpoint, when set, is the path written (atomically) after every epoch, every CheckpointEvery steps
	// and when FitContext is stopped, and read by Resume to go on from the step after the one it records.
	Checkpoint string `json:"-"`
	// CheckpointEvery, when positive, also writes the checkpoint after every that many global steps, so a
	// killed run loses at most that many.
	CheckpointEvery int `json:"-"`
	// Progress, when set, is called after every step.
	Progress func(Progress) `json:"-"`
	// SelfSupervised, when set, trains with CleanCLIP's objective (multimodal plus in-modality losses on
	// augmented views, see selfsup.go) instead of the CLIP loss alone.
	SelfSupervised *SelfSupervised `json:"self_supervised,omitempty"`
	// Devices is the number of devices a step runs on, data-parallel (0 or 1: one). Each device holds a copy
	// of the model and the optimizer state and computes on BatchSize/Devices pairs of each batch; XLA's SPMD
	// partitioner (GoMLX's AutoSharding strategy) adds the communication, so the loss and the update are the
	// whole batch's, as on one device, up to the order of floating-point sums. BatchSize must be a multiple of
	// it, and the backend must have the devices (models/backend.DefaultDevices; XLA only).
	Devices int `json:"devices,omitempty"`
	// EpochEnd, when set, is called after every epoch (after its checkpoint is written) with the model as
	// trained so far; experiments use it to evaluate per epoch. An error stops training and is returned.
	EpochEnd func(EpochStats) error `json:"-"`
}

// DefaultOptions returns CLIP fine-tuning defaults (AdamW β=(0.9, 0.98), ε=1e-6, weight decay 0.2, as in the
// paper's setup), with a learning rate suited to the tiny preset trained from scratch.
func DefaultOptions() Options {
	return Options{Epochs: 1, BatchSize: 64, LearningRate: 1e-3, MinLearningRate: 1e-5, WarmupSteps: 50,
		WeightDecay: 0.2, Beta1: 0.9, Beta2: 0.98, Epsilon: 1e-6, Seed: 42}
}

// Progress is reported after every training step.
type Progress struct {
	Epoch, Epochs    int
	Step, TotalSteps int // Global step (1-based) and total steps of the run.
	Loss             float64
	LogitScale       float64 // exp(logit_scale), the inverse temperature.
	LearningRate     float64
	Elapsed          time.Duration
}

// EpochStats summarises one epoch.
type EpochStats struct {
	Epoch      int     `json:"epoch"`
	MeanLoss   float64 `json:"mean_loss"`
	LogitScale float64 `json:"logit_scale"`
	Seconds    float64 `json:"seconds"`
}

// Data is what training iterates over: preprocessed images and tokenised pairs held in memory, or a Stream
// that reads them on demand. Either way a goroutine prepares the batches ahead of the steps (Prefetch), in the
// seeded order of Order32.
type Data struct {
	// Images are preprocessed images (H·W·C float32 each, see clip.Preprocess).
	Images [][]float32
	// ImageOf[i] indexes Images for pair i; Tokens[i] is its caption's token ids (ContextLength long).
	ImageOf []int
	Tokens  [][]int32
	// View, when set, makes the preprocessed image a batch trains on each time the batch draws image i (an
	// index as in ImageOf), in place of Images[i], which is then unused (it may be nil): a training
	// augmentation such as the paper's random resized crop, or images read from disk per batch. Each call
	// gets its own generator, seeded by Options.Seed, the global step and the position in the batch, so that
	// the same seed (and a resumed run) gives the same views and every step new ones. The views of a batch
	// are made in parallel: View must be safe for concurrent use. An error stops training.
	View func(image int, rng *rand.Rand) ([]float32, error)
	// Stream, when set, reads the pairs on demand instead of Images, ImageOf, Tokens and View (all unused).
	Stream *Stream
	// Prefetch is the number of batches prepared ahead of the step being trained (0: DefaultPrefetch); memory
	// holds Prefetch + 2 batches. Workers is the number of goroutines that make a batch's views or read its
	// streamed pairs (0: GOMAXPROCS).
	Prefetch, Workers int
}

// NumPairs returns the number of pairs.
func (d *Data) NumPairs() int {
	if d.Stream != nil {
		return d.Stream.Pairs.NumPairs()
	}
	return len(d.ImageOf)
}

// ErrNaNLoss is wrapped by the error Fit returns when the loss stops being finite.
var ErrNaNLoss = errors.New("loss is not finite")

// Trainer holds a compiled training step for one model and one set of options.
type Trainer struct {
	backend backends.Backend
	cfg     clip.Config
	ctx     *context.Context
	opts    Options
	specs   []clip.ParamSpec
	exec    *context.Exec
	// inSpecs shard each input of exec over Options.Devices devices (nil on one device).
	inSpecs []*distributed.ShardingSpec
	// State of the run, saved in checkpoints: epochs finished, global steps done, steps done in the current
	// epoch and the sum of their losses.
	epoch, step, epochStep int
	epochLoss              float64
	// totalSteps is the number of steps of the whole run (for the learning-rate schedule).
	totalSteps int
	// augImg and augTok hold the augmented views of a batch (SelfSupervised only).
	augImg []float32
	augTok []int32
}

// New prepares a trainer for the model whose parameters live in ctx, on backend be. It creates the optimizer
// state, and installs models/backend's GoMLX patches (backend.Patch) if no backend from that package has: the
// pure-Go backend needs the Slice gradient of models/internal/gradfix.
func New(be backends.Backend, cfg clip.Config, ctx *context.Context, opts Options) (*Trainer, error) {
	if opts.BatchSize < 2 {
		return nil, fmt.Errorf("train: batch size must be at least 2 for a contrastive loss, got %d", opts.BatchSize)
	}
	if opts.Epochs < 0 || math.IsNaN(opts.LearningRate) || opts.LearningRate <= 0 {
		return nil, fmt.Errorf("train: invalid epochs %d or learning rate %g", opts.Epochs, opts.LearningRate)
	}
	for _, f := range opts.Freeze {
		if f != "visual" && f != "text" && f != "logit_scale" {
			return nil, fmt.Errorf("train: cannot freeze %q: valid values are \"visual\", \"text\" and \"logit_scale\"", f)
		}
	}
	if opts.Devices < 0 || opts.Devices > 1 && opts.BatchSize%opts.Devices != 0 {
		return nil, fmt.Errorf("train: batch size %d cannot be split over %d devices", opts.BatchSize, opts.Devices)
	}
	if have := be.NumDevices(); opts.Devices > have {
		return nil, fmt.Errorf("train: %d devices asked for, the backend (%s) has %d: data-parallel training needs "+
			"XLA (an XLA CPU plugin simulates as many host devices as models/backend.DefaultDevices asks for)",
			opts.Devices, be.Name(), have)
	}
	if _, pureGo := be.(*simplego.Backend); pureGo && cfg.IsResNet() && !slices.Contains(opts.Freeze, "visual") {
		return nil, fmt.Errorf("train: model %q has a ModifiedResNet image tower, which cannot be trained on the pure-Go "+
			"backend (%s): GoMLX v0.26.0 has no convolution gradients there. Use the XLA backend (GOMLX_BACKEND=xla:cpu or "+
			"xla:cuda, see models/backend), or freeze the image tower (Freeze: visual)", cfg.Name, be.Name())
	}
	backend.Patch()
	t := &Trainer{backend: be, cfg: cfg, ctx: ctx, opts: opts}
	for _, p := range cfg.Params() {
		tower := p.Tower()
		if tower == "" {
			tower = "logit_scale"
		}
		if !slices.Contains(opts.Freeze, tower) && !p.Buffer { // BatchNorm running statistics are never trained.
			t.specs = append(t.specs, p)
		}
	}
	params := make([]*context.Variable, len(t.specs))
	pctx := ctx.In(clip.Scope)
	for i, p := range t.specs {
		params[i] = pctx.GetVariableByScopeAndName(pctx.Scope(), p.Name)
		if params[i] == nil {
			return nil, fmt.Errorf("train: parameter %q is missing from the model", p.Name)
		}
		adamState(ctx, p)
	}
	var err error
	if opts.SelfSupervised != nil {
		if t.exec, err = t.selfSupervisedExec(be, params); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		return t, t.distribute(4, 3)
	}
	t.exec, err = context.NewExec(be, ctx, func(ctx *context.Context, images, tokens, lr, bc1, bc2 *Node) []*Node {
		loss := clip.Loss(ctx, cfg, images, tokens)
		nodes := make([]*Node, len(params))
		for i, v := range params {
			nodes[i] = v.ValueGraph(images.Graph())
		}
		grads := Gradient(loss, nodes...)
		adamWUpdate(ctx, t.opts, t.specs, params, grads, lr, bc1, bc2)
		return []*Node{loss, clip.LogitScale(ctx, images.Graph())}
	})
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return t, t.distribute(2, 3)
}

// batchAxis names the axis of the device mesh that data-parallel training splits batches over.
const batchAxis = "batch"

// distribute makes exec data-parallel over Options.Devices devices: the first batchInputs inputs are split
// along their first axis, the scalars after them, the model, the optimizer state and the outputs replicated.
func (t *Trainer) distribute(batchInputs, scalars int) error {
	if t.opts.Devices <= 1 {
		return nil
	}
	mesh, err := distributed.NewDeviceMesh([]int{t.opts.Devices}, []string{batchAxis})
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	split, err := distributed.BuildSpec(mesh).S(batchAxis).Done()
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	whole := distributed.NewReplicatedShardingSpec(mesh)
	for i := range batchInputs + scalars {
		t.inSpecs = append(t.inSpecs, split)
		if i >= batchInputs {
			t.inSpecs[i] = whole
		}
	}
	t.exec.AutoSharding(mesh).WithInputShardingSpecs(t.inSpecs...).WithOutputShardingSpecs(whole)
	return nil
}

// run executes one step on its inputs (tensors or float32 scalars), on every device when there are several,
// and returns the outputs (those of the first device: they are replicated).
func (t *Trainer) run(args ...any) ([]*tensors.Tensor, error) {
	if t.inSpecs == nil {
		return t.exec.Exec(args...)
	}
	for i, a := range args {
		x, ok := a.(*tensors.Tensor)
		if !ok {
			x = tensors.FromAnyValue(a)
		}
		var err error
		if args[i], err = distributed.ShardTensor(t.inSpecs[i], x); err != nil {
			return nil, err
		}
	}
	outs, err := t.exec.Exec(args...)
	if err != nil {
		return nil, err
	}
	return outs[:len(outs)/t.opts.Devices], nil
}

// StepsPerEpoch is the number of full batches in an epoch (the last, partial batch is dropped, as in CLIP's
// training, so every step has the same shape and compiles once).
func (t *Trainer) StepsPerEpoch(numPairs int) int { return numPairs / t.opts.BatchSize }

// Order returns the seeded permutation of pair indices for a 0-based epoch.
func Order(seed uint64, epoch, numPairs int) []int {
	rng := rand.New(rand.NewPCG(seed, uint64(epoch)+0x6f72646572))
	return rng.Perm(numPairs)
}

// Fit trains for the remaining epochs (all of them, or those after a resumed checkpoint) and returns the
// statistics of each epoch it ran.
func (t *Trainer) Fit(data *Data) ([]EpochStats, error) {
	return t.FitContext(gocontext.Background(), data)
}

// FitContext is Fit that stops before the next step once ctx is done, returning ctx's error. With a checkpoint
// configured, the position reached (mid-epoch included) is then written to it, so a later Resume goes on from
// the next step.
func (t *Trainer) FitContext(ctx gocontext.Context, data *Data) ([]EpochStats, error) {
	n := data.NumPairs()
	steps := t.StepsPerEpoch(n)
	if steps == 0 {
		return nil, fmt.Errorf("train: %d pairs are fewer than one batch of %d", n, t.opts.BatchSize)
	}
	if data.Stream != nil && (data.Stream.Pairs == nil || data.Stream.Encode == nil) {
		return nil, fmt.Errorf("train: Data.Stream needs Pairs and Encode")
	}
	if t.epochStep >= steps {
		return nil, fmt.Errorf("train: the resumed position, step %d of epoch %d, is past the %d steps of an epoch of %d pairs",
			t.epochStep, t.epoch+1, steps, n)
	}
	run := &fitRun{start: time.Now(), total: steps * t.opts.Epochs, steps: steps}
	t.totalSteps = run.total
	var history []EpochStats
	for epoch := t.epoch; epoch < t.opts.Epochs; epoch++ {
		st, err := t.fitEpoch(ctx, data, run, epoch)
		if err != nil {
			return history, err
		}
		history = append(history, st)
		if t.opts.Checkpoint != "" {
			if err := t.SaveCheckpoint(t.opts.Checkpoint); err != nil {
				return history, err
			}
		}
		if t.opts.EpochEnd != nil {
			if err := t.opts.EpochEnd(st); err != nil {
				return history, fmt.Errorf("train: after epoch %d: %w", epoch+1, err)
			}
		}
	}
	return history, nil
}

// fitRun is what the epochs of one Fit share.
type fitRun struct {
	start        time.Time
	total, steps int
}

// fitEpoch trains the remaining steps of one epoch on batches from a feed, and moves the trainer's position to
// the next epoch.
func (t *Trainer) fitEpoch(ctx gocontext.Context, data *Data, run *fitRun, epoch int) (EpochStats, error) {
	epochStart := time.Now()
	f := t.startFeed(ctx, data, Order32(t.opts.Seed, epoch, data.NumPairs()), epoch, t.epochStep, run.steps)
	defer f.close()
	var scale float64
	for s := t.epochStep; s < run.steps; s++ {
		if err := ctx.Err(); err != nil {
			return EpochStats{}, t.stopped(epoch, err)
		}
		buf, ok := <-f.ready
		if !ok { // The feed saw ctx done before the step did.
			return EpochStats{}, t.stopped(epoch, ctx.Err())
		}
		if buf.err != nil {
			return EpochStats{}, fmt.Errorf("train: epoch %d step %d: %w", epoch+1, t.step+1, buf.err)
		}
		loss, sc, lr, err := t.step1(buf)
		f.free <- buf
		if err != nil {
			return EpochStats{}, err
		}
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return EpochStats{}, fmt.Errorf("train: epoch %d step %d (learning rate %g): %w (%v); the model in memory "+
				"is unusable, the last checkpoint on disk is kept", epoch+1, t.step+1, lr, ErrNaNLoss, loss)
		}
		scale = sc
		t.epochLoss += loss
		t.step++
		t.epochStep++
		if t.opts.Progress != nil {
			t.opts.Progress(Progress{Epoch: epoch + 1, Epochs: t.opts.Epochs, Step: t.step, TotalSteps: run.total,
				Loss: loss, LogitScale: sc, LearningRate: lr, Elapsed: time.Since(run.start)})
		}
		if every := t.opts.CheckpointEvery; every > 0 && t.opts.Checkpoint != "" && t.step%every == 0 && t.epochStep < run.steps {
			if err := t.SaveCheckpoint(t.opts.Checkpoint); err != nil {
				return EpochStats{}, err
			}
		}
	}
	st := EpochStats{Epoch: epoch + 1, MeanLoss: t.epochLoss / float64(run.steps), LogitScale: scale,
		Seconds: time.Since(epochStart).Seconds()}
	t.epoch, t.epochStep, t.epochLoss = epoch+1, 0, 0
	return st, nil
}

// stopped writes the checkpoint of the position reached (when one is configured) and returns the error of a
// run stopped by its context.
func (t *Trainer) stopped(epoch int, cause error) error {
	err := fmt.Errorf("train: stopped at epoch %d step %d: %w", epoch+1, t.step+1, cause)
	if t.opts.Checkpoint != "" {
		if cerr := t.SaveCheckpoint(t.opts.Checkpoint); cerr != nil {
			return errors.Join(err, cerr)
		}
	}
	return err
}

// step1 runs one training step on a prepared batch and returns its loss, the logit scale after it and its
// learning rate.
func (t *Trainer) step1(buf *batch) (loss, scale, lr float64, err error) {
	b := t.opts.BatchSize
	lr = CosineLR(t.step, t.opts.WarmupSteps, t.totalSteps, t.opts.LearningRate, t.opts.MinLearningRate)
	stepNum := float64(t.step + 1)
	bc1 := 1 - math.Pow(t.opts.Beta1, stepNum)
	bc2 := 1 - math.Pow(t.opts.Beta2, stepNum)
	images := tensors.FromFlatDataAndDimensions(buf.images, b, t.cfg.ImageSize, t.cfg.ImageSize, t.cfg.ImageChannels)
	tokens := tensors.FromFlatDataAndDimensions(buf.tokens, b, t.cfg.ContextLength)
	var outs []*tensors.Tensor
	if t.opts.SelfSupervised == nil {
		outs, err = t.run(images, tokens, float32(lr), float32(bc1), float32(bc2))
	} else {
		outs, err = t.selfSupervisedStep(images, tokens, buf.images, buf.tokens, lr, bc1, bc2)
	}
	if err != nil {
		return 0, 0, lr, fmt.Errorf("train: step %d: %w", t.step+1, err)
	}
	loss, scale = float64(tensors.ToScalar[float32](outs[0])), float64(tensors.ToScalar[float32](outs[1]))
	// Free the step's buffers now (on an accelerator's backend too), rather than when the garbage collector
	// gets to them: memory stays that of one step however many steps run.
	for _, x := range append(outs, images, tokens) {
		x.FinalizeAll()
	}
	return loss, scale, lr, nil
}

// Restart rewinds the run to its first epoch and step, keeping the current weights and optimizer moments
// (benchmarks use it to time single steps).
func (t *Trainer) Restart() { t.epoch, t.step, t.epochStep, t.epochLoss = 0, 0, 0, 0 }

// RandomData returns n synthetic pairs shaped for cfg: normal-noise images and token sequences with the start
// token, random words and the end token (the highest id) at a random position. Benchmarks and tests use it.
func RandomData(cfg clip.Config, n int, seed uint64) *Data {
	rng := rand.New(rand.NewPCG(seed, 3))
	d := &Data{}
	size := cfg.ImageSize * cfg.ImageSize * cfg.ImageChannels
	for i := range n {
		img := make([]float32, size)
		for j := range img {
			img[j] = float32(rng.NormFloat64())
		}
		d.Images = append(d.Images, img)
		d.ImageOf = append(d.ImageOf, i)
		toks := make([]int32, cfg.ContextLength)
		end := 2 + rng.IntN(cfg.ContextLength-2)
		toks[0] = int32(cfg.VocabSize - 2)
		for j := 1; j < end; j++ {
			toks[j] = int32(1 + rng.IntN(cfg.VocabSize-3))
		}
		toks[end] = int32(cfg.VocabSize - 1)
		d.Tokens = append(d.Tokens, toks)
	}
	return d
}
