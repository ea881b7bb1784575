package fastdot_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"golang.org/x/sys/cpu"

	"github.com/mmpoison/mmpoison/models/backend"
	"github.com/mmpoison/mmpoison/models/clip"
	"github.com/mmpoison/mmpoison/models/internal/fastdot"
	"github.com/mmpoison/mmpoison/models/train"
)

func goBackend(t testing.TB) backends.Backend {
	t.Helper()
	b, err := backend.FromConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// requireInstalled fails where models/backend should have installed the kernel: amd64 with AVX2 and FMA, not
// disabled.
func requireInstalled(t testing.TB) {
	t.Helper()
	backend.Patch()
	if fastdot.Installed() {
		return
	}
	if os.Getenv(fastdot.EnvVar) == "0" || runtime.GOARCH != "amd64" || !cpu.X86.HasAVX2 || !cpu.X86.HasFMA {
		t.Skipf("fastdot not installed here: %s", fastdot.Reason())
	}
	t.Fatalf("fastdot not installed: %s", fastdot.Reason())
}

// withStock runs fn with simplego's stock DotGeneral kernel.
func withStock(fn func()) {
	fastdot.Uninstall()
	defer reinstall()
	fn()
}

func reinstall() {
	if err := fastdot.Install(nil); err != nil {
		panic(err)
	}
}

// TestGraphDotGeneral runs graph.DotGeneral on the models/backend pure-Go backend with the package's kernel and
// with the stock one, and compares both with a naive reference.
func TestGraphDotGeneral(t *testing.T) {
	requireInstalled(t)
	be := goBackend(t)
	for ci, c := range fastdot.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(ci), 11))
			lhs, rhs := fastdot.RandomData(r, c.LhsDims), fastdot.RandomData(r, c.RhsDims)
			exec, err := graph.NewExec(be, func(l, r *graph.Node) *graph.Node {
				return graph.DotGeneral(l, c.LhsContract, c.LhsBatch, r, c.RhsContract, c.RhsBatch)
			})
			if err != nil {
				t.Fatal(err)
			}
			defer exec.Finalize()
			run := func() []float32 {
				out, err := exec.Exec(tensors.FromFlatDataAndDimensions(lhs, c.LhsDims...),
					tensors.FromFlatDataAndDimensions(rhs, c.RhsDims...))
				if err != nil {
					t.Fatal(err)
				}
				return tensors.MustCopyFlatData[float32](out[0])
			}
			fast := run()
			var stock []float32
			withStock(func() { stock = run() })
			want, scale := fastdot.Naive(c, lhs, rhs)
			if len(fast) != len(want) || len(stock) != len(want) {
				t.Fatalf("got %d (fast) and %d (stock) elements, want %d", len(fast), len(stock), len(want))
			}
			bad := 0
			for i := range want {
				tol := 1e-5*scale[i] + 1e-30
				dFast, dStock := math.Abs(float64(fast[i])-want[i]), math.Abs(float64(fast[i])-float64(stock[i]))
				if !(dFast <= tol) || !(dStock <= tol) {
					if bad < 3 {
						t.Errorf("element %d: fastdot %v, stock %v, naive %v", i, fast[i], stock[i], want[i])
					}
					bad++
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d elements differ", bad, len(want))
			}
		})
	}
	if !fastdot.Installed() { // false if simplego's node data did not pass the checks.
		t.Errorf("fastdot stopped being used: %s", fastdot.Reason())
	}
}

// TestGraphOtherDTypes checks that float64 DotGeneral still runs (on the stock kernel).
func TestGraphOtherDTypes(t *testing.T) {
	be := goBackend(t)
	got := graph.MustExecOnce(be, func(l, r *graph.Node) *graph.Node { return graph.Dot(l, r) },
		[][]float64{{1, 2}, {3, 4}}, [][]float64{{5, 6}, {7, 8}})
	if want := [][]float64{{19, 22}, {43, 50}}; fmt.Sprint(got.Value()) != fmt.Sprint(want) {
		t.Errorf("float64 Dot = %v, want %v", got.Value(), want)
	}
}

// TestEnvVarDisables runs the test binary again with $MMPOISON_FASTDOT=0 and checks that models/backend leaves
// the kernel out, without a notice.
func TestEnvVarDisables(t *testing.T) {
	if os.Getenv("FASTDOT_TEST_CHILD") == "1" {
		if _, err := backend.FromConfig("go"); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("installed=%v reason=%q\n", fastdot.Installed(), fastdot.Reason())
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestEnvVarDisables$")
	cmd.Env = append(os.Environ(), "FASTDOT_TEST_CHILD=1", fastdot.EnvVar+"=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child test binary: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `installed=false reason="disabled by $`+fastdot.EnvVar+`=0"`) ||
		strings.Contains(string(out), "mmpoison:") {
		t.Errorf("with %s=0 the child reported:\n%s", fastdot.EnvVar, out)
	}
}

// BenchmarkTrainStep measures a training step of the tiny preset at batch 64 with the package's kernel (also
// with each DotGeneral on one goroutine) and with the stock one.
func BenchmarkTrainStep(b *testing.B) {
	be := goBackend(b)
	for _, kernel := range []string{"fastdot", "fastdot-serial", "stock"} {
		b.Run(kernel, func(b *testing.B) {
			switch kernel {
			case "fastdot-serial":
				defer fastdot.SetParallelMinFlops(fastdot.SetParallelMinFlops(math.MaxInt))
			case "stock":
				fastdot.Uninstall()
				defer reinstall()
			}
			cfg := clip.Presets["tiny"]
			cfg.VocabSize = 1000
			ctx, err := clip.NewContext(cfg, 1)
			if err != nil {
				b.Fatal(err)
			}
			opts := train.DefaultOptions()
			opts.BatchSize = 64
			tr, err := train.New(be, cfg, ctx, opts)
			if err != nil {
				b.Fatal(err)
			}
			data := train.RandomData(cfg, 64, 1)
			if _, err := tr.Fit(data); err != nil { // warm-up: compiles the step.
				b.Fatal(err)
			}
			for b.Loop() {
				tr.Restart()
				if _, err := tr.Fit(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The kernel needs no call: models/backend installs it when it creates a backend, and graphs on the pure-Go
// backend use it.
func Example() {
	be, err := backend.FromConfig("go")
	if err != nil {
		panic(err)
	}
	product := graph.MustExecOnce(be, func(x, y *graph.Node) *graph.Node { return graph.Dot(x, y) },
		[][]float32{{1, 2}, {3, 4}}, [][]float32{{5, 6}, {7, 8}})
	fmt.Println(product.Value())
	// Output: [[19 22] [43 50]]
}
