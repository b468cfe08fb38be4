"""Where one MiniLM forward's time goes, inside Pyodide 0.17.1 (numpy 1.17.5, no BLAS), part by part.

    .venv/bin/python bench/profile_forward.py                 # working tree vs HEAD, n = 12 and 128
    .venv/bin/python bench/profile_forward.py --base REV      # A/B against another git revision
    .venv/bin/python bench/profile_forward.py --no-base       # the working tree only
    .venv/bin/python bench/profile_forward.py --no-base --elementwise-ab   # + its elementwise kernels off

Runs the package's own functions (``pyapp.core.attention`` / ``encoder`` / ``numerics``) on the real
weights of layer 1 (loaded through the app's WeightStore), one row per step of a block: embedding, the
Q/K/V projections, QK^T, scaling, softmax, probs @ V, concat, W_O, the residual LayerNorms, the two
feed-forward matrices and GELU, plus whole-block and whole-forward rows.  With a base revision, its
``pyapp`` (``git show REV:pyapp/...``) is loaded beside the working tree's as ``pyapp_base`` and run on the
same tensors, so the two columns are the measured effect of the change.  Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from browser import chromium, open_pyodide  # noqa: E402
from ours import SETUP  # noqa: E402
from server import BenchServer  # noqa: E402

BASE_DIR = HERE / ".generated" / "base"

PROFILE = r'''
import importlib
from pyapp.core import encoder as _e


def _mods(pkg):
    pkg = pkg.split(":")[0]  # "pyapp:numpy-elementwise": the working tree with its elementwise kernels off
    return (importlib.import_module(pkg + ".core.attention"), importlib.import_module(pkg + ".core.encoder"))


def _med(fn, reps):
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    return median(ts)


def profile_parts(text, pkgs, reps, layer=1):
    """{pkg: [(part, ms)]} for one block of `layer` on `text`, every part timed on its own."""
    ids = TOK.encode(text).ids
    ENC.clear()
    x = ENC.layer_input(ids, layer)                                    # (n, d) real hidden state
    p, pre, c = ENC.params, "encoder.layer.%d." % layer, ENC.config
    t = lambda name: p.tensor(pre + name)
    out = {}
    ref = ENC.attentions(ids, range(c.n_layers))  # the working tree, as installed (kernels on)
    for pkg in pkgs:
        att, enc = _mods(pkg)
        from pyapp.core import numerics as _num
        saved_ew = _num.set_elementwise_backend(None) if pkg.endswith(":numpy-elementwise") else None
        try:
            _profile_one(pkg, att, enc, out, text, ids, x, p, pre, c, t, reps, layer, ref)
        finally:
            if saved_ew is not None:
                _num.set_elementwise_backend(saved_ew)
    if "pyapp:numpy-elementwise" in pkgs:
        out["interleaved"] = _interleaved(ids, x, layer, reps)
    return json.dumps(out)


def _interleaved(ids, x, layer, reps):
    """The block and (b) with the elementwise kernels on and off in alternation (on a busy machine both halves
    see the same load): [(row, [median on, median off, min on, min off])]."""
    from pyapp.core import numerics as _num
    from pyapp.core import attention as att
    ew = _num.elementwise_backend()
    w = ENC.attention_weights(layer, True)

    def block():
        return ENC.block_output(x, att.multi_head_attention(x, w).output, layer)

    def all6():
        ENC.clear()
        return ENC.attentions(ids, range(ENC.config.n_layers))
    rows = []
    for name, fn, k in (("= block, kernels on / off (interleaved)", block, 2 * reps),
                        ("== (b) all 6 layers, on / off (interleaved)", all6, reps)):
        on, off = [], []
        for r in range(k + 1):
            for mode in ((False, True) if r % 2 else (True, False)):
                _num.set_elementwise_backend(ew if mode else None)
                t0 = time.perf_counter()
                fn()
                if r:  # the first round warms up
                    (on if mode else off).append((time.perf_counter() - t0) * 1e3)
        _num.set_elementwise_backend(ew)
        rows.append((name, [median(on), median(off), min(on), min(off)]))
    return rows


def _profile_one(pkg, att, enc, out, text, ids, x, p, pre, c, t, reps, layer, ref):
    """One column of the profile: ``pkg``'s rows into ``out[pkg]``."""
    num = getattr(att, "numerics", None)
    bmm = getattr(num, "batched_matmul", np.matmul)       # what the package's attention uses
    Encoder = enc.Encoder
    e2 = Encoder(c, p)
    w = e2.attention_weights(layer, True)
    h, eps = c.n_heads, c.layer_norm_eps
    q = att.split_heads(att.linear(x, w.q_weight, w.q_bias), h)
    k = att.split_heads(att.linear(x, w.k_weight, w.k_bias), h)
    v = att.split_heads(att.linear(x, w.v_weight, w.v_bias), h)
    scores = bmm(q, k.transpose(0, 2, 1))
    scaled = scores / np.float32(np.sqrt(c.d_k))
    probs = att.softmax(scaled)
    heads = bmm(probs, v)
    concat = att.concat_heads(heads)
    a = att.linear(concat, w.o_weight, w.o_bias)
    hid = enc.layer_norm(x + a, t("attention.output.LayerNorm.weight"), t("attention.output.LayerNorm.bias"), eps)
    f1 = att.linear(hid, t("intermediate.dense.weight"), t("intermediate.dense.bias"))
    g = enc.gelu(f1)
    f2 = att.linear(g, t("output.dense.weight"), t("output.dense.bias"))
    rows = [
        ("tokenize (WordPieceTokenizer.encode)", lambda: TOK.encode(text)),
        ("embed: rows + LayerNorm", lambda: e2.embed(ids)),
        ("Q projection  x W_Q^T + b", lambda: att.linear(x, w.q_weight, w.q_bias)),
        ("K projection", lambda: att.linear(x, w.k_weight, w.k_bias)),
        ("V projection", lambda: att.linear(x, w.v_weight, w.v_bias)),
        ("split heads (3x)", lambda: [att.split_heads(a_, h) for a_ in (concat, concat, concat)]),
        ("scores Q K^T", lambda: bmm(q, k.transpose(0, 2, 1))),
        ("scale / sqrt(d_k)", lambda: scores / np.float32(np.sqrt(c.d_k))),
        ("softmax", lambda: att.softmax(scaled)),
        ("probs @ V", lambda: bmm(probs, v)),
        ("concat heads", lambda: att.concat_heads(heads)),
        ("output projection W_O", lambda: att.linear(concat, w.o_weight, w.o_bias)),
        ("residual + LayerNorm 1", lambda: enc.layer_norm(x + a, t("attention.output.LayerNorm.weight"),
                                                          t("attention.output.LayerNorm.bias"), eps)),
        ("FFN W_1 (d -> 4d)", lambda: att.linear(hid, t("intermediate.dense.weight"), t("intermediate.dense.bias"))),
        ("GELU", lambda: enc.gelu(f1)),
        ("FFN W_2 (4d -> d)", lambda: att.linear(g, t("output.dense.weight"), t("output.dense.bias"))),
        ("residual + LayerNorm 2", lambda: enc.layer_norm(hid + f2, t("output.LayerNorm.weight"),
                                                          t("output.LayerNorm.bias"), eps)),
        ("= attention, Q/K only (probs)", lambda: att.multi_head_attention(x, e2.attention_weights(layer, False))),
        ("= attention, all nine steps", lambda: att.multi_head_attention(x, w)),
        ("= block: attention + FFN", lambda: e2.block_output(x, att.multi_head_attention(x, w).output, layer)),
        ("temperature change (re-softmax)", lambda: att.probs_at(scaled, 1.7)),
    ]

    def layer0():
        e2.clear()
        return e2.attentions(ids, [0])
    def all6():
        e2.clear()
        return e2.attentions(ids, range(c.n_layers))
    rows.append(("== (a) fresh edit: layer-0 probs", layer0))
    rows.append(("== (b) fresh edit: all 6 layers' probs", all6))
    out[pkg] = [(name, _med(fn, reps)) for name, fn in rows]
    got = all6()
    out[pkg].append(("max |probs - working tree| (6 layers)",
                     float(max(np.abs(got[l] - ref[l]).max() for l in ref))))
'''


def long_text(n: int) -> str:
    """n tokens (with [CLS]/[SEP]) of one-token words, for lengths the benchmark passage does not reach."""
    words = ("the cat sat on a mat and it was very happy with all of its new toys so we went out to play in "
             "the park near our house where many kids run around every day").split()
    return " ".join(words[i % len(words)] for i in range(n - 2))


def write_base(rev: str) -> None:
    """`git show REV:pyapp/**.py` into bench/.generated/base/pyapp_base/ (imports are relative)."""
    files = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev, "pyapp"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    if BASE_DIR.exists():
        shutil.rmtree(BASE_DIR)
    for f in files:
        if not f.endswith(".py"):
            continue
        data = subprocess.run(["git", "show", "%s:%s" % (rev, f)], cwd=ROOT, check=True, capture_output=True).stdout
        dest = BASE_DIR / ("pyapp_base" + f[len("pyapp"):])
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="HEAD", help="git revision to compare with (default HEAD)")
    ap.add_argument("--no-base", action="store_true")
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--tokens", default="12,128", help="sentence lengths, e.g. 12,128,512")
    ap.add_argument("--elementwise-ab", action="store_true",
                    help="add a column: the working tree with its elementwise kernels off (numpy softmax/GELU)")
    a = ap.parse_args(argv)
    from run_benchmark import TEXT_12, pyapp_files, text_of_tokens
    texts = [TEXT_12 if int(n) == 12 else long_text(int(n)) if int(n) > 200 else text_of_tokens(int(n))
             for n in a.tokens.split(",")]
    pkgs = ["pyapp"] + (["pyapp:numpy-elementwise"] if a.elementwise_ab else [])
    with BenchServer() as srv, chromium() as browser:
        files = [[srv.origin + "/" + f, f] for f in pyapp_files()]
        if not a.no_base:
            write_base(a.base)
            files += [[srv.origin + "/bench/.generated/base/" + p.relative_to(BASE_DIR).as_posix(),
                       p.relative_to(BASE_DIR).as_posix()] for p in sorted(BASE_DIR.rglob("*.py"))]
            pkgs.append("pyapp_base")
        page = open_pyodide(browser, srv)
        prelude = "FILES = %s\nBASE = %r\n" % (json.dumps(files), srv.origin + "/")
        page.evaluate("window.py(%s)" % json.dumps(prelude + SETUP + PROFILE + "\n'ok'"))
        page.evaluate("window.py(%s)" % json.dumps("await load_for(%s)" % json.dumps(texts)))
        page.evaluate("window.py(%s)" % json.dumps("settle(%r, 3.0)" % texts[-1]))
        for text in texts:
            res = json.loads(page.evaluate("window.py(%s)" % json.dumps(
                "profile_parts(%r, %r, %d)" % (text, pkgs, a.reps))))
            n = len(json.loads(page.evaluate("window.py(%s)" % json.dumps("json.dumps(TOK.encode(%r).ids)" % text))))
            names = {"pyapp": "working tree", "pyapp:numpy-elementwise": "numpy elementw.", "pyapp_base": "base " + a.base}
            cols = [(names[k], res[k]) for k in pkgs]
            print("\nn = %d tokens, layer 1 of MiniLM-L6 (median of %d, ms) — Chromium %s, Pyodide 0.17.1"
                  % (n, a.reps, browser.version))
            print("%-42s" % "part" + "".join("%16s" % c for c, _ in cols)
                  + "".join("%10s" % ("x" + str(j + 2)) for j in range(len(cols) - 1)))
            for i, (name, _ms) in enumerate(cols[0][1]):
                vals = [c[1][i][1] for c in cols]
                if name.startswith("max |"):
                    print("%-42s" % name + "".join("%16.1e" % v for v in vals))
                    continue
                line = "%-42s" % name + "".join("%16.3f" % v for v in vals)
                if vals[0] > 0:  # how many times faster the working tree is than each other column
                    line += "".join("%9.1fx" % (v / vals[0]) for v in vals[1:])
                print(line)
            for name, (on, off, on_min, off_min) in res.get("interleaved", []):
                print("%-42s %15.3f %15.3f %9.1fx   (min %.3f / %.3f)" % (name, on, off, off / on, on_min, off_min))
    return 0


if __name__ == "__main__":
    sys.exit(main())
