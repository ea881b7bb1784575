package fashionmnist

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// idxBytes builds an uncompressed IDX stream with the given magic, dimensions and payload.
func idxBytes(magic uint32, dims []uint32, payload []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, magic)
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, d)
	}
	b.Write(payload)
	return b.Bytes()
}

// gz compresses b.
func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// fakeSet returns images and labels with perClass items of every class, in a seeded order. Image i of class c is
// a rows×cols picture whose brightness and filled area depend on i, so captions get varied attributes.
func fakeSet(perClass, rows, cols int, seed uint64) (pix, labels []byte) {
	n := perClass * NumClasses
	labels = make([]byte, n)
	for i := range labels {
		labels[i] = byte(i % NumClasses)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	rng.Shuffle(n, func(i, j int) { labels[i], labels[j] = labels[j], labels[i] })
	pix = make([]byte, n*rows*cols)
	for i := range n {
		p := pix[i*rows*cols : (i+1)*rows*cols]
		fill := 1 + rng.IntN(len(p))
		base := 40 + rng.IntN(200)
		for k := range fill {
			p[k] = byte(min(255, base+rng.IntN(16)))
		}
	}
	return pix, labels
}

// fakeFiles returns the four gzip-compressed files of a small fake Fashion-MNIST (trainPer and testPer items per
// class, 28×28) and their checksums.
func fakeFiles(trainPer, testPer int) (map[string][]byte, Checksums) {
	files := map[string][]byte{}
	raw := map[string][]byte{}
	for _, s := range []struct {
		img, lbl string
		per      int
		seed     uint64
	}{{TrainImagesFile, TrainLabelsFile, trainPer, 1}, {TestImagesFile, TestLabelsFile, testPer, 2}} {
		pix, labels := fakeSet(s.per, 28, 28, s.seed)
		n := uint32(len(labels))
		raw[s.img] = idxBytes(magicImages, []uint32{n, 28, 28}, pix)
		raw[s.lbl] = idxBytes(magicLabels, []uint32{n}, labels)
	}
	sums := Checksums{}
	for name, b := range raw {
		files[name] = gz(b)
		sums[name] = Checksum{GzipMD5: md5hex(files[name]), RawMD5: md5hex(b)}
	}
	return files, sums
}

// writeFiles writes files into dir (created if needed).
func writeFiles(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
