package fashionmnist

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

func TestLocateOrder(t *testing.T) {
	files, _ := fakeFiles(1, 1)
	root := t.TempDir()
	full := filepath.Join(root, "full")
	writeFiles(t, full, files)
	system := filepath.Join(root, "system")
	writeFiles(t, system, files)
	partial := filepath.Join(root, "partial")
	writeFiles(t, partial, map[string][]byte{TrainImagesFile: files[TrainImagesFile]})
	cache := filepath.Join(root, "cache")
	writeFiles(t, cache, files)
	empty := filepath.Join(root, "empty")
	notADir := filepath.Join(full, TrainImagesFile)

	offline, _ := fileServer(t, nil, nil) // Serves nothing: every download fails.
	tests := []struct {
		name    string
		cfg     Config
		want    string
		wantErr []string
	}{
		{"configured dir wins", Config{Dir: full, SystemDir: system, CacheDir: cache}, full, nil},
		{"missing configured dir is an error, no fallback",
			Config{Dir: filepath.Join(root, "nope"), SystemDir: system, CacheDir: cache}, "",
			[]string{"configured data directory", filepath.Join(root, "nope"), "does not exist"}},
		{"incomplete configured dir names the missing file",
			Config{Dir: partial, SystemDir: system, CacheDir: cache}, "",
			[]string{partial, filepath.Join(partial, TestLabelsFile)}},
		{"configured path is a file", Config{Dir: notADir, SystemDir: system}, "", []string{"not a directory"}},
		{"system dir before cache", Config{SystemDir: system, CacheDir: cache}, system, nil},
		{"incomplete system dir skipped", Config{SystemDir: partial, CacheDir: cache}, cache, nil},
		{"system dir can be skipped", Config{SkipSystemDir: true, SystemDir: system, CacheDir: cache}, cache, nil},
		{"nothing found, no download", Config{SystemDir: partial, CacheDir: empty, Download: DownloadNever}, "",
			[]string{partial, empty, "downloading is disabled", "apt-get install dataset-fashion-mnist", "download these four files into " + empty,
				DefaultBaseURL + TrainImagesFile + " (md5 8d4fb7e6c68d591d4c3dfef9ec88bf0d)"}},
		{"download fails: what to install or where to put which files", Config{SystemDir: partial, CacheDir: filepath.Join(root, "dl"), BaseURL: offline.URL + "/data/"}, "",
			[]string{"download failed", "apt-get install dataset-fashion-mnist", "into " + filepath.Join(root, "dl"),
				offline.URL + "/data/" + TestLabelsFile + " (md5 bb300cfdad3c16e7a12a480ee83cd310)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Locate(context.Background(), tc.cfg)
			if tc.wantErr == nil {
				if err != nil || got != tc.want {
					t.Fatalf("Locate = %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Locate = %q, want an error", got)
			}
			for _, s := range tc.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
		})
	}
	if _, err := os.Stat(empty); err == nil {
		t.Errorf("Locate with DownloadNever created %s", empty)
	}
}

// fileServer serves files and counts requests; names in broken get other bytes.
func fileServer(t *testing.T, files map[string][]byte, broken map[string][]byte) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		name := strings.TrimPrefix(r.URL.Path, "/data/")
		if b, ok := broken[name]; ok {
			w.Write(b)
			return
		}
		b, ok := files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestLocateDownloads(t *testing.T) {
	files, sums := fakeFiles(2, 2)
	srv, hits := fileServer(t, files, nil)
	cache := filepath.Join(t.TempDir(), "a", "cache")
	cfg := Config{SkipSystemDir: true, CacheDir: cache, BaseURL: srv.URL + "/data", Checksums: sums, HTTPClient: srv.Client()}
	dir, err := Locate(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if dir != cache || hits.Load() != 4 {
		t.Fatalf("Locate = %q after %d requests, want %q after 4", dir, hits.Load(), cache)
	}
	if _, err := ReadDir(dir, sums); err != nil {
		t.Fatalf("downloaded files do not verify: %v", err)
	}
	if _, err := Locate(context.Background(), cfg); err != nil || hits.Load() != 4 {
		t.Errorf("second Locate: %v, %d requests (want no new download)", err, hits.Load())
	}
	entries, _ := os.ReadDir(cache)
	if len(entries) != 4 {
		t.Errorf("cache holds %d entries, want the 4 files", len(entries))
	}
	// Load works end to end on the downloaded copy.
	s, err := Load(Config{SkipSystemDir: true, CacheDir: cache, Download: DownloadNever, Checksums: sums,
		PoolSize: 5, TrainSize: 5, TestPerClass: 1})
	if err != nil || s.Dir != cache || len(s.Test.Examples) != NumClasses {
		t.Errorf("Load from the cache: %v", err)
	}
}

func TestFetchErrors(t *testing.T) {
	files, sums := fakeFiles(2, 2)
	bad := gz([]byte("not the right data"))
	recompressed := gz(mustGunzip(t, files[TestLabelsFile])) // same content; its gzip MD5 is declared unknown below
	tests := []struct {
		name    string
		broken  map[string][]byte
		sums    Checksums
		wantErr []string
		missing []string // files that must not exist afterwards
	}{
		{"checksum mismatch leaves no file", map[string][]byte{TrainLabelsFile: bad}, sums,
			[]string{TrainLabelsFile, "checksum mismatch", md5hex(bad), sums[TrainLabelsFile].GzipMD5},
			[]string{TrainLabelsFile, TestImagesFile}},
		{"file without a known checksum is not downloaded", map[string][]byte{}, Checksums{TrainImagesFile: sums[TrainImagesFile]},
			[]string{TrainLabelsFile, "no known checksum"}, []string{TrainLabelsFile}},
		{"recompressed copy with the right content is accepted", map[string][]byte{TestLabelsFile: recompressed},
			Checksums{
				TrainImagesFile: sums[TrainImagesFile], TrainLabelsFile: sums[TrainLabelsFile],
				TestImagesFile: sums[TestImagesFile],
				TestLabelsFile: {GzipMD5: "00000000000000000000000000000000", RawMD5: sums[TestLabelsFile].RawMD5},
			}, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := fileServer(t, files, tc.broken)
			dir := t.TempDir()
			err := Fetch(context.Background(), dir, srv.URL+"/data/", tc.sums, srv.Client())
			if tc.wantErr == nil && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != nil && err == nil {
				t.Fatal("Fetch succeeded, want an error")
			}
			for _, s := range tc.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
			for _, name := range tc.missing {
				if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
					t.Errorf("%s exists after a failed download", name)
				}
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if strings.Contains(e.Name(), ".part") {
					t.Errorf("temporary file %s left behind", e.Name())
				}
			}
		})
	}
}

func TestFetchHTTPError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	err := Fetch(context.Background(), t.TempDir(), srv.URL, nil, srv.Client())
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), TrainImagesFile) {
		t.Errorf("error %v should name the file and the status", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Fetch(ctx, t.TempDir(), srv.URL, nil, srv.Client()); err == nil {
		t.Error("Fetch with a cancelled context succeeded")
	}
}

func mustGunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "x.gz")
	os.WriteFile(path, b, 0o644)
	f, err := readIDXFile(path, magicLabels)
	if err != nil {
		t.Fatal(err)
	}
	return idxBytes(magicLabels, []uint32{uint32(len(f.data))}, f.data)
}
