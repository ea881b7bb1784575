package safetensors

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strings"
)

// ChecksumKey is the metadata key under which WriteFile records the file's SHA-256: of the whole file as
// written, with the 64 hex digits of this value read as zeros. Parse verifies it when present, so a file
// written here that was changed afterwards (zeroed, overwritten, cut) is refused instead of read as other
// weights. Files from elsewhere have no such key and are read unchecked.
const ChecksumKey = "mmpoison.sha256"

// ErrChecksum is wrapped by the error Parse returns when a file's content does not match its ChecksumKey.
var ErrChecksum = errors.New("the file does not match the SHA-256 it records (corrupt or changed since written)")

// zeroSum stands for the checksum while it is computed.
var zeroSum = strings.Repeat("0", 2*sha256.Size)

// withChecksum returns the header of f with its checksum: f's metadata plus ChecksumKey, hashed over the whole
// encoding.
func withChecksum(f *File) ([]byte, error) {
	g := *f
	g.Metadata = maps.Clone(f.Metadata)
	if g.Metadata == nil {
		g.Metadata = map[string]string{}
	}
	g.Metadata[ChecksumKey] = zeroSum
	hdr, err := encodeHeader(&g)
	if err != nil {
		return nil, err
	}
	at, err := checksumAt(hdr, zeroSum)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	if err := encode(h, hdr, f); err != nil {
		return nil, err
	}
	copy(hdr[at:], hex.EncodeToString(h.Sum(nil)))
	return hdr, nil
}

// checksumAt returns where the value sum of ChecksumKey starts in the JSON header hdr; the key and value must
// appear exactly once.
func checksumAt(hdr []byte, sum string) (int, error) {
	field := []byte(`"` + ChecksumKey + `":"` + sum + `"`)
	if bytes.Count(hdr, field) != 1 {
		return 0, fmt.Errorf("%w: %s is not written once as a plain field", ErrChecksum, ChecksumKey)
	}
	return bytes.Index(hdr, field) + len(field) - len(sum) - 1, nil
}

// verifyChecksum checks data, a whole file whose header ends at hdrEnd, against the checksum sum it records.
func verifyChecksum(data []byte, hdrEnd int, sum string) error {
	if len(sum) != len(zeroSum) {
		return fmt.Errorf("%w: %s %q is not 64 hex digits", ErrChecksum, ChecksumKey, sum)
	}
	at, err := checksumAt(data[8:hdrEnd], sum)
	if err != nil {
		return err
	}
	at += 8
	h := sha256.New()
	h.Write(data[:at])
	h.Write([]byte(zeroSum))
	h.Write(data[at+len(sum):])
	if hex.EncodeToString(h.Sum(nil)) != strings.ToLower(sum) {
		return ErrChecksum
	}
	return nil
}
