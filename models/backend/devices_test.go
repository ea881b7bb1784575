package backend_test

import (
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/models/backend"
	"github.com/mmpoison/mmpoison/models/internal/xlatest"
)

// TestCPUDevices: on XLA's CPU plugin NewDevices gets as many simulated host devices as it asks for (through the
// plugin's client option, not XLA_FLAGS), and DefaultDevices refuses more than the shared backend has.
func TestCPUDevices(t *testing.T) {
	shared := xlatest.Backend(t)
	if d := shared.DeviceDescription(0); !strings.Contains(strings.ToLower(d), "cpu") {
		xlatest.Skip(t, "the backend's device 0 is %q, not XLA's CPU", d)
	}
	for _, n := range []int{2, 3, 6} {
		b, err := backend.NewDevices(n)
		if err != nil {
			t.Fatal(err)
		}
		if got := b.NumDevices(); got != n {
			t.Errorf("NewDevices(%d) has %d devices", n, got)
		}
		b.Finalize()
	}
	if _, err := backend.DefaultDevices(shared.NumDevices() + 1); err == nil {
		t.Errorf("DefaultDevices(%d) accepted a shared backend of %d devices", shared.NumDevices()+1, shared.NumDevices())
	}
}
