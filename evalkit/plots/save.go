package plots

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mmpoison/mmpoison/kernelext"
	"github.com/mmpoison/mmpoison/poisoning/atomicfile"
)

// Save writes every format the figure has into dir, creating dir if needed, as the files of
// [kernelext.Figure.Files] (<name>.svg, .png and .pdf, in that order), each atomically. It returns the paths
// written.
func Save(dir string, fig *kernelext.Figure) ([]string, error) {
	if dir == "" {
		return nil, errors.New("plots.Save: empty directory")
	}
	files, err := fig.Files()
	if err != nil {
		return nil, fmt.Errorf("plots.Save: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("plots.Save: %w", err)
	}
	var paths []string
	for _, f := range files {
		p := filepath.Join(dir, f.Name)
		if err := atomicfile.WriteFile(p, f.Data); err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}
