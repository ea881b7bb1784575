package experiment

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mmpoison/mmpoison/poisoning/testchild"
)

// The kill -9 tests: a child process (this test binary, running TestKillChild) trains a tiny spec's stages into
// its own cache; the parent kills it once a stage has saved training state, reruns it, and compares what the
// rerun publishes with an uninterrupted run's: the same model file (bit for bit), history and evaluations.

// killChildEnv names the stages TestKillChild runs: "pretrain", or "finetune" (pre-training, then poisoned
// fine-tuning).
const killChildEnv = "MMPOISON_KILL_CHILD"

// killSelfEnv, when set to a step number, makes TestKillChild save its training state after every step and kill
// itself (SIGKILL) right after the state of that step of the first epoch is saved: a kill inside an epoch.
const killSelfEnv = "MMPOISON_KILL_SELF_AT_STEP"

// killSpec is a spec small enough that every stage trains in seconds, with 2 epochs each so that a kill can
// fall after the first epoch's saved state and before the stage ends.
func killSpec() Spec {
	s := DefaultSpec()
	s.Data = DataSpec{Pool: 320, Train: 128, TestPerClass: 5, SourceImages: 10}
	s.Pretrain.Epochs, s.Finetune.Epochs, s.Batch = 2, 2, 32
	s.Attack.Rate = 0.01
	return s
}

// stageOutcome is what a child reports of one stage.
type stageOutcome struct {
	Key, ModelSHA256 string
	Cached           bool
	History          []float64 // mean loss and logit scale of each epoch
	Epochs           string    // the per-epoch evaluations, as JSON
}

// TestKillChild is the child process: it runs the stages $MMPOISON_KILL_CHILD names on killSpec (in the cache
// $MMPOISON_TEST_CACHE, see testenv.Main) and prints one line "OUTCOME <JSON of []stageOutcome>".
func TestKillChild(t *testing.T) {
	which := os.Getenv(killChildEnv)
	if which == "" {
		t.Skip("the child process of the kill tests")
	}
	opts := Options{Quiet: true}
	if at := os.Getenv(killSelfEnv); at != "" {
		opts.StateEvery = time.Nanosecond
		stateSaved = func(epochs, step int) {
			if epochs == 0 && fmt.Sprint(step) == at {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		}
	}
	d, err := LoadData(killSpec())
	if err != nil {
		t.Fatal(err)
	}
	pre, err := Pretrain(d, opts)
	if err != nil {
		t.Fatal(err)
	}
	stages := []*Stage{pre}
	if which == "finetune" {
		ft, err := Finetune(d, pre, true, opts)
		if err != nil {
			t.Fatal(err)
		}
		stages = append(stages, ft)
	}
	var out []stageOutcome
	for _, st := range stages {
		data, err := os.ReadFile(st.Path)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		o := stageOutcome{Key: st.Key, ModelSHA256: hex.EncodeToString(sum[:]), Cached: st.Cached}
		for _, h := range st.History {
			o.History = append(o.History, h.MeanLoss, h.LogitScale)
		}
		epochs, _ := json.Marshal(st.Epochs)
		o.Epochs = string(epochs)
		out = append(out, o)
	}
	line, _ := json.Marshal(out)
	fmt.Printf("OUTCOME %s\n", line)
}

// killChild is a running TestKillChild.
type killChild struct{ *testchild.Child }

// startKillChild starts TestKillChild running stages on the cache at root, with env added to its environment.
func startKillChild(t *testing.T, root, stages string, env ...string) killChild {
	t.Helper()
	return killChild{testchild.Start(t, "TestKillChild", append([]string{killChildEnv + "=" + stages, "MMPOISON_TEST_CACHE=" + root}, env...)...)}
}

// outcome waits for the child to finish and returns what it reported.
func (c killChild) outcome(t *testing.T) []stageOutcome {
	t.Helper()
	if err := c.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, c.Output())
	}
	for _, l := range c.Lines() {
		if line, ok := strings.CutPrefix(l, "OUTCOME "); ok {
			var out []stageOutcome
			if err := json.Unmarshal([]byte(line), &out); err != nil {
				t.Fatal(err)
			}
			return out
		}
	}
	t.Fatalf("the child reported nothing:\n%s", c.Output())
	return nil
}

// killWhenSaved kills the child (SIGKILL) as soon as the stage named prefix (e.g. "pretrain-") has saved
// training state in the cache at root, before the stage is published; it fails when the child ends first.
func (c killChild) killWhenSaved(t *testing.T, root, prefix string) {
	t.Helper()
	pattern := filepath.Join(root, "v3", ".partial", prefix+"*", stateDir, stateCheckpoint)
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline) && !c.Ended(); time.Sleep(5 * time.Millisecond) {
		if found, _ := filepath.Glob(pattern); len(found) > 0 {
			c.Kill()
			if done, _ := filepath.Glob(filepath.Join(root, "v3", prefix+"*")); len(done) > 0 {
				t.Fatalf("the stage was published before the kill: %v", done)
			}
			return
		}
	}
	t.Fatalf("no saved state %s appeared:\n%s", pattern, c.Output())
}

// killTestRoot skips the test in short mode or without Fashion-MNIST and returns a fresh cache root for its
// child processes.
func killTestRoot(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("trains a tiny spec in child processes (seconds)")
	}
	requireData(t)
	return t.TempDir()
}

// referenceOutcome is the uninterrupted run of both stages, computed once per test binary.
var referenceOutcome []stageOutcome

func reference(t *testing.T) []stageOutcome {
	t.Helper()
	if referenceOutcome == nil {
		referenceOutcome = startKillChild(t, t.TempDir(), "finetune").outcome(t)
	}
	return referenceOutcome
}

// sameOutcome compares a stage's outcome with the reference's, the cached flag aside.
func sameOutcome(t *testing.T, got, want stageOutcome) {
	t.Helper()
	got.Cached, want.Cached = false, false
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stage %s after the kill and rerun:\n%+v\nwant the uninterrupted run's:\n%+v", want.Key, got, want)
	}
}

// A run killed mid-pre-training and run again resumes after the last finished epoch and publishes the model,
// history and evaluations of an uninterrupted run.
func TestKillMidPretraining(t *testing.T) {
	testKill(t, "pretrain", "pretrain-", 0, nil, "resuming the training after epoch")
}

// Same, killed mid-fine-tuning (after pre-training was published).
func TestKillMidFinetuning(t *testing.T) {
	testKill(t, "finetune", "finetune-poisoned-", 1, nil, "resuming the training after epoch")
}

// Killed inside pre-training's first epoch, right after the state of its third step was saved (the state is
// saved every Options.StateEvery within an epoch): the rerun resumes at that step and publishes the
// uninterrupted run's model, history and evaluations.
func TestKillMidEpoch(t *testing.T) {
	root := killTestRoot(t)
	ref := reference(t)
	c := startKillChild(t, root, "pretrain", killSelfEnv+"=3")
	err := c.Wait()
	if ws, ok := c.Cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the child was not killed at step 3 (%v):\n%s", err, c.Output())
	}
	if done, _ := filepath.Glob(filepath.Join(root, "v3", "pretrain-*")); len(done) > 0 {
		t.Fatalf("the stage was published before the kill: %v", done)
	}
	rerun := startKillChild(t, root, "pretrain")
	got := rerun.outcome(t)
	if want := "resuming the training after epoch 0, step 3 of the next"; !strings.Contains(rerun.Stderr(), want) {
		t.Errorf("the rerun did not say %q:\n%s", want, rerun.Stderr())
	}
	sameOutcome(t, got[0], ref[0])
}

// Killed mid-fine-tuning, with the saved training state then damaged (64 KiB zeroed in the middle of its
// checkpoint): the rerun says so, removes it and trains the stage from its start, with the same numbers.
func TestKillThenDamagedState(t *testing.T) {
	testKill(t, "finetune", "finetune-poisoned-", 1, zeroMiddle, "is unusable")
}

// testKill kills a child running stages once the stage named prefix (at index stage of the outcome) saved
// training state, applies damage (if not nil) to that state's checkpoint, reruns the child and checks that its
// error output says want and that it publishes the uninterrupted run's numbers.
func testKill(t *testing.T, stages, prefix string, stage int, damage func(*testing.T, string), want string) {
	root := killTestRoot(t)
	ref := reference(t)
	startKillChild(t, root, stages).killWhenSaved(t, root, prefix)
	if damage != nil {
		found, _ := filepath.Glob(filepath.Join(root, "v3", ".partial", prefix+"*", stateDir, stateCheckpoint))
		damage(t, found[0])
	}
	rerun := startKillChild(t, root, stages)
	got := rerun.outcome(t)
	if !strings.Contains(rerun.Stderr(), want) {
		t.Errorf("the rerun did not say %q:\n%s", want, rerun.Stderr())
	}
	if got[stage].Cached {
		t.Errorf("the killed stage was found in the cache")
	}
	for i := range got {
		sameOutcome(t, got[i], ref[i])
	}
	if left, _ := filepath.Glob(filepath.Join(root, "v3", ".partial", "*")); len(left) > 0 {
		t.Errorf("partial folders left after publishing: %v", left)
	}
}

// The damages of issue 15 to a file: 64 KiB zeroed in the middle, 4 KiB of random bytes in the middle, the file
// cut in half.
func zeroMiddle(t *testing.T, path string) {
	damageFile(t, path, func(b []byte) []byte { copy(b[len(b)/2:], make([]byte, 64<<10)); return b })
}

func randomMiddle(t *testing.T, path string) {
	damageFile(t, path, func(b []byte) []byte {
		rng := rand.New(rand.NewPCG(1, 2))
		for i := len(b) / 2; i < len(b)/2+4096; i++ {
			b[i] = byte(rng.Uint32())
		}
		return b
	})
}

func cutInHalf(t *testing.T, path string) {
	damageFile(t, path, func(b []byte) []byte { return b[:len(b)/2] })
}

func damageFile(t *testing.T, path string, damage func([]byte) []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, damage(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Cached models damaged in each of the three ways are reported by name, moved aside and recomputed: every rerun
// publishes the uninterrupted run's numbers, and never uses the damaged file.
func TestDamagedCachedModels(t *testing.T) {
	root := killTestRoot(t)
	first := startKillChild(t, root, "finetune").outcome(t)
	if referenceOutcome == nil {
		referenceOutcome = first
	}
	ref := reference(t)
	for _, tc := range []struct {
		name, entry string
		damage      func(*testing.T, string)
	}{
		{"fine-tuned model, 64 KiB zeroed", ref[1].Key, zeroMiddle},
		{"pre-trained model, random bytes", ref[0].Key, randomMiddle},
		{"fine-tuned model, cut in half", ref[1].Key, cutInHalf},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entry := filepath.Join(root, "v3", tc.entry)
			tc.damage(t, filepath.Join(entry, modelFile))
			rerun := startKillChild(t, root, "finetune")
			got := rerun.outcome(t)
			if msg := rerun.Stderr(); !strings.Contains(msg, "cache entry "+entry+" is corrupt") ||
				!strings.Contains(msg, "model.safetensors") || !strings.Contains(msg, "recomputing it") {
				t.Errorf("no notice naming the damaged entry:\n%s", msg)
			}
			for i := range got {
				if got[i].Cached != (got[i].Key != tc.entry) {
					t.Errorf("stage %s: cached %v", got[i].Key, got[i].Cached)
				}
				sameOutcome(t, got[i], ref[i])
			}
		})
	}
	if moved, _ := filepath.Glob(filepath.Join(root, "v3", ".corrupt", "*", "*")); len(moved) != 3 {
		t.Errorf("moved aside: %v, want the 3 damaged entries", moved)
	}
}

// Two processes started together on one empty cache train each stage once: for every stage, one of them
// computes it and the other uses its entry, and both report the uninterrupted run's numbers.
func TestTwoProcessesTrainOnce(t *testing.T) {
	root := killTestRoot(t)
	want := reference(t)
	a, b := startKillChild(t, root, "finetune"), startKillChild(t, root, "finetune")
	outA, outB := a.outcome(t), b.outcome(t)
	for i := range want {
		if outA[i].Cached == outB[i].Cached {
			t.Errorf("stage %s: cached %v and %v, want it computed by exactly one process", want[i].Key,
				outA[i].Cached, outB[i].Cached)
		}
		sameOutcome(t, outA[i], want[i])
		sameOutcome(t, outB[i], want[i])
	}
}
