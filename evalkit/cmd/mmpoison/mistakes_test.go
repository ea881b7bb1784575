package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mmpoison/mmpoison/evalkit/internal/testenv"
)

// Every mistake on the command line fails before any training, with one message that names the bad value and
// what would work. Those that need the data are caught right after it is loaded.
func TestMistakesCaughtBeforeWork(t *testing.T) {
	captureUsage(t)
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args     []string
		needData bool
		want     []string
	}{
		{[]string{"demo", "-rate", "2"}, false, []string{"-rate 2: not a rate in (0, 1) (φ is a fraction: 2% is 0.02)"}},
		{[]string{"demo", "-rate", "0"}, false, []string{"-rate 0: not a rate in (0, 1)"}},
		{[]string{"demo", "-rate", "0.01", "-count", "50"}, false, []string{"-rate and -count both set the number of poisoned pairs"}},
		{[]string{"demo", "-source", "hat"}, false, []string{`unknown class name "hat": valid classes are "tshirt", "trouser"`}},
		{[]string{"demo", "-target", "Trouser"}, false, []string{"source and target are the same class"}},
		{[]string{"demo", "-attack", "III", "-goals", "sandal:shoe"}, false, []string{`attack goal 1's target class: unknown class name "shoe"`}},
		{[]string{"demo", "-attack", "III", "-goals", "sandal"}, false, []string{`-goals: "sandal" is not of the form A:B`}},
		{[]string{"demo", "-attack", "IV"}, false, []string{`unknown kind "IV": known kinds are I, II, III, backdoor`}},
		{[]string{"demo", "-freeze", "audio"}, false, []string{`cannot freeze "audio": use "visual" or "text"`}},
		{[]string{"demo", "-mode", "replace"}, false, []string{`mode "replace" is not supported: use "inject" or "repair"`}},
		{[]string{"demo", "-seed", "x"}, false, []string{`invalid value "x" for flag -seed`}},
		{[]string{"demo", "-out", filepath.Join(file, "report")}, false, []string{"is a file, not a folder"}},
		{[]string{"study", "-seeds", "42,x"}, false, []string{`"x": not an integer`}},
		{[]string{"study", "-seeds", "42,43,42"}, false, []string{`"42": given twice`}},
		{[]string{"study", "-seeds", ""}, false, []string{"-seeds is empty"}},
		{[]string{"study", "-out", file}, false, []string{"is a file, not a folder"}},
		{[]string{"defenses", "-seeds", " , "}, false, []string{"-seeds is empty"}},
		{[]string{"paper", "-prepare", "-mini", filepath.Join(file+"-dir", "mini"), "-tokenizer", filepath.Join(file+"-dir", "vocab.txt.gz")}, false,
			[]string{"CLIP vocabulary not found: looked for " + filepath.Join(file+"-dir", "vocab.txt.gz") + " (-tokenizer); pass -tokenizer or set $MMPOISON_CLIP_VOCAB"}},
		{[]string{"demo", "-rate", "0.02"}, true, []string{"-rate 0.02 asks for 200 poisoned pairs (φ = 2% of the 10000 fine-tuning pairs",
			"keeps 20 of its 220 trouser images (-source-images 20), so it has only 100 trouser captions",
			"What would work: -rate 0.01 or lower; -count 100 or fewer; -source-images 41 or more (of 220)"}},
		{[]string{"demo", "-mode", "inject"}, true, []string{"-rate 0.01 in inject mode asks for 101 poisoned pairs",
			"-rate 0.0099 or lower; -count 100 or fewer; -mode repair; -source-images 21 or more (of 220)"}},
		{[]string{"demo", "-source-images", "500"}, true, []string{`500 images of class "trouser" asked to be kept`, "it has only 220"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			if tc.needData {
				testenv.RequireFashionMNIST(t)
			}
			start := time.Now()
			err := run(tc.args)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if d := time.Since(start); d > time.Minute {
				t.Errorf("took %v: the mistake was not caught before training", d)
			}
		})
	}
}
