// Package bench measures mmpoison's training and embedding speed on the current backend, in the shapes the
// PyTorch yardstick (shared/bench/torch_clip_bench.py) uses, so the two can be compared side by side:
// seconds per training step (median after warm-up), image-caption pairs per second for embedding (both towers
// plus the similarity matrix and the ranks), and the process's peak memory.
package bench

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/mmpoison/mmpoison/evalkit/metrics"
	"github.com/mmpoison/mmpoison/kernelext"
	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/train"
)

// Case is one measurement: a preset at a batch size.
type Case struct {
	Preset string `json:"preset"`
	Batch  int    `json:"batch"`
	// VocabSize of the random tokens (the yardstick's default is 1000).
	VocabSize int `json:"vocab_size"`
}

// Measurement is what one case measured.
type Measurement struct {
	Case
	// StepSeconds are the timed training steps; StepMedian their median.
	StepSeconds []float64 `json:"step_seconds"`
	StepMedian  float64   `json:"step_median_s"`
	// EmbedPairs pairs were embedded (images and captions) and ranked in EmbedSeconds.
	EmbedPairs     int     `json:"embed_pairs"`
	EmbedSeconds   float64 `json:"embed_seconds"`
	EmbedPairsPerS float64 `json:"embed_pairs_per_s"`
	TrainFLOPs     float64 `json:"train_flops_per_step"`
	TrainGFLOPS    float64 `json:"train_gflops"`
	PeakRSSMiB     float64 `json:"peak_rss_mib"`
	Backend        string  `json:"backend"`
	// CompileSeconds is the first training step, which compiles it (not part of StepSeconds);
	// EmbedCompileSeconds the first, untimed embedding batch, which compiles both towers.
	CompileSeconds      float64 `json:"compile_seconds"`
	EmbedCompileSeconds float64 `json:"embed_compile_seconds"`
}

// Result is the measurement as one line that reads like the PyTorch yardstick's: first_step_s is the
// compiling first step, apart from step_median_s; embed_first_batch_s the compiling first embedding batch.
func (m *Measurement) Result() string {
	return fmt.Sprintf("RESULT preset=%s batch=%d step_median_s=%.4f first_step_s=%.3f embed_pairs_per_s=%.1f "+
		"embed_first_batch_s=%.3f gflops=%.2f peak_rss_mib=%.0f", m.Preset, m.Batch, m.StepMedian, m.CompileSeconds,
		m.EmbedPairsPerS, m.EmbedCompileSeconds, m.TrainGFLOPS, m.PeakRSSMiB)
}

// TrainFLOPs estimates the floating-point operations of one training step (3× the forward matmuls: forward,
// and two matmuls per weight in the backward pass), counting a multiply-add as 2.
func TrainFLOPs(cfg clip.Config, batch int) float64 {
	tower := func(tokens, width, layers int) float64 {
		perLayer := 2*float64(tokens)*float64(width)*float64(width)*12 + // qkv (3), out (1), mlp (8)
			2*2*float64(tokens)*float64(tokens)*float64(width) // scores and weighted values
		return float64(layers) * perLayer
	}
	p := cfg.PatchSize
	patch := 2 * float64(cfg.NumPatches()) * float64(cfg.ImageChannels*p*p) * float64(cfg.VisionWidth)
	fwd := patch + tower(cfg.NumPatches()+1, cfg.VisionWidth, cfg.VisionLayers) +
		tower(cfg.ContextLength, cfg.TextWidth, cfg.TextLayers) +
		2*float64(cfg.VisionWidth+cfg.TextWidth)*float64(cfg.EmbedDim)
	return 3 * fwd * float64(batch)
}

// Run measures a case: warmup untimed training steps, then steps timed ones, then embedding of embedPairs pairs
// with the similarity matrix and ranks.
func Run(b backends.Backend, c Case, warmup, steps, embedPairs int) (*Measurement, error) {
	cfg, err := clip.Preset(c.Preset)
	if err != nil {
		return nil, err
	}
	cfg.VocabSize = c.VocabSize
	ctx, err := clip.NewContext(cfg, 1)
	if err != nil {
		return nil, err
	}
	m := &Measurement{Case: c, Backend: b.Name()}
	if warmup+steps > 0 {
		if err := measureTraining(b, cfg, ctx, c, warmup, steps, m); err != nil {
			return nil, err
		}
	}
	if embedPairs > 0 {
		if err := measureEmbedding(b, cfg, ctx, c, embedPairs, m); err != nil {
			return nil, err
		}
	}
	m.PeakRSSMiB = PeakRSSMiB()
	return m, nil
}

// measureTraining times warmup+steps training steps on random data, keeping the last steps.
func measureTraining(b backends.Backend, cfg clip.Config, ctx *context.Context, c Case, warmup, steps int, m *Measurement) error {
	opts := train.DefaultOptions()
	opts.BatchSize, opts.Epochs = c.Batch, 1
	tr, err := train.New(b, cfg, ctx, opts)
	if err != nil {
		return err
	}
	data := train.RandomData(cfg, c.Batch, 1)
	for i := range warmup + steps {
		start := time.Now()
		tr.Restart()
		if _, err := tr.Fit(data); err != nil {
			return err
		}
		if i == 0 {
			m.CompileSeconds = time.Since(start).Seconds()
		}
		if i >= warmup {
			m.StepSeconds = append(m.StepSeconds, time.Since(start).Seconds())
		}
	}
	m.StepMedian = median(m.StepSeconds)
	m.TrainFLOPs = TrainFLOPs(cfg, c.Batch)
	m.TrainGFLOPS = m.TrainFLOPs / m.StepMedian / 1e9
	return nil
}

// measureEmbedding times embedding n random pairs (both towers, after one compiling batch) plus the similarity
// matrix and the ranks.
func measureEmbedding(b backends.Backend, cfg clip.Config, ctx *context.Context, c Case, n int, m *Measurement) error {
	emb, err := clip.NewEmbedder(b, ctx, cfg, c.Batch)
	if err != nil {
		return err
	}
	pairs := train.RandomData(cfg, n, 2)
	warm := min(c.Batch, n)
	start := time.Now()
	if _, err := emb.Images(pairs.Images[:warm]); err != nil { // Warm-up: compile both towers.
		return err
	}
	if _, err := emb.Texts(pairs.Tokens[:warm]); err != nil {
		return err
	}
	m.EmbedCompileSeconds = time.Since(start).Seconds()
	start = time.Now()
	img, err := emb.Images(pairs.Images)
	if err != nil {
		return err
	}
	txt, err := emb.Texts(pairs.Tokens)
	if err != nil {
		return err
	}
	sim := metrics.CosineSimilarity(txt, img)
	for i := range sim {
		metrics.MinRank(sim[i], []int{i})
	}
	m.EmbedPairs, m.EmbedSeconds = n, time.Since(start).Seconds()
	m.EmbedPairsPerS = float64(n) / m.EmbedSeconds
	return nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// PeakRSSMiB returns the process's peak resident memory (VmHWM on Linux; the Go runtime's Sys elsewhere).
func PeakRSSMiB() float64 {
	if data, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "VmHWM:") {
				f := strings.Fields(line)
				if len(f) >= 2 {
					if kb, err := strconv.ParseFloat(f[1], 64); err == nil {
						return kb / 1024
					}
				}
			}
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.Sys) / (1 << 20)
}

// Table renders measurements.
func Table(ms []*Measurement) *kernelext.Table {
	t := kernelext.NewTable("mmpoison speed", "backend", "preset", "batch", "train step (median s)", "GFLOP/s",
		"embed pairs/s", "first step incl. compile (s)", "first embed batch incl. compile (s)", "peak RSS (MiB)")
	for _, m := range ms {
		t.AddRow(m.Backend, m.Preset, fmt.Sprint(m.Batch), fmt.Sprintf("%.3f", m.StepMedian),
			fmt.Sprintf("%.1f", m.TrainGFLOPS), fmt.Sprintf("%.0f", m.EmbedPairsPerS),
			fmt.Sprintf("%.2f", m.CompileSeconds), fmt.Sprintf("%.2f", m.EmbedCompileSeconds), fmt.Sprintf("%.0f", m.PeakRSSMiB))
	}
	t.AddNote("Training steps use random data of the preset's shapes (vocabulary 1000, as the PyTorch yardstick); " +
		"embedding covers both towers, the cosine-similarity matrix and the ranks. Peak RSS is cumulative over the process.")
	return t
}
