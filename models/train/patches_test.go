package train

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"golang.org/x/sys/cpu"

	"github.com/mmpoison/mmpoison/models/backend"
	"github.com/mmpoison/mmpoison/models/internal/fastdot"
	"github.com/mmpoison/mmpoison/models/internal/gradfix"
)

// patchChildEnv selects, in a child test process, how TestTrainingInstallsPatches gets its backend.
const patchChildEnv = "TRAIN_PATCH_CHILD"

// TestTrainingInstallsPatches trains in fresh processes, where nothing has installed the GoMLX patches yet, on
// a pure-Go backend made without models/backend (simplego.New) and with backend.FromConfig: no patch may be
// installed before (no init-time install), and training must run (the stock Slice gradient needs Pad, which
// the pure-Go backend lacks) and give bit for bit the losses of this process.
func TestTrainingInstallsPatches(t *testing.T) {
	data := RandomData(tinyConfig(), 16, 4)
	if mode := os.Getenv(patchChildEnv); mode != "" {
		fmt.Printf("patched before: %v\n", gradfix.Installed())
		var be backends.Backend
		var err error
		switch mode {
		case "simplego.New":
			be, err = simplego.New(backend.GoConfig)
		case "backend.FromConfig":
			be, err = backend.FromConfig("go")
		}
		if err != nil {
			t.Fatal(err)
		}
		losses, _ := fitOn(t, be, 3, smallOptions(), data)
		fmt.Printf("patched after: %v\nlosses: %v\n", gradfix.Installed(), losses)
		return
	}
	want, _ := fitOn(t, pureGoBackend(t), 3, smallOptions(), data)
	for _, mode := range []string{"simplego.New", "backend.FromConfig"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestTrainingInstallsPatches$")
			cmd.Env = append(os.Environ(), patchChildEnv+"="+mode)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			for _, line := range []string{"patched before: false\n", "patched after: true\n", fmt.Sprintf("losses: %v\n", want)} {
				if !strings.Contains(string(out), line) {
					t.Errorf("child output lacks %q:\n%s", line, out)
				}
			}
		})
	}
}

// TestTrainingWithFastdot: with models/internal/fastdot's kernel, the same seed gives bit-identical losses and
// weights, and the losses match simplego's stock kernel's within float32 rounding.
func TestTrainingWithFastdot(t *testing.T) {
	be := pureGoBackend(t)
	if !fastdot.Installed() {
		if os.Getenv(fastdot.EnvVar) == "0" || runtime.GOARCH != "amd64" || !cpu.X86.HasAVX2 || !cpu.X86.HasFMA {
			t.Skipf("fastdot not installed here: %s", fastdot.Reason())
		}
		t.Fatalf("fastdot not installed: %s", fastdot.Reason())
	}
	data := RandomData(tinyConfig(), 32, 5)
	l1, p1 := fitOn(t, be, 7, smallOptions(), data)
	l2, p2 := fitOn(t, be, 7, smallOptions(), data)
	if !slices.Equal(l1, l2) {
		t.Fatalf("same seed, different losses:\n%v\n%v", l1, l2)
	}
	for name, v := range p1 {
		if !slices.Equal(v, p2[name]) {
			t.Fatalf("same seed, parameter %q differs", name)
		}
	}
	fastdot.Uninstall()
	stockLosses, _ := fitOn(t, be, 7, smallOptions(), data)
	if err := fastdot.Install(nil); err != nil || !fastdot.Installed() {
		t.Fatalf("reinstalling fastdot: %v (%s)", err, fastdot.Reason())
	}
	if len(stockLosses) != len(l1) || len(l1) == 0 {
		t.Fatalf("%d losses with fastdot, %d with the stock kernel", len(l1), len(stockLosses))
	}
	for i, l := range l1 {
		if math.Abs(l-stockLosses[i]) > 1e-4*math.Abs(stockLosses[i]) {
			t.Errorf("step %d: loss %v with fastdot, %v with the stock kernel", i, l, stockLosses[i])
		}
	}
}
