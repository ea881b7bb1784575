package npy_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/mmpoison/mmpoison/evalkit/npy"
)

// A 2×3 matrix written with WriteMatrix loads in Python with numpy.load("features.npy").
func Example() {
	dir, _ := os.MkdirTemp("", "npy")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "features.npy")

	if err := npy.WriteMatrix(path, [][]float32{{1, 2, 3}, {4, 5, 6.5}}); err != nil {
		fmt.Println(err)
		return
	}
	data, shape, err := npy.Read(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	header, _ := npy.Header(shape...)
	fmt.Println(shape, data)
	fmt.Printf("data starts at byte %d: %q\n", len(header), header[10:71])
	// Output:
	// [2 3] [1 2 3 4 5 6.5]
	// data starts at byte 128: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }  "
}
