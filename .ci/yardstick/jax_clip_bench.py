"""JAX yardstick for mmpoison: shared/bench/torch_clip_bench.py's CLIP (same flags, same shapes, same RESULT line)
written in JAX, so mmpoison's XLA path can be timed against the same compiler driven by its own framework. Test
infrastructure only: nothing in mmpoison imports it.

    python jax_clip_bench.py --mode train --batch 64 --img 28 --ch 1 --patch 7 --width 64 --layers 2 --heads 2
    python jax_clip_bench.py --mode embed --n 1000 ...      # embedding + similarity + ranks

The model: ViT image tower (patch embedding without bias, class token, ln_pre/ln_post, pre-LN blocks with QuickGELU)
or OpenAI's ModifiedResNet (--arch rn: three-convolution stem, anti-aliased bottlenecks, attention pooling; BatchNorm
with batch statistics when training, as torch's module in train mode), causal text transformer read at the end
token, symmetric InfoNCE with a clamped learnable logit scale, AdamW (lr 5e-4, weight decay 0.1, as the torch
script). The first step, which compiles, is reported apart (first_step_s). --threads is accepted for the torch
script's command lines; XLA's CPU client uses every core of the machine.
"""
import argparse, math, os, resource, sys, time

import jax
import jax.numpy as jnp
import numpy as np

p = argparse.ArgumentParser()
for name, default in [("batch", 64), ("n", 1000), ("img", 28), ("ch", 1), ("patch", 4), ("width", 128), ("layers", 4),
                      ("heads", 4), ("vocab", 1000), ("ctx", 16), ("embed", 128), ("steps", 10), ("warmup", 3),
                      ("threads", 2), ("text-width", 0), ("text-heads", 0), ("text-layers", 0), ("rn-width", 64)]:
    p.add_argument("--" + name, type=int, default=default)
p.add_argument("--mode", default="train")
p.add_argument("--arch", default="vit")
p.add_argument("--rn-layers", default="3,4,6,3")
a = p.parse_args()
a.text_width = a.text_width or a.width
a.text_heads = a.text_heads or a.heads
a.text_layers = a.text_layers or a.layers

rng = np.random.default_rng(0)


def normal(*shape, std=0.02):
    return jnp.asarray(rng.normal(0, std, shape), jnp.float32)


def linear_p(i, o, bias=True):
    d = {"w": normal(i, o, std=i ** -0.5)}
    if bias:
        d["b"] = jnp.zeros(o, jnp.float32)
    return d


def linear(pp, x):
    y = x @ pp["w"]
    return y + pp["b"] if "b" in pp else y


def ln_p(d):
    return {"g": jnp.ones(d, jnp.float32), "b": jnp.zeros(d, jnp.float32)}


def layer_norm(pp, x):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / jnp.sqrt(v + 1e-5) * pp["g"] + pp["b"]


def block_p(d):
    return {"ln1": ln_p(d), "ln2": ln_p(d), "q": linear_p(d, d), "k": linear_p(d, d), "v": linear_p(d, d),
            "o": linear_p(d, d), "fc1": linear_p(d, 4 * d), "fc2": linear_p(4 * d, d)}


def attention(q, k, v, heads, mask=None):
    B, S, D = q.shape
    hd = D // heads
    q, k, v = (t.reshape(B, -1, heads, hd).transpose(0, 2, 1, 3) for t in (q, k, v))
    att = (q @ k.transpose(0, 1, 3, 2)) / math.sqrt(hd)
    if mask is not None:
        att = att + mask
    return (jax.nn.softmax(att, -1) @ v).transpose(0, 2, 1, 3).reshape(B, S, D)


def block(pp, x, heads, mask):
    h = layer_norm(pp["ln1"], x)
    x = x + linear(pp["o"], attention(linear(pp["q"], h), linear(pp["k"], h), linear(pp["v"], h), heads, mask))
    h = linear(pp["fc1"], layer_norm(pp["ln2"], x))
    return x + linear(pp["fc2"], h * jax.nn.sigmoid(1.702 * h))


def conv_p(i, o, k):
    return normal(k, k, i, o, std=(3 * i * k * k) ** -0.5)


def conv(w, x, stride=1):
    k = w.shape[0]
    return jax.lax.conv_general_dilated(x, w, (stride, stride), [(k // 2, k // 2)] * 2,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


def bn_p(c):
    return ln_p(c)


def batch_norm(pp, x, train):
    if train:
        m = x.mean((0, 1, 2))
        v = x.var((0, 1, 2))
    else:  # running statistics as initialised: mean 0, variance 1
        m, v = 0.0, 1.0
    return (x - m) / jnp.sqrt(v + 1e-5) * pp["g"] + pp["b"]


def avg_pool(x, s):
    return jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, s, s, 1), (1, s, s, 1), "VALID") / (s * s)


# RN_BLOCKS lists each bottleneck's (input channels, planes, stride).
RN_BLOCKS = []
for i, n in enumerate(int(v) for v in a.rn_layers.split(",")):
    for j in range(n):
        RN_BLOCKS.append((RN_BLOCKS[-1][1] * 4 if RN_BLOCKS else a.rn_width, a.rn_width * 2 ** i,
                          2 if (j == 0 and i > 0) else 1))


def resnet_p():
    w = a.rn_width
    P = {"stem": [(conv_p(a.ch, w // 2, 3), bn_p(w // 2)), (conv_p(w // 2, w // 2, 3), bn_p(w // 2)),
                  (conv_p(w // 2, w, 3), bn_p(w))], "blocks": []}
    for inp, planes, stride in RN_BLOCKS:
        b = {"c1": conv_p(inp, planes, 1), "b1": bn_p(planes), "c2": conv_p(planes, planes, 3), "b2": bn_p(planes),
             "c3": conv_p(planes, planes * 4, 1), "b3": bn_p(planes * 4)}
        if stride > 1 or inp != planes * 4:
            b["down"] = (conv_p(inp, planes * 4, 1), bn_p(planes * 4))
        P["blocks"].append(b)
    d, g = w * 32, a.img // 32
    P["pos"] = normal(g * g + 1, d, std=d ** -0.5)
    for n in "qkv":
        P[n] = linear_p(d, d)
    P["c"] = linear_p(d, a.embed)
    return P


def resnet(P, x, train):
    for i, (w, bnp) in enumerate(P["stem"]):
        x = jax.nn.relu(batch_norm(bnp, conv(w, x, 2 if i == 0 else 1), train))
    x = avg_pool(x, 2)
    for b, (_, _, stride) in zip(P["blocks"], RN_BLOCKS):
        o = jax.nn.relu(batch_norm(b["b1"], conv(b["c1"], x), train))
        o = jax.nn.relu(batch_norm(b["b2"], conv(b["c2"], o), train))
        if stride > 1:
            o = avg_pool(o, stride)
        o = batch_norm(b["b3"], conv(b["c3"], o), train)
        if "down" in b:
            s = avg_pool(x, stride) if stride > 1 else x
            x = batch_norm(b["down"][1], conv(b["down"][0], s), train)
        x = jax.nn.relu(o + x)
    B, H, W, D = x.shape
    x = x.reshape(B, H * W, D)
    x = jnp.concatenate([x.mean(1, keepdims=True), x], 1) + P["pos"]
    heads = D // 64
    o = attention(linear(P["q"], x[:, :1]), linear(P["k"], x), linear(P["v"], x), heads)
    return linear(P["c"], o.reshape(B, D))


def init():
    d, n, t = a.width, a.img // a.patch, a.text_width
    P = {"tok": normal(a.vocab, t), "tpos": normal(a.ctx, t, std=0.01), "ln_final": ln_p(t),
         "tblocks": [block_p(t) for _ in range(a.text_layers)], "tproj": linear_p(t, a.embed, False),
         "logit_scale": jnp.asarray(math.log(1 / 0.07), jnp.float32)}
    if a.arch == "rn":
        P["rn"] = resnet_p()
    else:
        P.update({"patch": linear_p(a.patch * a.patch * a.ch, d, False), "cls": normal(d), "vpos": normal(n * n + 1, d),
                  "ln_pre": ln_p(d), "ln_post": ln_p(d), "vblocks": [block_p(d) for _ in range(a.layers)],
                  "vproj": linear_p(d, a.embed, False)})
    return P


def encode_image(P, img, train):
    if a.arch == "rn":
        return resnet(P["rn"], img, train)
    B, n, S, C = img.shape[0], a.img // a.patch, a.patch, a.ch
    x = img.reshape(B, n, S, n, S, C).transpose(0, 1, 3, 2, 4, 5).reshape(B, n * n, S * S * C)
    x = linear(P["patch"], x)
    x = jnp.concatenate([jnp.broadcast_to(P["cls"], (B, 1, x.shape[-1])), x], 1) + P["vpos"]
    x = layer_norm(P["ln_pre"], x)
    for b in P["vblocks"]:
        x = block(b, x, a.heads, None)
    return linear(P["vproj"], layer_norm(P["ln_post"], x[:, 0]))


MASK = jnp.triu(jnp.full((a.ctx, a.ctx), -1e9, jnp.float32), 1)


def encode_text(P, tok, eot):
    x = P["tok"][tok] + P["tpos"]
    for b in P["tblocks"]:
        x = block(b, x, a.text_heads, MASK)
    x = layer_norm(P["ln_final"], x)
    return linear(P["tproj"], x[jnp.arange(x.shape[0]), eot])


def normalize(x):
    return x / jnp.linalg.norm(x, axis=-1, keepdims=True)


def embed(P, img, tok, eot, train):
    return normalize(encode_image(P, img, train)), normalize(encode_text(P, tok, eot))


def loss(P, img, tok, eot):
    ie, te = embed(P, img, tok, eot, True)
    logits = jnp.exp(jnp.minimum(P["logit_scale"], math.log(100))) * ie @ te.T
    lab = jnp.arange(ie.shape[0])
    ce = lambda lg: -jnp.take_along_axis(jax.nn.log_softmax(lg, -1), lab[:, None], 1).mean()
    return (ce(logits) + ce(logits.T)) / 2


def batch(B):
    g = np.random.default_rng(1)
    img = g.random((B, a.img, a.img, a.ch), dtype=np.float32)
    L = g.integers(4, a.ctx, B)
    tok = g.integers(2, a.vocab, (B, a.ctx))
    tok = np.where(np.arange(a.ctx)[None] < (L - 1)[:, None], tok, 0)
    tok[np.arange(B), L - 1] = 1
    return jnp.asarray(img), jnp.asarray(tok, jnp.int32), jnp.asarray(L - 1, jnp.int32)


P = init()
nparams = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(P))
if a.mode == "train":
    B = a.batch
    img, tok, eot = batch(B)
    lr, wd, b1, b2, eps = 5e-4, 0.1, 0.9, 0.999, 1e-8
    state = (P, jax.tree_util.tree_map(jnp.zeros_like, P), jax.tree_util.tree_map(jnp.zeros_like, P), jnp.float32(0))

    @jax.jit
    def train_step(state, img, tok, eot):
        P, m, v, t = state
        l, g = jax.value_and_grad(loss)(P, img, tok, eot)
        t = t + 1
        m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        P = jax.tree_util.tree_map(lambda p, m, v: p * (1 - lr * wd) - lr * (m / (1 - b1 ** t)) /
                                   (jnp.sqrt(v / (1 - b2 ** t)) + eps), P, m, v)
        return (P, m, v, t), l

    def step():
        global state
        state, l = train_step(state, img, tok, eot)
        return float(l)
else:
    B = a.n
    img, tok, eot = batch(B)

    @jax.jit
    def embed_step(P, img, tok, eot):
        ie, te = embed(P, img, tok, eot, False)
        sim = ie @ te.T
        return (sim > jnp.diag(sim)[:, None]).sum(1)

    def step():
        return int(embed_step(P, img, tok, eot)[0])

times, first = [], None
for i in range(a.warmup + a.steps):
    t0 = time.perf_counter()
    step()
    dt = time.perf_counter() - t0
    print(f"step {i}: {dt:.3f}s", file=sys.stderr)
    if i == 0:
        first = dt
    if i >= a.warmup:
        times.append(dt)
times.sort()
med = times[len(times) // 2] if len(times) % 2 else (times[len(times) // 2 - 1] + times[len(times) // 2]) / 2
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"RESULT impl=jax-{jax.__version__} mode={a.mode} B={B} img={a.img}x{a.img}x{a.ch} params={nparams} "
      f"first_step_s={first:.3f} step_median_s={med:.4f} step_min_s={times[0]:.4f} items_per_s={B/med:.1f} "
      f"peak_rss=\"{rss} kB\" threads={os.cpu_count()}")
