// Package atomicfile is mmpoison's one atomic file writer. It sits at the bottom of the import graph so that
// every layer (manifests, checkpoints, caches, results, reports) writes through it. Readers never see a
// half-written file: the content goes to a temporary file in the same directory, which is synced and then
// renamed over the destination. On any error the temporary file is removed and the destination keeps its
// previous content. ReplaceDir does the same for a whole folder (a report), and ReadFile reads back what was
// written with a bound on its size.
//
// Temporary names carry the writing process's id (".NAME.tmp-PID-RANDOM"), so that what a killed process left
// is told from what a live one is writing: CleanOrphans removes the former, and Write and ReplaceDir call it for
// the name they write.
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Write creates or replaces path with what fn writes. The file gets mode 0644.
func Write(path string, fn func(w io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	CleanOrphans(dir, filepath.Base(path))
	tmp, err := os.CreateTemp(dir, tempPattern(filepath.Base(path)))
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
			err = fmt.Errorf("writing %s: %w", path, err)
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err = fn(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Chmod(0o644); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// WriteFile creates or replaces path with data.
func WriteFile(path string, data []byte) error {
	return Write(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// ReadFile reads the regular file at path, refusing anything else (a device such as /dev/zero, a named pipe, a
// folder) and files of more than limit bytes, before reading. Errors name the file.
func ReadFile(path string, limit int64) ([]byte, error) {
	st, err := os.Stat(path) // Before opening: opening a named pipe waits for a writer.
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%v)", path, st.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err = f.Stat(); err != nil {
		return nil, err
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s has %d bytes, more than the %d it may have", path, st.Size(), limit)
	}
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if n, _ := f.Read(make([]byte, 1)); n > 0 {
		return nil, fmt.Errorf("reading %s: %w", path, errors.New("the file grew while read"))
	}
	return data, nil
}
