package backend

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/models/internal/fastdot"
	"github.com/mmpoison/mmpoison/models/internal/gradfix"
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

// TestFallbackNoticeInANotebook: inside a GoNB notebook a notice goes to NotebookNotice, not Notice, and only
// in the first cell of the kernel.
func TestFallbackNoticeInANotebook(t *testing.T) {
	t.Setenv("GONB_PIPE", "/nonexistent/pipe")
	t.Setenv("GONB_TMP_DIR", t.TempDir())
	var nb, errs bytes.Buffer
	oldNB, old := NotebookNotice, Notice
	NotebookNotice, Notice = &nb, &errs
	defer func() { NotebookNotice, Notice = oldNB, old }()
	for range 3 { // Three cells of one kernel.
		notice("mmpoison: %s", "pure Go")
	}
	if nb.String() != "mmpoison: pure Go\n" || errs.Len() != 0 {
		t.Errorf("notebook got %q, Notice got %q", nb.String(), errs.String())
	}
	t.Setenv("GONB_PIPE", "")
	notice("mmpoison: %s", "pure Go")
	if errs.String() != "mmpoison: pure Go\n" {
		t.Errorf("outside a notebook Notice got %q", errs.String())
	}
}

// TestFromConfigPatches: creating a backend installs the GoMLX patches of this release without a notice.
func TestFromConfigPatches(t *testing.T) {
	var buf bytes.Buffer
	old := Notice
	Notice = &buf
	defer func() { Notice = old }()
	if _, err := FromConfig("go"); err != nil {
		t.Fatal(err)
	}
	if !gradfix.Installed() {
		t.Errorf("gradfix not installed: %s", gradfix.Reason())
	}
	if !fastdot.Installed() && !strings.Contains(fastdot.Reason(), "no assembly") && !strings.Contains(fastdot.Reason(), "disabled") {
		t.Errorf("fastdot not installed: %s", fastdot.Reason())
	}
	if buf.Len() != 0 {
		t.Errorf("unexpected notice %q", buf.String())
	}
}

// TestPatchNotices: patches that keep GoMLX's stock behaviour are reported in one line naming each reason;
// a patch falling back later adds its own line; nothing is said when all install.
func TestPatchNotices(t *testing.T) {
	refuse := func(msg string) func(func(string)) error {
		return func(func(string)) error { return errors.New(msg) }
	}
	accept := func(func(string)) error { return nil }
	later := func(notice func(string)) error { notice("b: node data differ"); return nil }
	cases := []struct {
		name    string
		patches []installer
		want    []string // the notice's lines
	}{
		{"all installed", []installer{accept, accept}, nil},
		{"one refused", []installer{refuse("a: GoMLX v0.27.0 is not v0.26.0"), accept},
			[]string{"mmpoison: GoMLX's stock behaviour is kept: a: GoMLX v0.27.0 is not v0.26.0"}},
		{"both refused", []installer{refuse("a: version"), refuse("b: version")},
			[]string{"mmpoison: GoMLX's stock behaviour is kept: a: version; b: version"}},
		{"fallback after install", []installer{accept, later}, []string{"mmpoison: b: node data differ"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			old := Notice
			Notice = &buf
			defer func() { Notice = old }()
			installPatches(c.patches)
			got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
			if len(c.want) == 0 {
				got = slices.DeleteFunc(got, func(s string) bool { return s == "" })
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("notices = %q, want %q", got, c.want)
			}
		})
	}
}

// TestFindPlugin: a plugin in $PJRT_PLUGIN_LIBRARY_PATH (as set now) comes first, a CUDA one before a CPU one;
// else one in PluginDir (the user's cache folder) is found.
func TestFindPlugin(t *testing.T) {
	saved := goXLAPlugins
	goXLAPlugins = func() []string { return nil } // whatever go-xla finds on this machine
	defer func() { goXLAPlugins = saved }()
	cases := []struct {
		name             string
		envFiles, caches []string // plugin files in $PJRT_PLUGIN_LIBRARY_PATH's folder and in PluginDir
		want             string   // "env/NAME", "cache/NAME" or ""
	}{
		{"env", []string{"pjrt_c_api_cpu_plugin.so"}, []string{"pjrt_c_api_cpu_plugin.so"}, "env/pjrt_c_api_cpu_plugin.so"},
		{"cuda first", []string{"pjrt_c_api_cpu_plugin.so", "pjrt_c_api_cuda_plugin.so"}, nil, "env/pjrt_c_api_cuda_plugin.so"},
		{"cache", nil, []string{"pjrt_c_api_cpu_plugin.so"}, "cache/pjrt_c_api_cpu_plugin.so"},
		{"other names ignored", []string{"xla_cpu_pjrt.so"}, []string{"libpjrt_cpu.so"}, ""},
		{"none", nil, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			env, cache := filepath.Join(root, "env"), filepath.Join(root, "xdg")
			t.Setenv("PJRT_PLUGIN_LIBRARY_PATH", env)
			t.Setenv("XDG_CACHE_HOME", cache)
			for dir, files := range map[string][]string{env: c.envFiles, PluginDir(): c.caches} {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				for _, f := range files {
					if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			want := c.want
			if dir, name, ok := strings.Cut(c.want, "/"); ok {
				want = filepath.Join(map[string]string{"env": env, "cache": PluginDir()}[dir], name)
			}
			if got := findPlugin(); got != want {
				t.Errorf("findPlugin() = %q, want %q", got, want)
			}
		})
	}
}

// TestPureGoHasOneDevice: asking the pure-Go backend for more than one device fails, naming the count.
func TestPureGoHasOneDevice(t *testing.T) {
	t.Setenv("GOMLX_BACKEND", "go")
	if _, err := NewDevices(2); err == nil || !strings.Contains(err.Error(), "1 device(s), 2 asked for") {
		t.Errorf("NewDevices(2) on the pure-Go backend: error %v", err)
	}
}
