package loaders

import (
	"archive/tar"
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"strings"
	"sync"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// Shards is a WebDataset read by index: IndexShards scans the shards once for where each sample starts, its
// label and caption count, and Read then reads one sample's members at their byte offset (pread, safe for
// concurrent use), so training can draw samples in any order. Memory holds 2 bytes per sample (4 with several
// captions per sample) and one open file per shard; the samples' offsets are in an unlinked temporary file (4
// bytes each), and IDs, captions and pictures stay in the shards.
type Shards struct {
	w       *WebDataset
	opts    Options
	files   []*os.File
	sizes   []int64
	first   []int // first sample of each shard, and the count at the end
	offsets *offsetFile
	labels  []int16  // per sample (dataset.NoLabel is -1)
	ncaps   []uint16 // per sample (nil: one caption each)
	skip    []*ExampleError
}

// IndexShards scans the uncompressed tar shards of w in order and returns their index. A sample with an
// annotation problem (no image or caption, a malformed json or cls member, an oversized member) is an
// *ExampleError: with opts.SkipCorrupt it is left out and listed by Skipped, else it is the error. Pictures
// are not decoded here (CheckImages does). A gzip-compressed shard is refused: samples cannot be read at an
// offset in it (decompress it first). opts.ImageSize and MaxPixels apply to Read's decoding.
func IndexShards(w *WebDataset, opts Options) (*Shards, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if len(w.Classes()) > math.MaxInt16 {
		return nil, fmt.Errorf("loaders: IndexShards holds labels in 16 bits: %d classes are too many", len(w.Classes()))
	}
	offsets, err := newOffsetFile()
	if err != nil {
		return nil, err
	}
	s := &Shards{w: w, opts: opts, first: []int{0}, offsets: offsets}
	for _, shard := range w.shards {
		if err := s.scan(shard); err != nil {
			s.Close()
			return nil, err
		}
		s.first = append(s.first, s.Len())
	}
	if err := offsets.w.Flush(); err != nil {
		s.Close()
		return nil, fmt.Errorf("loaders: index of %s: %w", w.Name(), err)
	}
	return s, nil
}

// Close closes the shard files and the index.
func (s *Shards) Close() error {
	var errs []error
	for _, f := range s.files {
		errs = append(errs, f.Close())
	}
	if s.offsets != nil {
		errs = append(errs, s.offsets.f.Close())
	}
	s.files, s.offsets = nil, nil
	return errors.Join(errs...)
}

// offsetFile holds the samples' offsets (in 512-byte blocks, 4 bytes each) in an unlinked temporary file.
type offsetFile struct {
	f *os.File
	w *bufio.Writer
	n int
}

func newOffsetFile() (*offsetFile, error) {
	f, err := os.CreateTemp("", "mmpoison-shard-index-")
	if err != nil {
		return nil, fmt.Errorf("loaders: shard index: %w", err)
	}
	os.Remove(f.Name()) // The open file stays until Close; nothing is left behind.
	return &offsetFile{f: f, w: bufio.NewWriter(f)}, nil
}

// add appends the offset of the next sample.
func (o *offsetFile) add(start int64) error {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(start/512))
	_, err := o.w.Write(b[:])
	o.n++
	return err
}

// at returns the byte offsets of samples i and i+1 (the latter 0 past the last).
func (o *offsetFile) at(i int) (int64, int64, error) {
	var b [8]byte
	n, err := o.f.ReadAt(b[:], 4*int64(i))
	if n < 4 {
		return 0, 0, fmt.Errorf("loaders: shard index: %w", err)
	}
	next := int64(0)
	if n == 8 {
		next = int64(binary.LittleEndian.Uint32(b[4:])) * 512
	}
	return int64(binary.LittleEndian.Uint32(b[:4])) * 512, next, nil
}

// scan indexes one shard: the start of every sample, then each sample's annotations.
func (s *Shards) scan(shard string) error {
	f, err := os.Open(shard)
	if err != nil {
		return fmt.Errorf("loaders: WebDataset shard: %w", err)
	}
	s.files = append(s.files, f)
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("loaders: WebDataset shard: %w", err)
	}
	s.sizes = append(s.sizes, st.Size())
	var magic [2]byte
	if n, _ := f.ReadAt(magic[:], 0); n == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		return fmt.Errorf("loaders: WebDataset shard %s is gzip-compressed: samples are read at their offset, which needs an uncompressed tar (gunzip it first)", shard)
	}
	starts, err := sampleStarts(shard, f)
	if err != nil {
		return err
	}
	shardNo := len(s.files) - 1
	for k, start := range starts {
		end := st.Size()
		if k+1 < len(starts) {
			end = starts[k+1]
		}
		it, err := s.region(shardNo, start, end)
		var exErr *ExampleError
		switch {
		case errors.As(err, &exErr) && s.opts.SkipCorrupt:
			s.skip = append(s.skip, exErr)
			continue
		case err != nil:
			return err
		}
		if err := s.add(start, it.entry); err != nil {
			return fmt.Errorf("loaders: index of %s: %w", shard, err)
		}
	}
	return nil
}

// add appends a sample at byte offset start with the annotations of e.
func (s *Shards) add(start int64, e Entry) error {
	n := s.Len()
	if len(e.Captions) != 1 && s.ncaps == nil {
		s.ncaps = make([]uint16, n, max(n, 16))
		for i := range s.ncaps {
			s.ncaps[i] = 1
		}
	}
	if s.ncaps != nil {
		s.ncaps = append(s.ncaps, uint16(min(len(e.Captions), 1<<16-1)))
	}
	s.labels = append(s.labels, int16(e.Label))
	return s.offsets.add(start)
}

// sampleStarts returns the byte offset of the first header of every sample of a tar shard, scanning headers
// only (member data is skipped with seeks). Samples are grouped by key as the streaming reader groups them.
func sampleStarts(shard string, f *os.File) ([]int64, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	tr := tar.NewReader(f)
	var starts []int64
	next := int64(0) // where the next entry's headers begin
	key := ""
	for {
		at := next
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return starts, nil
		}
		if err != nil {
			return nil, fmt.Errorf("loaders: WebDataset shard %s is damaged at byte %d: %w", shard, at, err)
		}
		data, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, err
		}
		next = data + (hdr.Size+511)&^511
		if err := checkRelative(hdr.Name); err != nil {
			return nil, fmt.Errorf("loaders: WebDataset shard %s: refusing member %q: %w", shard, hdr.Name, err)
		}
		if next/512 > 1<<32-1 {
			return nil, fmt.Errorf("loaders: WebDataset shard %s is larger than 2 TiB", shard)
		}
		k, ok := memberKey(hdr)
		if ok && (len(starts) == 0 || k != key) {
			starts, key = append(starts, at), k
		}
	}
}

// memberKey returns the sample key of a regular member (its name up to the first dot of the base name), or
// false for an entry that is not part of a sample.
func memberKey(hdr *tar.Header) (string, bool) {
	if hdr.Typeflag != tar.TypeReg {
		return "", false
	}
	dir, file := path.Split(strings.TrimPrefix(hdr.Name, "./"))
	dot := strings.IndexByte(file, '.')
	if dot <= 0 {
		return "", false
	}
	return dir + file[:dot], true
}

// regionBuffers are the read buffers of region, reused: readShard reads through a buffered reader of 64 KiB
// and keeps one given to it, so a read by offset does not allocate one.
var regionBuffers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 1<<16) }}

// region reads the sample that starts at byte start of shard shardNo and ends by byte end.
func (s *Shards) region(shardNo int, start, end int64) (item, error) {
	var it item
	itErr := fmt.Errorf("loaders: WebDataset shard %s: no sample at byte %d", s.w.shards[shardNo], start)
	br := regionBuffers.Get().(*bufio.Reader)
	defer regionBuffers.Put(br)
	br.Reset(io.NewSectionReader(s.files[shardNo], start, end-start))
	s.w.readShard(s.w.shards[shardNo], br, func(x item, err error) bool {
		it, itErr = x, err
		return false // The first sample is the one.
	})
	br.Reset(nil)
	return it, itErr
}

// Name, Classes and Len describe the indexed samples; Skipped lists the samples IndexShards left out.
func (s *Shards) Name() string             { return s.w.Name() }
func (s *Shards) Classes() []string        { return s.w.Classes() }
func (s *Shards) Len() int                 { return s.offsets.n }
func (s *Shards) Skipped() []*ExampleError { return s.skip }

// Label and NumCaptions describe sample i as indexed.
func (s *Shards) Label(i int) int { return int(s.labels[i]) }
func (s *Shards) NumCaptions(i int) int {
	if s.ncaps == nil {
		return 1
	}
	return int(s.ncaps[i])
}

// Read reads sample i at its offset: ID, captions and label, the picture decoded when decode is true (as
// Options.ImageSize says), and the image member's bytes.
func (s *Shards) Read(i int, decode bool) (dataset.Example, dataset.Encoded, error) {
	shardNo, start, end, err := s.locate(i)
	if err != nil {
		return dataset.Example{}, dataset.Encoded{}, err
	}
	it, err := s.region(shardNo, start, end)
	if err != nil {
		return dataset.Example{}, dataset.Encoded{}, err
	}
	return readItem(it, decode, s.opts)
}

// locate returns sample i's shard and byte range.
func (s *Shards) locate(i int) (shardNo int, start, end int64, err error) {
	if i < 0 || i >= s.Len() {
		return 0, 0, 0, fmt.Errorf("loaders: sample %d of %s out of range [0, %d)", i, s.Name(), s.Len())
	}
	shardNo = s.shardOf(i)
	start, next, err := s.offsets.at(i)
	end = s.sizes[shardNo]
	if i+1 < s.first[shardNo+1] {
		end = next
	}
	return shardNo, start, end, err
}

// Member returns the content of sample i's member with extension ext (e.g. "json"), or nil when it has none.
// Members larger than the WebDataset's MaxMemberBytes are refused.
func (s *Shards) Member(i int, ext string) ([]byte, error) {
	shardNo, start, end, err := s.locate(i)
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(io.NewSectionReader(s.files[shardNo], start, end-start))
	key := ""
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("loaders: WebDataset shard %s is damaged at sample %d: %w", s.w.shards[shardNo], i, err)
		}
		k, ok := memberKey(hdr)
		if !ok {
			continue
		}
		if key == "" {
			key = k
		}
		if k != key {
			return nil, nil
		}
		if strings.EqualFold(path.Base(hdr.Name)[len(path.Base(k))+1:], ext) {
			if hdr.Size > s.w.cfg.MaxMemberBytes {
				return nil, fmt.Errorf("loaders: member %s of shard %s has %d bytes, above the limit of %d", hdr.Name, s.w.shards[shardNo], hdr.Size, s.w.cfg.MaxMemberBytes)
			}
			return io.ReadAll(tr)
		}
	}
}

// shardOf returns the shard of sample i.
func (s *Shards) shardOf(i int) int {
	lo, hi := 0, len(s.files)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if s.first[mid] <= i {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

var _ dataset.ImageSource = (*Shards)(nil)
