package report

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/metrics"
	"github.com/mmpoison/mmpoison/evalkit/study"
	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/dataset"
)

// seededResult is syntheticResult with a seed, rate, source/target and per-epoch evaluations.
func seededResult(seed int64, rate float64, source, target string, poisRanks []int) *experiment.Result {
	r := syntheticResult()
	r.Spec.Seed, r.Spec.Attack.Rate, r.Spec.Attack.Goals = seed, rate, []attack.Goal{{Source: source, Target: target}}
	r.Poisoned.Attack = metrics.AttackResultFromRanks(poisRanks, nil)
	r.Poisoned.Goals = []experiment.GoalEval{{Source: source, Target: target, Attack: r.Poisoned.Attack, RandomQueries: r.Poisoned.RandomQueries}}
	r.Clean.Goals = []experiment.GoalEval{{Source: source, Target: target, Attack: r.Clean.Attack, RandomQueries: r.Clean.RandomQueries}}
	r.FinetuneClean = &experiment.Stage{Epochs: []*experiment.ModelEval{r.Clean, r.Clean}}
	r.FinetunePois = &experiment.Stage{Epochs: []*experiment.ModelEval{r.Clean, r.Poisoned}}
	return r
}

func syntheticStudy() *study.Result {
	sr := &study.Result{Groups: map[string][]*experiment.Result{}}
	for _, seed := range []int64{1, 2, 3} {
		sr.Groups[study.GroupAttackII] = append(sr.Groups[study.GroupAttackII], seededResult(seed, 0.01, "trouser", "bag", []int{0, int(seed), 2, 0}))
		for _, g := range []string{study.GroupFrozenVisual, study.GroupFrozenText} {
			sr.Groups[g] = append(sr.Groups[g], seededResult(seed, 0.01, "trouser", "bag", []int{3, 9, 12, int(seed)}))
		}
		for i, rate := range []float64{0.001, 0.0025, 0.005, 0.01} {
			sr.Groups[study.GroupRates] = append(sr.Groups[study.GroupRates],
				seededResult(seed, rate, "trouser", "bag", []int{40 / (i + 1), 30 / (i + 1), int(seed), 60 / (i + 1)}))
		}
	}
	sr.Names = []string{study.GroupAttackII, study.GroupFrozenVisual, study.GroupFrozenText, study.GroupRates}
	return sr
}

func TestStudyFiguresAndTables(t *testing.T) {
	sr := syntheticStudy()
	figs, err := StudyFigures(sr)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range figs {
		if err := f.Validate(); err != nil {
			t.Errorf("%s: %v", f.Name, err)
		}
		names[f.Name] = true
	}
	for _, want := range []string{"minrank_distribution_pooled", "hit_vs_epoch", "minrank_vs_epoch", "hit10_vs_rate", "utility_vs_rate", "modality"} {
		if !names[want] {
			t.Errorf("figure %s missing (have %v)", want, names)
		}
	}
	text := SeedTable("Attack II", sr.Groups[study.GroupAttackII]).Text()
	// Poisoned ranks per seed s are {0, s, 2, 0}: Hit@1 0.5 in every seed, MinRank 0.75, 1.0, 1.25.
	for _, want := range []string{"Hit@1", "0.500 ± 0.000", "MinRank (mean)", "1.0 ± 0.", "3 seeds", "TR@10"} {
		if !strings.Contains(text, want) {
			t.Errorf("seed table lacks %q:\n%s", want, text)
		}
	}
	ft := FindingsTable(sr.Findings()).Text()
	for _, want := range []string{"F1", "F5", "F6", "holds"} {
		if !strings.Contains(ft, want) {
			t.Errorf("findings table lacks %q:\n%s", want, ft)
		}
	}
}

func TestEpochFiguresNeedPerEpochEvaluations(t *testing.T) {
	r := seededResult(1, 0.01, "trouser", "bag", []int{0})
	r.FinetunePois.Epochs = nil
	if _, err := EpochFigures([]*experiment.Result{r}); err == nil || !strings.Contains(err.Error(), "per-epoch") {
		t.Fatalf("error %v, want one about per-epoch evaluations", err)
	}
}

func TestGoalMatrixFigure(t *testing.T) {
	classes := []string{"trouser", "bag", "sandal"}
	var rs []*experiment.Result
	for _, a := range classes {
		for _, b := range classes {
			if a != b {
				rs = append(rs, seededResult(1, 0.01, a, b, []int{0, 0, 50, 50}))
			}
		}
	}
	fig, values, err := GoalMatrixFigure(rs, classes)
	if err != nil {
		t.Fatal(err)
	}
	if err := fig.Validate(); err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(values[0][0]) || math.Abs(values[0][1]-0.5) > 1e-12 {
		t.Errorf("matrix %v: want NaN diagonal and gain 0.5", values)
	}
	if _, _, err := GoalMatrixFigure(rs, classes[:2]); err == nil || !strings.Contains(err.Error(), "sandal") {
		t.Errorf("a goal outside the classes gave %v", err)
	}
}

func TestWriteStudy(t *testing.T) {
	dir := t.TempDir()
	files, err := WriteStudy(dir, syntheticStudy())
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 6*3+2 {
		t.Errorf("only %d files: %v", len(files), files)
	}
	data, err := os.ReadFile(filepath.Join(dir, "study.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back study.Result
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if FindingsTable(back.Findings()).Text() != FindingsTable(syntheticStudy().Findings()).Text() {
		t.Error("the re-loaded study renders a different findings table")
	}
	md, _ := os.ReadFile(filepath.Join(dir, "study.md"))
	if !strings.Contains(string(md), "hit10_vs_rate.svg") {
		t.Errorf("study.md does not link the figures:\n%s", md)
	}
}

func TestRetrievalGallery(t *testing.T) {
	img := dataset.Image{Height: 2, Width: 2, Channels: 1, Pix: []uint8{0, 50, 100, 250}}
	gallery := []dataset.Example{{ID: "a", Image: img, Label: 0}, {ID: "b", Image: img, Label: 1}}
	classes := []string{"trouser", "bag"}
	rets := []experiment.Retrieval{{Images: []int{0, 1}, Similarity: []float64{0.9, 0.1}}, {Images: []int{1, 0}, Similarity: []float64{0.8, 0.2}}}
	goal := attack.Goal{Source: "trouser", Target: "bag"}
	g, err := RetrievalGallery(gallery, classes, goal, "a pair of trousers", []string{"clean", "poisoned"}, rets)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Items) != 4 || !strings.Contains(g.Items[2].Caption, "poisoned #0 bag") {
		t.Errorf("grid items %+v", g.Items)
	}
	if want := []string{"clean model, top 2: 1 trouser, 1 bag", "poisoned model, top 2: 1 bag, 1 trouser"}; !slices.Equal(g.RowNotes, want) {
		t.Errorf("row notes %q, want %q", g.RowNotes, want)
	}
	if _, err := g.PNG(); err != nil {
		t.Error(err)
	}
	rets[1].Images = []int{5, 0}
	if _, err := RetrievalGallery(gallery, classes, goal, "q", []string{"clean", "poisoned"}, rets); err == nil {
		t.Error("an index outside the gallery was accepted")
	}
}
