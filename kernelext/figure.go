package kernelext

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"image/png"
	"io"
	"strings"
)

// Figure is a rendered figure: a name (used for file names and messages) and
// its bytes in one or more formats. SVG is the preferred format for display;
// PNG and PDF are optional.
type Figure struct {
	// Name identifies the figure; [FileName] of it is the base of the saved
	// files.
	Name string
	// SVG is the figure as an SVG document (may be nil).
	SVG []byte
	// PNG is the figure as a PNG image (may be nil).
	PNG []byte
	// PDF is the figure as a PDF document (may be nil).
	PDF []byte
}

// SVGText parses the SVG and returns its root element's name and all its
// character data (titles, labels, legend entries), or an error when the SVG is
// not well-formed XML.
func (f *Figure) SVGText() (root, text string, err error) {
	dec := xml.NewDecoder(bytes.NewReader(f.SVG))
	var chars strings.Builder
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return root, chars.String(), nil
		}
		if err != nil {
			return root, "", fmt.Errorf("figure %q: SVG is not well-formed XML: %w", f.Name, err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = e.Name.Local
			}
		case xml.CharData:
			chars.Write(e)
		}
	}
}

// Validate checks every format the figure holds and that it holds at least
// one: the SVG is well-formed XML with an <svg> root, the PNG decodes, and the
// PDF has a PDF header and an end-of-file trailer.
func (f *Figure) Validate() error {
	if len(f.SVG) == 0 && len(f.PNG) == 0 && len(f.PDF) == 0 {
		return fmt.Errorf("figure %q has no content", f.Name)
	}
	if len(f.SVG) > 0 {
		root, _, err := f.SVGText()
		if err != nil {
			return err
		}
		if root != "svg" {
			return fmt.Errorf("figure %q: SVG root element is %q, not svg", f.Name, root)
		}
	}
	if len(f.PNG) > 0 {
		if _, err := png.Decode(bytes.NewReader(f.PNG)); err != nil {
			return fmt.Errorf("figure %q: PNG does not decode: %w", f.Name, err)
		}
	}
	if len(f.PDF) > 0 && (!bytes.HasPrefix(f.PDF, []byte("%PDF-")) ||
		!bytes.Contains(f.PDF[max(len(f.PDF)-64, 0):], []byte("%%EOF"))) {
		return fmt.Errorf("figure %q: PDF header or trailer missing (%d bytes)", f.Name, len(f.PDF))
	}
	return nil
}

// File is one file that holds a figure or an image grid: its base name and its content.
type File struct {
	Name string
	Data []byte
}

// Files returns the files that hold the figure, one per format it has, in the order SVG, PNG, PDF, named
// <FileName(Name)>.svg, .png and .pdf. It returns an error when the figure has no content.
func (f *Figure) Files() ([]File, error) {
	base := FileName(f.Name)
	var files []File
	for _, out := range []struct {
		ext  string
		data []byte
	}{{".svg", f.SVG}, {".png", f.PNG}, {".pdf", f.PDF}} {
		if len(out.data) > 0 {
			files = append(files, File{Name: base + out.ext, Data: out.data})
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("kernelext: figure %q has no content", f.Name)
	}
	return files, nil
}

// HTML returns an HTML fragment showing the figure: the inline SVG when
// there is one, otherwise an <img> with the PNG embedded in base64, otherwise
// a short text.
func (f *Figure) HTML() string {
	switch {
	case len(f.SVG) > 0:
		return "<div>" + stripXMLProlog(string(f.SVG)) + "</div>"
	case len(f.PNG) > 0:
		return `<div><img alt="` + htmlText(f.Name) + `" src="data:image/png;base64,` +
			base64.StdEncoding.EncodeToString(f.PNG) + `"></div>`
	default:
		return "<div>(figure " + htmlText(f.Name) + " has no SVG or PNG content)</div>"
	}
}

// stripXMLProlog removes a leading <?xml ...?> declaration, which is not
// allowed inside HTML.
func stripXMLProlog(s string) string {
	t := strings.TrimLeft(s, " \t\r\n")
	if strings.HasPrefix(t, "<?xml") {
		if i := strings.Index(t, "?>"); i >= 0 {
			return strings.TrimLeft(t[i+2:], " \t\r\n")
		}
	}
	return s
}

// ShowFigure displays f. In a notebook it shows the figure inline (the SVG,
// or the PNG when there is no SVG). When an output directory is set
// ([SetOutputDir]) the figure's [Figure.Files] are also saved there; outside a
// notebook a single line is then written to [Output]:
//
//	figure <name>: <path>[, <path>...]
//
// or, with no output directory, "figure <name>: not saved (no output
// directory)". It returns the error of saving, if any.
func ShowFigure(f *Figure) error {
	notebook := IsNotebook()
	if notebook {
		nb.displayHTML(f.HTML())
	}
	paths, saved, err := saveFiles(f.Files)
	if notebook {
		return err
	}
	switch {
	case err != nil:
		lineWriter(Output(), "figure %s: error: %v", f.Name, err)
	case !saved:
		lineWriter(Output(), "figure %s: not saved (no output directory)", f.Name)
	default:
		lineWriter(Output(), "figure %s: %s", f.Name, strings.Join(paths, ", "))
	}
	return err
}
