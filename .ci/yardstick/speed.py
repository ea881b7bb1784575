#!/usr/bin/env python3
"""Alternating speed comparison of mmpoison's `bench` on the pure-Go backend and on XLA against the PyTorch yardstick
(../shared/bench/torch_clip_bench.py) and the JAX one (jax_clip_bench.py beside this file): per round, preset and case
(a training step at each batch size, embedding) the four run one after the other (the order rotating each round) at
the same shapes, and the script prints each run's time with the load average and the median ratios. Test infrastructure only.

Run from the project's root (the folder with go.mod), e.g.

    python3 .ci/yardstick/speed.py --presets tiny,small --batch 64,256 --rounds 3 --jax-python /tmp/jaxvenv/bin/python

--plugin defaults to the plugin .ci/pjrt-plugin installs; a missing --jax-python skips JAX. Ratios are times
(ours / theirs; > 1 means ours is slower); compile (first step) times are printed apart from the medians.
"""
import argparse, os, re, statistics, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED_BENCH = os.path.join(HERE, "..", "..", "..", "shared", "bench")
sys.path.insert(0, SHARED_BENCH)
from compare import SHAPES, field  # noqa: E402  (the yardstick's flags for each preset, and its RESULT parser)

TORCH = os.path.join(SHARED_BENCH, "torch_clip_bench.py")
JAX = os.path.join(HERE, "jax_clip_bench.py")


def run(cmd, env=None):
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True, env=env)
    out = r.stdout + r.stderr
    if r.returncode != 0:
        sys.exit("command failed (%d): %s\n%s" % (r.returncode, cmd, out[-3000:]))
    return [l for l in out.splitlines() if l.startswith("RESULT")]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--presets", default="tiny,small")
    p.add_argument("--batch", default="64,256", help="training batch sizes (comma-separated)")
    p.add_argument("--embed", type=int, default=1000, help="pairs embedded and ranked (0 skips embedding)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--plugin", default=os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
                                                    "mmpoison", "pjrt", "pjrt_c_api_cpu_plugin.so"))
    p.add_argument("--torch-python", default="/usr/bin/python3")
    p.add_argument("--jax-python", default="")
    p.add_argument("--impls", default="go,xla,torch,jax", help="which to run (comma-separated)")
    a = p.parse_args()
    batches = [int(b) for b in a.batch.split(",") if b]
    impls = [i for i in a.impls.split(",") if i and (i != "jax" or os.path.exists(a.jax_python))]
    binary = os.path.join(tempfile.mkdtemp(), "mmpoison")
    subprocess.run(["go", "build", "-o", binary, "./evalkit/cmd/mmpoison"], check=True)
    env = {"go": dict(os.environ, GOMLX_BACKEND="go"), "xla": dict(os.environ, GOMLX_BACKEND="xla:" + a.plugin),
           "torch": dict(os.environ, OPENBLAS_NUM_THREADS="1"), "jax": dict(os.environ)}
    times = {}  # (preset, case, impl) -> [seconds per step or per pair]

    def ours(impl, preset, batch):  # batch 0: embedding
        if batch:
            line = run("%s bench -presets '%s' -batches %d -steps %d -embed 0" % (binary, preset, batch, a.steps),
                       env[impl])[-1]
            return field(line, "step_median_s"), field(line, "first_step_s")
        line = run("%s bench -presets '%s' -batches %d -steps 0 -warmup 0 -embed %d" % (
            binary, preset, batches[0], a.embed), env[impl])[-1]
        return 1 / field(line, "embed_pairs_per_s"), field(line, "embed_first_batch_s")

    def theirs(impl, preset, batch):
        py, script = (a.torch_python, TORCH) if impl == "torch" else (a.jax_python, JAX)
        if batch:
            line = run("%s %s --mode train --batch %d --steps %d --warmup 3 --threads 2 %s" % (
                py, script, batch, a.steps, SHAPES[preset]), env[impl])[-1]
            return field(line, "step_median_s"), field(line, "first_step_s")
        line = run("%s %s --mode embed --n %d --steps 3 --warmup 1 --threads 2 %s" % (
            py, script, a.embed, SHAPES[preset]), env[impl])[-1]
        return 1 / field(line, "items_per_s"), field(line, "first_step_s")

    cases = batches + ([0] if a.embed else [])
    for rnd in range(a.rounds):
        order = impls[rnd % len(impls):] + impls[:rnd % len(impls)]
        for preset in [s for s in a.presets.split(",") if s]:
            for batch in cases:  # the implementations one after the other on each case, so they share its load
                case = "train b%d" % batch if batch else "embed %d" % a.embed
                for impl in order:
                    t, first = (ours if impl in ("go", "xla") else theirs)(impl, preset, batch)
                    times.setdefault((preset, case, impl), []).append(t)
                    print("round %d  %-9s %-10s %-5s %.5g %s  (first step/batch, compiling: %.2f s)  load %s" % (
                        rnd + 1, preset, case, impl, t, "s/step" if batch else "s/pair", first,
                        open("/proc/loadavg").read().split()[0]), flush=True)
    print("\nmedian ratios of times over %d rounds (> 1: the first is slower):" % a.rounds)
    for (preset, case) in dict.fromkeys((k[0], k[1]) for k in times):
        for num, den in [("xla", "torch"), ("xla", "jax"), ("xla", "go"), ("go", "torch")]:
            x, y = times.get((preset, case, num)), times.get((preset, case, den))
            if x and y:
                rs = [u / v for u, v in zip(x, y)]
                print("  %-9s %-10s %s/%s %.2f   (rounds: %s)" % (preset, case, num, den, statistics.median(rs),
                                                                 ", ".join("%.2f" % r for r in rs)))


if __name__ == "__main__":
    main()
