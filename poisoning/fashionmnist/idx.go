package fashionmnist

import (
	"bufio"
	"compress/gzip"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// IDX magic numbers: two zero bytes, the element type (0x08 = unsigned byte) and the number of dimensions.
const (
	magicLabels = 0x00000801
	magicImages = 0x00000803
)

// maxPayload bounds the payload a header may announce: 128 MiB, about 2.8 times the largest official file (the
// train images, 47,040,000 bytes). Reading a file never holds more than the payload it announces, and that is
// checked before anything is read: against maxPayload, against the size of an uncompressed file, and against
// maxGzipRatio times the size of a compressed one. So a file of n bytes costs at most min(maxPayload, n) bytes
// uncompressed and min(maxPayload, maxGzipRatio·n) compressed, per file (ReadDir reads its four concurrently).
const maxPayload = 128 << 20

// maxDownload bounds a downloaded data file: a payload of maxPayload bytes stored uncompressed in gzip (5 bytes of
// framing per 64 KiB block), with room for the headers.
const maxDownload = maxPayload + maxPayload/1024 + 1<<16

// maxGzipRatio is the largest expansion of DEFLATE, which encodes at most 258 bytes in about 2 bits (1032:1), with
// room for the gzip framing.
const maxGzipRatio = 1040

// Images is a stack of equally sized 8-bit grayscale images read from an IDX3 file, stored row-major one after
// the other.
type Images struct {
	// Count is the number of images.
	Count int
	// Rows and Cols are the height and width of every image (28 × 28 for Fashion-MNIST).
	Rows, Cols int
	// Pix holds Count·Rows·Cols bytes; 0 is black (background), 255 is white.
	Pix []uint8
}

// At returns the pixels of image i (Rows·Cols bytes, sharing memory with im.Pix).
func (im *Images) At(i int) []uint8 {
	n := im.Rows * im.Cols
	return im.Pix[i*n : (i+1)*n : (i+1)*n]
}

// DecodeImages reads an uncompressed IDX3 image stream (magic 0x00000803) and checks that it holds exactly the
// announced number of bytes. Its memory grows with the bytes that arrive, up to the announced payload (at most
// 128 MiB).
func DecodeImages(r io.Reader) (*Images, error) {
	dims, data, err := decodeIDX(r, magicImages, -1)
	if err != nil {
		return nil, err
	}
	return &Images{Count: dims[0], Rows: dims[1], Cols: dims[2], Pix: data}, nil
}

// DecodeLabels reads an uncompressed IDX1 label stream (magic 0x00000801) and checks that it holds exactly the
// announced number of bytes, with DecodeImages' memory bound.
func DecodeLabels(r io.Reader) ([]uint8, error) {
	_, data, err := decodeIDX(r, magicLabels, -1)
	return data, err
}

// ReadImages reads an IDX3 image file, gzip-compressed (detected from its first bytes) or not. The announced
// payload is checked against the file size before it is read (see maxPayload for the bounds). Errors name path.
func ReadImages(path string) (*Images, error) {
	f, err := readIDXFile(path, magicImages)
	if err != nil {
		return nil, err
	}
	return &Images{Count: f.dims[0], Rows: f.dims[1], Cols: f.dims[2], Pix: f.data}, nil
}

// ReadLabels reads an IDX1 label file, gzip-compressed (detected from its first bytes) or not, with ReadImages'
// bounds. Errors name path.
func ReadLabels(path string) ([]uint8, error) {
	f, err := readIDXFile(path, magicLabels)
	if err != nil {
		return nil, err
	}
	return f.data, nil
}

// idxFile is a decoded IDX file with the digests of its bytes.
type idxFile struct {
	dims []int
	data []byte
	// gzipMD5 is the MD5 of the file's bytes as stored (compressed or not); rawMD5 the MD5 of the IDX content.
	gzipMD5, rawMD5 string
}

// readIDXFile decodes one IDX file in a single pass, hashing both its stored and its decompressed bytes.
func readIDXFile(path string, magic uint32) (*idxFile, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("fashionmnist: %w", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("fashionmnist: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("fashionmnist: %s is not a regular file (%v)", path, st.Mode().Type())
	}
	f, err := readIDX(fh, st.Size(), magic)
	if err != nil {
		return nil, fmt.Errorf("fashionmnist: %s: %w", path, err)
	}
	return f, nil
}

// readIDX decodes an IDX stream of size bytes, gzip-compressed or not, hashing both its stored and its
// decompressed bytes.
func readIDX(r io.Reader, size int64, magic uint32) (*idxFile, error) {
	fileHash, rawHash := md5.New(), md5.New()
	stored := io.TeeReader(r, fileHash)
	br := bufio.NewReaderSize(stored, 1<<16)
	var src io.Reader = br
	limit := size // the most payload the stream can hold
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("corrupt gzip header: %v", err)
		}
		defer zr.Close()
		src = zr
		limit = min(size, math.MaxInt64/maxGzipRatio) * maxGzipRatio
	}
	dims, data, err := decodeIDX(io.TeeReader(src, rawHash), magic, limit)
	if err != nil {
		return nil, err
	}
	// Hash whatever the decompressor left unread (normally nothing) so fileHash covers the whole file.
	if _, err := io.Copy(io.Discard, stored); err != nil {
		return nil, err
	}
	return &idxFile{
		dims:    dims,
		data:    data,
		gzipMD5: hex.EncodeToString(fileHash.Sum(nil)),
		rawMD5:  hex.EncodeToString(rawHash.Sum(nil)),
	}, nil
}

// decodeIDX reads an unsigned-byte IDX stream with the given magic number and returns its dimensions and payload.
// It reads one byte past the payload to reject trailing data (and, for gzip streams, to make the decompressor
// verify its CRC). limit, when not negative, is the most bytes the stream can hold: a header announcing more is
// refused before the payload is read, and the payload is then allocated at once.
func decodeIDX(r io.Reader, magic uint32, limit int64) ([]int, []byte, error) {
	kind := "label"
	if magic == magicImages {
		kind = "image"
	}
	var head [4]byte
	if n, err := io.ReadFull(r, head[:]); err != nil {
		return nil, nil, fmt.Errorf("truncated IDX header: got %d of 4 magic bytes (%v)", n, err)
	}
	if got := binary.BigEndian.Uint32(head[:]); got != magic {
		return nil, nil, fmt.Errorf("bad magic number 0x%08x, want 0x%08x (IDX %s file)", got, magic, kind)
	}
	ndims := int(magic & 0xff)
	raw := make([]byte, 4*ndims)
	if n, err := io.ReadFull(r, raw); err != nil {
		return nil, nil, fmt.Errorf("truncated IDX header: got %d of %d dimension bytes (%v)", n, len(raw), err)
	}
	dims := make([]int, ndims)
	total := 1
	for i := range dims {
		d := binary.BigEndian.Uint32(raw[4*i:])
		if d == 0 || d > maxPayload {
			return nil, nil, fmt.Errorf("invalid dimension %d: %d", i, d)
		}
		dims[i] = int(d)
		if total > maxPayload/dims[i] {
			return nil, nil, fmt.Errorf("dimensions %v announce more than %d bytes", dims[:i+1], maxPayload)
		}
		total *= dims[i]
	}
	if header := int64(len(head) + len(raw)); limit >= 0 && int64(total) > limit-header {
		return nil, nil, fmt.Errorf("truncated: header announces %d %ss (%d payload bytes), more than the file can hold",
			dims[0], kind, total)
	}
	data, err := readN(r, total, limit >= 0)
	if err != nil {
		return nil, nil, fmt.Errorf("truncated: header announces %d %ss (%d payload bytes), got %d bytes (%v)",
			dims[0], kind, total, len(data), err)
	}
	var extra [1]byte
	n, err := io.ReadFull(r, extra[:])
	switch {
	case n > 0:
		return nil, nil, fmt.Errorf("trailing data after the %d %ss the header announces (wrong count in header?)",
			dims[0], kind)
	case err != io.EOF:
		return nil, nil, fmt.Errorf("corrupt data after the payload: %v", err)
	}
	return dims, data, nil
}

// readN reads exactly n bytes. With sized (n is known to fit in the stream) the buffer is allocated at once;
// otherwise it starts at min(n, 1 MiB) and doubles with the data actually read, up to n, so a header that lies
// about its size cannot force a large allocation. On error it returns what it read.
func readN(r io.Reader, n int, sized bool) ([]byte, error) {
	buf := make([]byte, 0, min(n, 1<<20))
	if sized {
		buf = make([]byte, 0, n)
	}
	for len(buf) < n {
		if len(buf) == cap(buf) {
			buf = append(make([]byte, 0, min(2*cap(buf), n)), buf...)
		}
		m, err := r.Read(buf[len(buf):min(cap(buf), n)])
		buf = buf[:len(buf)+m]
		if err != nil {
			if len(buf) == n {
				break
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return buf, err
		}
	}
	return buf, nil
}
