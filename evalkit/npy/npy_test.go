package npy

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name  string
		shape []int
	}{
		{"matrix", []int{2, 3}},
		{"vector", []int{5}},
		{"scalar", []int{}},
		{"empty", []int{0, 4}},
		{"3d", []int{2, 1, 3}},
		{"wide", []int{3, 1000}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := 1
			for _, d := range tc.shape {
				n *= d
			}
			data := make([]float32, n)
			for i := range data {
				data[i] = float32(i)*0.37 - 3
			}
			if n > 2 {
				data[1] = float32(math.Inf(-1))
				data[2] = -0
			}
			path := filepath.Join(dir, tc.name+".npy")
			if err := Write(path, data, tc.shape...); err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			hlen := int(binary.LittleEndian.Uint16(raw[8:10]))
			if string(raw[:8]) != "\x93NUMPY\x01\x00" || (10+hlen)%64 != 0 || raw[10+hlen-1] != '\n' {
				t.Fatalf("bad header: %q", raw[:10+hlen])
			}
			if len(raw) != 10+hlen+4*n {
				t.Fatalf("file is %d bytes, want %d", len(raw), 10+hlen+4*n)
			}
			got, shape, err := Read(path)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(shape, tc.shape) || !slices.Equal(got, data) {
				t.Fatalf("read %v %v, want %v %v", shape, got, tc.shape, data)
			}
		})
	}
}

func TestHeader(t *testing.T) {
	tests := []struct {
		shape []int
		dict  string
	}{
		{[]int{2, 3}, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"},
		{[]int{7}, "{'descr': '<f4', 'fortran_order': False, 'shape': (7,), }"},
		{[]int{}, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }"},
		{[]int{123456789, 10}, "{'descr': '<f4', 'fortran_order': False, 'shape': (123456789, 10), }"},
	}
	for _, tc := range tests {
		h, err := Header(tc.shape...)
		if err != nil {
			t.Fatal(err)
		}
		if len(h)%Alignment != 0 || h[len(h)-1] != '\n' {
			t.Errorf("%v: header of %d bytes, not ending in a newline at a multiple of %d", tc.shape, len(h), Alignment)
		}
		dict := string(h[10:])
		if !strings.HasPrefix(dict, tc.dict) || strings.TrimLeft(dict[len(tc.dict):], " ") != "\n" {
			t.Errorf("%v: header %q, want %q padded with spaces", tc.shape, dict, tc.dict)
		}
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	if err := Write(filepath.Join(dir, "a.npy"), []float32{1, 2, 3}, 2, 2); err == nil {
		t.Error("a shape not matching the data was accepted")
	}
	if err := WriteMatrix(filepath.Join(dir, "b.npy"), [][]float32{{1, 2}, {3}}); err == nil || !strings.Contains(err.Error(), "b.npy") {
		t.Errorf("ragged rows: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "b.npy")); !os.IsNotExist(err) {
		t.Error("a failed write left a file")
	}
	f64 := bytes.Replace(mustHeader(t, 2), []byte("<f4"), []byte("<f8"), 1)
	if _, _, err := Decode(bytes.NewReader(append(f64, make([]byte, 16)...))); err == nil || !strings.Contains(err.Error(), "<f8") {
		t.Errorf("float64 file: %v", err)
	}
	if _, _, err := Decode(bytes.NewReader(append(mustHeader(t, 2), 0, 0, 0))); err == nil {
		t.Error("truncated data was accepted")
	}
	path := filepath.Join(dir, "junk.npy")
	_ = os.WriteFile(path, []byte("PK\x03\x04junk"), 0o644)
	if _, _, err := Read(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("junk file: %v", err)
	}
}

func mustHeader(t *testing.T, shape ...int) []byte {
	h, err := Header(shape...)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
