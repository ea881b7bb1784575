package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/fuzzcheck"
)

// FuzzVerify writes arbitrary bytes as the entry.json of an entry holding one file (model.bin) and verifies
// the entry. Properties: no panic; at most 64 times the input's size allocated (plus the file's hashing); an
// accepted entry.json describes this entry (format, stage and hash of its folder's name) and lists exactly its
// file with its true size and SHA-256, so that nothing but the entry as sealed is ever accepted.
func FuzzVerify(f *testing.F) {
	dir := filepath.Join(f.TempDir(), "v3")
	key, err := NewKey("finetune-poisoned", map[string]int{"seed": 42})
	if err != nil {
		f.Fatal(err)
	}
	entryDir := filepath.Join(dir, key.Name())
	if err := os.MkdirAll(entryDir, 0o755); err != nil {
		f.Fatal(err)
	}
	content := []byte(strings.Repeat("weights ", 512))
	if err := os.WriteFile(filepath.Join(entryDir, "model.bin"), content, 0o644); err != nil {
		f.Fatal(err)
	}
	if err := seal(entryDir, key); err != nil {
		f.Fatal(err)
	}
	sealed, err := os.ReadFile(filepath.Join(entryDir, EntryFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed)
	f.Add([]byte(`{"format":3,"stage":"finetune-poisoned","hash":"` + key.Hash + `","files":[]}`))
	f.Add([]byte(`{"format":3,"stage":"finetune-poisoned","hash":"` + key.Hash + `","files":[{"name":"model.bin","size":4096,"sha256":"00"},{"name":"model.bin","size":4096,"sha256":"00"}]}`))
	f.Add([]byte(`{"format":2}`))
	f.Add([]byte(`[`))
	sum := sha256.Sum256(content)
	f.Fuzz(func(t *testing.T, in []byte) {
		if err := os.WriteFile(filepath.Join(entryDir, EntryFile), in, 0o644); err != nil {
			t.Fatal(err)
		}
		var verr error
		fuzzcheck.Within(t, "verify", 64*uint64(len(in))+64<<10, func() { verr = verify(entryDir) })
		if verr != nil {
			return
		}
		var e entry
		if err := json.Unmarshal(in, &e); err != nil {
			t.Fatalf("verify accepted an entry.json that does not decode: %v", err)
		}
		if e.Format != FormatVersion || e.Stage+"-"+e.Hash != key.Name() {
			t.Fatalf("verify accepted entry.json of format %d entry %s-%s", e.Format, e.Stage, e.Hash)
		}
		if len(e.Files) != 1 || e.Files[0].Name != "model.bin" || e.Files[0].Size != int64(len(content)) ||
			!strings.EqualFold(e.Files[0].SHA256, hex.EncodeToString(sum[:])) {
			t.Fatalf("verify accepted files %+v", e.Files)
		}
	})
}
