//go:build !cgo || !unix

package turbojpeg

import "errors"

var errNoCgo = errors.New("turbojpeg: built without cgo (or not on Unix): libjpeg-turbo cannot be loaded")

// Load returns why the library cannot be used: this build cannot load it.
func Load() error { return errNoCgo }

// Library returns "": no library is loaded.
func Library() string { return "" }

// Decode returns an error: this build cannot load the library.
func Decode(data, dst []byte, width, height int, gray bool) error { return errNoCgo }

// Encode returns an error: this build cannot load the library.
func Encode(pix []byte, width, height int, gray bool, s Subsampling, quality int, progressive bool) ([]byte, error) {
	return nil, errNoCgo
}

// load returns an error: this build cannot load the library.
func load(name string) error { return errNoCgo }
