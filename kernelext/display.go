package kernelext

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

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
	displayHTML:     func(html string) { gonbui.DisplayHTML(html); gonbui.Sync() },
	displayMarkdown: func(md string) { gonbui.DisplayMarkdown(md); gonbui.Sync() },
	updateHTML:      func(id, html string) { gonbui.UpdateHTML(id, html); gonbui.Sync() },
	uniqueID:        gonbui.UniqueId,
}

// Every display call above waits (gonbui.Sync) until GoNB has received it: GoNB stops reading a cell's display
// pipe as soon as the cell's program exits, so an output sent just before a cell ends was sometimes lost.

var (
	cfgMu     sync.Mutex
	cfgOut    io.Writer // nil: os.Stdout, looked up at each use
	cfgOutDir string
	cfgWrite  WriteFunc
)

// WriteFunc creates or replaces the file path with data: how files reach the output directory ([SetOutputDir]).
type WriteFunc func(path string, data []byte) error

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

// SetOutputDir makes [ShowFigure] and [ShowImageGrid] save their files in dir, written with write (mmpoison's
// callers pass poisoning/atomicfile.WriteFile, so that a reader never sees a half-written file); dir is
// created when the first file is saved. SetOutputDir("", nil) turns saving off, the default: this package
// writes no file of its own accord. It returns a function that restores the previous setting, and panics when
// dir is set without a write function.
func SetOutputDir(dir string, write WriteFunc) (restore func()) {
	if dir != "" && write == nil {
		panic("kernelext.SetOutputDir: an output directory needs a write function")
	}
	cfgMu.Lock()
	defer cfgMu.Unlock()
	prevDir, prevWrite := cfgOutDir, cfgWrite
	cfgOutDir, cfgWrite = dir, write
	return func() {
		cfgMu.Lock()
		defer cfgMu.Unlock()
		cfgOutDir, cfgWrite = prevDir, prevWrite
	}
}

// saveFiles writes the files that files returns into the output directory, with its write function, and
// returns their paths; saved is false, and files is not called, when no output directory is set.
func saveFiles(files func() ([]File, error)) (paths []string, saved bool, err error) {
	cfgMu.Lock()
	dir, write := cfgOutDir, cfgWrite
	cfgMu.Unlock()
	if dir == "" {
		return nil, false, nil
	}
	fs, err := files()
	if err != nil {
		return nil, true, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, true, err
	}
	for _, f := range fs {
		p := filepath.Join(dir, f.Name)
		if err := write(p, f.Data); err != nil {
			return paths, true, err
		}
		paths = append(paths, p)
	}
	return paths, true, nil
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
