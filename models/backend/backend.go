// Package backend chooses the GoMLX backend mmpoison computes on.
//
// The rule: $GOMLX_BACKEND, when set, decides ("go" for the pure-Go backend, "xla:cpu", "xla:cuda", or an
// absolute plugin path as "xla:/path/to/pjrt_plugin.so"). Otherwise an XLA PJRT plugin that is already
// installed is used (about 10× faster than pure Go on a CPU, and the way to use a GPU); if none is installed,
// GoMLX's installer may try to fetch one (skipped when $GOMLX_NO_AUTO_INSTALL is set, and given at most
// InstallTimeout); failing that, the pure-Go backend runs, and one line on stderr says so.
//
// The pure-Go backend always gets the "parallelism=-1" setting: its default scheduler can deadlock on 2-core
// machines, and -1 was the fastest setting that cannot. Its float32 DotGeneral runs on package fastdot's kernel
// where the CPU allows ($MMPOISON_FASTDOT=0 turns it off).
package backend

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/backends/xla"

	_ "github.com/mmpoison/mmpoison/models/backend/fastdot" // Faster float32 DotGeneral for the pure-Go backend.
)

// GoConfig is the pure-Go backend's configuration: parallel kernels, ops scheduled so it cannot deadlock.
const GoConfig = "parallelism=-1"

// InstallTimeout bounds the attempt to install an XLA plugin when none is present.
var InstallTimeout = 20 * time.Second

// Notice is where the one-line notice about the chosen backend goes (nil: nowhere).
var Notice io.Writer = os.Stderr

var (
	mu     sync.Mutex
	shared backends.Backend
)

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

// FromConfig creates the backend named by a GOMLX_BACKEND-style configuration ("go", "go:...", "xla:cpu", ...).
// The pure-Go backend always gets GoConfig.
func FromConfig(config string) (backends.Backend, error) {
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

func notice(format string, args ...any) {
	if Notice != nil {
		fmt.Fprintf(Notice, format+"\n", args...)
	}
}
