package backend

import (
	"bytes"
	"strings"
	"testing"
)

func TestFromConfig(t *testing.T) {
	cases := []struct {
		config  string
		wantErr string
	}{
		{"go", ""},
		{"go:ops_sequential", ""},
		{"tpu:abc", "unknown backend"},
		{"go:no_such_option", "no_such_option"},
	}
	for _, c := range cases {
		b, err := FromConfig(c.config)
		if c.wantErr == "" {
			if err != nil || b == nil || !strings.Contains(b.Name(), "SimpleGo") {
				t.Errorf("FromConfig(%q) = %v, %v", c.config, b, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("FromConfig(%q) error = %v, want one mentioning %q", c.config, err, c.wantErr)
		}
	}
}

// TestEnvironmentOverrides: $GOMLX_BACKEND decides, with no notice and no plugin search.
func TestEnvironmentOverrides(t *testing.T) {
	t.Setenv("GOMLX_BACKEND", "go")
	var buf bytes.Buffer
	old := Notice
	Notice = &buf
	defer func() { Notice = old }()
	b, err := New()
	if err != nil || !strings.Contains(b.Name(), "SimpleGo") {
		t.Fatalf("New() = %v, %v", b, err)
	}
	if buf.Len() != 0 {
		t.Errorf("unexpected notice %q", buf.String())
	}
}

// TestFallbackNotice: with no plugin and installs disabled, the pure-Go backend runs and one line says so.
func TestFallbackNotice(t *testing.T) {
	t.Setenv("GOMLX_BACKEND", "")
	t.Setenv("GOMLX_NO_AUTO_INSTALL", "1")
	t.Setenv("PJRT_PLUGIN_LIBRARY_PATH", t.TempDir())
	var buf bytes.Buffer
	old := Notice
	Notice = &buf
	defer func() { Notice = old }()
	b, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.Name(), "SimpleGo") && strings.Count(buf.String(), "\n") != 1 {
		t.Errorf("fallback notice = %q, want exactly one line", buf.String())
	}
}
