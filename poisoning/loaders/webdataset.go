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

// maxTextMember bounds the text members of a sample (txt, json, cls) below MaxMemberBytes: 1 MiB, far more than
// any caption or metadata needs.
const maxTextMember = 1 << 20

// maxListedMembers bounds the member names a sample keeps for its error messages.
const maxListedMembers = 16

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
//
// Memory: a sample holds at most its three image members (MaxMemberBytes each) and its three text members (1 MiB
// each); members of other kinds are skipped unread, whatever their number. Captions and IDs are valid UTF-8 (a
// byte that is not becomes U+FFFD, as the tokenizers read it).
type WebDataset struct {
	cfg    WebDatasetConfig
	shards []string
}

// OpenWebDataset expands the shard patterns (at most a million shards in all, see ExpandShards) and checks that
// every shard exists; nothing is read yet.
func OpenWebDataset(cfg WebDatasetConfig) (*WebDataset, error) {
	if cfg.Name == "" {
		cfg.Name = "webdataset"
	}
	if cfg.MaxMemberBytes == 0 {
		cfg.MaxMemberBytes = DefaultMaxMemberBytes
	}
	w := &WebDataset{cfg: cfg}
	for _, p := range cfg.Shards {
		if len(w.shards) >= maxShards {
			return nil, fmt.Errorf("loaders: WebDataset %s: the shard patterns expand to more than %d shards in all", cfg.Name, maxShards)
		}
		list, err := expandShards(p, maxShards-len(w.shards))
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

// Bounds of shard patterns: one WebDatasetConfig expands to at most maxShards shard names in all (a million,
// as many as the largest public WebDatasets have), and to at most maxShardNameBytes bytes of names. Both are
// checked from the ranges before any name is built.
const (
	maxShards         = 1_000_000
	maxShardNameBytes = 128 << 20
)

// ExpandShards expands the numeric brace ranges of a shard pattern, as WebDataset and open_clip do:
// "s-{000..002}.tar" gives s-000.tar, s-001.tar, s-002.tar (numbers padded to the width of the range's first
// bound). Several ranges expand as a product. A pattern without braces is returned as is. A pattern that would
// expand to more than a million names (all ranges together), or to more than 128 MiB of names, is refused
// before any name is built.
func ExpandShards(pattern string) ([]string, error) {
	return expandShards(pattern, maxShards)
}

// quotePattern quotes a shard pattern for an error, the first 200 bytes of a longer one.
func quotePattern(pattern string) string {
	if len(pattern) <= 200 {
		return strconv.Quote(pattern)
	}
	return fmt.Sprintf("%q… (%d bytes)", pattern[:200], len(pattern))
}

// shardRange is one brace range of a shard pattern, after the literal text before it.
type shardRange struct {
	prefix string
	lo, hi int
	width  int
}

// expandShards is ExpandShards with at most limit names.
func expandShards(pattern string, limit int) ([]string, error) {
	var ranges []shardRange
	rest := pattern
	count := 1
	for {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			if strings.ContainsRune(rest, '}') {
				return nil, fmt.Errorf("loaders: shard pattern %s has an unmatched }", quotePattern(pattern))
			}
			break
		}
		closing := strings.IndexByte(rest[open:], '}')
		if closing < 0 {
			return nil, fmt.Errorf("loaders: shard pattern %s has an unmatched {", quotePattern(pattern))
		}
		closing += open
		lo, hi, ok := strings.Cut(rest[open+1:closing], "..")
		a, errA := strconv.Atoi(lo)
		b, errB := strconv.Atoi(hi)
		if !ok || errA != nil || errB != nil || a < 0 || b < a {
			return nil, fmt.Errorf("loaders: shard pattern %s: %.80q is not a numeric range such as {000000..000099}", quotePattern(pattern), rest[open:closing+1])
		}
		if b-a >= limit || count > limit/(b-a+1) {
			return nil, fmt.Errorf("loaders: shard pattern %s expands to more than a million shards in all (%d left for it)", quotePattern(pattern), limit)
		}
		count *= b - a + 1
		ranges = append(ranges, shardRange{prefix: rest[:open], lo: a, hi: b, width: len(lo)})
		rest = rest[closing+1:]
	}
	if count > maxShardNameBytes/max(len(pattern), 1) {
		return nil, fmt.Errorf("loaders: shard pattern %s expands to %d names of up to %d bytes, more than %d bytes of names", quotePattern(pattern), count, len(pattern), maxShardNameBytes)
	}
	out := make([]string, 0, count)
	n := make([]int, len(ranges)) // the current number of each range, as an odometer
	for i, r := range ranges {
		n[i] = r.lo
	}
	var b strings.Builder
	for {
		b.Reset()
		for i, r := range ranges {
			b.WriteString(r.prefix)
			fmt.Fprintf(&b, "%0*d", r.width, n[i])
		}
		b.WriteString(rest)
		out = append(out, b.String())
		i := len(ranges) - 1
		for ; i >= 0 && n[i] == ranges[i].hi; i-- {
			n[i] = ranges[i].lo
		}
		if i < 0 {
			return out, nil
		}
		n[i]++
	}
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
	data    map[string][]byte // by extension
	names   map[string]string // member names by extension
	order   []string          // the first maxListedMembers member names, for messages
	members int               // the number of members
	err     error             // a problem found while reading (too large, duplicate)
}

// listed returns the member names of s for a message.
func (s *sample) listed() string {
	list := strings.Join(s.order, ", ")
	if more := s.members - len(s.order); more > 0 {
		list += fmt.Sprintf(" and %d more", more)
	}
	return list
}

// memberLimit returns the size limit of an image member or of a text member.
func (w *WebDataset) memberLimit(image bool) int64 {
	if image {
		return w.cfg.MaxMemberBytes
	}
	return min(w.cfg.MaxMemberBytes, maxTextMember)
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

// shardReader gathers the samples of one shard.
type shardReader struct {
	w     *WebDataset
	shard string // the file, named in errors
	base  string // the shard's name in IDs
	tr    *tar.Reader
	yield func(item, error) bool
	cur   *sample
}

// flush passes the sample gathered so far on; it returns false when the iteration must stop.
func (s *shardReader) flush() bool {
	if s.cur == nil {
		return true
	}
	it, err := s.w.build(s.shard, s.base, s.cur)
	s.cur = nil
	return s.yield(it, err)
}

// fail passes the sample gathered so far on, then err, which ends the iteration.
func (s *shardReader) fail(err error) bool {
	if s.flush() {
		s.yield(item{}, err)
	}
	return false
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
	s := &shardReader{w: w, shard: shard, base: shardBase(shard), tr: tar.NewReader(r), yield: yield}
	last := ""
	for {
		hdr, err := s.tr.Next()
		if errors.Is(err, io.EOF) {
			return s.flush()
		}
		if err != nil {
			where := "at its start"
			if last != "" {
				where = fmt.Sprintf("after member %q", last)
			}
			return s.fail(fmt.Errorf("loaders: WebDataset shard %s is damaged %s: %w", shard, where, err))
		}
		last = hdr.Name
		if err := checkRelative(hdr.Name); err != nil { // The samples before it were read in full: pass them on first.
			return s.fail(fmt.Errorf("loaders: WebDataset shard %s: refusing member %q: %w", shard, hdr.Name, err))
		}
		if hdr.Typeflag != tar.TypeReg {
			continue // Folders, links and other entries hold no sample data.
		}
		if !s.member(hdr) {
			return false
		}
	}
}

// member adds a regular member to the current sample (or starts the next one); it returns false when the
// iteration must stop.
func (s *shardReader) member(hdr *tar.Header) bool {
	name := hdr.Name
	dir, file := path.Split(strings.TrimPrefix(name, "./"))
	dot := strings.IndexByte(file, '.')
	if dot <= 0 {
		return true // No key or no extension: not part of a sample.
	}
	key, ext := dir+file[:dot], strings.ToLower(file[dot+1:])
	if s.cur != nil && s.cur.key != key && !s.flush() {
		return false
	}
	if s.cur == nil {
		s.cur = &sample{key: key, data: map[string][]byte{}, names: map[string]string{}}
	}
	cur := s.cur
	if cur.members++; len(cur.order) < maxListedMembers {
		cur.order = append(cur.order, name)
	}
	isImage := slices.Contains(webDatasetImageExts, ext)
	if !isImage && ext != "txt" && ext != "json" && ext != "cls" {
		return true
	}
	if _, dup := cur.names[ext]; dup {
		cur.err = fmt.Errorf("member %q repeats the %s member of sample %s", name, ext, key)
		return true
	}
	cur.names[ext] = name
	if limit := s.w.memberLimit(isImage); hdr.Size > limit {
		cur.err = fmt.Errorf("member %q has %d bytes, above the limit of %d for a %s member (WebDatasetConfig.MaxMemberBytes)", name, hdr.Size, limit, ext)
		return true
	}
	data := make([]byte, hdr.Size)
	if _, err := io.ReadFull(s.tr, data); err != nil {
		return s.fail(fmt.Errorf("loaders: WebDataset shard %s is damaged in member %q: %w", s.shard, name, err))
	}
	cur.data[ext] = data
	return true
}

// build turns a gathered sample into an item, or an *ExampleError naming the shard and member.
func (w *WebDataset) build(shard, base string, s *sample) (item, error) {
	id := validText(base + "/" + s.key)
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
	if data, ok := s.data["json"]; ok {
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
		if _, ok := s.data[e]; ok {
			imgExt = e
			break
		}
	}
	if imgExt == "" {
		return fail("", fmt.Errorf("sample %s has no jpg, jpeg or png member (members: %s)", s.key, s.listed()))
	}
	var caps []string
	switch {
	case s.data["txt"] != nil:
		caps = []string{validText(strings.TrimSpace(string(s.data["txt"])))}
	case meta.Caption != nil:
		caps = []string{strings.TrimSpace(*meta.Caption)}
	case len(meta.Captions) > 0:
		for _, c := range meta.Captions {
			caps = append(caps, strings.TrimSpace(c))
		}
	default:
		return fail("", fmt.Errorf("sample %s has no caption: no txt member and no caption or captions in json (members: %s)", s.key, s.listed()))
	}
	label := dataset.NoLabel
	if w.cfg.Classes != nil {
		var err error
		switch {
		case s.data["cls"] != nil:
			if label, err = parseLabel(w.cfg.Classes, strings.TrimSpace(string(s.data["cls"]))); err != nil {
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
		data:  s.data[imgExt],
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
