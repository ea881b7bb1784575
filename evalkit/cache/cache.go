// Package cache keeps what mmpoison computes (trained models, results, defense-matrix cells) on disk, so that a
// re-run, a notebook's next cell or an interrupted sweep picks up finished work instead of recomputing it.
//
// An entry is a folder named after its Key: the stage that made it and a hash of everything it depends on,
// derived mechanically from the typed parts the stage reads plus FormatVersion. Entries live under
// <root>/v<FormatVersion>/, so the files of older versions are never looked at. Get publishes an entry as one
// unit: its files are written into a temporary sibling folder, listed with their size and SHA-256 in
// entry.json, and the folder is renamed into place. Loading verifies every file against entry.json; an entry
// that does not match (corrupt, truncated or incomplete) is moved aside to <root>/v<FormatVersion>/.corrupt/,
// named in a one-line notice, and recomputed.
//
// Processes sharing a cache compute each entry once: a lock per entry (flock) makes the others wait and then
// use the entry (see lock.go). A computation may keep resumable state in the entry's partial folder (Partial),
// so that a killed run goes on where it stopped.
package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/mmpoison/mmpoison/poisoning/atomicfile"
)

// FormatVersion is the version of the cache's layout and of what its entries hold. It is part of every key and
// names the folder entries live in; it changes whenever entries of older code must not be reused.
const FormatVersion = 3

// EntryFile is the file of an entry that lists its other files with their sizes and SHA-256 sums.
const EntryFile = "entry.json"

// maxEntryFile bounds the size of an entry.json read back: 16 MiB.
const maxEntryFile = 16 << 20

// Root returns the cache's root folder: $MMPOISON_CACHE, or mmpoison in the user cache directory.
func Root() (string, error) {
	if d := os.Getenv("MMPOISON_CACHE"); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cache: no cache directory (set MMPOISON_CACHE): %w", err)
	}
	return filepath.Join(base, "mmpoison"), nil
}

// Key identifies an entry: the stage that produces it and the hash of what it depends on.
type Key struct {
	// Stage names what the entry holds, e.g. "pretrain" or "result".
	Stage string
	// Hash is 16 hex digits of the SHA-256 of {"format": FormatVersion, "stage": Stage, "parts": parts}.
	Hash string
	// parts is the JSON of what the entry depends on, recorded in its entry.json.
	parts json.RawMessage
}

var stageName = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// NewKey returns the key of an entry of stage that depends on parts (any value encoding/json accepts, typically
// a struct of the typed spec parts the stage reads). Errors: a stage name other than lower-case words joined by
// '-', or parts JSON cannot encode (e.g. a NaN).
func NewKey(stage string, parts any) (Key, error) {
	if !stageName.MatchString(stage) {
		return Key{}, fmt.Errorf("cache: stage name %q: want lower-case letters and digits joined by '-'", stage)
	}
	data, err := json.Marshal(parts)
	if err != nil {
		return Key{}, fmt.Errorf("cache: the settings of %s cannot be hashed: %w", stage, err)
	}
	whole, err := json.Marshal(struct {
		Format int             `json:"format"`
		Stage  string          `json:"stage"`
		Parts  json.RawMessage `json:"parts"`
	}{FormatVersion, stage, data})
	if err != nil {
		return Key{}, err
	}
	sum := sha256.Sum256(whole)
	return Key{Stage: stage, Hash: hex.EncodeToString(sum[:8]), parts: data}, nil
}

// Name is the entry's folder name, "<stage>-<hash>".
func (k Key) Name() string { return k.Stage + "-" + k.Hash }

// Cache is a cache root folder.
type Cache struct {
	root string
}

// Open returns the cache rooted at root, or at Root() when root is empty. Its folders are created when an entry
// is first written.
func Open(root string) (*Cache, error) {
	if root == "" {
		var err error
		if root, err = Root(); err != nil {
			return nil, err
		}
	}
	return &Cache{root: root}, nil
}

// Dir is the folder holding this format version's entries, <root>/v<FormatVersion>.
func (c *Cache) Dir() string { return filepath.Join(c.root, fmt.Sprintf("v%d", FormatVersion)) }

// Get returns the folder of key's entry. When a valid entry exists it returns it with cached true. Otherwise
// it takes the entry's lock (waiting while another process computes it, then using its entry), moves an entry
// that fails verification aside with a notice, and calls produce with an empty temporary folder to write the
// entry's files into; then it publishes that folder as the entry and returns its final path with cached false.
// produce must not keep paths into its folder: they change on publishing. It may keep what lets it resume in
// Partial(key), which Get removes once the entry is published. On an error from produce nothing is published.
// Temporary and partial folders that killed processes left are removed on the way (see cleanOrphans).
func (c *Cache) Get(key Key, produce func(dir string) error) (dir string, cached bool, err error) {
	if key.Hash == "" {
		return "", false, errors.New("cache: Get with a zero Key (use NewKey)")
	}
	final := filepath.Join(c.Dir(), key.Name())
	if verify(final) == nil {
		return final, true, nil
	}
	if err := os.MkdirAll(c.Dir(), 0o755); err != nil {
		return "", false, fmt.Errorf("cache: %w", err)
	}
	for _, p := range c.cleanOrphans() {
		fmt.Fprintf(notices, "mmpoison: removed %s, left in the cache by a killed process\n", p)
	}
	l, err := c.lock(key.Name(), true)
	if err != nil {
		return "", false, err
	}
	defer l.unlock()
	switch err := verify(final); {
	case err == nil: // Another process published it while this one waited.
		return final, true, nil
	case !errors.Is(err, fs.ErrNotExist):
		if err := c.setAside(final, err); err != nil {
			return "", false, err
		}
	}
	leftovers, _ := filepath.Glob(filepath.Join(c.Dir(), tempPrefix(key.Name())+"*"))
	for _, p := range leftovers { // Ours to remove: we hold the lock, so their process is gone.
		os.RemoveAll(p)
	}
	tmp, err := os.MkdirTemp(c.Dir(), fmt.Sprintf("%s%d-", tempPrefix(key.Name()), os.Getpid()))
	if err != nil {
		return "", false, fmt.Errorf("cache: %w", err)
	}
	defer os.RemoveAll(tmp) // Gone after the rename; a leftover otherwise.
	if err := produce(tmp); err != nil {
		return "", false, err
	}
	if err := seal(tmp, key); err != nil {
		return "", false, err
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", false, fmt.Errorf("cache: publishing %s: %w", final, err)
	}
	os.RemoveAll(c.partialPath(key.Name()))
	return final, false, nil
}

// Get is Cache.Get of the cache at Root().
func Get(key Key, produce func(dir string) error) (dir string, cached bool, err error) {
	c, err := Open("")
	if err != nil {
		return "", false, err
	}
	return c.Get(key, produce)
}

// notices receives the one-line notices about entries moved aside.
var notices io.Writer = os.Stderr

// setAside moves a corrupt entry to <Dir>/.corrupt/ and says so in one line.
func (c *Cache) setAside(path string, why error) error {
	corrupt := filepath.Join(c.Dir(), ".corrupt")
	if err := os.MkdirAll(corrupt, 0o755); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	aside, err := os.MkdirTemp(corrupt, filepath.Base(path)+"-")
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	aside = filepath.Join(aside, filepath.Base(path))
	if err := os.Rename(path, aside); errors.Is(err, fs.ErrNotExist) {
		return nil // Another process moved it first.
	} else if err != nil {
		return fmt.Errorf("cache: moving the corrupt entry %s aside: %w", path, err)
	}
	fmt.Fprintf(notices, "mmpoison: cache entry %s is corrupt (%v): moved to %s, recomputing it\n", path, why, aside)
	return nil
}

// entry is the content of entry.json.
type entry struct {
	Format int             `json:"format"`
	Stage  string          `json:"stage"`
	Hash   string          `json:"hash"`
	Parts  json.RawMessage `json:"parts"`
	Files  []fileSum       `json:"files"`
}

// fileSum is one file of an entry: its path relative to the entry, size and SHA-256.
type fileSum struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// seal lists every file under dir (regular files only) in dir/entry.json with its size and SHA-256, syncing
// each, so that the folder is ready to be published.
func seal(dir string, key Key) error {
	e := entry{Format: FormatVersion, Stage: key.Stage, Hash: key.Hash, Parts: key.parts}
	sums, err := sumFiles(dir, true)
	if err != nil {
		return err
	}
	for name, s := range sums {
		s.Name = name
		e.Files = append(e.Files, s)
	}
	slices.SortFunc(e.Files, func(a, b fileSum) int { return strings.Compare(a.Name, b.Name) })
	data, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, EntryFile))
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("cache: %w", err)
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	return syncDir(dir)
}

// verify checks the entry at path against its entry.json: every listed file with its size and SHA-256, and no
// other file. It returns an error wrapping fs.ErrNotExist when there is no entry at all.
func verify(path string) error {
	if _, err := os.Stat(path); err != nil {
		return err
	}
	data, err := atomicfile.ReadFile(filepath.Join(path, EntryFile), maxEntryFile)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no %s: an incomplete entry", EntryFile)
	} else if err != nil {
		return err
	}
	var e entry
	if err := json.Unmarshal(data, &e); err != nil {
		return fmt.Errorf("malformed %s: %v", EntryFile, err)
	}
	if want := filepath.Base(path); e.Format != FormatVersion || e.Stage+"-"+e.Hash != want {
		return fmt.Errorf("%s describes format %d entry %s-%s", EntryFile, e.Format, e.Stage, e.Hash)
	}
	sums, err := sumFiles(path, false)
	if err != nil {
		return err
	}
	for _, f := range e.Files {
		got, ok := sums[f.Name]
		switch {
		case !ok:
			return fmt.Errorf("%s is missing", f.Name)
		case got.Size != f.Size:
			return fmt.Errorf("%s has %d bytes, %s says %d", f.Name, got.Size, EntryFile, f.Size)
		case got.SHA256 != f.SHA256:
			return fmt.Errorf("%s does not match its SHA-256 in %s", f.Name, EntryFile)
		}
		delete(sums, f.Name)
	}
	for name := range sums {
		return fmt.Errorf("%s is not listed in %s", name, EntryFile)
	}
	return nil
}

// sumFiles returns the size and SHA-256 of every file under dir but entry.json, by slash-separated relative
// path; with sync it also syncs each file to disk. Anything but regular files and folders is an error.
func sumFiles(dir string, sync bool) (map[string]fileSum, error) {
	sums := map[string]fileSum{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir() || rel == EntryFile:
			return nil
		case !d.Type().IsRegular():
			return fmt.Errorf("%s is not a regular file", rel)
		}
		s, err := sumFile(path, sync)
		sums[rel] = s
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	return sums, nil
}

func sumFile(path string, sync bool) (fileSum, error) {
	f, err := os.Open(path)
	if err != nil {
		return fileSum{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err == nil && sync {
		err = f.Sync()
	}
	return fileSum{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, err
}

// syncDir syncs a folder's entries to disk (where the system allows it).
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("cache: %w", err)
	}
	return nil
}

// FileID identifies a file's version in cache keys: its absolute path, size and modification time, so that a
// replaced file is not taken for the old one.
type FileID struct {
	Path    string    `json:"path"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mod_time"`
}

// IdentifyFile returns the FileID of path (the zero FileID for ""; only the path for a file that cannot be
// read: loading it reports the error).
func IdentifyFile(path string) FileID {
	if path == "" {
		return FileID{}
	}
	id := FileID{Path: path}
	if abs, err := filepath.Abs(path); err == nil {
		id.Path = abs
	}
	if st, err := os.Stat(path); err == nil {
		id.Size, id.ModTime = st.Size(), st.ModTime().UTC()
	}
	return id
}
