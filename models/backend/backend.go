// Package backend chooses the GoMLX backend mmpoison computes on.
//
// The rule: $GOMLX_BACKEND, when set, decides ("go" for the pure-Go backend, "xla:cpu", "xla:cuda", or an
// absolute plugin path as "xla:/path/to/pjrt_plugin.so"). Otherwise an XLA PJRT plugin that is already
// installed is used (faster than pure Go on a CPU, and the way to use a GPU): one in $PJRT_PLUGIN_LIBRARY_PATH
// or go-xla's own folders, else one in PluginDir (where mmpoison's CI unpacks the CPU plugin of a pinned PyPI
// wheel). If none is installed, GoMLX's installer may try to fetch one (skipped when $GOMLX_NO_AUTO_INSTALL is
// set, and given at most InstallTimeout); failing that, the pure-Go backend runs, and one line on stderr says so.
//
// Devices: an XLA CPU plugin simulates several host devices (four unless asked otherwise); DefaultDevices and
// NewDevices ask for a number of them through PJRT's "cpu_device_count" client option. The
// XLA_FLAGS=--xla_force_host_platform_device_count setting JAX users know has no effect on a PJRT plugin. A GPU
// plugin has the machine's GPUs; the pure-Go backend has one device.
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
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gomlx/go-xla/pkg/pjrt"
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
func Default() (backends.Backend, error) { return DefaultDevices(1) }

// DefaultDevices is Default for a program that computes on n devices (data-parallel training): the first call
// creates the shared backend with NewDevices(n); a later call fails when the shared backend has fewer than n
// devices, so a program that trains on several asks for them before anything else uses the backend.
func DefaultDevices(n int) (backends.Backend, error) {
	mu.Lock()
	defer mu.Unlock()
	if shared == nil {
		b, err := NewDevices(n)
		if err != nil {
			return nil, err
		}
		shared = b
	}
	if have := shared.NumDevices(); have < n {
		return nil, fmt.Errorf("%d devices asked for, but this process's backend (%s) was created with %d: "+
			"ask for them before anything else uses the backend", n, shared.Name(), have)
	}
	return shared, nil
}

// New creates a backend following the package's rule.
func New() (backends.Backend, error) { return NewDevices(1) }

// NewDevices creates a backend following the package's rule with at least n devices: on an XLA CPU plugin a
// client simulating n host devices when n > 1; elsewhere it fails when the backend has fewer than n.
func NewDevices(n int) (backends.Backend, error) {
	if config, ok := os.LookupEnv(backends.ConfigEnvVar); ok && config != "" {
		return fromConfig(config, n)
	}
	xla.EnableAutoInstall(false)
	if plugin := findPlugin(); plugin != "" {
		return fromConfig("xla:"+plugin, n)
	}
	if _, off := os.LookupEnv(xla.NoAutoInstallEnv); !off {
		done := make(chan error, 1)
		go func() { done <- xla.AutoInstall() }()
		select {
		case err := <-done:
			if err == nil {
				if plugins := xla.GetAvailablePlugins(); len(plugins) > 0 {
					return fromConfig("xla:"+plugins[0], n)
				}
			}
		case <-time.After(InstallTimeout):
		}
	}
	notice("mmpoison: no XLA PJRT plugin found or installable: using the pure-Go backend (slower; set %s to choose)",
		backends.ConfigEnvVar)
	return fromConfig("go", n)
}

// PluginDir is the folder searched last for a PJRT plugin: mmpoison/pjrt in the user's cache folder (e.g.
// ~/.cache/mmpoison/pjrt), where .ci/run unpacks the CPU plugin of a pinned PyPI wheel as
// pjrt_c_api_cpu_plugin.so. It is "" when the system has no user cache folder.
func PluginDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "mmpoison", "pjrt")
}

// findPlugin returns an installed PJRT plugin as a name or an absolute path, "" when there is none: the first
// of $PJRT_PLUGIN_LIBRARY_PATH's folders (as set now) that holds one, go-xla's own search, then PluginDir. In a
// folder a CUDA plugin comes before a CPU one.
func findPlugin() string {
	dirs := filepath.SplitList(os.Getenv("PJRT_PLUGIN_LIBRARY_PATH"))
	for _, dir := range dirs {
		if p := pluginIn(dir); p != "" {
			return p
		}
	}
	if plugins := goXLAPlugins(); len(plugins) > 0 {
		return plugins[0]
	}
	if dir := PluginDir(); dir != "" {
		return pluginIn(dir)
	}
	return ""
}

// goXLAPlugins lists the plugins go-xla finds in its own folders (and those already loaded); tests replace it.
var goXLAPlugins = xla.GetAvailablePlugins

// pluginIn returns the absolute path of the PJRT plugin named as go-xla expects (pjrt_c_api_NAME_plugin.so)
// in dir: CUDA first, then CPU, then any other; "" when there is none.
func pluginIn(dir string) string {
	if dir == "" {
		return ""
	}
	found, _ := filepath.Glob(filepath.Join(dir, "pjrt_c_api_*_plugin.so"))
	rank := func(p string) int {
		switch filepath.Base(p) {
		case "pjrt_c_api_cuda_plugin.so":
			return 0
		case "pjrt_c_api_cpu_plugin.so":
			return 1
		}
		return 2
	}
	slices.SortStableFunc(found, func(a, b string) int { return rank(a) - rank(b) })
	for _, p := range found {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
	}
	return ""
}

// FromConfig creates the backend named by a GOMLX_BACKEND-style configuration ("go", "go:...", "xla:cpu", ...),
// after Patch. The pure-Go backend always gets GoConfig.
func FromConfig(config string) (backends.Backend, error) { return fromConfig(config, 1) }

// cpuDeviceCount is the PJRT client option of XLA's CPU plugins that sets how many host devices they simulate.
const cpuDeviceCount = "cpu_device_count"

// fromConfig is FromConfig with at least n devices (see NewDevices).
func fromConfig(config string, n int) (backends.Backend, error) {
	Patch()
	name, opts, _ := strings.Cut(config, ":")
	var b backends.Backend
	var err error
	switch name {
	case "go", "simplego":
		if opts == "" {
			opts = GoConfig
		} else if !strings.Contains(opts, "parallelism") && !strings.Contains(opts, "ops_sequential") {
			opts = GoConfig + "," + opts
		}
		b, err = quietly(func() (backends.Backend, error) { return simplego.New(opts) })
	case "xla", "stablehlo", "hlo", "pjrt":
		plugin, _, _ := strings.Cut(opts, ",")
		if n > 1 && strings.Contains(filepath.Base(plugin), "cpu") {
			b, err = xla.NewWithOptions(opts, pjrt.NamedValuesMap{cpuDeviceCount: int64(n)})
		} else {
			b, err = xla.New(opts)
		}
	default:
		return nil, fmt.Errorf("unknown backend %q in $%s: use \"go\" or \"xla:<plugin>\"", config, backends.ConfigEnvVar)
	}
	if err != nil {
		return nil, fmt.Errorf("backend %q: %w", config, err)
	}
	if have := b.NumDevices(); have < n {
		b.Finalize()
		return nil, fmt.Errorf("backend %q has %d device(s), %d asked for (the pure-Go backend has one; an XLA "+
			"GPU plugin has the machine's GPUs; an XLA CPU plugin simulates as many as asked)", config, have, n)
	}
	return b, nil
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
