package experiment

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Cached results the tables could not show are refused when read, naming the file and what is missing.
func TestReadResultRefusesIncompleteResults(t *testing.T) {
	dir := t.TempDir()
	metric := `{"hits": [{"k": 10, "hit": 1}]}`
	recall := `{"ks": [1, 5, 10], "image_to_text": [0, 0, 0], "text_to_image": [0, 0, 0]}`
	full := `{"attack": ` + metric + `, "random_queries": ` + metric + `, "utility": ` + recall + `, "utility_others": ` + recall
	for _, tc := range []struct {
		name, json, want string
	}{
		{"no evaluation", `{}`, "result has no evaluation"},
		{"no utility", `{"clean": {"attack": ` + metric + `}, "poisoned": ` + full + `}}`,
			"clean model: evaluation without its attack or utility metrics"},
		{"goals differ", `{"clean": ` + full + `}, "poisoned": ` + full + `, "goals": [{}]}}`,
			"result has 0 goals for the clean model, 1 for the poisoned one"},
		{"a goal without metrics", `{"clean": ` + full + `, "goals": [{}]}, "poisoned": ` + full + `, "goals": [{}]}}`,
			"clean model: evaluation without the metrics of goal 1"},
		{"incomplete backdoor", `{"clean": ` + full + `}, "poisoned": ` + full + `, "backdoor": {"zero_shot": {}}}}`,
			"poisoned model: evaluation with incomplete backdoor metrics"},
		{"complete", `{"clean": ` + full + `}, "poisoned": ` + full + `}}`, ""},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".json")
		if err := os.WriteFile(path, []byte(tc.json), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ReadResult(path)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || err.Error() != path+": "+tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := ReadResult("/dev/zero"); err == nil || !strings.Contains(err.Error(), "/dev/zero is not a regular file") {
		t.Errorf("/dev/zero: %v", err)
	}
}
