package kernelext

import (
	"fmt"
	"html"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Field is one named value shown by [Progress] (a loss, a temperature...).
type Field struct {
	// Name labels the value ("loss").
	Name string
	// Value is shown with 4 significant digits.
	Value float64
}

// F is a shorthand for Field{name, value}.
func F(name string, value float64) Field { return Field{Name: name, Value: value} }

// Default throttling of [Progress].
const (
	// DefaultNotebookInterval is the minimum time between two notebook
	// updates (at most 4 per second).
	DefaultNotebookInterval = 250 * time.Millisecond
	// DefaultTextInterval is the maximum time between two text lines while
	// progress is being made.
	DefaultTextInterval = 10 * time.Second
	// DefaultTextFraction makes a text line appear each time progress
	// crosses a multiple of 10% of the total.
	DefaultTextFraction = 0.1
)

// Progress reports the progress of a long loop (typically training): the
// step out of the total, a bar, the elapsed time, an estimate of the
// remaining time and the latest values of some fields.
//
// In a notebook it shows one HTML block that is updated in place (through
// gonbui.UpdateHTML), at most every [DefaultNotebookInterval]. Outside a
// notebook it writes single plain-text lines to a writer (by default
// [Output] at the time of writing): at the first update, whenever progress
// crosses a multiple of 10% of the total, at least every
// [DefaultTextInterval] while updates keep coming, and at [Progress.Done].
// It never writes control characters (no carriage returns or ANSI escapes),
// so logs stay clean whether or not the writer is a terminal.
//
// A Progress is meant to be driven by one goroutine (the training loop); its
// methods are nevertheless guarded by a mutex, so calling them from several
// goroutines is safe. Write errors are ignored.
type Progress struct {
	mu sync.Mutex

	title      string
	total      int
	out        io.Writer
	now        func() time.Time
	nbInterval time.Duration
	textEvery  time.Duration
	textFrac   float64
	notebook   bool
	id         string

	start      time.Time
	step       int
	fields     []Field
	updated    bool
	done       bool
	lastShown  time.Time // last notebook update or text line
	lastBucket int       // last 10% bucket written as text
}

// ProgressOption configures a [Progress] in [NewProgress].
type ProgressOption func(*Progress)

// WithWriter makes the text output go to w instead of [Output].
func WithWriter(w io.Writer) ProgressOption { return func(p *Progress) { p.out = w } }

// WithClock replaces time.Now, for tests and replays.
func WithClock(now func() time.Time) ProgressOption { return func(p *Progress) { p.now = now } }

// WithNotebookInterval sets the minimum time between notebook updates.
func WithNotebookInterval(d time.Duration) ProgressOption {
	return func(p *Progress) { p.nbInterval = d }
}

// WithTextInterval sets when text lines are written: at least every `every`
// (0 disables the time trigger) and each time progress crosses a multiple of
// `fraction` of the total (0 disables the fraction trigger).
func WithTextInterval(every time.Duration, fraction float64) ProgressOption {
	return func(p *Progress) { p.textEvery, p.textFrac = every, fraction }
}

// NewProgress starts reporting progress of a loop of total steps (total ≤ 0
// if unknown: no bar, percentage or ETA). The clock starts now.
func NewProgress(title string, total int, opts ...ProgressOption) *Progress {
	p := &Progress{
		title:      title,
		total:      total,
		now:        time.Now,
		nbInterval: DefaultNotebookInterval,
		textEvery:  DefaultTextInterval,
		textFrac:   DefaultTextFraction,
		notebook:   IsNotebook(),
		lastBucket: -1,
	}
	for _, o := range opts {
		o(p)
	}
	p.start = p.now()
	if p.notebook {
		p.id = "mmpoison_progress_" + nb.uniqueID()
	}
	return p
}

// Update records that step steps are complete (step counts completed steps,
// so step == total means finished) with the latest field values, shown in
// the order given. It displays the new state if the throttling allows.
// Updates after [Progress.Done] are ignored.
func (p *Progress) Update(step int, fields ...Field) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	p.step = step
	p.fields = append(p.fields[:0], fields...)
	now := p.now()
	first := !p.updated
	p.updated = true
	if p.notebook {
		if first || now.Sub(p.lastShown) >= p.nbInterval {
			p.lastShown = now
			nb.updateHTML(p.id, p.htmlLocked(now))
		}
		return
	}
	bucket := p.bucket()
	if first || (p.textEvery > 0 && now.Sub(p.lastShown) >= p.textEvery) || bucket > p.lastBucket {
		p.lastShown = now
		p.lastBucket = bucket
		p.writeLocked(p.lineLocked(now))
	}
}

// UpdateMap is [Progress.Update] with the fields given as a map; they are
// shown sorted by name.
func (p *Progress) UpdateMap(step int, fields map[string]float64) {
	fs := make([]Field, 0, len(fields))
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		fs = append(fs, Field{k, fields[k]})
	}
	p.Update(step, fs...)
}

// Done marks the loop finished and always shows the final state (the last
// step and fields given to Update). Calling it again does nothing.
func (p *Progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	p.done = true
	now := p.now()
	if p.notebook {
		nb.updateHTML(p.id, p.htmlLocked(now))
		return
	}
	p.writeLocked(p.lineLocked(now))
}

// Line returns the current state as one line of plain text, as written
// outside a notebook.
func (p *Progress) Line() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lineLocked(p.now())
}

// HTML returns the current state as the HTML block shown in a notebook.
func (p *Progress) HTML() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.htmlLocked(p.now())
}

// bucket returns the index of the textFrac-sized slice of the total that
// the current step is in, or -1 when the fraction trigger is off.
func (p *Progress) bucket() int {
	if p.total <= 0 || p.textFrac <= 0 {
		return -1
	}
	// The epsilon keeps exact multiples (30/100 with fraction 0.1) from
	// falling into the previous bucket through rounding.
	return int(math.Floor(float64(p.step)/(float64(p.total)*p.textFrac) + 1e-9))
}

func (p *Progress) writeLocked(line string) {
	w := p.out
	if w == nil {
		w = Output()
	}
	writeString(w, line+"\n")
}

// eta returns the estimated remaining time, or -1 if unknown.
func (p *Progress) eta(elapsed time.Duration) time.Duration {
	if p.total <= 0 || p.step <= 0 || p.step >= p.total {
		if p.total > 0 && p.step >= p.total {
			return 0
		}
		return -1
	}
	return time.Duration(float64(elapsed) * float64(p.total-p.step) / float64(p.step))
}

func (p *Progress) lineLocked(now time.Time) string {
	elapsed := now.Sub(p.start)
	var b strings.Builder
	if p.title != "" {
		b.WriteString(oneLine(p.title) + ": ")
	}
	if p.done {
		b.WriteString("done ")
	}
	if p.total > 0 {
		fmt.Fprintf(&b, "%d/%d (%.0f%%)", p.step, p.total, 100*float64(p.step)/float64(p.total))
	} else {
		fmt.Fprintf(&b, "step %d", p.step)
	}
	fmt.Fprintf(&b, " elapsed %s", FormatDuration(elapsed))
	if eta := p.eta(elapsed); eta >= 0 && !p.done {
		fmt.Fprintf(&b, " eta %s", FormatDuration(eta))
	}
	if len(p.fields) > 0 {
		b.WriteString(" |")
		for _, f := range p.fields {
			fmt.Fprintf(&b, " %s=%s", oneLine(f.Name), formatValue(f.Value))
		}
	}
	return b.String()
}

func (p *Progress) htmlLocked(now time.Time) string {
	elapsed := now.Sub(p.start)
	var b strings.Builder
	b.WriteString(`<div class="mmpoison-progress" style="font-family:monospace;margin:4px 0">`)
	if p.title != "" {
		b.WriteString("<b>" + html.EscapeString(p.title) + "</b> ")
	}
	if p.total > 0 {
		frac := min(max(float64(p.step)/float64(p.total), 0), 1)
		colour := "#4c8bd6"
		if p.done {
			colour = "#3a9a5b"
		}
		fmt.Fprintf(&b, `<div style="display:inline-block;vertical-align:middle;width:240px;height:10px;background:#e4e4e4;border-radius:3px;overflow:hidden">`+
			`<div style="width:%.1f%%;height:100%%;background:%s"></div></div> `, 100*frac, colour)
		fmt.Fprintf(&b, "%d/%d (%.0f%%)", p.step, p.total, 100*float64(p.step)/float64(p.total))
	} else {
		fmt.Fprintf(&b, "step %d", p.step)
	}
	fmt.Fprintf(&b, " &middot; elapsed %s", FormatDuration(elapsed))
	if eta := p.eta(elapsed); eta >= 0 && !p.done {
		fmt.Fprintf(&b, " &middot; eta %s", FormatDuration(eta))
	}
	if p.done {
		b.WriteString(" &middot; done")
	}
	if len(p.fields) > 0 {
		b.WriteString(`<br><span style="color:#333">`)
		for i, f := range p.fields {
			if i > 0 {
				b.WriteString(" &nbsp; ")
			}
			fmt.Fprintf(&b, "%s=<b>%s</b>", html.EscapeString(f.Name), formatValue(f.Value))
		}
		b.WriteString("</span>")
	}
	b.WriteString("</div>")
	return b.String()
}

// formatValue formats a field value with 4 significant digits.
func formatValue(v float64) string {
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// FormatDuration formats a duration compactly, rounded to the second above
// one minute: "850ms", "12.3s", "3m04s", "1h02m03s".
func FormatDuration(d time.Duration) string {
	if d < 0 {
		return "-" + FormatDuration(-d)
	}
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	s := int64(d.Round(time.Second) / time.Second)
	h, m, sec := s/3600, (s/60)%60, s%60
	if h > 0 {
		return fmt.Sprintf("%dh%02dm%02ds", h, m, sec)
	}
	return fmt.Sprintf("%dm%02ds", m, sec)
}
