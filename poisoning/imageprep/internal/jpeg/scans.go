// Copyright 2026 The mmpoison Authors. Written for this package (not part of Go's image/jpeg).

package jpeg

import "encoding/binary"

// LibjpegAgrees reports whether libjpeg decodes data as Decode does, as far as the markers tell: every
// Huffman table a scan uses is defined before it (libjpeg falls back to the standard tables where Decode
// fails), and the scans give every coefficient of every component in full (each of the 64 coefficients of each
// component of the frame in a scan whose successive-approximation low bit Al is 0), before the EOI marker. It
// reads the markers and skips the entropy-coded data without decoding it; data it cannot follow gives false.
//
// On files whose scans are incomplete the decoders differ: libjpeg smooths the blocks of a progressive image
// whose low coefficients are incomplete, and fills a component without any scan with grey where Decode leaves
// zeros.
func LibjpegAgrees(data []byte) bool {
	if len(data) < 4 || data[0] != 0xff || data[1] != soiMarker {
		return false
	}
	var ids []byte                        // the frame's component identifiers
	var done [maxComponents]uint64        // per component, a bit per coefficient given in full
	var tables [maxTc + 1][maxTh + 1]bool // Huffman tables defined so far
	for i := 2; ; {
		for i+1 < len(data) && data[i] == 0xff && data[i+1] == 0xff { // fill bytes
			i++
		}
		if i+1 >= len(data) || data[i] != 0xff {
			return false
		}
		marker := data[i+1]
		switch {
		case marker == eoiMarker:
			return ids != nil && allDone(done[:len(ids)])
		case marker == 0x01 || rst0Marker <= marker && marker <= rst7Marker: // no length
			i += 2
			continue
		}
		if i+4 > len(data) {
			return false
		}
		end := i + 2 + int(binary.BigEndian.Uint16(data[i+2:]))
		if end > len(data) || end < i+4 {
			return false
		}
		seg := data[i+4 : end]
		switch marker {
		case sof0Marker, sof1Marker, sof2Marker:
			if ids != nil || len(seg) < 6 || int(seg[5]) > maxComponents || len(seg) < 6+3*int(seg[5]) {
				return false
			}
			for c := range int(seg[5]) {
				ids = append(ids, seg[6+3*c])
			}
		case dhtMarker:
			if !markTables(seg, &tables) {
				return false
			}
		case sosMarker:
			if ids == nil || !markScan(seg, ids, &done, &tables) {
				return false
			}
			end = skipEntropyData(data, end)
		}
		i = end
	}
}

// markScan records in done the coefficients a scan header (the SOS segment seg) gives in full, and reports
// whether it is well formed and the Huffman tables it uses are defined.
func markScan(seg, ids []byte, done *[maxComponents]uint64, tables *[maxTc + 1][maxTh + 1]bool) bool {
	if len(seg) < 1 || len(seg) != 4+2*int(seg[0]) {
		return false
	}
	ns := int(seg[0])
	ss, se, ah, al := seg[1+2*ns], seg[2+2*ns], seg[3+2*ns]>>4, seg[3+2*ns]&0x0f
	if ss > se || se > 63 {
		return false
	}
	bits := (^uint64(0) >> (63 - se)) &^ (1<<ss - 1)
	for j := range ns {
		td, ta := seg[2+2*j]>>4, seg[2+2*j]&0x0f
		if td > maxTh || ta > maxTh || ss == 0 && ah == 0 && !tables[dcTable][td] || se > 0 && !tables[acTable][ta] {
			return false
		}
		for c, id := range ids {
			if seg[1+2*j] == id && al == 0 {
				done[c] |= bits
			}
		}
	}
	return true
}

// markTables records the Huffman tables a DHT segment defines.
func markTables(seg []byte, tables *[maxTc + 1][maxTh + 1]bool) bool {
	for len(seg) > 0 {
		if len(seg) < 17 {
			return false
		}
		tc, th, n := seg[0]>>4, seg[0]&0x0f, 0
		for _, c := range seg[1:17] {
			n += int(c)
		}
		if tc > maxTc || th > maxTh || n == 0 || len(seg) < 17+n {
			return false
		}
		tables[tc][th] = true
		seg = seg[17+n:]
	}
	return true
}

// skipEntropyData returns the index of the marker after the entropy-coded data that starts at data[i]: the
// first 0xff followed by neither 0x00 (a stuffed byte) nor a restart marker, or len(data).
func skipEntropyData(data []byte, i int) int {
	for ; i+1 < len(data); i++ {
		if data[i] == 0xff {
			if b := data[i+1]; b != 0 && (b < rst0Marker || b > rst7Marker) {
				return i
			}
		}
	}
	return len(data)
}

func allDone(done []uint64) bool {
	for _, d := range done {
		if d != ^uint64(0) {
			return false
		}
	}
	return true
}
