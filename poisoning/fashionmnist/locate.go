package fashionmnist

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// DefaultSystemDir is where Debian's dataset-fashion-mnist package installs the four files.
const DefaultSystemDir = "/usr/share/datasets/fashion-mnist"

// DefaultBaseURL is the official Zalando download location of the four files.
const DefaultBaseURL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

// DownloadPolicy says when Locate may download the files.
type DownloadPolicy int

const (
	// DownloadIfMissing (the default) downloads the missing files into the cache directory only when no
	// configured directory is set and neither the system directory nor the cache holds a complete copy.
	DownloadIfMissing DownloadPolicy = iota
	// DownloadNever never touches the network: if no complete copy exists, Locate fails.
	DownloadNever
)

// String returns "if-missing" or "never".
func (p DownloadPolicy) String() string {
	switch p {
	case DownloadIfMissing:
		return "if-missing"
	case DownloadNever:
		return "never"
	}
	return fmt.Sprintf("DownloadPolicy(%d)", int(p))
}

// DefaultCacheDir returns os.UserCacheDir()/mmpoison/fashion-mnist.
func DefaultCacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("fashionmnist: no user cache directory: %w", err)
	}
	return filepath.Join(base, "mmpoison", "fashion-mnist"), nil
}

// Locate returns the directory holding the four files, searching in this order:
//
//  1. cfg.Dir, if set. It must exist and hold all four files; otherwise Locate fails with an error naming it and
//     never falls back to other places or downloads.
//  2. cfg.SystemDir (default DefaultSystemDir), unless cfg.SkipSystemDir.
//  3. cfg.CacheDir (default DefaultCacheDir()).
//  4. Downloading the missing files from cfg.BaseURL into the cache directory, unless cfg.Download is
//     DownloadNever. Downloads are always checked against cfg.Checksums (default OfficialChecksums).
//
// A directory counts only when it holds all four files; Locate does not check their content (ReadDir does).
func Locate(ctx context.Context, cfg Config) (string, error) {
	if cfg.Dir != "" {
		st, err := os.Stat(cfg.Dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("fashionmnist: configured data directory %s does not exist", cfg.Dir)
		case err != nil:
			return "", fmt.Errorf("fashionmnist: configured data directory: %w", err)
		case !st.IsDir():
			return "", fmt.Errorf("fashionmnist: configured data directory %s is not a directory", cfg.Dir)
		}
		if missing := missingFiles(cfg.Dir); len(missing) > 0 {
			return "", fmt.Errorf("fashionmnist: configured data directory %s lacks %s", cfg.Dir, strings.Join(missing, ", "))
		}
		return cfg.Dir, nil
	}
	var looked []string
	if !cfg.SkipSystemDir {
		dir := orDefault(cfg.SystemDir, DefaultSystemDir)
		if len(missingFiles(dir)) == 0 {
			return dir, nil
		}
		looked = append(looked, dir)
	}
	cache := cfg.CacheDir
	var cacheErr error
	if cache == "" {
		cache, cacheErr = DefaultCacheDir()
	}
	if cacheErr == nil {
		if len(missingFiles(cache)) == 0 {
			return cache, nil
		}
		looked = append(looked, cache)
	}
	where := strings.Join(looked, " and ")
	if where == "" {
		where = "no directory"
	}
	if cacheErr != nil {
		cache = ""
	}
	hint := howToGet(cache, cfg.BaseURL, cfg.Checksums)
	if cfg.Download == DownloadNever {
		return "", fmt.Errorf("fashionmnist: Fashion-MNIST files not found (looked in %s) and downloading is disabled. %s", where, hint)
	}
	if cacheErr != nil {
		return "", fmt.Errorf("fashionmnist: Fashion-MNIST files not found (looked in %s) and nowhere to download them (%v). %s",
			where, cacheErr, hint)
	}
	if err := Fetch(ctx, cache, cfg.BaseURL, cfg.Checksums, cfg.HTTPClient); err != nil {
		return "", fmt.Errorf("fashionmnist: Fashion-MNIST files not found (looked in %s); download failed: %w. %s", where, err, hint)
	}
	return cache, nil
}

// howToGet says what to install, or which files to put where, so that Locate finds Fashion-MNIST: Debian's
// package, or the four official files (with their URLs and MD5 sums) in cache ("": a data directory).
func howToGet(cache, baseURL string, sums Checksums) string {
	if sums == nil {
		sums = OfficialChecksums()
	}
	into := "a folder given as the data directory"
	if cache != "" {
		into = cache + " (or a folder given as the data directory)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "To get them, install Debian's package (apt-get install dataset-fashion-mnist: the files land in %s), "+
		"or download these four files into %s:", DefaultSystemDir, into)
	for _, name := range FileNames() {
		u, err := url.JoinPath(orDefault(baseURL, DefaultBaseURL), name)
		if err != nil {
			u = name
		}
		fmt.Fprintf(&b, "\n  %s (md5 %s)", u, sums[name].GzipMD5)
	}
	return b.String()
}

// missingFiles returns the paths of the official files that dir lacks.
func missingFiles(dir string) []string {
	var missing []string
	for _, name := range FileNames() {
		path := filepath.Join(dir, name)
		if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() {
			missing = append(missing, path)
		}
	}
	return missing
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Fetch downloads those of the four files that dir lacks from baseURL (default DefaultBaseURL), creating dir if
// needed. Each file is written to a temporary file in dir, checked against sums (nil means OfficialChecksums),
// and renamed into place only if it matches, so dir never holds a partial or unverified file under an official
// name. A mismatch removes the temporary file and returns an error naming the file and both sums. client nil
// means http.DefaultClient; ctx cancels the transfers.
func Fetch(ctx context.Context, dir, baseURL string, sums Checksums, client *http.Client) error {
	if sums == nil {
		sums = OfficialChecksums()
	}
	if client == nil {
		client = http.DefaultClient
	}
	baseURL = orDefault(baseURL, DefaultBaseURL)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("fashionmnist: %w", err)
	}
	for _, name := range FileNames() {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			continue
		}
		u, err := url.JoinPath(baseURL, name)
		if err != nil {
			return fmt.Errorf("fashionmnist: bad base URL %q: %w", baseURL, err)
		}
		if err := download(ctx, client, u, dir, name, sums); err != nil {
			return err
		}
	}
	return nil
}

// download fetches u into dir/name through a verified temporary file.
func download(ctx context.Context, client *http.Client, u, dir, name string, sums Checksums) (err error) {
	want, ok := sums[name]
	if !ok {
		return fmt.Errorf("fashionmnist: no known checksum for %s; refusing to download it unverified", name)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("fashionmnist: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("fashionmnist: downloading %s: %w", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fashionmnist: downloading %s from %s: HTTP status %s", name, u, resp.Status)
	}
	tmp, err := os.CreateTemp(dir, "."+name+".part-*")
	if err != nil {
		return fmt.Errorf("fashionmnist: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := md5.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(resp.Body, maxDownload+1))
	if err != nil {
		return fmt.Errorf("fashionmnist: downloading %s from %s: %w", name, u, err)
	}
	if n > maxDownload {
		err = fmt.Errorf("fashionmnist: downloading %s from %s: more than %d bytes, the most a data file can take", name, u, maxDownload)
		return err
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("fashionmnist: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("fashionmnist: %w", err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != want.GzipMD5 {
		// A mirror may have recompressed the file: accept it if its content is the known one.
		magic := uint32(magicImages)
		if strings.Contains(name, "labels") {
			magic = magicLabels
		}
		f, rerr := readIDXFile(tmp.Name(), magic)
		if rerr != nil || want.RawMD5 == "" || f.rawMD5 != want.RawMD5 {
			err = fmt.Errorf("fashionmnist: downloaded %s from %s: checksum mismatch: got md5 %s, want %s; file discarded",
				name, u, got, want.GzipMD5)
			return err
		}
	}
	if err = os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("fashionmnist: %w", err)
	}
	if err = os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("fashionmnist: %w", err)
	}
	return nil
}
