package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// DirMarker is the file ReplaceDir puts in every folder it writes. A folder that holds it was written whole by
// ReplaceDir, so the next ReplaceDir may replace it; ReplaceDir refuses to replace a folder that is not empty
// and lacks it (it could be anything, e.g. the working directory).
const DirMarker = ".mmpoison-folder"

// ReplaceDir writes the folder dir whole: fill writes its files into a new temporary sibling folder
// (".NAME.tmp-PID-RANDOM"), which then takes dir's place in one rename. Readers see the previous folder or the
// new one, never a mix; a kill leaves the previous folder as it was, and the temporary one for CleanOrphans.
// The previous folder is deleted once the new one is in place. dir's parent folders are created as needed.
// fill gets the temporary folder's path; the files it writes should be written with Write (synced). Errors:
// those of CheckDir, of fill (nothing is replaced) and of the renames.
func ReplaceDir(dir string, fill func(tmp string) error) error {
	abs, err := CheckDir(dir)
	if err != nil {
		return err
	}
	parent, name := filepath.Split(abs)
	CleanOrphans(parent, name)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(parent, tempPattern(name))
	if err != nil {
		return fmt.Errorf("writing %s: %w", dir, err)
	}
	defer os.RemoveAll(tmp) // The new folder once renamed away, the previous one after an exchange.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", dir, err)
	}
	if err := WriteFile(filepath.Join(tmp, DirMarker), []byte("written whole by mmpoison: the next run replaces this folder whole\n")); err != nil {
		return err
	}
	if err := fill(tmp); err != nil {
		return err
	}
	if err := syncDir(tmp); err != nil {
		return fmt.Errorf("writing %s: %w", dir, err)
	}
	if err := swap(tmp, abs); err != nil {
		return fmt.Errorf("writing %s: %w", dir, err)
	}
	return syncDir(parent)
}

// swap puts the folder tmp at dir. An existing dir is exchanged with tmp in one rename where the system allows
// it (Linux's RENAME_EXCHANGE), else moved aside first; either way it ends at tmp's path.
func swap(tmp, dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return os.Rename(tmp, dir)
	}
	err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dir, unix.RENAME_EXCHANGE)
	if err == nil || !(errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.ENOTSUP)) {
		return err
	}
	aside := tmp + "-old"
	if err := os.Rename(dir, aside); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return errors.Join(err, os.Rename(aside, dir))
	}
	return os.Rename(aside, tmp)
}

// CheckDir reports, before any work, whether ReplaceDir can write dir, and returns its absolute path: dir must
// be absent, an empty folder or a folder ReplaceDir wrote (it holds DirMarker), and the nearest existing folder
// above it must be writable. It writes nothing but a probe file that it removes.
func CheckDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("output folder %q: %w", dir, err)
	}
	if filepath.Dir(abs) == abs {
		return "", fmt.Errorf("output folder %q: the root folder cannot be replaced", dir)
	}
	switch st, err := os.Stat(abs); {
	case err == nil && !st.IsDir():
		return "", fmt.Errorf("output folder %s is a file, not a folder", dir)
	case err == nil:
		entries, err := os.ReadDir(abs)
		if err != nil {
			return "", fmt.Errorf("output folder %s: %w", dir, err)
		}
		if _, err := os.Stat(filepath.Join(abs, DirMarker)); len(entries) > 0 && err != nil {
			return "", fmt.Errorf("output folder %s holds files but no %s (it is not a folder mmpoison wrote whole, "+
				"or one of an older version), and writing it whole would delete them: give a new or empty folder", dir, DirMarker)
		}
	case !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, unix.ENOTDIR): // probe names a file above.
		return "", fmt.Errorf("output folder %s: %w", dir, err)
	}
	return abs, probe(filepath.Dir(abs), dir)
}

// probe checks that files can be created in the nearest existing folder at or above parent.
func probe(parent, dir string) error {
	for {
		st, err := os.Stat(parent)
		if err == nil && !st.IsDir() {
			return fmt.Errorf("output folder %s: %s is a file, not a folder", dir, parent)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, unix.ENOTDIR) || filepath.Dir(parent) == parent {
			return fmt.Errorf("output folder %s: %w", dir, err)
		}
		parent = filepath.Dir(parent)
	}
	f, err := os.CreateTemp(parent, tempPattern("probe"))
	if err != nil {
		return fmt.Errorf("output folder %s cannot be written: %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// syncDir syncs a folder's entries to disk (where the system allows it).
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) && !errors.Is(err, unix.EINVAL) {
		return err
	}
	return nil
}
