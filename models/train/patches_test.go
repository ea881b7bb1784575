package train

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"

	"github.com/mmpoison/mmpoison/models/backend"
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
	want, _ := fitParams(t, 3, smallOptions(), data)
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
