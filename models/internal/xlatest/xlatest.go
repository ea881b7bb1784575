// Package xlatest gives the tests that are about the XLA backend the process's shared backend when it is XLA,
// and otherwise skips them with a reason that names XLA, or fails them when $MMPOISON_REQUIRE_XLA is 1 (as in
// CI's XLA pass, where a skipped XLA test would hide a broken plugin).
package xlatest

import (
	"os"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/xla"

	"github.com/mmpoison/mmpoison/models/backend"
)

// RequireEnv names the variable that turns a missing XLA backend from a skip into a failure.
const RequireEnv = "MMPOISON_REQUIRE_XLA"

// Backend returns backend.Default() when it is an XLA backend; otherwise it skips tb (fails it under
// $MMPOISON_REQUIRE_XLA=1) with the reason.
func Backend(tb testing.TB) backends.Backend {
	tb.Helper()
	b, err := backend.Default()
	if err != nil {
		tb.Fatal(err)
	}
	if _, ok := b.(*xla.Backend); !ok {
		Skip(tb, "needs the XLA backend, this process has %s: install a PJRT plugin (.ci/run puts one in %s) or set "+
			"GOMLX_BACKEND=xla:<plugin>", b.Name(), backend.PluginDir())
	}
	return b
}

// Devices returns Backend(tb) when it has at least n devices, and skips (or fails) tb like Backend otherwise.
func Devices(tb testing.TB, n int) backends.Backend {
	tb.Helper()
	b := Backend(tb)
	if have := b.NumDevices(); have < n {
		Skip(tb, "needs %d XLA devices, the backend has %d", n, have)
	}
	return b
}

// Skip skips tb with a reason about XLA, or fails it when $MMPOISON_REQUIRE_XLA is 1.
func Skip(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if os.Getenv(RequireEnv) == "1" {
		tb.Fatalf("XLA required ($"+RequireEnv+"=1): "+format, args...)
	}
	tb.Skipf("XLA: "+format, args...)
}
