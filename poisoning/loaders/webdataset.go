package loaders

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// DefaultMaxMemberBytes is the default size limit of one WebDataset member: larger ones are not read.
const DefaultMaxMemberBytes = 64 << 20

// webDatasetImageExts are the image member extensions, in order of preference.
var webDatasetImageExts = []string{"jpg", "jpeg", "png"}

// WebDatasetConfig lists the shards of a WebDataset and how to read its samples.
type WebDatasetConfig struct {
	// Shards are the tar files, read in order; each may be gzip-compressed (.tar.gz, .tgz: detected from its
	// first bytes) and may hold a numeric brace range, e.g. "data/{000000..000099}.tar" (see ExpandShards).
	Shards []string
	// Classes names the labels: with Classes a sample's cls member (a 0-based index or a class name) or its
	// json "label" field (the same, as a number or a string) becomes Example.Label. Without Classes labels are
	// not read and every example is unlabelled.
	Classes []string
	// Name names the source (empty: "webdataset").
	Name string
	// MaxMemberBytes is the size limit of one member (0: DefaultMaxMemberBytes); a sample with a larger member
	// fails with an *ExampleError, the member is skipped without being read.
	MaxMemberBytes int64
}

// WebDataset is a source over WebDataset tar shards, streamed with archive/tar: members are read in order as
// the consumer asks for examples, never unpacked to disk, and only the current sample's members are held.
//
// A sample is a run of consecutive members with the same key: the member name up to the first dot of its base
// name (000042.jpg, 000042.txt and 000042.cls form sample 000042; a folder part is kept in the key). Its image is
// the jpg, jpeg or png member; its caption the whole text of the txt member (one caption, as open_clip reads
// it) or else the json member's "caption" (string) or "captions" (list of strings); its label (with Classes)
// the cls member or the json "label" field. Other members are ignored. Example IDs are "<shard>/<key>", the
// shard's file name without .tar/.tar.gz/.tgz.
//
// A member name that is absolute or contains ".." ends the iteration with an error naming the member and the
// shard. A sample without an image or caption, with a malformed json or cls member, a corrupt image or an
// oversized member is an *ExampleError naming the shard and member; a damaged tar ends the iteration with an
// error naming the shard.
type WebDataset struct {
	cfg    WebDatasetConfig
	shards []string
}

// OpenWebDataset expands the shard patterns and checks that every shard exists; nothing is read yet.
func OpenWebDataset(cfg WebDatasetConfig) (*WebDataset, error) {
	if cfg.Name == "" {
		cfg.Name = "webdataset"
	}
	if cfg.MaxMemberBytes == 0 {
		cfg.MaxMemberBytes = DefaultMaxMemberBytes
	}
	w := &WebDataset{cfg: cfg}
	for _, p := range cfg.Shards {
		list, err := ExpandShards(p)
		if err != nil {
			return nil, err
		}
		w.shards = append(w.shards, list...)
	}
	if len(w.shards) == 0 {
		return nil, fmt.Errorf("loaders: WebDataset %s: no shards given", cfg.Name)
	}
	for _, s := range w.shards {
		if _, err := os.Stat(s); err != nil {
			return nil, fmt.Errorf("loaders: WebDataset shard: %w", err)
		}
	}
	return w, nil
}

// Name returns WebDatasetConfig.Name.
func (w *WebDataset) Name() string { return w.cfg.Name }

// Classes returns WebDatasetConfig.Classes.
func (w *WebDataset) Classes() []string { return w.cfg.Classes }

// Shards returns the expanded list of shard files.
func (w *WebDataset) Shards() []string { return w.shards }

// Examples streams the shards in order (see WebDataset for the sample rules and errors).
func (w *WebDataset) Examples(opts Options) iter.Seq2[dataset.Example, error] {
	return decodeAll(w.samples(), opts)
}

// ExpandShards expands the numeric brace ranges of a shard pattern, as WebDataset and open_clip do:
// "s-{000..002}.tar" gives s-000.tar, s-001.tar, s-002.tar (numbers padded to the width of the range's first
// bound). Several ranges expand as a product. A pattern without braces is returned as is.
func ExpandShards(pattern string) ([]string, error) {
	open := strings.IndexByte(pattern, '{')
	if open < 0 {
		if strings.ContainsRune(pattern, '}') {
			return nil, fmt.Errorf("loaders: shard pattern %q has an unmatched }", pattern)
		}
		return []string{pattern}, nil
	}
	closing := strings.IndexByte(pattern[open:], '}')
	if closing < 0 {
		return nil, fmt.Errorf("loaders: shard pattern %q has an unmatched {", pattern)
	}
	closing += open
	lo, hi, ok := strings.Cut(pattern[open+1:closing], "..")
	a, errA := strconv.Atoi(lo)
	b, errB := strconv.Atoi(hi)
	if !ok || errA != nil || errB != nil || a < 0 || b < a {
		return nil, fmt.Errorf("loaders: shard pattern %q: %q is not a numeric range such as {000000..000099}", pattern, pattern[open:closing+1])
	}
	if b-a >= 1_000_000 {
		return nil, fmt.Errorf("loaders: shard pattern %q expands to more than a million shards", pattern)
	}
	rest, err := ExpandShards(pattern[closing+1:])
	if err != nil {
		return nil, err
	}
	var out []string
	for n := a; n <= b; n++ {
		num := fmt.Sprintf("%0*d", len(lo), n)
		for _, r := range rest {
			out = append(out, pattern[:open]+num+r)
		}
	}
	return out, nil
}

// shardBase returns a shard's file name without its tar extensions.
func shardBase(shard string) string {
	b := filepath.Base(shard)
	for _, ext := range []string{".tar.gz", ".tgz", ".tar"} {
		if strings.HasSuffix(strings.ToLower(b), ext) {
			return b[:len(b)-len(ext)]
		}
	}
	return b
}

// sample is the members of one key being gathered.
type sample struct {
	key     string
	members map[string][]byte // by extension
	names   map[string]string // member names by extension
	order   []string          // every member name, for messages
	err     error             // a problem found while reading (too large, duplicate)
}

// samples streams the shards' samples as items (image bytes plus annotations). Problems confined to a sample
// are *ExampleError; others end the sequence.
func (w *WebDataset) samples() iter.Seq2[item, error] {
	return func(yield func(item, error) bool) {
		for _, shard := range w.shards {
			if !w.shardSamples(shard, yield) {
				return
			}
		}
	}
}

// shardSamples streams one shard; it returns false when the iteration must stop.
func (w *WebDataset) shardSamples(shard string, yield func(item, error) bool) bool {
	f, err := os.Open(shard)
	if err != nil {
		yield(item{}, fmt.Errorf("loaders: WebDataset shard: %w", err))
		return false
	}
	defer f.Close()
	return w.readShard(shard, f, yield)
}

// readShard streams the samples of a shard (tar, or tar.gz detected from its first bytes) read from r.
func (w *WebDataset) readShard(shard string, r io.Reader, yield func(item, error) bool) bool {
	br := bufio.NewReaderSize(r, 1<<16)
	r = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			yield(item{}, fmt.Errorf("loaders: WebDataset shard %s: %w", shard, err))
			return false
		}
		defer gz.Close()
		r = gz
	}
	tr := tar.NewReader(r)
	base := shardBase(shard)
	var cur *sample
	last := ""
	flush := func() bool {
		if cur == nil {
			return true
		}
		it, err := w.build(shard, base, cur)
		cur = nil
		return yield(it, err)
	}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return flush()
		}
		if err != nil {
			where := "at its start"
			if last != "" {
				where = fmt.Sprintf("after member %q", last)
			}
			if !flush() {
				return false
			}
			yield(item{}, fmt.Errorf("loaders: WebDataset shard %s is damaged %s: %w", shard, where, err))
			return false
		}
		name := hdr.Name
		last = name
		if err := checkRelative(name); err != nil {
			if !flush() { // The samples before it were read in full: pass them on first.
				return false
			}
			yield(item{}, fmt.Errorf("loaders: WebDataset shard %s: refusing member %q: %w", shard, name, err))
			return false
		}
		if hdr.Typeflag != tar.TypeReg {
			continue // Folders, links and other entries hold no sample data.
		}
		dir, file := path.Split(strings.TrimPrefix(name, "./"))
		dot := strings.IndexByte(file, '.')
		if dot <= 0 {
			continue // No key or no extension: not part of a sample.
		}
		key, ext := dir+file[:dot], strings.ToLower(file[dot+1:])
		if cur != nil && cur.key != key {
			if !flush() {
				return false
			}
		}
		if cur == nil {
			cur = &sample{key: key, members: map[string][]byte{}, names: map[string]string{}}
		}
		cur.order = append(cur.order, name)
		if !slices.Contains(webDatasetImageExts, ext) && ext != "txt" && ext != "json" && ext != "cls" {
			continue
		}
		if _, dup := cur.names[ext]; dup {
			cur.err = fmt.Errorf("member %q repeats the %s member of sample %s", name, ext, key)
			continue
		}
		cur.names[ext] = name
		if hdr.Size > w.cfg.MaxMemberBytes {
			cur.err = fmt.Errorf("member %q has %d bytes, above the limit of %d (WebDatasetConfig.MaxMemberBytes)", name, hdr.Size, w.cfg.MaxMemberBytes)
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			if !flush() {
				return false
			}
			yield(item{}, fmt.Errorf("loaders: WebDataset shard %s is damaged in member %q: %w", shard, name, err))
			return false
		}
		cur.members[ext] = data
	}
}

// build turns a gathered sample into an item, or an *ExampleError naming the shard and member.
func (w *WebDataset) build(shard, base string, s *sample) (item, error) {
	id := base + "/" + s.key
	fail := func(member string, err error) (item, error) {
		file := shard
		if member != "" {
			file = shard + ":" + member
		}
		return item{}, &ExampleError{ID: id, File: file, Err: err}
	}
	if s.err != nil {
		return fail("", s.err)
	}
	var meta struct {
		Caption  *string         `json:"caption"`
		Captions []string        `json:"captions"`
		Label    json.RawMessage `json:"label"`
	}
	if data, ok := s.members["json"]; ok {
		if err := json.Unmarshal(data, &meta); err != nil {
			var syn *json.SyntaxError
			if errors.As(err, &syn) {
				err = fmt.Errorf("malformed JSON at byte %d: %w", syn.Offset, err)
			}
			return fail(s.names["json"], err)
		}
	}
	var imgExt string
	for _, e := range webDatasetImageExts {
		if _, ok := s.members[e]; ok {
			imgExt = e
			break
		}
	}
	if imgExt == "" {
		return fail("", fmt.Errorf("sample %s has no jpg, jpeg or png member (members: %s)", s.key, strings.Join(s.order, ", ")))
	}
	var caps []string
	switch {
	case s.members["txt"] != nil:
		caps = []string{strings.TrimSpace(string(s.members["txt"]))}
	case meta.Caption != nil:
		caps = []string{strings.TrimSpace(*meta.Caption)}
	case len(meta.Captions) > 0:
		for _, c := range meta.Captions {
			caps = append(caps, strings.TrimSpace(c))
		}
	default:
		return fail("", fmt.Errorf("sample %s has no caption: no txt member and no caption or captions in json (members: %s)", s.key, strings.Join(s.order, ", ")))
	}
	label := dataset.NoLabel
	if w.cfg.Classes != nil {
		var err error
		switch {
		case s.members["cls"] != nil:
			if label, err = parseLabel(w.cfg.Classes, strings.TrimSpace(string(s.members["cls"]))); err != nil {
				return fail(s.names["cls"], err)
			}
		case len(meta.Label) > 0 && string(meta.Label) != "null":
			var text string
			if err := json.Unmarshal(meta.Label, &text); err != nil {
				text = string(meta.Label)
			}
			if label, err = parseLabel(w.cfg.Classes, text); err != nil {
				return fail(s.names["json"], err)
			}
		}
	}
	return item{
		entry: Entry{ID: id, Path: shard, Captions: caps, Label: label},
		data:  s.members[imgExt],
		file:  shard + ":" + s.names[imgExt],
	}, nil
}

// parseLabel reads a class given as a 0-based index or a name.
func parseLabel(classes []string, text string) (int, error) {
	if n, err := strconv.Atoi(text); err == nil {
		if n < 0 || n >= len(classes) {
			return 0, fmt.Errorf("label %d is not a class index: there are %d classes (%s)", n, len(classes), strings.Join(classes, ", "))
		}
		return n, nil
	}
	return dataset.ClassIndex(classes, text)
}
