package experiment

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmpoison/mmpoison/evalkit/internal/testenv"
	"github.com/mmpoison/mmpoison/poisoning/attack"
	"github.com/mmpoison/mmpoison/poisoning/fashionmnist"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func requireData(t *testing.T) { testenv.RequireFashionMNIST(t) }

// TestAttackIIEndToEnd runs the whole pipeline at QuickSpec size and asserts the attack's real effect: on unseen
// class-A captions and unseen test images, Hit@10 rises at least 0.6 above the clean model's and MinRank falls at
// least 5×, while utility on the other classes stays within 0.05 — with φ ≤ 1%.
func TestAttackIIEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("trains three models (a few minutes)")
	}
	requireData(t)
	spec := QuickSpec()
	res, err := Run(spec, Options{Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Poison.Rate > 0.01 || res.Poison.PoisonedPairs == 0 {
		t.Fatalf("φ = %v with %d poisoned pairs, want 0 < φ ≤ 1%%", res.Poison.Rate, res.Poison.PoisonedPairs)
	}
	clean, _ := res.Clean.Attack.HitAt(10)
	pois, _ := res.Poisoned.Attack.HitAt(10)
	t.Logf("Hit@10 clean %.3f poisoned %.3f; MinRank clean %.2f poisoned %.2f", clean, pois,
		res.Clean.Attack.MinRank.Mean, res.Poisoned.Attack.MinRank.Mean)
	if pois-clean < 0.6 {
		t.Errorf("Hit@10 gain %.3f < 0.6 (clean %.3f, poisoned %.3f)", pois-clean, clean, pois)
	}
	if res.Poisoned.Attack.MinRank.Mean*5 > res.Clean.Attack.MinRank.Mean {
		t.Errorf("MinRank %.2f is not 5× below the clean %.2f", res.Poisoned.Attack.MinRank.Mean, res.Clean.Attack.MinRank.Mean)
	}
	for _, k := range []int{10} {
		c, p := res.Clean.UtilityOthers, res.Poisoned.UtilityOthers
		if d := p.TR(k) - c.TR(k); d < -0.05 {
			t.Errorf("TR@%d on untargeted classes fell by %.3f", k, -d)
		}
		if d := p.IR(k) - c.IR(k); d < -0.05 {
			t.Errorf("IR@%d on untargeted classes fell by %.3f", k, -d)
		}
	}
	// The result re-loads from JSON with the same numbers.
	path := filepath.Join(t.TempDir(), "results.json")
	if err := res.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	back, err := ReadResult(path)
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := back.Poisoned.Attack.HitAt(10); h != pois || back.Clean.Attack.MinRank.Mean != res.Clean.Attack.MinRank.Mean {
		t.Fatalf("result JSON round trip changed the metrics")
	}
	// A second run finds every model in the cache and gives identical metrics (same seed, same numbers).
	again, err := Run(spec, Options{Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Pretrain.Cached || !again.FinetunePois.Cached {
		t.Errorf("second run retrained instead of using the cache")
	}
	if h, _ := again.Poisoned.Attack.HitAt(10); h != pois || again.Poisoned.Attack.MinRank.Mean != res.Poisoned.Attack.MinRank.Mean {
		t.Errorf("second run gave different metrics")
	}
}

// TestBadInputLeavesFilesAlone: bad specs and data fail with one clear error naming the value or file, before
// anything in the cache is touched.
func TestBadInputLeavesFilesAlone(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("MMPOISON_CACHE", cache)
	existing := filepath.Join(cache, "pretrain-0123.safetensors")
	if err := os.WriteFile(existing, []byte("a checkpoint"), 0o644); err != nil {
		t.Fatal(err)
	}
	corrupt := t.TempDir()
	for _, f := range fashionmnist.FileNames() {
		if err := os.WriteFile(filepath.Join(corrupt, f), []byte("not an IDX file"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name   string
		modify func(*Spec)
		want   string
	}{
		{"rate zero", func(s *Spec) { s.Attack.Rate = 0 }, "outside (0, 1)"},
		{"rate one", func(s *Spec) { s.Attack.Rate = 1 }, "outside (0, 1)"},
		{"rate negative", func(s *Spec) { s.Attack.Rate = -0.1 }, "-0.1"},
		{"count negative", func(s *Spec) { s.Attack.Count = -3 }, "-3"},
		{"count and every source caption", func(s *Spec) { s.Attack.Count, s.Attack.AllSourceCaptions = 7, true }, "count 7"},
		{"missing data dir", func(s *Spec) { s.Data.Dir = filepath.Join(cache, "nope") }, "nope"},
		{"corrupt IDX", func(s *Spec) { s.Data.Dir = corrupt }, corrupt},
		{"unknown class", func(s *Spec) { s.Attack.Goals[0].Source = "umbrella" }, "umbrella"},
		{"unknown preset", func(s *Spec) { s.Model = "huge" }, "huge"},
		{"unknown attack", func(s *Spec) { s.Attack.Kind = "IV" }, `"IV"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "unknown class" {
				requireData(t)
			}
			spec := QuickSpec()
			c.modify(&spec)
			_, err := Run(spec, Options{Quiet: true})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error = %v, want one mentioning %q", err, c.want)
			}
			entries, _ := os.ReadDir(cache)
			if got, _ := os.ReadFile(existing); string(got) != "a checkpoint" || len(entries) != 1 {
				t.Fatalf("cache changed after a failed run: %d entries", len(entries))
			}
		})
	}
}

// TestAttackKindsRun runs Attacks I and III and a frozen-tower fine-tuning at a very small size and checks the
// structure of their results: Attack I ranks x*, added to the gallery, and Attack III reports every goal.
func TestAttackKindsRun(t *testing.T) {
	if testing.Short() {
		t.Skip("trains models")
	}
	requireData(t)
	t.Setenv("MMPOISON_CACHE", t.TempDir())
	base := QuickSpec()
	base.Data = DataSpec{Pool: 640, Train: 550, SourceImages: 10, TestPerClass: 10}
	base.Finetune.Epochs = 1

	one := base
	one.Attack.Kind = attack.KindSingleImage
	res, err := Run(one, Options{Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Poison.TargetImageID == "" || res.Poisoned.Attack.NumTargets != 1 || res.Poisoned.Attack.NumGallery != 101 {
		t.Errorf("Attack I: target %q, %d targets in a gallery of %d; want x* added to the 100 test images",
			res.Poison.TargetImageID, res.Poisoned.Attack.NumTargets, res.Poisoned.Attack.NumGallery)
	}

	three := base
	three.Attack.Kind = attack.KindMultiLabel
	three.Attack.Goals = append(three.Attack.Goals, attack.Goal{Source: "sandal", Target: "shirt"})
	three.Finetune.Freeze = []string{"visual"}
	res, err = Run(three, Options{Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Poisoned.Goals) != 2 || res.Poisoned.Goals[1].Source != "sandal" || res.Poisoned.Goals[1].Attack.NumTargets != 10 {
		t.Fatalf("Attack III goals = %+v", res.Poisoned.Goals)
	}
	if res.Poison.PoisonedPairs == 0 || res.Poison.Rate > 0.011 {
		t.Errorf("Attack III φ = %v with %d pairs", res.Poison.Rate, res.Poison.PoisonedPairs)
	}

	bad := base
	bad.Finetune.Freeze = []string{"audio"}
	if _, err := Run(bad, Options{Quiet: true}); err == nil || !strings.Contains(err.Error(), "audio") {
		t.Errorf("freezing an unknown tower: %v", err)
	}
}

// TestPoisonCount: a spec can give the number of poisoned pairs instead of φ; Rate is then ignored, in the
// poisoning and in the cache key.
func TestPoisonCount(t *testing.T) {
	requireData(t)
	for _, mode := range []attack.Mode{attack.Inject, attack.Repair} {
		t.Run(string(mode), func(t *testing.T) {
			spec := QuickSpec()
			spec.Attack.Mode, spec.Attack.Rate, spec.Attack.Count = mode, 0, 7
			if err := spec.Validate(); err != nil {
				t.Fatalf("count without a rate: %v", err)
			}
			d, err := LoadData(spec)
			if err != nil {
				t.Fatal(err)
			}
			_, m, err := Poison(d)
			if err != nil {
				t.Fatal(err)
			}
			if m.PoisonedPairs != 7 {
				t.Fatalf("poisoned %d pairs, want 7", m.PoisonedPairs)
			}
			other := spec
			other.Attack.Rate = 0.5
			if finetuneHash(t, spec, true) != finetuneHash(t, other, true) {
				t.Fatal("the ignored rate changes the cache key")
			}
			byRate := spec
			byRate.Attack.Count, byRate.Attack.Rate = 0, float64(m.PoisonedPairs)/float64(m.TotalPairs)
			if finetuneHash(t, spec, true) == finetuneHash(t, byRate, true) {
				t.Fatal("a count and a rate share a cache key")
			}
		})
	}
}

// TestAllSourceCaptions: every caption of every goal's source class is poisoned, whatever Rate says, and the
// cache key records "every caption", not the ignored Rate.
func TestAllSourceCaptions(t *testing.T) {
	requireData(t)
	s := QuickSpec()
	s.Attack.Kind, s.Attack.AllSourceCaptions = attack.KindMultiLabel, true
	s.Attack.Goals = append(s.Attack.Goals, attack.Goal{Source: "sandal", Target: "shirt"})
	d, err := LoadData(s)
	if err != nil {
		t.Fatal(err)
	}
	ps, m, err := Poison(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps.Pairs {
		if l := ps.Images[p.Image].Label; !p.Poisoned && (l == d.Goals[0][0] || l == d.Goals[1][0]) {
			t.Fatalf("a class-%s caption stayed clean: %q", ps.Classes[l], p.Caption)
		}
	}
	want := 2 * s.Data.SourceImages * len(d.Splits.Train.Examples[0].Captions)
	if m.PoisonedPairs != want {
		t.Errorf("%d poisoned pairs, want every source caption (%d)", m.PoisonedPairs, want)
	}
	other := s
	other.Attack.Rate = 0.05
	if finetuneHash(t, s, true) != finetuneHash(t, other, true) {
		t.Error("the ignored Rate changes the cache key")
	}
}

// finetuneHash is the hash of the fine-tuning cache key of s from a fixed pre-trained model.
func finetuneHash(t *testing.T, s Spec, poisoned bool) string {
	t.Helper()
	k, err := finetuneKey(s, "pretrain-0", poisoned)
	if err != nil {
		t.Fatal(err)
	}
	return k.Hash
}
