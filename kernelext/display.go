package kernelext

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/mmpoison/mmpoison/poisoning/atomicfile"

	"github.com/janpfeifer/gonb/gonbui"
)

// frontEnd groups the calls made to the notebook, so tests can replace them.
type frontEnd struct {
	isNotebook      func() bool
	displayHTML     func(html string)
	displayMarkdown func(md string)
	updateHTML      func(id, html string)
	uniqueID        func() string
}

var nb = frontEnd{
	isNotebook:      func() bool { return gonbui.IsNotebook },
	displayHTML:     gonbui.DisplayHTML,
	displayMarkdown: gonbui.DisplayMarkdown,
	updateHTML:      gonbui.UpdateHTML,
	uniqueID:        gonbui.UniqueId,
}

var (
	cfgMu     sync.Mutex
	cfgOut    io.Writer // nil: os.Stdout, looked up at each use
	cfgOutDir string
)

// IsNotebook reports whether the program runs inside a GoNB notebook kernel
// (a passthrough to gonbui.IsNotebook).
func IsNotebook() bool { return nb.isNotebook() }

// SetOutput sets the writer used for plain-text output outside a notebook
// and returns the previous setting. The default, nil, means os.Stdout as it
// is at the time of each write (so redirecting os.Stdout works).
func SetOutput(w io.Writer) (previous io.Writer) {
	cfgMu.Lock()
	defer cfgMu.Unlock()
	previous, cfgOut = cfgOut, w
	return previous
}

// Output returns the writer used for plain-text output: the one set with
// [SetOutput], or os.Stdout.
func Output() io.Writer {
	cfgMu.Lock()
	defer cfgMu.Unlock()
	if cfgOut == nil {
		return os.Stdout
	}
	return cfgOut
}

// SetOutputDir sets the directory where [ShowFigure] and [ShowImageGrid]
// save their files ("" disables saving, the default) and returns the
// previous value. The directory is created when the first file is saved.
func SetOutputDir(dir string) (previous string) {
	cfgMu.Lock()
	defer cfgMu.Unlock()
	previous, cfgOutDir = cfgOutDir, dir
	return previous
}

// OutputDir returns the directory set with [SetOutputDir].
func OutputDir() string {
	cfgMu.Lock()
	defer cfgMu.Unlock()
	return cfgOutDir
}

// ShowMarkdown displays Markdown: rendered in a notebook, written as is
// (followed by a newline) to [Output] otherwise.
func ShowMarkdown(md string) {
	if IsNotebook() {
		nb.displayMarkdown(md)
		return
	}
	writeString(Output(), ensureNewline(md))
}

// ShowHTML displays HTML in a notebook; outside a notebook it writes
// fallbackText (followed by a newline) to [Output], or nothing when
// fallbackText is empty.
func ShowHTML(html, fallbackText string) {
	if IsNotebook() {
		nb.displayHTML(html)
		return
	}
	if fallbackText != "" {
		writeString(Output(), ensureNewline(fallbackText))
	}
}

// WriteFileAtomic writes data to path atomically: it writes a temporary file
// in the same directory, syncs it and renames it over path, so readers see
// either the old or the new content, never a partial file. Missing parent
// directories are created. The file gets permissions 0644.
func WriteFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data)
}

// FileName turns a display name into a safe file base name: letters, digits,
// '.', '-' and '_' are kept, runs of anything else become a single '_'.
// An empty result becomes "unnamed".
func FileName(name string) string {
	var b strings.Builder
	lastUnderscore := false
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_'
		if ok {
			b.WriteRune(r)
			lastUnderscore = r == '_'
			continue
		}
		if !lastUnderscore {
			b.WriteByte('_')
			lastUnderscore = true
		}
	}
	s := strings.Trim(b.String(), "_.")
	if s == "" {
		return "unnamed"
	}
	return s
}

func ensureNewline(s string) string {
	if strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}

// writeString writes s to w, ignoring errors: display output is best effort.
func writeString(w io.Writer, s string) {
	_, _ = io.WriteString(w, s)
}

// lineWriter prints one formatted line to w.
func lineWriter(w io.Writer, format string, args ...any) {
	_, _ = fmt.Fprintf(w, format+"\n", args...)
}
