package loaders

import (
	"bytes"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// encodeImage returns a small synthetic image encoded as JPEG ("jpg"), PNG ("png") or grayscale JPEG
// ("gray"), its pixels varying with seed.
func encodeImage(t testing.TB, kind string, w, h, seed int) []byte {
	t.Helper()
	var buf bytes.Buffer
	var err error
	switch kind {
	case "gray":
		img := image.NewGray(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
				img.SetGray(x, y, color.Gray{uint8(x*7 + y*3 + seed*29)})
			}
		}
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
	default:
		img := image.NewNRGBA(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
				img.SetNRGBA(x, y, color.NRGBA{uint8(x*9 + seed*41), uint8(y*11 + seed*13), uint8(seed * 71), 255})
			}
		}
		if kind == "png" {
			err = png.Encode(&buf, img)
		} else {
			err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// corruptJPEG returns a JPEG whose header is intact but whose data is cut short, as a partial download leaves it.
func corruptJPEG(t testing.TB) []byte {
	t.Helper()
	data := encodeImage(t, "jpg", 24, 20, 3)
	return data[:len(data)/2]
}

// writeFile writes data at path, creating the folders.
func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeImage writes a synthetic image of the given kind at path.
func writeImage(t testing.TB, path, kind string, w, h, seed int) {
	t.Helper()
	writeFile(t, path, encodeImage(t, kind, w, h, seed))
}

// writeJSON writes v as indented JSON at path (indented, so that errors have lines to point at).
func writeJSON(t testing.TB, path string, v any) {
	t.Helper()
	data, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, data)
}

// collectAll ranges over a source and returns the examples and the errors, in order.
func collectAll(t testing.TB, src Source, opts Options) ([]dataset.Example, []error) {
	t.Helper()
	var exs []dataset.Example
	var errs []error
	for ex, err := range src.Examples(opts) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		exs = append(exs, ex)
	}
	return exs, errs
}

// ids returns the IDs of examples.
func ids(exs []dataset.Example) []string {
	out := make([]string, len(exs))
	for i, ex := range exs {
		out[i] = ex.ID
	}
	return out
}

// entryIDs returns the IDs of an index's entries.
func entryIDs(ix *Index) []string {
	out := make([]string, ix.Len())
	for i, e := range ix.Entries() {
		out[i] = e.ID
	}
	return out
}

// wantErr checks that err is non-nil, of type T (when T is not error) and mentions every part.
func wantErr[T error](t testing.TB, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one mentioning %q", parts)
	}
	var target T
	if !errors.As(err, &target) {
		t.Errorf("error %q is a %T, want a %T", err, err, target)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

// checkImages checks that every example has an n×n RGB image.
func checkImages(t testing.TB, exs []dataset.Example, n int) {
	t.Helper()
	for _, ex := range exs {
		im := ex.Image
		if im.Height != n || im.Width != n || im.Channels != 3 || len(im.Pix) != n*n*3 {
			t.Errorf("%s: image %d×%d×%d (%d bytes), want %d×%d×3", ex.ID, im.Height, im.Width, im.Channels, len(im.Pix), n, n)
		}
	}
}
