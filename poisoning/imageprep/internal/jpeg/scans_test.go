// Copyright 2026 The mmpoison Authors. Written for this package (not part of Go's image/jpeg).

package jpeg

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// sosOffsets returns where the SOS markers of a JPEG are.
func sosOffsets(data []byte) []int {
	var out []int
	for i := 2; i+4 <= len(data); {
		if data[i] != 0xff {
			return out
		}
		if data[i+1] == sosMarker {
			out = append(out, i)
		}
		end := i + 2 + int(data[i+2])<<8 + int(data[i+3])
		if data[i+1] == sosMarker {
			end = skipEntropyData(data, end)
		}
		i = end
	}
	return out
}

// TestLibjpegAgrees: complete baseline and progressive files, with restart markers or extra segments, pass;
// progressive files cut after any scan but the last (EOI added), files without EOI or without Huffman tables,
// and data that is not a JPEG do not.
func TestLibjpegAgrees(t *testing.T) {
	read := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "pillowref", name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	prog, base, gray := read("jpegprog_101x63.jpg"), read("jpeg420_63x100.jpg"), read("jpeggrayprog_29x31.jpg")
	// A restart interval (DRI) before the scan, a restart marker inside it and fill bytes before EOI: skipped.
	withRST := append(append(bytes.Clone(base[:2]), 0xff, 0xdd, 0, 4, 0, 1), base[2:]...)
	sos := sosOffsets(withRST)[0]
	withRST = append(append(bytes.Clone(withRST[:sos+20]), 0xff, 0xd0), withRST[sos+20:]...)
	withRST = append(withRST[:len(withRST)-2], 0xff, 0xff, 0xff, 0xd9)
	// Without its Huffman tables (as Motion-JPEG frames are): libjpeg would use the standard tables.
	noDHT := bytes.Clone(base[:2])
	for i := 2; i < sosOffsets(base)[0]; {
		end := i + 2 + int(base[i+2])<<8 + int(base[i+3])
		if base[i+1] != dhtMarker {
			noDHT = append(noDHT, base[i:end]...)
		}
		i = end
	}
	noDHT = append(noDHT, base[sosOffsets(base)[0]:]...)
	cases := []struct {
		name string
		data []byte
		want bool
	}{
		{"baseline without DHT", noDHT, false},
		{"baseline", base, true},
		{"progressive", prog, true},
		{"progressive gray", gray, true},
		{"baseline with DRI, RST and fill bytes", withRST, true},
		{"baseline without EOI", base[:len(base)-2], false},
		{"SOI only", []byte{0xff, 0xd8, 0xff, 0xd9}, false},
		{"not a JPEG", []byte("\x89PNG\r\n\x1a\n"), false},
		{"bad segment length", append(bytes.Clone(base[:2]), 0xff, 0xe0, 0xff, 0xff), false},
	}
	for _, data := range [][]byte{prog, gray} {
		offsets := sosOffsets(data)
		if len(offsets) < 5 {
			t.Fatalf("only %d scans in a progressive reference", len(offsets))
		}
		for k, o := range offsets[1:] { // cut before scan k+1: scans 0..k kept
			cut := append(bytes.Clone(data[:o]), 0xff, 0xd9)
			cases = append(cases, struct {
				name string
				data []byte
				want bool
			}{"progressive cut after scan " + string(rune('0'+k)), cut, false})
		}
	}
	for _, tc := range cases {
		if got := LibjpegAgrees(tc.data); got != tc.want {
			t.Errorf("%s: LibjpegAgrees = %v, want %v", tc.name, got, tc.want)
		}
	}
}
