"""Micro-benchmarks of a MiniLM-sized forward's building blocks, in Pyodide 0.17.1 (numpy 1.17.5, no BLAS).

    .venv/bin/python bench/pyodide_micro.py            # Chromium + Pyodide (the runtime that matters)
    .venv/bin/python bench/pyodide_micro.py --cpython  # the same code in this CPython (for contrast only)
    .venv/bin/python bench/pyodide_micro.py --only gelu,softmax
    .venv/bin/python bench/pyodide_micro.py --only elementwise   # pyapp's softmax/GELU/SiLU: numpy vs wasm kernel

Sizes: d_model 384, 12 heads of d_k 32, d_ff 1536, n = 12 and 128 tokens.  Each figure is the median of
5 batches; a batch repeats the call until it has run >= 20 ms.  Weights are stored nn.Linear style,
W (out, in), y = x @ W.T + b.  Prints one table: block, n, variant, ms per call, and a parity column (max
abs difference from the float64 reference) where the variant changes numerics.
"""

from __future__ import annotations

import json
import sys
import time

# ---------------------------------------------------------------- the code that runs inside Pyodide (or CPython)

BENCH_SRC = r'''
import base64, math, time
import numpy as np

D, H, DK, DFF = 384, 12, 32, 1536
ROWS = []


def timeit(fn, min_batch=0.02, batches=5):
    fn()
    k = 1
    while True:                      # calibrate: calls per batch so one batch lasts >= min_batch
        t0 = time.perf_counter()
        for _ in range(k):
            fn()
        dt = time.perf_counter() - t0
        if dt >= min_batch or k >= 1 << 16:
            break
        k = k * 8 if dt < min_batch / 16 else int(k * min_batch / max(dt, 1e-6)) + 1
    per = []
    for _ in range(batches):
        t0 = time.perf_counter()
        for _ in range(k):
            fn()
        per.append((time.perf_counter() - t0) / k)
    per.sort()
    return per[len(per) // 2] * 1e3, per[0] * 1e3


def row(block, n, variant, fn, err=None):
    med, best = timeit(fn)
    ROWS.append({"block": block, "n": n, "variant": variant, "ms": med, "min": best, "err": err})


def maxerr(a, ref):
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - ref)))


rng = np.random.RandomState(0)


def mk(*shape, scale=0.05):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def bench_matmul(n):
    x, W, b = mk(n, D, scale=1.0), mk(D, D), mk(D)        # W: (out, in) nn.Linear layout
    x64, W64 = x.astype(np.float64), W.astype(np.float64)
    WT = np.ascontiguousarray(W.T)                           # (in, out) contiguous copy
    ref = x64 @ W64.T
    row("linear (n,384)x(384,384)", n, "x @ W.T   f32 (W out,in; transposed view)", lambda: x @ W.T)
    row("linear (n,384)x(384,384)", n, "x @ WT    f32 (WT contiguous in,out)", lambda: x @ WT)
    row("linear (n,384)x(384,384)", n, "np.dot(x, W.T) f32", lambda: np.dot(x, W.T), maxerr(np.dot(x, W.T), ref))
    row("linear (n,384)x(384,384)", n, "np.dot(x, WT)  f32", lambda: np.dot(x, WT))
    row("linear (n,384)x(384,384)", n, "np.matmul(x, WT) f32", lambda: np.matmul(x, WT))
    row("linear (n,384)x(384,384)", n, "np.einsum('ij,kj->ik', x, W) f32", lambda: np.einsum("ij,kj->ik", x, W),
        maxerr(np.einsum("ij,kj->ik", x, W), ref))
    row("linear (n,384)x(384,384)", n, "np.einsum('ij,jk->ik', x, WT) f32", lambda: np.einsum("ij,jk->ik", x, WT))
    row("linear (n,384)x(384,384)", n, "np.tensordot(x, W, (1,1)) f32", lambda: np.tensordot(x, W, (1, 1)))
    row("linear (n,384)x(384,384)", n, "(W @ x.T).T f32", lambda: (W @ x.T).T)
    row("linear (n,384)x(384,384)", n, "np.dot(W, x.T).T f32", lambda: np.dot(W, x.T).T)
    row("linear (n,384)x(384,384)", n, "x @ W.T   f64", lambda: x64 @ W64.T)
    row("linear (n,384)x(384,384)", n, "np.dot(x, W.T) f64", lambda: np.dot(x64, W64.T))
    row("linear (n,384)x(384,384)", n, "np.dot(x, W.T) + b f32", lambda: np.dot(x, W.T) + b)
    row("linear (n,384)x(384,384)", n, "np.einsum('ij,jk->ik', x, WT) + b f32",
        lambda: np.einsum("ij,jk->ik", x, WT) + b, maxerr(np.einsum("ij,jk->ik", x, WT) + b, ref + b))
    Wqkv = np.concatenate([W, mk(D, D), mk(D, D)], axis=0)   # (3*384, 384)
    WqkvT = np.ascontiguousarray(Wqkv.T)                     # (384, 1152)
    WqkT = np.ascontiguousarray(Wqkv[:2 * D].T)              # (384, 768)
    row("QKV projections", n, "3 x np.dot(x, W.T) f32", lambda: (np.dot(x, W.T), np.dot(x, W.T), np.dot(x, W.T)))
    row("QKV projections", n, "1 x np.dot(x, Wqkv.T) fused (1152,384) f32", lambda: np.dot(x, Wqkv.T))
    row("QKV projections", n, "2 x np.dot (Q,K only: layer-0 view)", lambda: (np.dot(x, W.T), np.dot(x, W.T)))
    row("QKV projections", n, "3 x einsum('ij,jk->ik', x, WT)", lambda: [np.einsum("ij,jk->ik", x, WT) for _ in range(3)])
    row("QKV projections", n, "1 x einsum(x, WqkvT (384,1152)) fused", lambda: np.einsum("ij,jk->ik", x, WqkvT))
    row("QKV projections", n, "1 x einsum(x, WqkT (384,768)) Q,K fused", lambda: np.einsum("ij,jk->ik", x, WqkT))
    W1, W2 = mk(DFF, D), mk(D, DFF)
    row("FFN (n,384)->(n,1536)->(n,384)", n, "np.dot(x, W1.T), np.dot(h, W2.T) f32",
        lambda: np.dot(np.dot(x, W1.T), W2.T))
    W1T, W2T = np.ascontiguousarray(W1.T), np.ascontiguousarray(W2.T)
    row("FFN (n,384)->(n,1536)->(n,384)", n, "x @ W1T @ W2T (contiguous in,out) f32", lambda: x @ W1T @ W2T)
    row("FFN (n,384)->(n,1536)->(n,384)", n, "einsum x,W1T then einsum h,W2T f32",
        lambda: np.einsum("ij,jk->ik", np.einsum("ij,jk->ik", x, W1T), W2T))


def bench_heads(n):
    q, k, v = mk(n, D, scale=1.0), mk(n, D, scale=1.0), mk(n, D, scale=1.0)
    split = lambda t: t.reshape(n, H, DK).transpose(1, 0, 2)   # (heads, n, d_k) view
    qh, kh, vh = split(q), split(k), split(v)
    qc, kc, vc = (np.ascontiguousarray(t) for t in (qh, kh, vh))
    kct = np.ascontiguousarray(kh.transpose(0, 2, 1))         # (heads, d_k, n)
    ref = np.matmul(qh.astype(np.float64), kh.astype(np.float64).transpose(0, 2, 1))
    row("head split (n,384)->(12,n,32)", n, "reshape+transpose view", lambda: split(q))
    row("head split (n,384)->(12,n,32)", n, "ascontiguousarray(view)", lambda: np.ascontiguousarray(split(q)))
    row("scores QK^T (12,n,32)x(12,32,n)", n, "np.matmul(qh, kh.transpose(0,2,1)) views",
        lambda: np.matmul(qh, kh.transpose(0, 2, 1)), maxerr(np.matmul(qh, kh.transpose(0, 2, 1)), ref))
    row("scores QK^T (12,n,32)x(12,32,n)", n, "qc @ kct (contiguous)", lambda: qc @ kct)
    row("scores QK^T (12,n,32)x(12,32,n)", n, "np.einsum('hid,hjd->hij') views", lambda: np.einsum("hid,hjd->hij", qh, kh))
    row("scores QK^T (12,n,32)x(12,32,n)", n, "np.einsum('ihd,jhd->hij', q3, k3) no split",
        lambda: np.einsum("ihd,jhd->hij", q.reshape(n, H, DK), k.reshape(n, H, DK)))
    row("scores QK^T (12,n,32)x(12,32,n)", n, "loop over heads np.dot(qc[h], kc[h].T)",
        lambda: [np.dot(qc[h], kc[h].T) for h in range(H)])
    row("scores QK^T (12,n,32)x(12,32,n)", n, "broadcast (q[:,:,None,:]*k[:,None]).sum(-1)",
        lambda: (qc[:, :, None, :] * kc[:, None, :, :]).sum(-1))
    p = np.full((H, n, n), 1.0 / n, dtype=np.float32)
    row("probs @ V (12,n,n)x(12,n,32)", n, "np.matmul(p, vh) view", lambda: np.matmul(p, vh))
    row("probs @ V (12,n,n)x(12,n,32)", n, "p @ vc contiguous", lambda: p @ vc)
    row("probs @ V (12,n,n)x(12,n,32)", n, "np.einsum('hij,hjd->hid')", lambda: np.einsum("hij,hjd->hid", p, vc))
    row("probs @ V (12,n,n)x(12,n,32)", n, "loop np.dot(p[h], vc[h])", lambda: [np.dot(p[h], vc[h]) for h in range(H)])
    ctx = p @ vc
    row("concat heads (12,n,32)->(n,384)", n, "transpose(1,0,2).reshape", lambda: ctx.transpose(1, 0, 2).reshape(n, D))


def softmax_ref(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def bench_softmax(n):
    s = mk(H, n, n, scale=3.0)
    ref = softmax_ref(s.astype(np.float64))
    row("softmax (12,n,n)", n, "exp(s-max)/sum  f32", lambda: softmax_ref(s), maxerr(softmax_ref(s), ref))

    def inplace(s):
        e = s - s.max(axis=-1, keepdims=True)
        np.exp(e, out=e)
        e /= e.sum(axis=-1, keepdims=True)
        return e
    row("softmax (12,n,n)", n, "in-place exp/divide f32", lambda: inplace(s), maxerr(inplace(s), ref))
    row("softmax (12,n,n)", n, "exp(s-max)/sum  f64", lambda: softmax_ref(s.astype(np.float64)))
    row("scale / temperature (12,n,n)", n, "s * (1/(sqrt(dk)*T)) f32", lambda: s * np.float32(1 / (math.sqrt(DK) * 1.3)))
    row("head average (12,n,n)->(n,n)", n, "p.mean(axis=0)", lambda: s.mean(axis=0))


def ln_ref(x, w, b, eps=1e-12):
    m = x.mean(axis=-1, keepdims=True)
    v = ((x - m) ** 2).mean(axis=-1, keepdims=True)
    return ((x - m) / np.sqrt(v + np.float32(eps)) * w + b).astype(np.float32)


def bench_layernorm(n):
    x, w, b = mk(n, D, scale=1.0), mk(D, scale=1.0), mk(D)
    ref = ln_ref(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64))

    def fast(x, w, b, eps=np.float32(1e-12)):
        c = x - x.mean(axis=-1, keepdims=True)
        v = np.einsum("ij,ij->i", c, c)[:, None] * np.float32(1.0 / x.shape[-1])
        c *= 1.0 / np.sqrt(v + eps)
        c *= w
        c += b
        return c
    row("LayerNorm (n,384)", n, "encoder.layer_norm as written (f32)", lambda: ln_ref(x, w, b), maxerr(ln_ref(x, w, b), ref))
    row("LayerNorm (n,384)", n, "centred once, einsum var, in-place (f32)", lambda: fast(x, w, b), maxerr(fast(x, w, b), ref))


ERF_COEF = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398,
            1.48851587, -0.82215223, 0.17087277)


def erf_nr(x):                       # encoder.erf today: Numerical Recipes erfc, float64
    z = np.abs(x.astype(np.float64))
    t = 1.0 / (1.0 + 0.5 * z)
    poly = (-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277)))))))))
    erfc = t * np.exp(poly)
    return np.where(x >= 0, 1.0 - erfc, erfc - 1.0)


def erf_nr32(x):                     # same formula, float32 throughout, in-place Horner
    z = np.abs(x)
    t = np.float32(1.0) / (np.float32(1.0) + np.float32(0.5) * z)
    acc = np.full_like(t, np.float32(0.17087277))
    for c in (-0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418, 0.37409196, 1.00002368):
        acc *= t
        acc += np.float32(c)
    acc *= t
    acc -= z * z
    acc += np.float32(-1.26551223)
    np.exp(acc, out=acc)
    acc *= t                          # erfc(|x|)
    return np.copysign(np.float32(1.0) - acc, x)


def erf_as(x):                       # Abramowitz & Stegun 7.1.26, |err| < 1.5e-7, float32
    z = np.abs(x)
    t = np.float32(1.0) / (np.float32(1.0) + np.float32(0.3275911) * z)
    y = t * (np.float32(0.254829592) + t * (np.float32(-0.284496736) + t * (np.float32(1.421413741) + t * (
        np.float32(-1.453152027) + t * np.float32(1.061405429)))))
    return np.copysign(np.float32(1.0) - y * np.exp(-z * z), x)


ERF_U = np.frompyfunc(math.erf, 1, 1)
ERF_V = np.vectorize(math.erf, otypes=[np.float64])


def bench_gelu(n):
    x = mk(n, DFF, scale=2.0)
    x64 = x.astype(np.float64)
    exact = np.array([math.erf(v) for v in (x64 / math.sqrt(2.0)).ravel()]).reshape(x.shape)
    gelu_ref = 0.5 * x64 * (1.0 + exact)
    s2 = np.float32(1.0 / math.sqrt(2.0))

    def g(erf_fn, x):
        return (np.float32(0.5) * x * (np.float32(1.0) + erf_fn(x * s2))).astype(np.float32)
    for name, fn in (("NR erfc float64 (encoder.erf today)", erf_nr), ("NR erfc float32 in-place Horner", erf_nr32),
                     ("A&S 7.1.26 float32", erf_as),
                     ("math.erf via np.frompyfunc", lambda v: ERF_U(v).astype(np.float32)),
                     ("math.erf via np.vectorize", lambda v: ERF_V(v).astype(np.float32))):
        row("GELU erf (n,1536)", n, name, lambda fn=fn: g(fn, x), maxerr(g(fn, x), gelu_ref))
    tanh = lambda: (0.5 * x * (1 + np.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))).astype(np.float32)
    row("GELU erf (n,1536)", n, "tanh approximation (NOT exact GELU)", tanh, maxerr(tanh(), gelu_ref))


def bench_decode(n):
    for shape, label in (((D, D), "384x384 (one Q weight)"), ((n, D), "n x 384 (embedding rows)"),
                         ((DFF, D), "1536x384 (FFN weight)")):
        a = mk(*shape)
        b16 = base64.b64encode(a.astype("<f2").tobytes()).decode()
        b32 = base64.b64encode(a.astype("<f4").tobytes()).decode()
        row("decode " + label, n, "b64decode + frombuffer <f2 + astype f32",
            lambda: np.frombuffer(base64.b64decode(b16), dtype="<f2").astype(np.float32).reshape(shape))
        row("decode " + label, n, "b64decode only (f16 payload)", lambda: base64.b64decode(b16))
        row("decode " + label, n, "b64decode + frombuffer <f4 (f32 payload)",
            lambda: np.frombuffer(base64.b64decode(b32), dtype="<f4").reshape(shape))


def bench_overhead(n):
    a = np.zeros(4, dtype=np.float32)
    f = lambda: None
    row("python overhead", n, "empty Python call", f)
    row("python overhead", n, "tiny numpy op (4,)+(4,)", lambda: a + a)
    row("python overhead", n, "np.asarray(list of n ints)", lambda: np.asarray(list(range(n)), dtype=np.int64))
    x = mk(n, D)
    row("python overhead", n, "astype(float32) on float32 (copy)", lambda: x.astype(np.float32))
    row("python overhead", n, "astype(float32, copy=False)", lambda: x.astype(np.float32, copy=False))


def lin_dot(x, W, b):                 # W: (out, in) as stored; y = x @ W.T + b
    return np.dot(x, W.T) + b


def lin_einsum(x, WT, b):             # WT: (in, out) contiguous copy made once at load
    y = np.einsum("ij,jk->ik", x, WT)
    y += b
    return y


def layer_forward(x, p, n, form="einsum"):
    """One BERT block in the fastest forms measured above (float32): what a tuned encoder costs."""
    if form == "einsum":
        lin, W = lin_einsum, lambda k: p[k + "T"]
    else:
        lin, W = lin_dot, lambda k: p[k]
    qkv = lin(x, W("Wqkv"), p["bqkv"])                                        # (n, 1152)
    q, k, v = qkv[:, :D], qkv[:, D:2 * D], qkv[:, 2 * D:]
    qh = q.reshape(n, H, DK).transpose(1, 0, 2)                              # (heads, n, d_k)
    kh = k.reshape(n, H, DK).transpose(1, 0, 2)
    vh = v.reshape(n, H, DK).transpose(1, 0, 2)
    s = np.matmul(qh, kh.transpose(0, 2, 1))                                 # (heads, n, n)
    s *= np.float32(1.0 / math.sqrt(DK))
    s -= s.max(axis=-1, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=-1, keepdims=True)                                       # probs
    ctx = np.matmul(s, vh).transpose(1, 0, 2).reshape(n, D)                  # (n, d_model)
    a = lin(ctx, W("Wo"), p["bo"])
    h = ln_ref(x + a, p["g1"], p["b1"])
    f = lin(h, W("W1"), p["c1"])
    f = np.float32(0.5) * f * (np.float32(1.0) + erf_nr32(f * np.float32(1 / math.sqrt(2))))
    f = lin(f, W("W2"), p["c2"])
    return ln_ref(h + f, p["g2"], p["b2"]), s


def bench_layer(n):
    p = {"Wq": mk(D, D), "Wk": mk(D, D), "Wv": mk(D, D), "Wo": mk(D, D), "bq": mk(D), "bk": mk(D), "bv": mk(D),
         "bo": mk(D), "W1": mk(DFF, D), "c1": mk(DFF), "W2": mk(D, DFF), "c2": mk(D), "g1": mk(D, scale=1.0),
         "b1": mk(D), "g2": mk(D, scale=1.0), "b2": mk(D)}
    p["Wqkv"] = np.concatenate([p["Wq"], p["Wk"], p["Wv"]])
    p["bqkv"] = np.concatenate([p["bq"], p["bk"], p["bv"]])
    p["Wqk"], p["bqk"] = p["Wqkv"][:2 * D], p["bqkv"][:2 * D]
    for k in ("Wqkv", "Wqk", "Wo", "W1", "W2"):
        p[k + "T"] = np.ascontiguousarray(p[k].T)
    x = mk(n, D, scale=1.0)

    def layer0_probs(form):                                                  # what the layer-0 overview needs
        if form == "einsum":
            qk = lin_einsum(x, p["WqkT"], p["bqk"])                           # (n, 768)
        else:
            qk = lin_dot(x, p["Wqk"], p["bqk"])
        q = qk[:, :D].reshape(n, H, DK).transpose(1, 0, 2)
        k = qk[:, D:].reshape(n, H, DK).transpose(1, 0, 2)
        s = np.matmul(q, k.transpose(0, 2, 1))
        s *= np.float32(1.0 / math.sqrt(DK))
        s -= s.max(axis=-1, keepdims=True)
        np.exp(s, out=s)
        s /= s.sum(axis=-1, keepdims=True)
        return s

    def six(form):
        h = x
        for _ in range(5):
            h, _ = layer_forward(h, p, n, form)
        return h
    for form in ("dot", "einsum"):
        row("whole block (tuned forms)", n, "layer-0 probs only: Q,K + softmax [%s]" % form, lambda: layer0_probs(form))
        row("whole block (tuned forms)", n, "one full BERT block [%s]" % form, lambda: layer_forward(x, p, n, form))
        row("whole block (tuned forms)", n, "all 6 layers' probs: 5 blocks + Q,K [%s]" % form,
            lambda: (six(form), layer0_probs(form)))


def bench_upscale(n):
    """Nearest-neighbour upscale of an (n, n, 4) uint8 heatmap to 512 x 512 device pixels (the redraw)."""
    out = 512
    rgba = rng.randint(0, 255, size=(n, n, 4)).astype(np.uint8)
    ri = (np.arange(out) * n // out).astype(np.intp)
    ci = (np.arange(out) * n // out).astype(np.intp)
    ref = rgba[ri[:, None], ci[None, :]]
    u32 = rgba.view(np.uint32).reshape(n, n)                 # one pixel = one uint32
    take2 = lambda: u32.take(ri, axis=0).take(ci, axis=1).view(np.uint8).reshape(out, out, 4)
    assert (take2() == ref).all()
    row("upscale (n,n,4) -> (512,512,4)", n, "rgba[ri[:,None], ci[None,:]] (scene.nearest_upscale)",
        lambda: rgba[ri[:, None], ci[None, :]])
    row("upscale (n,n,4) -> (512,512,4)", n, "uint32 view, take(ri,0).take(ci,1)", take2)
    row("upscale (n,n,4) -> (512,512,4)", n, "uint32 view, u32[ri][:, ci] (no view back)", lambda: u32[ri][:, ci])
    if out % n == 0:
        f = out // n
        row("upscale (n,n,4) -> (512,512,4)", n, "uint32 view, np.repeat x2 (integer factor)",
            lambda: np.repeat(np.repeat(u32, f, axis=0), f, axis=1))


def bench_transpose(n):
    W = mk(4 * D, D)
    row("weight prep (once per load)", n, "ascontiguousarray(W.T) of (1536,384)", lambda: np.ascontiguousarray(W.T))
    q, k = mk(H, n, DK, scale=1.0), mk(H, n, DK, scale=1.0)
    kT = np.ascontiguousarray(k.transpose(0, 2, 1))
    row("scores QK^T (12,n,32)x(12,32,n)", n, "np.einsum('hid,hdj->hij', q, kT contiguous)",
        lambda: np.einsum("hid,hdj->hij", q, kT))


def bench_elementwise(n):
    """pyapp's softmax / GELU / SiLU / exp: the numpy code against the WebAssembly SIMD kernels (Pyodide only:
    needs pyapp, which run_in_pyodide installs for this group), and np.exp vs the kernel's exp by size."""
    try:
        from pyapp.browser import wasm_gemm
        from pyapp.core import attention, layers, numerics
        wasm_gemm.install()
    except Exception:  # CPython, or no pyapp: nothing to compare
        return
    ew = wasm_gemm.elementwise
    if ew is None:
        return

    def numpy_only(fn, *args):
        saved = numerics.set_elementwise_backend(None)
        try:
            return fn(*args)
        finally:
            numerics.set_elementwise_backend(saved)

    def poly_exp(x):  # numerics.exp's polynomial path at any size (it takes np.exp below SMALL)
        small, numerics.SMALL = numerics.SMALL, 1
        try:
            return numpy_only(numerics.exp, x)
        finally:
            numerics.SMALL = small

    s = mk(H, n, n, scale=3.0)
    f = mk(n, DFF, scale=2.0)
    for block, fn, x, op in (("softmax (12,n,n)", attention.softmax, s, "softmax"), ("GELU (n,1536)", layers.gelu, f, "gelu"),
                             ("SiLU (n,1536)", layers.silu, f, "silu")):
        same = bool(np.array_equal(ew.run(op, x).view(np.uint32), numpy_only(fn, x).view(np.uint32)))
        row(block, n, "numpy (numerics.exp path)", lambda: numpy_only(fn, x))
        row(block, n, "wasm kernel, whole call (same bits: %s)" % same, lambda: ew.run(op, x))
        row(block, n, "as called (hook: kernel from %d elements)" % numerics.SMALL, lambda: fn(x))
    if n == max(SIZES):  # where a kernel would beat numpy's exp (below SMALL numerics.exp is np.exp)
        for size in (256, 1024, 1728, 4096, 8192, 16384, 65536):
            x = (rng.standard_normal(size) * 3 - 3).astype(np.float32)
            row("exp by size (%d)" % size, size, "np.exp (JS Math.exp per element)", lambda: np.exp(x))
            row("exp by size (%d)" % size, size, "numerics.exp polynomial, numpy passes", lambda: poly_exp(x))
            row("exp by size (%d)" % size, size, "wasm kernel vexp, whole call", lambda: ew.run("exp", x))


SIZES = (12, 128)
GROUPS = {"elementwise": bench_elementwise, "upscale": bench_upscale, "transpose": bench_transpose, "matmul": bench_matmul, "heads": bench_heads, "softmax": bench_softmax, "layernorm": bench_layernorm,
          "gelu": bench_gelu, "decode": bench_decode, "overhead": bench_overhead, "layer": bench_layer}


def run_all(groups, sizes=SIZES):
    del ROWS[:]
    for g in groups:
        for n in sizes:
            GROUPS[g](n)
    return ROWS
'''


def print_table(rows, title):
    print(title)
    print("%-34s %4s  %-48s %10s %10s  %s" % ("block", "n", "variant", "ms median", "ms min", "max|err| vs f64"))
    last = None
    for r in rows:
        if r["block"] != last and last is not None:
            print()
        last = r["block"]
        err = "" if r["err"] is None else "%.1e" % r["err"]
        print("%-34s %4d  %-48s %10.4f %10.4f  %s" % (r["block"][:34], r["n"], r["variant"][:48], r["ms"], r["min"], err))


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpython", action="store_true", help="run in this CPython instead of Pyodide")
    ap.add_argument("--only", default="", help="comma-separated groups: " + ",".join(
        ["matmul", "heads", "softmax", "layernorm", "gelu", "decode", "overhead", "layer", "upscale", "transpose",
         "elementwise"]))
    ap.add_argument("--json", help="also write the rows to this file")
    a = ap.parse_args(argv)
    groups = [g for g in a.only.split(",") if g] or ["matmul", "heads", "softmax", "layernorm", "gelu", "decode",
                                                       "overhead", "layer", "upscale", "transpose", "elementwise"]
    if a.cpython:
        import numpy
        ns: dict = {}
        exec(compile(BENCH_SRC, "pyodide_micro", "exec"), ns)
        rows = ns["run_all"](groups)
        title = "CPython %s, numpy %s" % (sys.version.split()[0], numpy.__version__)
    else:
        rows, title = run_in_pyodide(groups)
    print_table(rows, title)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"title": title, "rows": rows}, f, indent=1)
    return 0


INSTALL_PYAPP = """
import json, os, sys
from js import fetch
for url, dest in json.loads(%r):
    text = await (await fetch(url)).text()
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with open(dest, "w", encoding="utf-8") as fh:
        fh.write(text)
if os.getcwd() not in sys.path:
    sys.path.insert(0, os.getcwd())
'ok'
"""


def run_in_pyodide(groups):
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from browser import chromium, open_pyodide
    from server import BenchServer
    with BenchServer() as srv, chromium() as browser:
        page = open_pyodide(browser, srv)
        if "elementwise" in groups:  # that group runs pyapp's own functions: install the package first
            from run_benchmark import pyapp_files
            files = [[srv.origin + "/" + f, f] for f in pyapp_files()]
            page.evaluate("window.py(%s)" % json.dumps(INSTALL_PYAPP % json.dumps(files)))
        page.evaluate("window.py(%s)" % json.dumps(BENCH_SRC + "\n'ok'"))
        t0 = time.time()
        rows = json.loads(page.evaluate("window.py(%s)" % json.dumps(
            "import json\njson.dumps(run_all(%r))" % (list(groups),))))
        info = json.loads(page.evaluate("window.py(%s)" % json.dumps(
            "import sys, json, numpy\njson.dumps([sys.version.split()[0], numpy.__version__])")))
        title = "Pyodide (Chromium %s): Python %s, numpy %s — %.0f s" % (
            browser.version, info[0], info[1], time.time() - t0)
    return rows, title


if __name__ == "__main__":
    sys.exit(main())
