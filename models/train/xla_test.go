package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/internal/xlatest"
)

// relDiff is the largest |a−b| / max(|b|, floor) over two equally long series.
func relDiff(a, b []float64, floor float64) float64 {
	var worst float64
	for i := range a {
		worst = max(worst, math.Abs(a[i]-b[i])/max(math.Abs(b[i]), floor))
	}
	return worst
}

// TestDataParallelMatchesOneDevice: on XLA with N simulated host devices, a batch split over N devices gives
// the losses of one device with the same global batch, step for step, and nearly the same weights.
func TestDataParallelMatchesOneDevice(t *testing.T) {
	be := xlatest.Devices(t, 4)
	data := RandomData(tinyConfig(), 32, 5)
	one, oneParams := fitOn(t, be, 7, smallOptions(), data)
	for _, n := range []int{2, 4} {
		t.Run(fmt.Sprintf("%d devices", n), func(t *testing.T) {
			opts := smallOptions()
			opts.Devices = n
			losses, params := fitOn(t, be, 7, opts, data)
			checkClose(t, "one device", losses, one, params, oneParams)
		})
	}
}

// maxAbsDiff32 is the largest |a[i]−b[i]|.
func maxAbsDiff32(a, b []float32) float64 {
	var worst float64
	for i := range a {
		worst = max(worst, math.Abs(float64(a[i])-float64(b[i])))
	}
	return worst
}

// TestResNetTrainsOnXLA: on XLA a ModifiedResNet image tower trains (the pure-Go backend refuses it, see
// TestResNetOnPureGo). With the text tower and the logit scale frozen, only the image tower can lower the loss,
// and it falls below ln(batch), the least a loss can be while the image embeddings do not tell the images
// apart; every convolution moves, and the BatchNorm running statistics (loaded, never trained) stay put.
func TestResNetTrainsOnXLA(t *testing.T) {
	be := xlatest.Backend(t)
	cfg := resNetConfig()
	cfg.VisionWidth = 8 // resNetConfig's 2 leaves the stem one channel wide
	ctx, err := clip.NewContext(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	before, err := clip.ParamsToTensors(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	opts := smallOptions()
	opts.Epochs, opts.LearningRate, opts.Freeze = 30, 3e-3, []string{"text", "logit_scale"}
	tr, err := New(be, cfg, ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	stats, err := tr.Fit(colouredData(cfg, 16))
	if err != nil {
		t.Fatal(err)
	}
	first, last := stats[0].MeanLoss, stats[len(stats)-1].MeanLoss
	if bound := math.Log(float64(opts.BatchSize)) - 0.1; !(last < bound) {
		t.Errorf("mean loss went from %.3f (first epoch) to %.3f (last), not below %.3f: the image tower does not learn",
			first, last, bound)
	}
	after, err := clip.ParamsToTensors(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var convs, convsMoved int
	for i, p := range cfg.Params() {
		same := slices.Equal(before[i].F32, after[i].F32)
		switch {
		case p.Buffer && !same:
			t.Errorf("BatchNorm statistic %s changed", p.Name)
		case p.Tower() == "visual" && len(p.Dims) == 4: // convolution kernels
			convs++
			if !same {
				convsMoved++
			}
		}
	}
	if convs == 0 || convsMoved != convs {
		t.Errorf("%d of %d convolution kernels of the image tower moved, want all", convsMoved, convs)
	}
}

// colouredData is RandomData with a colour of its own added to each image (the noise scaled down): a fresh
// ModifiedResNet, whose BatchNorm runs in eval mode with unit running variance, shrinks pixel noise to almost
// nothing before its attention pool, while a colour survives the pooling.
func colouredData(cfg clip.Config, n int) *Data {
	data := RandomData(cfg, n, 2)
	rng := rand.New(rand.NewPCG(1, 2))
	c := cfg.ImageChannels
	for _, img := range data.Images {
		colour := make([]float32, c)
		for k := range colour {
			colour[k] = float32(rng.NormFloat64())
		}
		for j := range img {
			img[j] = 0.2*img[j] + colour[j%c]
		}
	}
	return data
}

// TestTrainingAgreesAcrossBackends: the same seed trains to the same losses and weights on XLA as on the pure-Go
// backend, up to float32 rounding compounded over the steps.
func TestTrainingAgreesAcrossBackends(t *testing.T) {
	onXLA := xlatest.Backend(t)
	data := RandomData(tinyConfig(), 32, 5)
	goLosses, goParams := fitOn(t, pureGoBackend(t), 7, smallOptions(), data)
	xlaLosses, xlaParams := fitOn(t, onXLA, 7, smallOptions(), data)
	checkClose(t, "the pure-Go backend", xlaLosses, goLosses, xlaParams, goParams)
}

// checkClose fails t unless each loss is within 1e-5 (relative) of the reference's and each weight within 1e-4:
// float32 rounding, summed in another order and carried through AdamW's steps, stays well inside both.
func checkClose(t *testing.T, ref string, losses, refLosses []float64, params, refParams map[string][]float32) {
	t.Helper()
	if len(losses) != len(refLosses) || len(losses) == 0 {
		t.Fatalf("%d steps, %d with %s", len(losses), len(refLosses), ref)
	}
	if d := relDiff(losses, refLosses, 1e-3); d > 1e-5 {
		t.Errorf("losses differ by up to %.2g (relative) from %s's:\n%v\n%v", d, ref, losses, refLosses)
	}
	for name, v := range params {
		if d := maxAbsDiff32(v, refParams[name]); d > 1e-4 {
			t.Errorf("parameter %s differs by up to %.2g from %s's", name, d, ref)
		}
	}
}

// TestDevicesValidated: a device count the batch or the backend cannot take is refused by New, naming why.
func TestDevicesValidated(t *testing.T) {
	cases := []struct {
		devices, batch int
		want           string
	}{
		{-1, 8, "cannot be split"},
		{3, 8, "cannot be split over 3 devices"},
		{2, 8, "needs XLA"},
	}
	for _, c := range cases {
		cfg := tinyConfig()
		ctx, err := clip.NewContext(cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		opts := smallOptions()
		opts.Devices, opts.BatchSize = c.devices, c.batch
		_, err = New(pureGoBackend(t), cfg, ctx, opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%d devices, batch %d: error %v, want one saying %q", c.devices, c.batch, err, c.want)
		}
	}
}
