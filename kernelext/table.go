package kernelext

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Align is the horizontal alignment of a table column or cell.
type Align int

const (
	// AlignAuto right-aligns columns whose cells all look like numbers and
	// left-aligns the others.
	AlignAuto Align = iota
	// AlignLeft aligns to the left.
	AlignLeft
	// AlignRight aligns to the right.
	AlignRight
	// AlignCenter centres.
	AlignCenter
)

// Cell is one table cell with optional formatting.
type Cell struct {
	// Text is the content, as plain text (it is escaped for Markdown and
	// HTML). Newlines become line breaks in HTML and spaces elsewhere.
	Text string
	// Bold highlights the cell (for instance the best value of a column) in
	// Markdown and HTML; plain text has no highlighting.
	Bold bool
	// Align overrides the column alignment in HTML and plain text when it is
	// not AlignAuto. Markdown only supports per-column alignment.
	Align Align
}

// Table is a titled table of text cells that renders as aligned plain text
// ([Table.Text]), GitHub-flavoured Markdown ([Table.Markdown]) and HTML
// ([Table.HTML]). Rows may have fewer cells than there are headers (they are
// padded with empty cells) or more (extra columns get empty headers).
type Table struct {
	// Title is shown above the table; empty for none.
	Title string
	// Headers are the column headers; nil for a table without a header row.
	Headers []string
	// Align optionally gives the alignment of each column; columns beyond
	// its length use AlignAuto.
	Align []Align
	// Rows are the body rows.
	Rows [][]Cell
	// Notes are shown below the table, one paragraph each.
	Notes []string
	// FloatFormat is the fmt verb used by [Table.AddRow] for floating-point
	// values; "%.3f" when empty.
	FloatFormat string
}

// NewTable returns an empty table with the given title and column headers.
func NewTable(title string, headers ...string) *Table {
	return &Table{Title: title, Headers: headers}
}

// AddRow appends a row and returns t. Values are converted to cells: a
// [Cell] is used as is; strings as their text; floating-point numbers with
// t.FloatFormat ("%.3f" by default; NaN becomes "n/a"); anything else with
// fmt's %v (nil becomes an empty cell).
func (t *Table) AddRow(values ...any) *Table {
	row := make([]Cell, len(values))
	for i, v := range values {
		row[i] = t.toCell(v)
	}
	t.Rows = append(t.Rows, row)
	return t
}

// AddNote appends a note (formatted with fmt.Sprintf) shown below the table
// and returns t.
func (t *Table) AddNote(format string, args ...any) *Table {
	t.Notes = append(t.Notes, fmt.Sprintf(format, args...))
	return t
}

func (t *Table) toCell(v any) Cell {
	ff := t.FloatFormat
	if ff == "" {
		ff = "%.3f"
	}
	float := func(x float64) Cell {
		if math.IsNaN(x) {
			return Cell{Text: "n/a"}
		}
		return Cell{Text: fmt.Sprintf(ff, x)}
	}
	switch x := v.(type) {
	case nil:
		return Cell{}
	case Cell:
		return x
	case *Cell:
		return *x
	case string:
		return Cell{Text: x}
	case float64:
		return float(x)
	case float32:
		return float(float64(x))
	default:
		return Cell{Text: fmt.Sprint(v)}
	}
}

// ShowTable displays t: as HTML in a notebook, as aligned plain text
// (followed by an empty line) on [Output] otherwise.
func ShowTable(t *Table) {
	if IsNotebook() {
		nb.displayHTML(t.HTML())
		return
	}
	writeString(Output(), t.Text()+"\n")
}

// numCols returns the number of columns.
func (t *Table) numCols() int {
	n := len(t.Headers)
	for _, r := range t.Rows {
		n = max(n, len(r))
	}
	return n
}

// cell returns row r, column c, or an empty cell.
func (t *Table) cell(r, c int) Cell {
	if c < len(t.Rows[r]) {
		return t.Rows[r][c]
	}
	return Cell{}
}

func (t *Table) header(c int) string {
	if c < len(t.Headers) {
		return t.Headers[c]
	}
	return ""
}

// columnAlign resolves the alignment of column c (never AlignAuto).
func (t *Table) columnAlign(c int) Align {
	if c < len(t.Align) && t.Align[c] != AlignAuto {
		return t.Align[c]
	}
	numeric := false
	for r := range t.Rows {
		s := strings.TrimSpace(t.cell(r, c).Text)
		if s == "" {
			continue
		}
		if !looksNumeric(s) {
			return AlignLeft
		}
		numeric = true
	}
	if numeric {
		return AlignRight
	}
	return AlignLeft
}

// looksNumeric reports whether s starts with a number, optionally followed
// by a percent sign and/or a spread ("0.93 ± 0.02", "12.5%", "n/a").
func looksNumeric(s string) bool {
	if s == "n/a" || s == "-" || s == "–" {
		return true
	}
	first, _, _ := strings.Cut(s, " ")
	first = strings.TrimSuffix(first, "%")
	_, err := strconv.ParseFloat(first, 64)
	return err == nil
}

// oneLine replaces line breaks and tabs with spaces.
func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "\t", " ").Replace(s)
}

func width(s string) int { return utf8.RuneCountInString(s) }

func pad(s string, w int, a Align) string {
	n := w - width(s)
	if n <= 0 {
		return s
	}
	switch a {
	case AlignRight:
		return strings.Repeat(" ", n) + s
	case AlignCenter:
		l := n / 2
		return strings.Repeat(" ", l) + s + strings.Repeat(" ", n-l)
	default:
		return s + strings.Repeat(" ", n)
	}
}

// grid returns the header (nil if none) and body texts after applying f to
// every cell, plus the column widths.
func (t *Table) grid(f func(Cell) string) (head []string, body [][]string, widths []int) {
	nc := t.numCols()
	widths = make([]int, nc)
	if len(t.Headers) > 0 {
		head = make([]string, nc)
		for c := range nc {
			head[c] = f(Cell{Text: t.header(c)})
			widths[c] = width(head[c])
		}
	}
	body = make([][]string, len(t.Rows))
	for r := range t.Rows {
		body[r] = make([]string, nc)
		for c := range nc {
			body[r][c] = f(t.cell(r, c))
			widths[c] = max(widths[c], width(body[r][c]))
		}
	}
	return head, body, widths
}

// Text renders t as aligned plain text: the title, the header row, a line of
// dashes, the rows and the notes. Columns are separated by two spaces and
// trailing spaces are trimmed. There are no control characters.
func (t *Table) Text() string {
	var b strings.Builder
	if t.Title != "" {
		b.WriteString(oneLine(t.Title) + "\n")
	}
	nc := t.numCols()
	head, body, widths := t.grid(func(c Cell) string { return oneLine(c.Text) })
	aligns := make([]Align, nc)
	for c := range aligns {
		aligns[c] = t.columnAlign(c)
	}
	writeRow := func(cells []string, cellAlign func(c int) Align) {
		parts := make([]string, nc)
		for c := range nc {
			parts[c] = pad(cells[c], widths[c], cellAlign(c))
		}
		b.WriteString(strings.TrimRight(strings.Join(parts, "  "), " ") + "\n")
	}
	if head != nil {
		writeRow(head, func(c int) Align { return aligns[c] })
		dashes := make([]string, nc)
		for c := range nc {
			dashes[c] = strings.Repeat("-", max(widths[c], 1))
		}
		b.WriteString(strings.Join(dashes, "  ") + "\n")
	}
	for r := range body {
		writeRow(body[r], func(c int) Align {
			if a := t.cell(r, c).Align; a != AlignAuto {
				return a
			}
			return aligns[c]
		})
	}
	for _, n := range t.Notes {
		b.WriteString(oneLine(n) + "\n")
	}
	return b.String()
}

// markdownEscaper escapes the characters that would change the meaning of a
// GitHub Markdown table cell.
var markdownEscaper = strings.NewReplacer(
	`\`, `\\`, `|`, `\|`, `*`, `\*`, `_`, `\_`, "`", "\\`",
	`&`, `&amp;`, `<`, `&lt;`, `>`, `&gt;`,
	"\r\n", " ", "\n", " ", "\r", " ", "\t", " ",
)

// EscapeMarkdown escapes s for use as inline text in GitHub Markdown
// (including inside table cells): backslash, '|', '*', '_' and '`' are
// backslash-escaped, '&', '<' and '>' become entities and line breaks
// become spaces.
func EscapeMarkdown(s string) string { return markdownEscaper.Replace(s) }

// Markdown renders t as a GitHub-flavoured Markdown table: the title in bold,
// the table (columns padded so that the source is readable too; a table
// without headers gets an empty header row, since Markdown requires one) and
// the notes as paragraphs. Cell text is escaped with [EscapeMarkdown]; bold
// cells are wrapped in **.
func (t *Table) Markdown() string {
	var b strings.Builder
	if t.Title != "" {
		b.WriteString("**" + EscapeMarkdown(t.Title) + "**\n\n")
	}
	nc := t.numCols()
	if nc > 0 {
		head, body, widths := t.grid(func(c Cell) string {
			s := EscapeMarkdown(c.Text)
			if c.Bold && s != "" {
				s = "**" + s + "**"
			}
			return s
		})
		if head == nil {
			head = make([]string, nc)
		}
		aligns := make([]Align, nc)
		for c := range aligns {
			aligns[c] = t.columnAlign(c)
			widths[c] = max(widths[c], 3)
		}
		writeRow := func(cells []string) {
			b.WriteString("|")
			for c := range nc {
				b.WriteString(" " + pad(cells[c], widths[c], aligns[c]) + " |")
			}
			b.WriteString("\n")
		}
		writeRow(head)
		b.WriteString("|")
		for c := range nc {
			w := widths[c]
			switch aligns[c] {
			case AlignRight:
				b.WriteString(" " + strings.Repeat("-", w-1) + ": |")
			case AlignCenter:
				b.WriteString(" :" + strings.Repeat("-", w-2) + ": |")
			default:
				b.WriteString(" " + strings.Repeat("-", w) + " |")
			}
		}
		b.WriteString("\n")
		for _, row := range body {
			writeRow(row)
		}
	}
	for _, n := range t.Notes {
		b.WriteString("\n" + EscapeMarkdown(n) + "\n")
	}
	return b.String()
}

var alignCSS = map[Align]string{AlignLeft: "left", AlignRight: "right", AlignCenter: "center"}

func htmlText(s string) string {
	s = html.EscapeString(s)
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\n", "<br>")
}

// HTML renders t as a self-contained HTML fragment (a <table> with inline
// styles, the title as its caption, the notes below it). All text is
// HTML-escaped.
func (t *Table) HTML() string {
	var b strings.Builder
	nc := t.numCols()
	b.WriteString(`<div class="mmpoison-table" style="margin:0.5em 0">` + "\n")
	b.WriteString(`<table style="border-collapse:collapse;font-variant-numeric:tabular-nums">` + "\n")
	if t.Title != "" {
		b.WriteString(`<caption style="caption-side:top;text-align:left;font-weight:bold;padding-bottom:4px">` +
			htmlText(t.Title) + "</caption>\n")
	}
	const cellStyle = "padding:2px 10px;"
	if len(t.Headers) > 0 {
		b.WriteString("<thead><tr>")
		for c := range nc {
			fmt.Fprintf(&b, `<th style="%stext-align:%s;border-bottom:1px solid #888">%s</th>`,
				cellStyle, alignCSS[t.columnAlign(c)], htmlText(t.header(c)))
		}
		b.WriteString("</tr></thead>\n")
	}
	b.WriteString("<tbody>\n")
	for r := range t.Rows {
		b.WriteString("<tr>")
		for c := range nc {
			cell := t.cell(r, c)
			a := cell.Align
			if a == AlignAuto {
				a = t.columnAlign(c)
			}
			text := htmlText(cell.Text)
			if cell.Bold {
				text = "<b>" + text + "</b>"
			}
			fmt.Fprintf(&b, `<td style="%stext-align:%s">%s</td>`, cellStyle, alignCSS[a], text)
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</tbody>\n</table>\n")
	for _, n := range t.Notes {
		b.WriteString(`<div style="font-size:smaller;color:#555">` + htmlText(n) + "</div>\n")
	}
	b.WriteString("</div>\n")
	return b.String()
}
