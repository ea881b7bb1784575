package fashionmnist

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadIDX(t *testing.T) {
	pix := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6}, 4) // 4 images of 2×3
	good := idxBytes(magicImages, []uint32{4, 2, 3}, pix)
	goodGz := gz(good)
	labels := idxBytes(magicLabels, []uint32{4}, []byte{0, 9, 3, 3})
	tests := []struct {
		name    string
		labels  bool
		data    []byte
		wantErr string // empty: must succeed
	}{
		{"images gzip", false, goodGz, ""},
		{"images uncompressed", false, good, ""},
		{"labels gzip", true, gz(labels), ""},
		{"bad magic", false, gz(idxBytes(0x00000802, []uint32{4, 2, 3}, pix)), "bad magic number 0x00000802"},
		{"labels file read as images", false, gz(labels), "bad magic number"},
		{"truncated payload", false, gz(good[:len(good)-5]), "truncated: header announces 4 images (24 payload bytes), got 19"},
		{"truncated gzip stream", false, goodGz[:len(goodGz)-12], "truncated"},
		{"header count too large", false, gz(idxBytes(magicImages, []uint32{5, 2, 3}, pix)), "header announces 5 images"},
		{"header count too small", false, gz(idxBytes(magicImages, []uint32{3, 2, 3}, pix)), "trailing data after the 3 images"},
		{"zero dimension", false, gz(idxBytes(magicImages, []uint32{4, 0, 3}, pix)), "invalid dimension 1: 0"},
		{"huge dimensions", false, gz(idxBytes(magicImages, []uint32{1 << 20, 1 << 10, 1 << 10}, pix)), "announce more than"},
		{"short header", false, gz(good[:10]), "truncated IDX header"},
		{"empty file", false, nil, "truncated IDX header"},
		{"corrupt gzip header", false, append([]byte{0x1f, 0x8b, 0xff}, goodGz[3:]...), "corrupt gzip header"},
		{"corrupt gzip crc", false, append(goodGz[:len(goodGz)-8:len(goodGz)-8], 0, 0, 0, 0, 24, 0, 0, 0), "corrupt data after the payload"},
	}
	dir := t.TempDir()
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".gz")
			if err := os.WriteFile(path, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			var err error
			if tc.labels {
				var got []uint8
				got, err = ReadLabels(path)
				if err == nil && !bytes.Equal(got, []byte{0, 9, 3, 3}) {
					t.Errorf("labels = %v", got)
				}
			} else {
				var im *Images
				im, err = ReadImages(path)
				if err == nil {
					if im.Count != 4 || im.Rows != 2 || im.Cols != 3 || !bytes.Equal(im.Pix, pix) {
						t.Errorf("images = %d×%d×%d", im.Count, im.Rows, im.Cols)
					}
					if !bytes.Equal(im.At(3), pix[18:24]) {
						t.Errorf("At(3) = %v", im.At(3))
					}
				}
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("case %d: unexpected error %v", i, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one containing %q", tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q should contain %q and the path %s", err, tc.wantErr, path)
			}
		})
	}
}

func TestReadIDXMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.gz")
	if _, err := ReadImages(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("error %v should name %s", err, path)
	}
}

func TestDecode(t *testing.T) {
	im, err := DecodeImages(bytes.NewReader(idxBytes(magicImages, []uint32{1, 1, 2}, []byte{7, 8})))
	if err != nil || im.Count != 1 || im.Pix[1] != 8 {
		t.Fatalf("DecodeImages = %+v, %v", im, err)
	}
	if _, err := DecodeLabels(bytes.NewReader(idxBytes(magicLabels, []uint32{3}, []byte{1, 2}))); err == nil {
		t.Error("DecodeLabels accepted a short stream")
	}
}

func TestReadDir(t *testing.T) {
	files, sums := fakeFiles(3, 2)
	tests := []struct {
		name    string
		modify  func(map[string][]byte)
		sums    Checksums
		wantErr string
	}{
		{"good, verified", nil, sums, ""},
		{"good, unverified", nil, nil, ""},
		{"official sums reject fake data", nil, OfficialChecksums(), "checksum mismatch"},
		{"count mismatch", func(f map[string][]byte) {
			f[TestLabelsFile] = gz(idxBytes(magicLabels, []uint32{3}, []byte{1, 2, 3}))
		}, nil, "holds 20 images but"},
		{"label out of range", func(f map[string][]byte) {
			l := make([]byte, 30)
			l[7] = 10
			f[TrainLabelsFile] = gz(idxBytes(magicLabels, []uint32{30}, l))
		}, nil, "label 10 of item 7"},
		{"missing file", func(f map[string][]byte) { delete(f, TestImagesFile) }, nil, TestImagesFile},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := map[string][]byte{}
			for k, v := range files {
				fs[k] = v
			}
			if tc.modify != nil {
				tc.modify(fs)
			}
			dir := t.TempDir()
			writeFiles(t, dir, fs)
			raw, err := ReadDir(dir, tc.sums)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if raw.Train.Images.Count != 30 || len(raw.Test.Labels) != 20 || raw.Train.Images.Rows != 28 {
					t.Errorf("got %d train, %d test labels", raw.Train.Images.Count, len(raw.Test.Labels))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestChecksumsVerify(t *testing.T) {
	sums := Checksums{"f.gz": {GzipMD5: "aa", RawMD5: "bb"}}
	tests := []struct {
		path, gzipMD5, rawMD5 string
		ok                    bool
	}{
		{"/d/f.gz", "aa", "xx", true},  // official download
		{"/d/f.gz", "xx", "bb", true},  // recompressed copy (Debian)
		{"/d/f.gz", "xx", "yy", false}, // other data
		{"/d/g.gz", "aa", "bb", false}, // unknown file
	}
	for _, tc := range tests {
		err := sums.verify(tc.path, tc.gzipMD5, tc.rawMD5)
		if (err == nil) != tc.ok {
			t.Errorf("verify(%s, %s, %s) = %v, want ok=%v", tc.path, tc.gzipMD5, tc.rawMD5, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), tc.path) {
			t.Errorf("error %q does not name %s", err, tc.path)
		}
	}
	err := sums.verify("/d/f.gz", "11", "22")
	for _, s := range []string{"11", "22", "aa", "bb"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("mismatch error %q lacks sum %s", err, s)
		}
	}
}
