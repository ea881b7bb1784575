// Package backend chooses the GoMLX backend mmpoison computes on.
//
// The rule: $GOMLX_BACKEND, when set, decides ("go" for the pure-Go backend, "xla:cpu", "xla:cuda", or an
// absolute plugin path as "xla:/path/to/pjrt_plugin.so"). Otherwise an XLA PJRT plugin that is already
// installed is used (faster than pure Go on a CPU, and the way to use a GPU); if none is installed,
// GoMLX's installer may try to fetch one (skipped when $GOMLX_NO_AUTO_INSTALL is set, and given at most
// InstallTimeout); failing that, the pure-Go backend runs, and one line on stderr says so.
//
// The pure-Go backend always gets the "parallelism=-1" setting: its default scheduler can deadlock on 2-core
// machines, and -1 was the fastest setting that cannot.
//
// Creating a backend here installs mmpoison's patches of GoMLX v0.26.0 (Patch): models/internal/gradfix's
// DotGeneral and Slice gradients (faster, and the Slice gradient runs on the pure-Go backend, which lacks Pad)
// and models/internal/fastdot's float32 DotGeneral kernel for the pure-Go backend where the CPU allows
// ($MMPOISON_FASTDOT=0 turns it off). Each checks the GoMLX release and the internals it reads; when anything
// differs, GoMLX's stock behaviour stays and one line on Notice says so.
package backend

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/backends/xla"

	"github.com/mmpoison/mmpoison/models/internal/fastdot"
	"github.com/mmpoison/mmpoison/models/internal/gradfix"
)

// GoConfig is the pure-Go backend's configuration: parallel kernels, ops scheduled so it cannot deadlock.
const GoConfig = "parallelism=-1"

// InstallTimeout bounds the attempt to install an XLA plugin when none is present.
var InstallTimeout = 20 * time.Second

// Notice is where the one-line notices about the chosen backend and the GoMLX patches go (nil: nowhere).
var Notice io.Writer = os.Stderr

// NotebookNotice is where those notices go inside a GoNB notebook instead (nil: nowhere), each once per
// notebook kernel: every cell runs as a new process, and an expected condition (no XLA plugin) should not print
// an error in every cell.
var NotebookNotice io.Writer = os.Stdout

var (
	mu        sync.Mutex
	shared    backends.Backend
	patchOnce sync.Once
)

// installer installs one GoMLX patch: it returns why the patch kept GoMLX's stock behaviour (nil when it did
// not have to), and passes later fallbacks to notice.
type installer func(notice func(msg string)) error

var patches = []installer{gradfix.Install, fastdot.Install}

// Patch installs the GoMLX patches (see the package documentation) once per process. New, Default and
// FromConfig call it, and so does models/train before it builds a training graph; other code that builds
// gradients on a backend made elsewhere (simplego.New, xla.New) calls it first. It must not run while a graph
// executes on the pure-Go backend.
func Patch() { patchOnce.Do(func() { installPatches(patches) }) }

// installPatches installs each patch; those that keep GoMLX's stock behaviour are reported in one line.
func installPatches(ps []installer) {
	var refused []string
	for _, install := range ps {
		if err := install(patchNotice); err != nil {
			refused = append(refused, err.Error())
		}
	}
	if len(refused) > 0 {
		notice("mmpoison: GoMLX's stock behaviour is kept: %s", strings.Join(refused, "; "))
	}
}

// patchNotice reports a patch that falls back after it was installed.
func patchNotice(msg string) { notice("mmpoison: %s", msg) }

// Default returns the process-wide backend, creating it on first use with New. Tensors can only be used with
// the backend that made them, so a program should share this one.
func Default() (backends.Backend, error) {
	mu.Lock()
	defer mu.Unlock()
	if shared != nil {
		return shared, nil
	}
	b, err := New()
	if err != nil {
		return nil, err
	}
	shared = b
	return b, nil
}

// New creates a backend following the package's rule.
func New() (backends.Backend, error) {
	if config, ok := os.LookupEnv(backends.ConfigEnvVar); ok && config != "" {
		return FromConfig(config)
	}
	xla.EnableAutoInstall(false)
	if plugins := xla.GetAvailablePlugins(); len(plugins) > 0 {
		return FromConfig("xla:" + plugins[0])
	}
	if _, off := os.LookupEnv(xla.NoAutoInstallEnv); !off {
		done := make(chan error, 1)
		go func() { done <- xla.AutoInstall() }()
		select {
		case err := <-done:
			if err == nil {
				if plugins := xla.GetAvailablePlugins(); len(plugins) > 0 {
					return FromConfig("xla:" + plugins[0])
				}
			}
		case <-time.After(InstallTimeout):
		}
	}
	notice("mmpoison: no XLA PJRT plugin found or installable: using the pure-Go backend (slower; set %s to choose)",
		backends.ConfigEnvVar)
	return FromConfig("go")
}

// FromConfig creates the backend named by a GOMLX_BACKEND-style configuration ("go", "go:...", "xla:cpu", ...),
// after Patch. The pure-Go backend always gets GoConfig.
func FromConfig(config string) (backends.Backend, error) {
	Patch()
	name, opts, _ := strings.Cut(config, ":")
	switch name {
	case "go", "simplego":
		if opts == "" {
			opts = GoConfig
		} else if !strings.Contains(opts, "parallelism") && !strings.Contains(opts, "ops_sequential") {
			opts = GoConfig + "," + opts
		}
		b, err := quietly(func() (backends.Backend, error) { return simplego.New(opts) })
		if err != nil {
			return nil, fmt.Errorf("backend %q: %w", config, err)
		}
		return b, nil
	case "xla", "stablehlo", "hlo", "pjrt":
		b, err := xla.New(opts)
		if err != nil {
			return nil, fmt.Errorf("backend %q: %w", config, err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("unknown backend %q in $%s: use \"go\" or \"xla:<plugin>\"", config, backends.ConfigEnvVar)
}

// quietly runs fn with os.Stdout pointed at the null device: GoMLX's pure-Go backend prints its parallelism
// setting to stdout, which would clutter notebook cells and command output on every start.
func quietly(fn func() (backends.Backend, error)) (backends.Backend, error) {
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return fn()
	}
	defer devNull.Close()
	saved := os.Stdout
	os.Stdout = devNull
	defer func() { os.Stdout = saved }()
	return fn()
}

// notice writes one line on Notice; inside a GoNB notebook (GoNB sets $GONB_PIPE, and $GONB_TMP_DIR to a
// folder of the kernel's) on NotebookNotice, and only the first time in the kernel, which a file in that folder
// named after the line remembers.
func notice(format string, args ...any) {
	line := fmt.Sprintf(format+"\n", args...)
	if dir := os.Getenv("GONB_TMP_DIR"); os.Getenv("GONB_PIPE") != "" && dir != "" {
		name := fmt.Sprintf("%s%cmmpoison-notice-%x", dir, os.PathSeparator, sha256.Sum256([]byte(line)))
		f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return // Shown before in this kernel.
		}
		f.Close()
		if NotebookNotice != nil {
			fmt.Fprint(NotebookNotice, line)
		}
		return
	}
	if Notice != nil {
		fmt.Fprint(Notice, line)
	}
}
