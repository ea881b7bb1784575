package experiment

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeOutcome is a cell outcome whose defended Hit@10 encodes the cell's position.
func fakeOutcome(c MatrixCell, i int) *DefenseOutcome {
	ev := studyResult(c.Spec, [][]int{{i}}, [][]int{{i}}, 0).Poisoned
	return &DefenseOutcome{MatrixCell: c, Defended: ev, Poisoned: ev, Clean: ev, Seconds: float64(i)}
}

func TestDefenseMatrixResumes(t *testing.T) {
	two := QuickSpec()
	two.Attack = "I"
	m := DefenseMatrix{Attacks: []Spec{QuickSpec(), two}, Seeds: []int64{1, 2}, Dir: t.TempDir()}
	cells := m.Cells()
	if len(cells) != 2*2*len(AllDefenses) || cells[0].Defense != DefenseNone || cells[0].Spec.Seed != 1 {
		t.Fatalf("cells %d, first %+v", len(cells), cells[0])
	}
	calls := 0
	stopAt := 7
	m.run = func(c MatrixCell, _ Options) (*DefenseOutcome, error) {
		if calls == stopAt {
			return nil, errors.New("interrupted")
		}
		calls++
		return fakeOutcome(c, calls), nil
	}
	done, err := m.Run(Options{})
	if err == nil || !strings.Contains(err.Error(), "interrupted") || len(done) != stopAt {
		t.Fatalf("first run: %d cells, error %v", len(done), err)
	}
	files, _ := filepath.Glob(filepath.Join(m.Dir, "cell-*.json"))
	if len(files) != stopAt {
		t.Fatalf("%d cell files after the interruption, want %d", len(files), stopAt)
	}
	stopAt = -1
	calls = 0
	all, err := m.Run(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if calls != len(cells)-7 {
		t.Errorf("the resumed run computed %d cells, want %d", calls, len(cells)-7)
	}
	for i, o := range all {
		if o.Defense != cells[i].Defense || o.Spec.Seed != cells[i].Spec.Seed || o.Spec.AttackKind() != cells[i].Spec.AttackKind() {
			t.Errorf("outcome %d is %s seed %d, want %s seed %d", i, o.Defense, o.Spec.Seed, cells[i].Defense, cells[i].Spec.Seed)
		}
	}
	// Another defense setting is another cell.
	m2 := m
	m2.RepairEpochs = 3
	if m2.cellPath(cells[2]) == m.cellPath(cells[2]) || m2.cellPath(cells[0]) != m.cellPath(cells[0]) {
		t.Error("cell paths do not follow the defense's settings")
	}
	// A corrupt cell is reported, not silently recomputed over.
	if err := os.WriteFile(m.cellPath(cells[0]), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Run(Options{}); err == nil || !strings.Contains(err.Error(), "malformed cell JSON") {
		t.Errorf("corrupt cell: %v", err)
	}
}

func TestDefenseMatrixRejectsBadInput(t *testing.T) {
	m := DefenseMatrix{Attacks: []Spec{QuickSpec()}, Defenses: []string{"prayer"}, Dir: t.TempDir()}
	if _, err := m.Run(Options{}); err == nil || !strings.Contains(err.Error(), `"prayer"`) {
		t.Errorf("unknown defense: %v", err)
	}
	m = DefenseMatrix{Attacks: []Spec{QuickSpec()}}
	if _, err := m.Run(Options{}); err == nil || !strings.Contains(err.Error(), "Dir") {
		t.Errorf("no dir: %v", err)
	}
}

func TestMatrixAttacks(t *testing.T) {
	specs, err := MatrixAttacks(QuickSpec(), "II", "I", "III", AttackBackdoor)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"II", "I", "III", AttackBackdoor} {
		if got := specs[i].AttackKind(); got != want {
			t.Errorf("spec %d is attack %s, want %s", i, got, want)
		}
		if err := specs[i].Validate(); err != nil {
			t.Errorf("attack %s: %v", want, err)
		}
	}
	if !specs[2].AllSourceCaptions || len(specs[2].Goals()) != 2 {
		t.Errorf("Attack III spec %+v", specs[2])
	}
	if _, err := MatrixAttacks(QuickSpec(), "IV"); err == nil || !strings.Contains(err.Error(), `"IV"`) {
		t.Errorf("unknown attack: %v", err)
	}
}
