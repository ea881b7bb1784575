// Package writers writes image-caption sets in the formats other tools train on: WebDataset tar shards
// (ShardWriter; open_clip's --train-data, webdataset, img2dataset's layout) and open_clip CSV/TSV files with
// their pictures (CSVWriter), deterministically (the same samples give byte-identical files) and with the
// SHA-256 of every file written. poisoning/loaders reads both back.
package writers

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
	"github.com/mmpoison/mmpoison/poisoning/loaders"
)

// Sample is one image-caption pair to write: the picture as stored, its caption and the JSON metadata of its
// WebDataset json member.
type Sample struct {
	// Image is the picture's JPEG or PNG bytes (Format "jpg" or "png").
	Image dataset.Encoded
	// ImageID identifies the picture: CSVWriter writes consecutive samples with the same ImageID as one file.
	ImageID string
	Caption string
	// Meta is the json member's content (nil: no json member).
	Meta []byte
}

// WrittenFile is a file a writer produced (its path relative to the writer's folder, with slashes), with its
// size and SHA-256 (hex).
type WrittenFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// hashedFile is a file being written through a buffer and a running SHA-256.
type hashedFile struct {
	path string
	f    *os.File
	buf  *bufio.Writer
	sum  hash.Hash
	size int64
}

// createHashed creates the file rel (slash-separated) in dir.
func createHashed(dir, rel string) (*hashedFile, error) {
	f, err := os.Create(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		return nil, err
	}
	h := &hashedFile{path: rel, f: f, sum: sha256.New()}
	h.buf = bufio.NewWriterSize(io.MultiWriter(f, h.sum), 1<<20)
	return h, nil
}

func (h *hashedFile) Write(p []byte) (int, error) {
	n, err := h.buf.Write(p)
	h.size += int64(n)
	return n, err
}

// close flushes and closes the file and returns its record.
func (h *hashedFile) close() (WrittenFile, error) {
	err := errors.Join(h.buf.Flush(), h.f.Close())
	return WrittenFile{Path: h.path, Size: h.size, SHA256: hex.EncodeToString(h.sum.Sum(nil))}, err
}

// ShardWriter writes samples as WebDataset tar shards in a folder: shards 000000.tar, 000001.tar, … of
// PerShard samples each, sample k (counted over all shards) being the members %06d.jpg or .png, %06d.txt (the
// caption) and %06d.json (the metadata), in that order. Every header is a plain USTAR one with mode 0644, owner
// and group 0 without names and modification time 0 (1970-01-01), so the same samples give byte-identical
// shards. open_clip and webdataset read them as they are; so does loaders.OpenWebDataset.
type ShardWriter struct {
	dir      string
	perShard int
	n        int
	cur      *hashedFile
	tw       *tar.Writer
	files    []WrittenFile
}

// NewShardWriter returns a writer of shards of perShard samples (at least 1) into the existing folder dir.
func NewShardWriter(dir string, perShard int) *ShardWriter {
	return &ShardWriter{dir: dir, perShard: max(perShard, 1)}
}

// Write appends a sample, starting a new shard when the current one is full.
func (w *ShardWriter) Write(s Sample) error {
	if s.Image.Format != "jpg" && s.Image.Format != "png" {
		return fmt.Errorf("writers: sample %d: image format %q, want jpg or png", w.n, s.Image.Format)
	}
	if w.n%w.perShard == 0 {
		if err := w.closeShard(); err != nil {
			return err
		}
		f, err := createHashed(w.dir, fmt.Sprintf("%06d.tar", w.n/w.perShard))
		if err != nil {
			return fmt.Errorf("writers: %w", err)
		}
		w.cur, w.tw = f, tar.NewWriter(f)
	}
	key := fmt.Sprintf("%06d", w.n)
	members := []struct {
		ext  string
		data []byte
	}{{s.Image.Format, s.Image.Data}, {"txt", []byte(s.Caption)}, {"json", s.Meta}}
	for _, m := range members {
		if m.data == nil && m.ext == "json" {
			continue
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: key + "." + m.ext, Mode: 0o644, Size: int64(len(m.data)),
			ModTime: time.Unix(0, 0), Format: tar.FormatUSTAR}
		if err := w.tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("writers: shard %s: %w", w.cur.path, err)
		}
		if _, err := w.tw.Write(m.data); err != nil {
			return fmt.Errorf("writers: shard %s: %w", w.cur.path, err)
		}
	}
	w.n++
	return nil
}

// closeShard finishes the current shard, if any.
func (w *ShardWriter) closeShard() error {
	if w.cur == nil {
		return nil
	}
	err := w.tw.Close()
	f, cerr := w.cur.close()
	w.cur, w.tw = nil, nil
	if err = errors.Join(err, cerr); err != nil {
		return fmt.Errorf("writers: shard %s: %w", f.Path, err)
	}
	w.files = append(w.files, f)
	return nil
}

// Close finishes the last shard and returns every shard written, in order.
func (w *ShardWriter) Close() ([]WrittenFile, error) {
	err := w.closeShard()
	return w.files, err
}

// CSVWriter writes samples as an open_clip CSV (or TSV) file with the columns filepath and title (open_clip's
// default --csv-img-key and --csv-caption-key), the pictures as files under images/ beside it (consecutive
// samples with the same ImageID share one file), named by relative paths; loaders.OpenCSV reads it. Fields are quoted where needed, as
// pandas and Python's csv module read them; separator ',' or '\t' (open_clip's --csv-separator).
type CSVWriter struct {
	dir    string
	file   *hashedFile
	w      *csv.Writer
	last   string // ImageID of the last sample
	path   string // its file, relative to dir
	images int
	all    hash.Hash // over every picture's relative path and SHA-256
}

// NewCSVWriter creates the CSV file name in the existing folder dir, with separator sep, and writes its header.
func NewCSVWriter(dir, name string, sep rune) (*CSVWriter, error) {
	f, err := createHashed(dir, name)
	if err != nil {
		return nil, fmt.Errorf("writers: %w", err)
	}
	c := &CSVWriter{dir: dir, file: f, w: csv.NewWriter(f), all: sha256.New()}
	c.w.Comma = sep
	if err := c.w.Write([]string{loaders.DefaultCSVImageKey, loaders.DefaultCSVCaptionKey}); err != nil {
		f.close()
		return nil, fmt.Errorf("writers: %w", err)
	}
	return c, nil
}

// Write appends a row, writing the picture's file unless the previous row had the same ImageID.
func (c *CSVWriter) Write(s Sample) error {
	if s.ImageID == "" || s.ImageID != c.last {
		rel := filepath.ToSlash(filepath.Join("images", fmt.Sprintf("%03d", c.images/10000), fmt.Sprintf("%06d.%s", c.images, s.Image.Format)))
		abs := filepath.Join(c.dir, filepath.FromSlash(rel))
		if c.images%10000 == 0 {
			if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
				return fmt.Errorf("writers: %w", err)
			}
		}
		if err := os.WriteFile(abs, s.Image.Data, 0o644); err != nil {
			return fmt.Errorf("writers: %w", err)
		}
		sum := sha256.Sum256(s.Image.Data)
		fmt.Fprintf(c.all, "%s %x\n", rel, sum)
		c.last, c.path = s.ImageID, rel
		c.images++
	}
	if err := c.w.Write([]string{c.path, s.Caption}); err != nil {
		return fmt.Errorf("writers: %s: %w", c.file.path, err)
	}
	return nil
}

// Close finishes the CSV file and returns it, the number of picture files and one SHA-256 over every
// picture's relative path and SHA-256 (a line "path sha256" each, in order).
func (c *CSVWriter) Close() (WrittenFile, int, string, error) {
	c.w.Flush()
	err := c.w.Error()
	f, cerr := c.file.close()
	if err = errors.Join(err, cerr); err != nil {
		return f, c.images, "", fmt.Errorf("writers: %s: %w", f.Path, err)
	}
	return f, c.images, hex.EncodeToString(c.all.Sum(nil)), nil
}
