package cache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Coordination between processes sharing a cache.
//
// Each entry has a lock file, <Dir>/.locks/<stage>-<hash>.lock, locked with flock(2) while the entry is
// computed. Get takes it only when the entry is not there yet: a process that finds the entry locked waits (it
// says so in one line) and then loads the entry the other process published, so that every entry is computed
// once however many processes ask for it. Lock files are never removed: removing one while another process
// waits on it would let a third lock a new file of the same name. Because every producer holds its entry's
// lock, whatever is found under the entry's name while holding it (a temporary folder, a partial folder) was
// left by a process that was killed.

// lockFile holds an entry's lock.
type lockFile struct{ f *os.File }

// lockPath is the lock file of the entry called name.
func (c *Cache) lockPath(name string) string { return filepath.Join(c.Dir(), ".locks", name+".lock") }

// lock takes the lock of the entry called name, waiting for the process that holds it (with a notice when it
// has to wait). With wait false it returns (nil, nil) instead of waiting.
func (c *Cache) lock(name string, wait bool) (*lockFile, error) {
	path := c.lockPath(name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	err = flock(f, unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) && wait {
		holder, _ := os.ReadFile(path)
		fmt.Fprintf(notices, "mmpoison: cache entry %s is being computed by process %s; waiting to use it\n",
			filepath.Join(c.Dir(), name), strings.TrimSpace(string(holder)))
		err = flock(f, unix.LOCK_EX)
	}
	if err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("cache: locking %s: %w", path, err)
	}
	// Say who holds it, for the notice of those who wait.
	if f.Truncate(0) == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &lockFile{f}, nil
}

// flock is flock(2), retried when a signal interrupts it.
func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// unlock releases the lock.
func (l *lockFile) unlock() {
	flock(l.f, unix.LOCK_UN)
	l.f.Close()
}

// tempPrefix starts the names of the temporary folders of the entry called name.
func tempPrefix(name string) string { return ".tmp-" + name + "-" }

// PartialAge is the age past which a partial folder whose entry nobody computes is removed.
const PartialAge = 30 * 24 * time.Hour

// Partial returns the partial folder of key's entry, <Dir>/.partial/<stage>-<hash>/, creating it. A produce
// function of Get (which holds the entry's lock) keeps there what lets a killed computation resume, e.g. a
// training checkpoint: the next Get of the key finds it. Get removes it once the entry is published.
func (c *Cache) Partial(key Key) (string, error) {
	p := c.partialPath(key.Name())
	if err := os.MkdirAll(p, 0o755); err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	return p, nil
}

// Partial is Cache.Partial of the cache at Root().
func Partial(key Key) (string, error) {
	c, err := Open("")
	if err != nil {
		return "", err
	}
	return c.Partial(key)
}

func (c *Cache) partialPath(name string) string { return filepath.Join(c.Dir(), ".partial", name) }

// cleanOrphans removes the temporary folders that killed processes left in the cache, and the partial folders
// untouched for PartialAge: those of entries whose lock is free (nobody computes them). It returns what it
// removed.
func (c *Cache) cleanOrphans() []string {
	var removed []string
	entries, _ := os.ReadDir(c.Dir())
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), ".tmp-")
		if i := strings.LastIndex(name, "-"); ok && i > 0 {
			if i = strings.LastIndex(name[:i], "-"); i > 0 { // .tmp-<stage>-<hash>-<pid>-<random>
				removed = append(removed, c.removeUnlocked(name[:i], filepath.Join(c.Dir(), e.Name()))...)
			}
		}
	}
	partials, _ := os.ReadDir(filepath.Join(c.Dir(), ".partial"))
	for _, e := range partials {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > PartialAge {
			removed = append(removed, c.removeUnlocked(e.Name(), c.partialPath(e.Name()))...)
		}
	}
	return removed
}

// removeUnlocked removes path when the lock of the entry called name is free.
func (c *Cache) removeUnlocked(name, path string) []string {
	if !stageName.MatchString(name) {
		return nil // Not an entry's name.
	}
	l, err := c.lock(name, false)
	if err != nil || l == nil {
		return nil
	}
	defer l.unlock()
	if os.RemoveAll(path) != nil {
		return nil
	}
	return []string{path}
}
